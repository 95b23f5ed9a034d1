"""Production settings: refuse to start with DEBUG on or without a real secret key."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import (
    ANYMAIL_ESP,
    ANYMAIL_WEBHOOK_SECRET,
    DEBUG,
    EMAIL_ENABLED,
    PAYMENT_PROCESSOR,
    SECRET_KEY,
    STRIPE_WEBHOOK_SECRET,
)

_INSECURE_KEYS = {"", "insecure-local-development-key-do-not-use-in-production", "test-only-secret-key"}

if DEBUG:
    raise ImproperlyConfigured("DEBUG must be false in production settings")
if SECRET_KEY in _INSECURE_KEYS or SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be set to a random value of at least 32 characters")
# T3: no webhook is ever open. An ESP without the basic-auth secret of its tracking webhook would accept
# anyone's bounce or complaint; the product refuses to start instead of logging a warning.
if EMAIL_ENABLED and not ANYMAIL_WEBHOOK_SECRET:
    raise ImproperlyConfigured(
        f"ANYMAIL_WEBHOOK_SECRET (user:password) must be set when an ESP is configured (ANYMAIL_ESP={ANYMAIL_ESP}):"
        " it authenticates the tracking webhook"
    )

# T3 again, for the processor (SPEC §14): Stripe's webhook without its signing secret would refuse every real
# confirmation (or, worse, tempt someone to skip the check); production does not start that way.
if PAYMENT_PROCESSOR == "stripe" and not STRIPE_WEBHOOK_SECRET:
    raise ImproperlyConfigured(
        "STRIPE_WEBHOOK_SECRET must be set when PAYMENT_PROCESSOR=stripe: it is the signing secret (whsec_...) of"
        " the /webhooks/stripe/ endpoint"
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# HTTPS only (check --deploy W004, W008, W021): behind the TLS proxy every plain-HTTP request is redirected,
# and browsers are told to use HTTPS for a year, subdomains included. The preload flag only makes the domain
# eligible; submitting it to the browsers' list stays the domain owner's act.
SECURE_SSL_REDIRECT = True
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
