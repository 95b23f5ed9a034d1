"""The sandbox processor, the embedded default (H1): a hosted page of its own and signed confirmations.

It plays Stripe's part inside this site so that ``make run`` takes a payment offline through the product's
real path: the payment page starts a session here and sends the patient to the sandbox's page
(``/sandbox/checkout/<id>/``, plainly marked as a test processor, with no card field: the patient picks an
outcome); the page records the outcome on its own rows (``SandboxSession``) and POSTs Stripe-shaped events,
signed with Stripe's scheme under the sandbox's own secret, to ``/webhooks/sandbox/``, where the same code as
Stripe's webhook verifies them with the SDK and records the payment. Delivery happens after the page has
answered, from a thread, like a processor's webhook that arrives a moment after the redirect.

Refunds and off-session charges are answered at once (as Stripe's API answers them); a charge also queues
its ``payment_intent.*`` event. Nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from payments.models import SandboxEvent, SandboxSession
from payments.processors.base import (
    CardSaveRequest,
    CheckoutRequest,
    HostedPage,
    OffSessionCharge,
    ProcessorError,
    ProcessorEvent,
    RefundResult,
    SavedCard,
)
from payments.processors.stripe_api import event_verify

logger = logging.getLogger(__name__)

API_VERSION: Final = "sandbox"
# A saved card that declines when charged off-session (the "declined later" choice on the card-save page).
DECLINING_PAYMENT_METHOD: Final = "pm_sbx_declines"
DELIVERY_RETRIES: Final = (0.3, 1.0, 3.0, 9.0)

Poster = Callable[[str, bytes, dict[str, str]], int]


def webhook_secret() -> str:
    """The sandbox's signing secret: derived from SECRET_KEY, so there is nothing to configure."""
    digest = hmac.new(settings.SECRET_KEY.encode(), b"payments.sandbox.webhook", hashlib.sha256).hexdigest()
    return f"whsec_sbx_{digest[:40]}"


