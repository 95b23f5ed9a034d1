"""Payment processor configuration from the environment (SPEC §10, §14, T3).

``PAYMENT_PROCESSOR`` is ``sandbox`` (the default: the embedded test processor, offline) or ``stripe``.
Stripe needs ``STRIPE_SECRET_KEY``, and its webhook ``STRIPE_WEBHOOK_SECRET`` (the endpoint's signing secret,
``whsec_…``); ``STRIPE_API_BASE_URL`` points the SDK elsewhere (a local fake in tests and benchmarks). A chosen
processor without what it needs is a start-up error that names the variable; production also refuses Stripe
without the webhook secret (``settings/production.py``), so no webhook is ever open.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

PROCESSORS = ("sandbox", "stripe")
STRIPE_API_BASE_URL = "https://api.stripe.com"


@dataclass(frozen=True)
class PaymentConfig:
    processor: str
    stripe_secret_key: str
    stripe_webhook_secret: str
    stripe_api_base_url: str


def payment_config(environ: Mapping[str, str] | None = None) -> PaymentConfig:
    env = os.environ if environ is None else environ

    def read(name: str, default: str = "") -> str:
        return env.get(name, default).strip()

    processor = read("PAYMENT_PROCESSOR", "sandbox").lower() or "sandbox"
    if processor not in PROCESSORS:
        raise ImproperlyConfigured(
            f"PAYMENT_PROCESSOR must be one of {', '.join(PROCESSORS)}, got {processor!r}"
        )
    if read("PAYMENT_GATEWAY"):
        # The raw-card gateway is gone (issue 14): a deployment still naming one would believe it takes cards.
        raise ImproperlyConfigured(
            "PAYMENT_GATEWAY is no longer read: set PAYMENT_PROCESSOR (sandbox or stripe)"
        )
    config = PaymentConfig(
        processor=processor,
        stripe_secret_key=read("STRIPE_SECRET_KEY"),
        stripe_webhook_secret=read("STRIPE_WEBHOOK_SECRET"),
        stripe_api_base_url=(read("STRIPE_API_BASE_URL") or STRIPE_API_BASE_URL).rstrip("/"),
    )
    if processor == "stripe" and not config.stripe_secret_key:
        raise ImproperlyConfigured("PAYMENT_PROCESSOR=stripe needs STRIPE_SECRET_KEY")
    return config
