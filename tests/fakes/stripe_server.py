"""A local fake of the parts of Stripe's API the product uses, for tests and benchmarks.

The real ``stripe`` SDK talks to it over HTTP once ``STRIPE_API_BASE_URL`` is set to ``fake.base_url``::

    with FakeStripe() as fake:
        settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = fake.secret_key, fake.webhook_secret
        settings.STRIPE_API_BASE_URL = fake.base_url
        fake.webhook_url = live_server.url + "/webhooks/stripe/"   # where completed checkouts are announced
        ...
        fake.complete(session_id)           # the patient pays on the hosted page (or clicks "Pay" there)
        fake.dispute(payment_intent_id)     # the card holder disputes the charge
        fake.dispute_close(dispute_id, status="won")   # the bank decides
        fake.refund_status = "pending"       # refunds stay pending until fake.refund_settle(refund_id, status=...)
        fake.events                          # every event it made, signed or not delivered yet
        fake.signed(event)                   # (body, Stripe-Signature) for Django's test client

Shapes follow Stripe's API reference, version 2026-10-28 as the SDK pins it; each object carries the fields the
product reads and the ones around them that a reader would expect:

- Checkout Sessions, create / retrieve / expire, modes ``payment`` and ``setup``:
  https://docs.stripe.com/api/checkout/sessions/create and https://docs.stripe.com/api/checkout/sessions/object
  (``url`` is the hosted page; ``payment_status`` is ``paid`` once the money is taken, ``no_payment_required``
  for a completed setup session).
- PaymentIntents, create with ``confirm=true, off_session=true`` for a saved card, retrieve:
  https://docs.stripe.com/api/payment_intents/create and https://docs.stripe.com/api/payment_intents/confirm
  (a declined off-session charge answers 402 ``card_error`` with the PaymentIntent in the error,
  https://docs.stripe.com/error-codes#card-declined).
- SetupIntents, create / retrieve: https://docs.stripe.com/api/setup_intents/create and
  https://docs.stripe.com/api/setup_intents/object (``usage=off_session``; a completed setup Checkout attaches
  the payment method to the customer).
- Customers, create: https://docs.stripe.com/api/customers/create.
- Refunds, create on a PaymentIntent, whole or part: https://docs.stripe.com/api/refunds/create (more than
  what is left is refused, ``amount`` is the parameter at fault).
- Events (https://docs.stripe.com/api/events/object): ``checkout.session.completed``,
  ``payment_intent.succeeded``, ``payment_intent.payment_failed``, ``charge.refunded`` (the Charge, with the
  running total ``amount_refunded``), ``refund.created``, ``refund.updated`` and ``refund.failed`` (the Refund,
  https://docs.stripe.com/api/refunds/object: ``status`` pending, succeeded or failed), ``charge.dispute.created``
  and ``charge.dispute.closed`` (https://docs.stripe.com/api/disputes/object: ``status`` won or lost).
- Signatures (https://docs.stripe.com/webhooks#verify-manually): ``Stripe-Signature: t=<unix time>,v1=<hex
  HMAC-SHA256 of "<t>.<raw body>" under the endpoint's signing secret>``, computed here from first principles,
  not with the SDK, so that the product's verification is checked against the scheme itself.

Test cards are Stripe's (https://docs.stripe.com/testing): on the hosted page "Pay" uses 4242 4242 4242 4242 and
"Decline" 4000 0000 0000 0002; a saved card whose payment method is ``pm_card_chargeDeclined`` declines when
charged off-session.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

FAKE_SECRET_KEY = "sk_test_fake_" + "0123456789abcdef" * 2
FAKE_WEBHOOK_SECRET = "whsec_fake_" + "fedcba9876543210" * 2
API_VERSION = "2026-10-28.endive"
DECLINING_PAYMENT_METHOD = "pm_card_chargeDeclined"

_KEY_PART = re.compile(r"\[([^\]]*)\]")


def decode_form(body: bytes) -> dict[str, Any]:
    """Stripe's form encoding back into nested values: ``a[b][0][c]=1`` is ``{"a": {"b": [{"c": "1"}]}}``
    (the SDK's ``_api_encode``: bracketed keys, indexed lists, ``true``/``false`` for booleans)."""
    result: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body.decode(), keep_blank_values=True):
        head = raw_key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(raw_key[len(head) :])]
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    lists = _lists(result)
    assert isinstance(lists, dict)
    return lists


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def sign(payload: str, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header of ``payload`` (https://docs.stripe.com/webhooks#verify-manually)."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def _error(status: int, kind: str, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": kind, "message": message, **extra}}


@dataclass
class Delivery:
    event_id: str
    status: int


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        body = self._body()
        path = urlsplit(self.path).path
        if path.startswith("/checkout/"):  # the hosted page's own form
            self._page(*self.server.fake._hosted_post(path, decode_form(body)))
            return
        status, payload = self.server.fake._api(
            "POST", path, self.headers.get("Authorization", ""), decode_form(body),
            self.headers.get("Idempotency-Key", ""),
        )  # fmt: skip
        self._json(status, payload)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/checkout/"):
            self._page(*self.server.fake._hosted_get(path))
            return
        status, payload = self.server.fake._api("GET", path, self.headers.get("Authorization", ""), {}, "")
        self._json(status, payload)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
            f"Request-Id: req_{secrets.token_hex(7)}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.wfile.write(head.encode() + body)

    def _page(self, status: int, text: str, location: str = "") -> None:
        body = text.encode()
        where = f"Location: {location}\r\n" if location else ""
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"{where}Content-Length: {len(body)}\r\n\r\n"
        )
        self.wfile.write(head.encode() + body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    fake: FakeStripe


class FakeStripe:
    """Stripe's ``/v1`` API and a hosted Checkout page on 127.0.0.1, an ephemeral port.

    ``webhook_url``: where events are POSTed, signed with ``webhook_secret``; with ``auto_deliver`` off (or no
    URL) they wait in ``pending`` until ``deliver()``, so a test can look at the page before the confirmation
    arrives."""

    def __init__(
        self, *, secret_key: str = FAKE_SECRET_KEY, webhook_secret: str = FAKE_WEBHOOK_SECRET,
        webhook_url: str = "", auto_deliver: bool = True,
    ) -> None:  # fmt: skip
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.auto_deliver = auto_deliver
        self.requests: list[dict[str, Any]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.setup_intents: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        # "pending": new refunds stay pending until ``refund_settle`` (a bank that takes days); else they succeed.
        self.refund_status = "succeeded"
        self.events: list[dict[str, Any]] = []
        self.pending: deque[dict[str, Any]] = deque()
        self.deliveries: list[Delivery] = []
        self._idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        self._failures: deque[tuple[int, str]] = deque()
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FakeStripe:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeStripe is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # test controls

    def fail_next(self, *, status: int = 500, times: int = 1, message: str = "") -> None:
        """Answer the next ``times`` API requests with this error (Stripe down, or refusing)."""
        with self._lock:
            self._failures.extend([(status, message or HTTPStatus(status).phrase)] * times)

    def api_calls(self, method: str = "", path_prefix: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [
                r for r in self.requests
                if (not method or r["method"] == method) and r["path"].startswith(path_prefix)
            ]  # fmt: skip

    def complete(
        self, session_id: str, *, decline_first: bool = False, payment_method: str = "pm_card_visa"
    ) -> dict[str, Any]:
        """What Stripe does when the patient pays on the hosted page: the PaymentIntent succeeds (after one
        declined attempt with ``decline_first``), the session completes; the events follow. A setup session
        saves ``payment_method`` (``DECLINING_PAYMENT_METHOD``: a card that declines when charged later)."""
        with self._lock:
            session = self.sessions[session_id]
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}")
            if session["mode"] == "setup":
                return self._complete_setup(session, payment_method)
            intent = self._intent(
                amount=session["amount_total"], metadata=session["payment_intent_metadata"],
                description=session["payment_intent_description"], customer=None, payment_method=None,
            )  # fmt: skip
            if decline_first:
                self._decline(intent, "Your card was declined.")
            self._succeed(intent, payment_method="pm_card_visa")
            session.update(status="complete", payment_status="paid", payment_intent=intent["id"])
            self._event("checkout.session.completed", session)
            return session

    def decline(self, session_id: str) -> dict[str, Any]:
        """A declined card on the hosted page: the PaymentIntent records the failure and the session stays
        open for another card (https://docs.stripe.com/payments/checkout/fulfill-orders)."""
        with self._lock:
            session = self.sessions[session_id]
            intent_id = session.get("payment_intent")
            intent = self.payment_intents.get(intent_id) if intent_id else None
            if intent is None:
                intent = self._intent(
                    amount=session["amount_total"], metadata=session["payment_intent_metadata"],
                    description=session["payment_intent_description"], customer=None, payment_method=None,
                )  # fmt: skip
                session["payment_intent"] = intent["id"]
            self._decline(intent, "Your card was declined.")
            return intent

    def expire(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            session = self.sessions[session_id]
            session["status"] = "expired"
            self._event("checkout.session.expired", session)
            return session

    def dispute(
        self, payment_intent_id: str, *, amount: int | None = None, reason: str = "fraudulent"
    ) -> dict[str, Any]:
        """The card holder disputes the charge with their bank (https://docs.stripe.com/api/disputes/object)."""
        with self._lock:
            intent = self.payment_intents[payment_intent_id]
            charge = self.charges[intent["latest_charge"]]
            dispute = {
                "id": f"dp_{secrets.token_hex(12)}", "object": "dispute", "amount": amount or charge["amount"],
                "balance_transactions": [], "charge": charge["id"], "created": int(time.time()), "currency": "usd",
                "evidence_details": {"due_by": int(time.time()) + 7 * 86400, "has_evidence": False,
                                     "past_due": False, "submission_count": 0},
                "is_charge_refundable": False, "livemode": False, "metadata": {},
                "payment_intent": intent["id"], "reason": reason, "status": "needs_response",
            }  # fmt: skip
            charge["disputed"] = True
            self.disputes[dispute["id"]] = dispute
            self._event("charge.dispute.created", dispute)
            return dispute

    def dispute_close(self, dispute_id: str, *, status: str) -> dict[str, Any]:
        """The bank decides (https://docs.stripe.com/disputes/how-disputes-work): ``status`` becomes ``won`` (the
        funds are reinstated, ``charge.dispute.funds_reinstated``) or ``lost``; ``charge.dispute.closed`` follows
        (https://docs.stripe.com/api/events/types#event_types-charge.dispute.closed)."""
        with self._lock:
            dispute = self.disputes[dispute_id]
            dispute.update(status=status, is_charge_refundable=False)
            dispute["evidence_details"]["has_evidence"] = True
            dispute["evidence_details"]["submission_count"] = 1
            if status == "won":
                self._event("charge.dispute.funds_reinstated", dispute)
            self._event("charge.dispute.closed", dispute)
            return dispute

    def refund_settle(self, refund_id: str, *, status: str, failure_reason: str = "") -> dict[str, Any]:
        """A pending refund ends (https://docs.stripe.com/refunds#failed-refunds): ``succeeded``, or ``failed``
        with a ``failure_reason`` (e.g. ``expired_or_canceled_card``; the amount returns to the balance and leaves
        the charge's ``amount_refunded``). ``refund.updated`` follows, and ``refund.failed`` for a failure
        (https://docs.stripe.com/api/events/types#event_types-refund.failed). A refund that had succeeded can
        fail too, the same way."""
        with self._lock:
            refund = self.refunds[refund_id]
            refund["status"] = status
            if status == "failed":
                refund["failure_reason"] = failure_reason or "expired_or_canceled_card"
                refund["failure_balance_transaction"] = f"txn_{secrets.token_hex(12)}"
                charge = self.charges[refund["charge"]]
                charge["amount_refunded"] -= refund["amount"]
                charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            self._event("refund.updated", refund)
            if status == "failed":
                self._event("refund.failed", refund)
            return refund

    def signed(
        self, event: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None
    ) -> tuple[bytes, str]:
        body = json.dumps(event, indent=2)
        return body.encode(), sign(body, secret or self.webhook_secret, timestamp=timestamp)

    def deliver(self, *, url: str = "") -> list[Delivery]:
        """POST every pending event to ``url`` (default ``webhook_url``), signed, in order; a refused one
        (not 2xx) stays pending, as Stripe retries it later."""
        target = url or self.webhook_url
        done: list[Delivery] = []
        while True:
            with self._lock:
                if not self.pending:
                    break
                event = self.pending[0]
            body, header = self.signed(event)
            status = requests.post(
                target, data=body, headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                timeout=30,
            ).status_code  # fmt: skip
            delivery = Delivery(event_id=event["id"], status=status)
            done.append(delivery)
            with self._lock:
                self.deliveries.append(delivery)
                if 200 <= status < 300:
                    self.pending.popleft()
                else:
                    break
        return done

    def event_of(self, kind: str) -> dict[str, Any]:
        with self._lock:
            return next(e for e in reversed(self.events) if e["type"] == kind)

    # the API (called from the server's threads)

    def _api(
        self, method: str, path: str, authorization: str, params: dict[str, Any], idempotency_key: str
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(
                {"method": method, "path": path, "params": params, "idempotency_key": idempotency_key}
            )
            if authorization != f"Bearer {self.secret_key}":
                return _error(401, "invalid_request_error", "Invalid API Key provided.")
            if self._failures:
                status, message = self._failures.popleft()
                return _error(status, "api_error", message)
            cache_key = f"{method} {path} {idempotency_key}"
            if idempotency_key and cache_key in self._idempotent:
                return self._idempotent[cache_key]
            answer = self._route(method, path, params)
            if idempotency_key and method == "POST":
                self._idempotent[cache_key] = answer
            return answer

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if parts[:1] != ["v1"]:
            return _error(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")
        resource = parts[1:]
        if resource == ["checkout", "sessions"] and method == "POST":
            return self._session_create(params)
        if resource[:2] == ["checkout", "sessions"] and len(resource) >= 3:
            session = self.sessions.get(resource[2])
            if session is None:
                return _error(
                    404,
                    "invalid_request_error",
                    f"No such checkout.session: '{resource[2]}'",
                    param="session",
                )
            if resource[3:] == ["expire"] and method == "POST":
                if session["status"] != "open":
                    return _error(
                        400,
                        "invalid_request_error",
                        "Only Checkout Sessions with a status of `open` can be expired.",
                    )
                return 200, self.expire(session["id"])
            return 200, session
        if resource == ["customers"] and method == "POST":
            customer = {
                "id": f"cus_{secrets.token_hex(7)}", "object": "customer", "created": int(time.time()),
                "email": params.get("email"), "livemode": False, "metadata": params.get("metadata", {}),
                "name": params.get("name"),
            }  # fmt: skip
            self.customers[customer["id"]] = customer
            return 200, customer
        if resource == ["payment_intents"] and method == "POST":
            return self._intent_create(params)
        if resource[:1] == ["payment_intents"] and len(resource) == 2:
            intent = self.payment_intents.get(resource[1])
            if intent is None:
                return _error(
                    404, "invalid_request_error", f"No such payment_intent: '{resource[1]}'", param="intent"
                )
            return 200, intent
        if resource[:1] == ["setup_intents"] and len(resource) == 2:
            setup = self.setup_intents.get(resource[1])
            if setup is None:
                return _error(
                    404, "invalid_request_error", f"No such setupintent: '{resource[1]}'", param="intent"
                )
            return 200, setup
        if resource == ["setup_intents"] and method == "POST":
            setup = self._setup_intent(customer=params.get("customer"), metadata=params.get("metadata", {}))
            return 200, setup
        if resource == ["refunds"] and method == "POST":
            return self._refund_create(params)
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _session_create(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        mode = params.get("mode")
        if mode not in ("payment", "setup"):
            return _error(400, "invalid_request_error", "Missing required param: mode.", param="mode")
        if not params.get("success_url"):
            return _error(
                400, "invalid_request_error", "Missing required param: success_url.", param="success_url"
            )
        amount = None
        if mode == "payment":
            items = params.get("line_items") or []
            try:
                amount = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
            except (KeyError, TypeError, ValueError):
                return _error(400, "invalid_request_error", "Invalid line_items.", param="line_items")
            if not items or amount <= 0:
                return _error(
                    400, "invalid_request_error", "Missing required param: line_items.", param="line_items"
                )
        session_id = f"cs_test_{secrets.token_hex(24)}"
        intent_data = params.get("payment_intent_data") or {}
        session = {
            "id": session_id, "object": "checkout.session", "amount_subtotal": amount, "amount_total": amount,
            "cancel_url": params.get("cancel_url"), "client_reference_id": params.get("client_reference_id"),
            "created": int(time.time()), "currency": "usd" if mode == "payment" else None,
            "customer": params.get("customer"), "customer_email": params.get("customer_email"),
            "expires_at": int(params.get("expires_at") or time.time() + 86400), "livemode": False,
            "metadata": params.get("metadata", {}), "mode": mode, "payment_intent": None,
            "payment_status": "unpaid" if mode == "payment" else "no_payment_required", "setup_intent": None,
            "status": "open", "success_url": params["success_url"], "url": f"{self.base_url}/checkout/{session_id}",
            "payment_intent_metadata": intent_data.get("metadata", {}),
            "payment_intent_description": intent_data.get("description"),
        }  # fmt: skip
        if mode == "setup":
            setup = self._setup_intent(
                customer=params.get("customer"),
                metadata=(params.get("setup_intent_data") or {}).get("metadata", {}),
            )
            session["setup_intent"] = setup["id"]
        self.sessions[session_id] = session
        return 200, session

    def _intent(
        self, *, amount: int, metadata: dict[str, Any], description: str | None, customer: str | None,
        payment_method: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        intent: dict[str, Any] = {
            "id": f"pi_{secrets.token_hex(12)}", "object": "payment_intent", "amount": amount,
            "amount_received": 0, "capture_method": "automatic", "created": int(time.time()), "currency": "usd",
            "customer": customer, "description": description, "last_payment_error": None, "latest_charge": None,
            "livemode": False, "metadata": dict(metadata), "payment_method": payment_method,
            "status": "requires_payment_method",
        }  # fmt: skip
        self.payment_intents[intent["id"]] = intent
        return intent

    def _succeed(self, intent: dict[str, Any], *, payment_method: str) -> None:
        charge = {
            "id": f"ch_{secrets.token_hex(12)}", "object": "charge", "amount": intent["amount"],
            "amount_captured": intent["amount"], "amount_refunded": 0, "captured": True, "created": int(time.time()),
            "currency": "usd", "disputed": False, "livemode": False, "metadata": intent["metadata"],
            "paid": True, "payment_intent": intent["id"], "payment_method": payment_method,
            "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}},
            "refunded": False, "status": "succeeded",
        }  # fmt: skip
        self.charges[charge["id"]] = charge
        intent.update(
            status="succeeded", amount_received=intent["amount"], latest_charge=charge["id"],
            payment_method=payment_method, last_payment_error=None,
        )  # fmt: skip
        self._event("payment_intent.succeeded", intent)

    def _decline(self, intent: dict[str, Any], message: str) -> None:
        intent.update(
            status="requires_payment_method",
            last_payment_error={"type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": message},
        )  # fmt: skip
        self._event("payment_intent.payment_failed", intent)

    def _intent_create(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            amount = int(params["amount"])
        except (KeyError, ValueError):
            return _error(400, "invalid_request_error", "Missing required param: amount.", param="amount")
        intent = self._intent(
            amount=amount, metadata=params.get("metadata", {}), description=params.get("description"),
            customer=params.get("customer"), payment_method=params.get("payment_method"),
        )  # fmt: skip
        if params.get("confirm") != "true":
            return 200, intent
        method = params.get("payment_method")
        customer = self.customers.get(params.get("customer") or "")
        if not method or customer is None or method not in customer.get("payment_methods", [method]):
            return _error(
                400,
                "invalid_request_error",
                "The provided PaymentMethod is not attached to this customer.",
                param="payment_method",
            )
        if method == DECLINING_PAYMENT_METHOD:
            self._decline(intent, "Your card was declined.")
            return _error(
                402,
                "card_error",
                "Your card was declined.",
                code="card_declined",
                decline_code="generic_decline",
                payment_intent=intent,
            )
        self._succeed(intent, payment_method=method)
        return 200, intent

    def _setup_intent(self, *, customer: str | None, metadata: dict[str, Any]) -> dict[str, Any]:
        setup: dict[str, Any] = {
            "id": f"seti_{secrets.token_hex(12)}", "object": "setup_intent", "created": int(time.time()),
            "customer": customer, "livemode": False, "metadata": dict(metadata), "payment_method": None,
            "status": "requires_payment_method", "usage": "off_session",
        }  # fmt: skip
        self.setup_intents[setup["id"]] = setup
        return setup

    def _complete_setup(
        self, session: dict[str, Any], payment_method: str = "pm_card_visa"
    ) -> dict[str, Any]:
        setup = self.setup_intents[session["setup_intent"]]
        method = (
            f"{payment_method}_{secrets.token_hex(4)}" if payment_method == "pm_card_visa" else payment_method
        )
        setup.update(status="succeeded", payment_method=method)
        customer = self.customers.get(session.get("customer") or "")
        if customer is not None:
            customer.setdefault("payment_methods", []).append(method)
        session.update(status="complete")
        self._event("checkout.session.completed", session)
        return session

    def _refund_create(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        intent = self.payment_intents.get(params.get("payment_intent") or "")
        if intent is None or intent["status"] != "succeeded":
            return _error(
                400,
                "invalid_request_error",
                "No such payment_intent or it has no successful charge.",
                param="payment_intent",
            )
        charge = self.charges[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        amount = int(params.get("amount") or left)
        if amount <= 0 or amount > left:
            return _error(
                400, "invalid_request_error",
                f"Refund amount (${amount / 100:.2f}) is greater than unrefunded amount on charge (${left / 100:.2f})",
                param="amount",
            )  # fmt: skip
        refund = {
            "id": f"re_{secrets.token_hex(12)}", "object": "refund", "amount": amount, "charge": charge["id"],
            "created": int(time.time()), "currency": "usd", "metadata": params.get("metadata", {}),
            "payment_intent": intent["id"], "reason": params.get("reason"), "status": self.refund_status,
            "balance_transaction": f"txn_{secrets.token_hex(12)}", "destination_details": {"type": "card", "card": {
                "reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund"}},
            "failure_reason": None, "pending_reason": "processing" if self.refund_status == "pending" else None,
            "receipt_number": None, "source_transfer_reversal": None, "transfer_reversal": None,
        }  # fmt: skip
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        # Both events since API version 2024-10-28.acacia
        # (https://docs.stripe.com/changelog/acacia/2024-10-28/refund-webhook-update).
        self._event("charge.refunded", charge)
        self._event("refund.created", refund)
        return 200, refund

    def _event(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in obj.items() if not k.startswith("payment_intent_") or k == "payment_intent"}
        event = {
            "id": f"evt_{secrets.token_hex(12)}", "object": "event", "api_version": API_VERSION,
            "created": int(time.time()), "data": {"object": json.loads(json.dumps(shown))}, "livemode": False,
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "type": kind,
        }  # fmt: skip
        self.events.append(event)
        self.pending.append(event)
        if self.auto_deliver and self.webhook_url:
            threading.Thread(target=self._deliver_soon, daemon=True).start()
        return event

    def _deliver_soon(self) -> None:
        with contextlib.suppress(requests.RequestException):  # stays pending, as Stripe would retry
            self.deliver()

    # the hosted page

    def _hosted_get(self, path: str) -> tuple[int, str]:
        session = self.sessions.get(path.strip("/").split("/")[1])
        if session is None or session["status"] != "open":
            return (
                404,
                "<!doctype html><title>Stripe Checkout</title><h1>This checkout session is no longer available</h1>",
            )
        amount = f"${(session['amount_total'] or 0) / 100:,.2f}"
        action = "Save card" if session["mode"] == "setup" else f"Pay {amount}"
        return 200, (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Stripe Checkout (fake)</title></head>'
            f"<body><main><h1>Stripe test mode checkout</h1><p>{html.escape(amount)}</p>"
            f'<form method="post" action="/checkout/{session["id"]}/pay"><button type="submit">{action}</button></form>'
            f'<form method="post" action="/checkout/{session["id"]}/decline"><button type="submit">Use a card that is declined</button></form>'
            f'<p><a href="{html.escape(session["cancel_url"] or "")}">Back to the practice</a></p></main></body></html>'
        )

    def _hosted_post(self, path: str, form: dict[str, Any]) -> tuple[int, str, str]:
        parts = path.strip("/").split("/")
        session = self.sessions.get(parts[1]) if len(parts) == 3 else None
        if session is None or session["status"] != "open":
            return 404, "no such session", ""
        if parts[2] == "decline" and session["mode"] == "setup":
            self.complete(session["id"], payment_method=DECLINING_PAYMENT_METHOD)
            return 303, "", session["success_url"]
        if parts[2] == "decline":
            self.decline(session["id"])
            return 303, "", f"/checkout/{session['id']}"
        self.complete(session["id"])
        return 303, "", session["success_url"]