def sign(payload: str, *, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` for ``payload``: t=<time>,v1=<HMAC-SHA256 of "t.payload"> (Stripe's scheme)."""
    moment = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(webhook_secret().encode(), f"{moment}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={moment},v1={mac}"


def _id(prefix: str) -> str:
    return f"{prefix}_sbx_{secrets.token_hex(12)}"


def session_object(session: SandboxSession) -> dict[str, Any]:
    """A Checkout Session as Stripe shows it (https://docs.stripe.com/api/checkout/sessions/object)."""
    return {
        "id": session.id, "object": "checkout.session", "mode": "setup" if session.mode == "setup" else "payment",
        "status": session.status, "amount_total": session.amount_cents, "currency": "usd",
        "payment_status": "paid" if session.mode == "payment" and session.status == "complete"
        else ("no_payment_required" if session.mode == "setup" else "unpaid"),
        "client_reference_id": session.client_reference_id or None, "metadata": session.metadata,
        "payment_intent": session.payment_intent or None, "setup_intent": session.setup_intent or None,
        "customer": session.customer or None, "success_url": session.success_url, "cancel_url": session.cancel_url,
        "livemode": False,
    }  # fmt: skip


def intent_object(session: SandboxSession, *, status: str, error: str = "") -> dict[str, Any]:
    """A PaymentIntent as Stripe shows it (https://docs.stripe.com/api/payment_intents/object)."""
    return {
        "id": session.payment_intent, "object": "payment_intent", "amount": session.amount_cents,
        "amount_received": session.amount_cents if status == "succeeded" else 0, "currency": "usd",
        "customer": session.customer or None, "description": session.description,
        "metadata": session.metadata, "payment_method": session.payment_method or None, "status": status,
        "last_payment_error": {"type": "card_error", "code": "card_declined", "message": error} if error else None,
        "livemode": False,
    }  # fmt: skip


def event_queue(*, kind: str, obj: Mapping[str, Any], webhook_url: str) -> SandboxEvent:
    """Sign-ready event in Stripe's envelope (https://docs.stripe.com/api/events/object), kept until delivered."""
    event_id = _id("evt")
    payload = json.dumps({
        "id": event_id, "object": "event", "api_version": API_VERSION, "created": int(time.time()),
        "data": {"object": dict(obj)}, "livemode": False, "pending_webhooks": 1, "type": kind,
    })  # fmt: skip
    return SandboxEvent.objects.create(id=event_id, payload=payload, webhook_url=webhook_url)


def default_webhook_url() -> str:
    return settings.PUBLIC_BASE_URL + reverse("payments_webhooks:sandbox")


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    return requests.post(url, data=body, headers=headers, timeout=10).status_code


def events_deliver(*, event_ids: Iterable[str] | None = None, post: Poster = _post) -> int:
    """POST the undelivered events (``event_ids``, or all), oldest first, each signed now; the ones answered
    2xx are marked delivered. Returns how many were."""
    pending = SandboxEvent.objects.filter(delivered_at__isnull=True).order_by("created_at", "id")
    if event_ids is not None:
        pending = pending.filter(id__in=list(event_ids))
    delivered = 0
    for event in pending:
        SandboxEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1)
        try:
            status = post(
                event.webhook_url, event.payload.encode(),
                {"Stripe-Signature": sign(event.payload), "Content-Type": "application/json"},
            )  # fmt: skip
        except requests.RequestException as exc:
            logger.warning("sandbox event %s not delivered: %s", event.pk, exc)
            continue
        if 200 <= status < 300:
            SandboxEvent.objects.filter(pk=event.pk).update(delivered_at=timezone.now())
            delivered += 1
        else:
            logger.warning("sandbox event %s refused by the webhook: HTTP %s", event.pk, status)
    return delivered


def events_deliver_later(event_ids: list[str]) -> None:
    """After the current transaction commits, deliver ``event_ids`` from a thread, retrying a few times (the
    processor's webhook arrives a moment after the patient is back on the practice's page)."""

    def run() -> None:
        from django.db import connection

        try:
            for pause in DELIVERY_RETRIES:
                time.sleep(pause)
                if (
                    events_deliver(event_ids=event_ids)
                    and not SandboxEvent.objects.filter(id__in=event_ids, delivered_at__isnull=True).exists()
                ):
                    return
        except Exception:
            logger.exception("sandbox event delivery failed")
        finally:
            connection.close()

    transaction.on_commit(lambda: threading.Thread(target=run, daemon=True, name="sandbox-webhook").start())


class SandboxProcessor:
    """The embedded default: every operation of the seam, offline."""

    name = "sandbox"
    checkout_origin = ""  # its hosted page is on this site

    def checkout_start(self, *, request: CheckoutRequest) -> HostedPage:
        if request.amount_cents <= 0:
            raise ProcessorError("The amount must be greater than zero.")
        session = SandboxSession.objects.create(
            id=_id("cs"), mode="payment", amount_cents=request.amount_cents, description=request.description,
            client_reference_id=request.reference, metadata={"checkout": request.reference, **request.metadata},
            success_url=request.success_url, cancel_url=request.cancel_url,
        )  # fmt: skip
        return HostedPage(session_id=session.id, url=reverse("sandbox:checkout", args=[session.id]))

    def event_verify(self, *, payload: bytes, signature: str) -> ProcessorEvent:
        return event_verify(payload=payload, signature=signature, secret=webhook_secret())

    def refund(
        self, *, payment_reference: str, amount_cents: int, idempotency_key: str, metadata: Mapping[str, str]
    ) -> RefundResult:
        with transaction.atomic():
            session = (
                SandboxSession.objects.select_for_update()
                .filter(payment_intent=payment_reference, status="complete")
                .first()
            )
            if session is None or session.amount_cents is None:
                raise ProcessorError(f"No such payment: {payment_reference}")
            left = session.amount_cents - session.amount_refunded_cents
            if not 0 < amount_cents <= left:
                raise ProcessorError(
                    f"Refund amount (${amount_cents / 100:.2f}) is greater than unrefunded amount (${left / 100:.2f})"
                )
            session.amount_refunded_cents += amount_cents
            session.save(update_fields=["amount_refunded_cents"])
        refund_id = "re_sbx_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        return RefundResult(id=refund_id, amount_cents=amount_cents, status="succeeded")

    def card_save_start(self, *, request: CardSaveRequest) -> HostedPage:
        session = SandboxSession.objects.create(
            id=_id("cs"), mode="setup", description=request.description, client_reference_id=request.reference,
            metadata={"card_save": request.reference, **request.metadata}, success_url=request.success_url,
            cancel_url=request.cancel_url, customer=_id("cus"), setup_intent=_id("seti"),
        )  # fmt: skip
        return HostedPage(session_id=session.id, url=reverse("sandbox:checkout", args=[session.id]))

    def saved_card(self, *, setup_reference: str) -> SavedCard:
        session = SandboxSession.objects.filter(setup_intent=setup_reference, mode="setup").first()
        if session is None or session.status != "complete" or not session.payment_method:
            raise ProcessorError(f"the card was not saved ({setup_reference})")
        return SavedCard(customer=session.customer, payment_method=session.payment_method)

    def charge_saved_card(
        self, *, card: SavedCard, amount_cents: int, idempotency_key: str, description: str,
        metadata: Mapping[str, str],
    ) -> OffSessionCharge:  # fmt: skip
        if not SandboxSession.objects.filter(
            mode="setup", status="complete", customer=card.customer, payment_method=card.payment_method
        ).exists():
            raise ProcessorError("The provided PaymentMethod is not attached to this customer.")
        charge_id = "cs_sbx_charge_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        with transaction.atomic():
            session, created = SandboxSession.objects.get_or_create(
                id=charge_id,
                defaults={
                    "mode": "charge", "amount_cents": amount_cents, "description": description,
                    "metadata": dict(metadata), "customer": card.customer, "payment_method": card.payment_method,
                    "payment_intent": _id("pi"),
                    "status": "failed" if card.payment_method == DECLINING_PAYMENT_METHOD else "complete",
                },
            )  # fmt: skip
            if created:  # an idempotent retry answers the same and queues nothing again
                declined = session.status == "failed"
                obj = intent_object(
                    session, status="requires_payment_method" if declined else "succeeded",
                    error="Your card was declined." if declined else "",
                )  # fmt: skip
                event = event_queue(
                    kind="payment_intent.payment_failed" if declined else "payment_intent.succeeded", obj=obj,
                    webhook_url=default_webhook_url(),
                )  # fmt: skip
                events_deliver_later([event.id])
        if session.status == "failed":
            return OffSessionCharge(
                payment_reference=session.payment_intent, succeeded=False, amount_cents=amount_cents,
                message="Your card was declined.",
            )  # fmt: skip
        return OffSessionCharge(
            payment_reference=session.payment_intent, succeeded=True, amount_cents=amount_cents
        )


def hosted_outcome(*, session_id: str, outcome: str, webhook_url: str) -> tuple[SandboxSession, str]:
    """The patient's choice on the sandbox's hosted page: ``pay`` (or ``save`` for a card, ``save_declining``
    for one that declines when charged), ``decline`` (a declined card: the session stays open for another
    try). Records it, queues the events Stripe would send and returns (session, message for the page).
    Raises ProcessorError for a session that is not open."""
    with transaction.atomic():
        session = SandboxSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None or session.status != "open":
            raise ProcessorError("This checkout session is no longer available.")
        events: list[SandboxEvent] = []
        if session.mode == "setup":
            if outcome not in ("save", "save_declining"):
                raise ProcessorError("Choose how to save the card.")
            session.payment_method = DECLINING_PAYMENT_METHOD if outcome == "save_declining" else _id("pm")
            session.status = "complete"
            session.save(update_fields=["payment_method", "status"])
            events.append(
                event_queue(
                    kind="checkout.session.completed", obj=session_object(session), webhook_url=webhook_url
                )
            )
            message = ""
        elif outcome == "decline":
            if not session.payment_intent:
                session.payment_intent = _id("pi")
                session.save(update_fields=["payment_intent"])
            obj = intent_object(session, status="requires_payment_method", error="Your card was declined.")
            events.append(event_queue(kind="payment_intent.payment_failed", obj=obj, webhook_url=webhook_url))
            message = "Your card was declined. Nothing was charged; try again or go back to the practice."
        elif outcome == "pay":
            session.payment_intent = session.payment_intent or _id("pi")
            session.payment_method = _id("pm")
            session.status = "complete"
            session.save(update_fields=["payment_intent", "payment_method", "status"])
            events.append(
                event_queue(
                    kind="payment_intent.succeeded",
                    obj=intent_object(session, status="succeeded"),
                    webhook_url=webhook_url,
                )
            )
            events.append(
                event_queue(
                    kind="checkout.session.completed", obj=session_object(session), webhook_url=webhook_url
                )
            )
            message = ""
        else:
            raise ProcessorError("Choose an outcome.")
        events_deliver_later([event.id for event in events])
    return session, message
