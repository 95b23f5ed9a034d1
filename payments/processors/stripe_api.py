"""Stripe through the official SDK (H1-H5): Checkout Sessions, refunds, saved cards, webhook signatures.

The only module in the project that imports ``stripe``. ``STRIPE_API_BASE_URL`` points the SDK at another
address (the fake of tests/fakes/stripe_server.py in the tests and the benchmark), as ``TWILIO_API_BASE_URL``
does for Twilio. References: https://docs.stripe.com/api/checkout/sessions/create,
https://docs.stripe.com/api/refunds/create, https://docs.stripe.com/api/setup_intents,
https://docs.stripe.com/payments/save-and-reuse (Checkout in setup mode, then an off-session PaymentIntent),
https://docs.stripe.com/webhooks#verify-manually.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import stripe

from payments.processors.base import (
    CardSaveRequest,
    CheckoutRequest,
    HostedPage,
    OffSessionCharge,
    ProcessorError,
    ProcessorEvent,
    RefundResult,
    SavedCard,
    SignatureInvalid,
)

STRIPE_API_BASE_URL: Final = "https://api.stripe.com"
STRIPE_CHECKOUT_ORIGIN: Final = "https://checkout.stripe.com"
CURRENCY: Final = "usd"
# Stripe's own default: a signed event older than five minutes is refused as a replay.
SIGNATURE_TOLERANCE_SECONDS: Final = stripe.Webhook.DEFAULT_TOLERANCE


def event_verify(*, payload: bytes, signature: str, secret: str) -> ProcessorEvent:
    """Verify ``payload`` with the SDK (``stripe.WebhookSignature.verify_header``: the v1 HMAC-SHA256 of
    "t.payload" under ``secret``, within the tolerance) and return it as plain values, the body parsed once.
    Raises SignatureInvalid. ``construct_event`` would verify the same way and then build a StripeObject tree of
    the whole body that nothing here reads (a third of the webhook's CPU: docs/performance.md)."""
    if not secret:
        raise SignatureInvalid("no webhook signing secret is configured")
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
        )
        data = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as exc:
        raise SignatureInvalid(str(exc)) from exc
    try:
        obj = data["data"]["object"]
        return ProcessorEvent(id=str(data["id"]), type=str(data["type"]), created=int(data.get("created") or 0),
                              object=dict(obj))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise SignatureInvalid(f"signed, but not an event: {exc}") from exc


def _error(exc: stripe.StripeError) -> ProcessorError:
    unavailable = isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError) or (
        exc.http_status is not None and exc.http_status >= 500
    )
    return ProcessorError(exc.user_message or str(exc) or type(exc).__name__, unavailable=unavailable)


class StripeProcessor:
    """Hosted checkout through Stripe Checkout Sessions, with the account's secret key."""

    name = "stripe"

    def __init__(
        self, *, secret_key: str, webhook_secret: str, api_base: str = STRIPE_API_BASE_URL,
        max_network_retries: int = 2, timeout_seconds: float = 20.0,
    ) -> None:  # fmt: skip
        self.webhook_secret = webhook_secret
        api_base = api_base.rstrip("/")
        # Stripe's hosted pages are on checkout.stripe.com; a stand-in API (the tests' fake) serves its own.
        self.checkout_origin = (
            STRIPE_CHECKOUT_ORIGIN if api_base == STRIPE_API_BASE_URL else _origin(api_base)
        )
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout_seconds),
        )

    def checkout_start(self, *, request: CheckoutRequest) -> HostedPage:
        metadata = {"checkout": request.reference, **request.metadata}
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": CURRENCY,
                        "unit_amount": request.amount_cents,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "client_reference_id": request.reference,
            "metadata": metadata,
            # The PaymentIntent carries the reference too: payment_intent.* events name no session.
            "payment_intent_data": {"description": request.description, "metadata": metadata},
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        if request.expires_at is not None:
            params["expires_at"] = int(request.expires_at.timestamp())
        try:
            session = self.client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"checkout-{request.reference}"},
            )
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        if not session.url:
            raise ProcessorError("Stripe answered without a checkout URL")
        return HostedPage(session_id=session.id, url=session.url)

    def event_verify(self, *, payload: bytes, signature: str) -> ProcessorEvent:
        return event_verify(payload=payload, signature=signature, secret=self.webhook_secret)

    def refund(
        self, *, payment_reference: str, amount_cents: int, idempotency_key: str, metadata: Mapping[str, str]
    ) -> RefundResult:
        try:
            refund = self.client.v1.refunds.create(
                params={"payment_intent": payment_reference, "amount": amount_cents, "metadata": dict(metadata),
                        "reason": "requested_by_customer"},
                options={"idempotency_key": idempotency_key},
            )  # fmt: skip
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        return RefundResult(id=refund.id, amount_cents=int(refund.amount), status=str(refund.status or ""))

    def card_save_start(self, *, request: CardSaveRequest) -> HostedPage:
        metadata = {"card_save": request.reference, **request.metadata}
        try:
            # The card must belong to a customer to be charged later (https://docs.stripe.com/payments/save-and-reuse).
            customer = self.client.v1.customers.create(
                params={"description": request.description, "metadata": metadata},
                options={"idempotency_key": f"customer-{request.reference}"},
            )
            session = self.client.v1.checkout.sessions.create(
                params={
                    "mode": "setup", "currency": CURRENCY, "customer": customer.id,
                    "client_reference_id": request.reference, "metadata": metadata,
                    "setup_intent_data": {"description": request.description, "metadata": metadata},
                    "success_url": request.success_url, "cancel_url": request.cancel_url,
                },
                options={"idempotency_key": f"card-save-{request.reference}"},
            )  # fmt: skip
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        if not session.url:
            raise ProcessorError("Stripe answered without a checkout URL")
        return HostedPage(session_id=session.id, url=session.url)

    def saved_card(self, *, setup_reference: str) -> SavedCard:
        try:
            setup = self.client.v1.setup_intents.retrieve(setup_reference)
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        customer, method = _id(setup.customer), _id(setup.payment_method)
        if setup.status != "succeeded" or not customer or not method:
            raise ProcessorError(f"the card was not saved (SetupIntent {setup.id} is {setup.status})")
        return SavedCard(customer=customer, payment_method=method)

    def charge_saved_card(
        self, *, card: SavedCard, amount_cents: int, idempotency_key: str, description: str,
        metadata: Mapping[str, str],
    ) -> OffSessionCharge:  # fmt: skip
        try:
            intent = self.client.v1.payment_intents.create(
                params={
                    "amount": amount_cents, "currency": CURRENCY, "customer": card.customer,
                    "payment_method": card.payment_method, "off_session": True, "confirm": True,
                    "description": description, "metadata": dict(metadata),
                },
                options={"idempotency_key": idempotency_key},
            )  # fmt: skip
        except stripe.CardError as exc:
            # https://docs.stripe.com/payments/save-and-reuse#charge-saved-payment-method: a decline answers 402
            # with the PaymentIntent in the error.
            failed = exc.error.payment_intent if exc.error is not None else None
            return OffSessionCharge(
                payment_reference=_id(failed), succeeded=False, amount_cents=amount_cents,
                message=exc.user_message or "The card was declined.",
            )  # fmt: skip
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        return OffSessionCharge(
            payment_reference=intent.id, succeeded=intent.status == "succeeded", amount_cents=int(intent.amount),
            message="" if intent.status == "succeeded" else f"The payment is {intent.status}.",
        )  # fmt: skip


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _id(value: Any) -> str:
    if value is None:
        return ""
    return str(value if isinstance(value, str) else getattr(value, "id", ""))
