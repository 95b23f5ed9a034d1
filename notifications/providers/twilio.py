"""Twilio SMS: sending, error classification, webhook signatures and TwiML (N2).

The only module in the project that imports the ``twilio`` SDK.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from requests.adapters import HTTPAdapter
from twilio.base import values
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse
from urllib3.exceptions import NewConnectionError

from notifications.models import Reason

TWILIO_API_BASE_URL: Final = "https://api.twilio.com"
TIMEOUT_SECONDS: Final = 10.0
# K5: a Lookup is asked while the front desk waits on the quick-add form; a slow answer is treated as none.
LOOKUP_TIMEOUT_SECONDS: Final = 5.0

# The SDK builds api.twilio.com (Messages) and lookups.twilio.com (Lookup v2, K5), or
# {product}.{edge}.{region}.twilio.com when TWILIO_EDGE/TWILIO_REGION are set in the environment; all must go
# to the configured base URL or a test could reach the real Twilio. Their paths do not collide
# (/2010-04-01/... and /v2/PhoneNumbers/...), so one fake server answers both.
_API_HOST = re.compile(r"^https://(?:api|lookups)(?:\.[a-z0-9-]+)*\.twilio\.com(?=/|$)")
_LOOKUPS_HOST = re.compile(r"^https://lookups[.]")


@dataclass(frozen=True)
class ErrorClass:
    """What one Twilio error code means for a message.

    ``permanent``: sending the same message to the same number again cannot succeed (at send time a
    transient error is retried later; in a status callback the message is final either way).
    ``reason``: the ``notifications.models.Reason`` stored on the message.
    ``undeliverable``: the destination is the problem; the message ends ``undelivered`` and joins the
    undeliverable list (U1), where the front desk can add another number. Otherwise a permanent error ends
    ``failed``.
    ``opted_out``: the recipient opted out at Twilio (N2): an SMS opt-out is recorded and the message ends
    ``cancelled``, never on the list.
    """

    permanent: bool
    reason: str
    undeliverable: bool = False
    opted_out: bool = False


# N2: the one table of Twilio's codes, read by the send path (channels/sms.py) and the status callback
# (delivery.py). 2xxxx come back from the Messages API when the message is created; 3xxxx are delivery
# errors reported in a status callback's ErrorCode. Each row from Twilio's error dictionary,
# https://www.twilio.com/docs/api/errors/<code>.
ERROR_CLASSES: Final[Mapping[int, ErrorClass]] = MappingProxyType(
    {
        # Authenticate: our credentials, nothing about the number.
        20003: ErrorClass(permanent=True, reason=Reason.PROVIDER_FAILED),
        # Too many requests: never processed, "always safe to retry".
        20429: ErrorClass(permanent=False, reason=Reason.PROVIDER_FAILED),
        # Invalid 'To' phone number.
        21211: ErrorClass(permanent=True, reason=Reason.INVALID_NUMBER, undeliverable=True),
        # SMS to the number's country is not enabled on the account (geo permissions): to the front desk,
        # a number we cannot text on this route.
        21408: ErrorClass(permanent=True, reason=Reason.UNREACHABLE_ROUTE, undeliverable=True),
        # 'From' is not a message-capable Twilio number: our sender's configuration.
        21606: ErrorClass(permanent=True, reason=Reason.PROVIDER_FAILED),
        # Attempt to send to an unsubscribed recipient: they replied STOP to this sender or service.
        21610: ErrorClass(permanent=True, reason=Reason.OPTED_OUT, opted_out=True),
        # The 'To'/'From' combination cannot be connected (carrier, country or sender-type restrictions).
        21612: ErrorClass(permanent=True, reason=Reason.UNREACHABLE_ROUTE, undeliverable=True),
        # 'To' is not a valid mobile number: a landline, or not a mobile number at all.
        21614: ErrorClass(permanent=True, reason=Reason.LANDLINE, undeliverable=True),
        # 'To' cannot be a landline (countries where Twilio does not try landlines).
        21635: ErrorClass(permanent=True, reason=Reason.LANDLINE, undeliverable=True),
        # Queue overflow: too many messages queued on the sender; Twilio's side, not the number.
        30001: ErrorClass(permanent=False, reason=Reason.PROVIDER_FAILED),
        # Account suspended after the message was queued.
        30002: ErrorClass(permanent=True, reason=Reason.PROVIDER_FAILED),
        # Unreachable destination handset (off, no signal): often transient, so a resend may work.
        30003: ErrorClass(permanent=False, reason=Reason.UNREACHABLE, undeliverable=True),
        # Message blocked: the destination cannot receive it (carrier block list, do-not-disturb).
        30004: ErrorClass(permanent=True, reason=Reason.PROVIDER_UNDELIVERED, undeliverable=True),
        # Unknown destination handset: the number does not exist or is out of service.
        30005: ErrorClass(permanent=True, reason=Reason.UNKNOWN_HANDSET, undeliverable=True),
        # Landline or unreachable carrier.
        30006: ErrorClass(permanent=True, reason=Reason.LANDLINE, undeliverable=True),
        # Message filtered by Twilio or the carrier (spam, unregistered traffic): the content or the
        # sender, not the number; the same text to another number is filtered again. Ops, not the front desk.
        30007: ErrorClass(permanent=True, reason=Reason.CARRIER_FILTERED),
        # Unknown error: the carrier gave no reason; the message did not arrive.
        30008: ErrorClass(permanent=False, reason=Reason.PROVIDER_UNDELIVERED, undeliverable=True),
        # US A2P 10DLC rate limits exceeded: our campaign's throughput (or, rarely, too many to one number in a
        # short time), not the number; "slow down your rate of message sending", so a later try may pass.
        30022: ErrorClass(permanent=False, reason=Reason.PROVIDER_FAILED),
        # Toll-free number not verified / 10DLC number not registered to an approved campaign: carriers block
        # every US-bound message from our sender until its registration is done. Ops, not the front desk, as 30007.
        30032: ErrorClass(permanent=True, reason=Reason.CARRIER_FILTERED),
        30034: ErrorClass(permanent=True, reason=Reason.CARRIER_FILTERED),
    }
)
_RATE_LIMITED: Final = ErrorClass(permanent=False, reason=Reason.PROVIDER_FAILED)
_UNAVAILABLE: Final = ErrorClass(permanent=False, reason=Reason.PROVIDER_FAILED)
_REJECTED: Final = ErrorClass(permanent=True, reason=Reason.PROVIDER_FAILED)
_NETWORK: Final = ErrorClass(permanent=False, reason=Reason.PROVIDER_FAILED)


def classify_error(*, code: int | None, status: int | None = None) -> ErrorClass:
    """Classify a Twilio error code (from the API or a status callback) and/or an HTTP status: the table's
    row for a known code, else by the HTTP status (429 and 5xx transient, any other refusal permanent)."""
    if code is not None and code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    if status == 429:
        return _RATE_LIMITED
    if status is not None and status >= 500:
        return _UNAVAILABLE
    return _REJECTED


class ProviderError(Exception):
    """A send that Twilio did not accept, with its ``ErrorClass``.

    ``maybe_sent`` is set for network errors after the request may have reached Twilio (read timeout,
    dropped connection): retrying those risks sending the message twice (N1).
    """

    def __init__(
        self,
        message: str,
        *,
        error_class: ErrorClass,
        code: int | None = None,
        status: int | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_class = error_class
        self.code = code
        self.status = status
        self.maybe_sent = maybe_sent

    @classmethod
    def classified(cls, message: str, *, code: int | None, status: int | None) -> ProviderError:
        return cls(message, error_class=classify_error(code=code, status=status), code=code, status=status)

    @property
    def permanent(self) -> bool:
        return self.error_class.permanent

    @property
    def reason(self) -> str:
        return self.error_class.reason

    @property
    def undeliverable(self) -> bool:
        return self.error_class.undeliverable

    @property
    def opted_out(self) -> bool:
        return self.error_class.opted_out

    def __repr__(self) -> str:
        return (
            f"ProviderError(code={self.code!r}, status={self.status!r}, permanent={self.permanent!r}, "
            f"reason={self.reason!r}, message={self.message!r})"
        )


@dataclass(frozen=True)
class SentSms:
    sid: str
    status: str


class _BaseUrlHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, sending to ``base_url`` instead of api.twilio.com (tests, benchmarks)."""

    def __init__(self, *, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        # requests reads the proxy variables (HTTPS_PROXY, NO_PROXY, ...) and the CA bundle variables from the
        # environment again on every request, a tenth of a text's CPU in a worker (SPEC §11 send pipeline):
        # they are read once here, for the host the client talks to, and the session no longer looks.
        super().__init__(timeout=timeout, proxy=requests.utils.get_environ_proxies(self.base_url))
        if self.session is not None:
            # The SDK only sizes the https pool; a plain-http fake server needs the same for threaded senders.
            self.session.mount("http://", HTTPAdapter(pool_maxsize=32))
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                self.session.verify = bundle
            self.session.trust_env = False

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if timeout is None and _LOOKUPS_HOST.match(url):
            timeout = LOOKUP_TIMEOUT_SECONDS
        if self.base_url != TWILIO_API_BASE_URL:
            url = _API_HOST.sub(self.base_url, url, count=1)
        return super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


_client_lock = threading.Lock()
_cached_client: tuple[tuple[str, str, str], Client] | None = None


def _client() -> Client:
    global _cached_client
    account_sid = settings.TWILIO_ACCOUNT_SID
    auth_token = settings.TWILIO_AUTH_TOKEN
    if not account_sid or not auth_token:
        raise ImproperlyConfigured("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required to send SMS")
    key = (account_sid, auth_token, settings.TWILIO_API_BASE_URL or TWILIO_API_BASE_URL)
    with _client_lock:
        if _cached_client is None or _cached_client[0] != key:
            http_client = _BaseUrlHttpClient(base_url=key[2], timeout=TIMEOUT_SECONDS)
            _cached_client = (key, Client(account_sid, auth_token, http_client=http_client))
        return _cached_client[1]


def reset_client() -> None:
    """Forget the cached client (tests that change the Twilio settings)."""
    global _cached_client
    with _client_lock:
        if _cached_client is not None:
            session = getattr(_cached_client[1].http_client, "session", None)
            if session is not None:
                session.close()
        _cached_client = None


def _sender(*, messaging_service_sid: str, from_number: str) -> dict[str, str]:
    if messaging_service_sid:
        return {"messaging_service_sid": messaging_service_sid}
    if from_number:
        return {"from_": from_number}
    if settings.TWILIO_MESSAGING_SERVICE_SID:
        return {"messaging_service_sid": settings.TWILIO_MESSAGING_SERVICE_SID}
    if settings.TWILIO_FROM_NUMBER:
        return {"from_": settings.TWILIO_FROM_NUMBER}
    raise ImproperlyConfigured("Set TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER to send SMS")


def _may_have_reached_twilio(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        # Refused or unresolvable: requests wraps urllib3's MaxRetryError, whose reason says why.
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return not isinstance(reason, NewConnectionError)
    return True


def send_sms(
    *,
    to: str,
    body: str,
    status_callback: str,
    messaging_service_sid: str = "",
    from_number: str = "",
) -> SentSms:
    """Hand one SMS to Twilio (N2); raise ProviderError when Twilio does not accept it.

    The sender is ``messaging_service_sid``, else ``from_number``, else the configured Messaging Service,
    else the configured number.
    """
    sender = _sender(messaging_service_sid=messaging_service_sid, from_number=from_number)
    client = _client()
    try:
        message = client.messages.create(
            to=to, body=body, status_callback=status_callback or values.unset, **sender
        )
    except TwilioRestException as exc:
        raise ProviderError.classified(exc.msg, code=_twilio_code(exc), status=exc.status) from exc
    except TwilioServiceException as exc:
        raise ProviderError.classified(
            exc.detail or exc.title, code=_twilio_code(exc), status=exc.status
        ) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ProviderError(
            f"Twilio API unreachable: {exc}", error_class=_NETWORK, maybe_sent=_may_have_reached_twilio(exc)
        ) from exc
    return SentSms(sid=message.sid or "", status=str(message.status or ""))


@dataclass(frozen=True)
class LineType:
    """Lookup v2's ``line_type_intelligence`` for one number (K5): ``type`` is Twilio's (``mobile``,
    ``landline``, ``fixedVoip``, ``nonFixedVoip``, ``tollFree``, ...) or "" when Twilio could not tell, with
    its ``error_code`` (60600 unprovisioned or out of coverage, 60601 Canada without NPAC access)."""

    type: str
    carrier_name: str
    error_code: int | None
    mobile_country_code: str
    mobile_network_code: str


class LookupUnavailable(Exception):
    """No Lookup answer: Twilio refused or failed the request, timed out, or no credentials are configured."""


def lookup_line_type(number: str) -> LineType:
    """Ask Twilio Lookup v2 for ``number``'s line type (a paid request; K5). Raises LookupUnavailable.

    https://www.twilio.com/docs/lookup/v2-api/line-type-intelligence
    """
    try:
        client = _client()
    except ImproperlyConfigured as exc:
        raise LookupUnavailable(str(exc)) from exc
    try:
        result = client.lookups.v2.phone_numbers(number).fetch(fields="line_type_intelligence")
    except (TwilioRestException, TwilioServiceException) as exc:
        code = _twilio_code(exc)
        raise LookupUnavailable(f"Twilio Lookup refused: HTTP {exc.status}, code {code}") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise LookupUnavailable(f"Twilio Lookup unreachable: {exc}") from exc
    info: dict[str, Any] = result.line_type_intelligence or {}
    error_code = info.get("error_code")
    return LineType(
        type=str(info.get("type") or ""),
        carrier_name=str(info.get("carrier_name") or ""),
        error_code=int(error_code) if error_code else None,
        mobile_country_code=str(info.get("mobile_country_code") or ""),
        mobile_network_code=str(info.get("mobile_network_code") or ""),
    )


def _twilio_code(exc: TwilioRestException | TwilioServiceException) -> int | None:
    # Without a code in the body the SDK reports the HTTP status as the code; Twilio's own codes are 5 digits.
    try:
        code = int(exc.code)
    except (TypeError, ValueError):
        return None
    return code if code >= 10000 else None


def validate_signature(*, url: str, params: Mapping[str, Any], signature: str) -> bool:
    """True when ``signature`` (the X-Twilio-Signature header) signs ``url`` and ``params``."""
    token = settings.TWILIO_AUTH_TOKEN
    if not token or not signature:
        return False
    return bool(RequestValidator(token).validate(url, params, signature))


def compute_signature(*, url: str, params: Mapping[str, Any], auth_token: str = "") -> str:
    """The X-Twilio-Signature Twilio would send for this request (tests and the fake server)."""
    return RequestValidator(auth_token or settings.TWILIO_AUTH_TOKEN).compute_signature(url, params)


def empty_twiml() -> str:
    return str(MessagingResponse())


def message_twiml(text: str) -> str:
    response = MessagingResponse()
    response.message(text)
    return str(response)
