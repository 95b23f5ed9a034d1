"""Twilio SMS: sending, error classification, webhook signatures and TwiML (N2).

The only module in the project that imports the ``twilio`` SDK.
"""

from __future__ import annotations

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

TWILIO_API_BASE_URL: Final = "https://api.twilio.com"
TIMEOUT_SECONDS: Final = 10.0

# The SDK builds api.twilio.com, or api.{edge}.{region}.twilio.com when TWILIO_EDGE/TWILIO_REGION are set in
# the environment; both must go to the configured base URL or a test could reach the real Twilio.
_API_HOST = re.compile(r"^https://api(?:\.[a-z0-9-]+)*\.twilio\.com(?=/|$)")


@dataclass(frozen=True)
class ErrorClass:
    permanent: bool
    reason: str
    undeliverable: bool = False
    opted_out: bool = False
    retryable_later: bool = False


# Codes returned when the message is created (21xxx) or reported in a status callback's ErrorCode (30xxx).
ERROR_CLASSES: Final[Mapping[int, ErrorClass]] = MappingProxyType(
    {
        21610: ErrorClass(permanent=True, reason="opted_out", opted_out=True),
        21211: ErrorClass(permanent=True, reason="invalid_number", undeliverable=True),
        21612: ErrorClass(permanent=True, reason="unreachable_route", undeliverable=True),
        21614: ErrorClass(permanent=True, reason="not_a_mobile_number", undeliverable=True),
        21635: ErrorClass(permanent=True, reason="landline", undeliverable=True),
        30003: ErrorClass(
            permanent=True, reason="unreachable_handset", undeliverable=True, retryable_later=True
        ),
        30005: ErrorClass(permanent=True, reason="unknown_handset", undeliverable=True),
        30006: ErrorClass(permanent=True, reason="landline_or_unreachable_carrier", undeliverable=True),
        30007: ErrorClass(permanent=True, reason="carrier_filtered"),
        20429: ErrorClass(permanent=False, reason="rate_limited"),
    }
)
_RATE_LIMITED: Final = ErrorClass(permanent=False, reason="rate_limited")
_UNAVAILABLE: Final = ErrorClass(permanent=False, reason="provider_unavailable")
_REJECTED: Final = ErrorClass(permanent=True, reason="rejected")


def classify_error(*, code: int | None, status: int | None = None) -> ErrorClass:
    """Classify a Twilio error code (from the API or a status callback) and/or an HTTP status."""
    if code is not None and code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    if status == 429:
        return _RATE_LIMITED
    if status is not None and status >= 500:
        return _UNAVAILABLE
    return _REJECTED


class ProviderError(Exception):
    """A send that Twilio did not accept.

    ``permanent`` means sending the same message again cannot succeed. ``maybe_sent`` is set for network
    errors after the request may have reached Twilio (read timeout, dropped connection): retrying those
    risks sending the message twice (N1).
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: int | None = None,
        status: int | None = None,
        reason: str = "",
        undeliverable: bool = False,
        opted_out: bool = False,
        retryable_later: bool = False,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code
        self.status = status
        self.reason = reason
        self.undeliverable = undeliverable
        self.opted_out = opted_out
        self.retryable_later = retryable_later
        self.maybe_sent = maybe_sent

    @classmethod
    def classified(cls, message: str, *, code: int | None, status: int | None) -> ProviderError:
        error_class = classify_error(code=code, status=status)
        return cls(
            message,
            permanent=error_class.permanent,
            code=code,
            status=status,
            reason=error_class.reason,
            undeliverable=error_class.undeliverable,
            opted_out=error_class.opted_out,
            retryable_later=error_class.retryable_later,
        )

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
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")
        if self.session is not None:
            # The SDK only sizes the https pool; a plain-http fake server needs the same for threaded senders.
            self.session.mount("http://", HTTPAdapter(pool_maxsize=32))

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
            f"Twilio API unreachable: {exc}",
            permanent=False,
            reason="network_error",
            maybe_sent=_may_have_reached_twilio(exc),
        ) from exc
    return SentSms(sid=message.sid or "", status=str(message.status or ""))


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
