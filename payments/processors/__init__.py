"""Card processors behind the payment page (H1): ``PAYMENT_PROCESSOR`` picks one, ``sandbox`` by default.

``get_processor()`` is the one way the rest of the product reaches a processor; ``base`` says what each must do.
``configured()`` is the one reader of the payment settings (``PAYMENT_PROCESSOR``, ``STRIPE_SECRET_KEY``,
``STRIPE_WEBHOOK_SECRET``, ``STRIPE_API_BASE_URL``; settings/base.py reads them with
``dunning_project.payment_config``).
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from dunning_project.payment_config import PROCESSORS, PaymentConfig
from payments.processors.base import Processor


def configured() -> PaymentConfig:
    return PaymentConfig(
        processor=settings.PAYMENT_PROCESSOR,
        stripe_secret_key=settings.STRIPE_SECRET_KEY,
        stripe_webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
        stripe_api_base_url=settings.STRIPE_API_BASE_URL,
    )


def get_processor(name: str | None = None) -> Processor:
    """The configured processor (``PAYMENT_PROCESSOR``), or the one called ``name``: a confirmation or a refund
    goes to the processor that took the payment, whatever is configured now."""
    config = configured()
    chosen = name or config.processor
    if chosen == "sandbox":
        from payments.processors.sandbox import SandboxProcessor

        return SandboxProcessor()
    if chosen == "stripe":
        return _stripe(config.stripe_secret_key, config.stripe_webhook_secret, config.stripe_api_base_url)
    raise ImproperlyConfigured(f"PAYMENT_PROCESSOR must be one of {', '.join(PROCESSORS)}, got {chosen!r}")


@lru_cache(maxsize=4)
def _stripe(secret_key: str, webhook_secret: str, api_base: str) -> Processor:
    from payments.processors.stripe_api import StripeProcessor

    if not secret_key:
        raise ImproperlyConfigured("PAYMENT_PROCESSOR=stripe needs STRIPE_SECRET_KEY")
    return StripeProcessor(secret_key=secret_key, webhook_secret=webhook_secret, api_base=api_base)
