"""A local fake of Twilio's Messages API and Lookup v2 line type (K5) for tests and benchmarks.

The real SDK talks to it over HTTP once ``TWILIO_API_BASE_URL`` is set to ``fake.base_url``::

    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
        settings.TWILIO_API_BASE_URL = fake.base_url
        ...
        fake.messages                      # every Messages request, accepted ("sid" set) or rejected
        fake.callback(sid, "delivered")    # a signed status callback to the app
        fake.signed_status_callback(sid, "failed", 21610)   # (url, form, signature) for Django's test client
        fake.inbound_params(from_number=..., to=..., body="STOP")   # an incoming-message webhook's form
        fake.line_types["+18015550111"] = "landline"   # Lookup's answer for a number (default: mobile)
        fake.lookups                       # every Lookup request: {"number", "fields"}
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import phonenumbers
import requests

from notifications.providers.twilio import compute_signature

FAKE_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
FAKE_AUTH_TOKEN = "fake-twilio-auth-token"
# Twilio's magic "valid" From number; used as the sender when a Messaging Service picks one.
FAKE_FROM_NUMBER = "+15005550006"
API_VERSION = "2010-04-01"

# Twilio's test-credential magic To numbers, so tests mean what they mean against the real API.
MAGIC_NUMBERS: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number: +15005550002, is not currently reachable via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +15005550003."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}  # fmt: skip


@dataclass(frozen=True)
class _Failure:
    status: int
    code: int | None
    message: str


def _error_body(status: int, code: int | None, message: str) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "status": status}
    if code is not None:
        body["code"] = code
        body["more_info"] = f"https://www.twilio.com/docs/errors/{code}"
    return body


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive: the SDK's pooled session then reuses one connection per sending thread.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30  # idle keep-alive connections end instead of holding a thread forever
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, payload = self.server.fake._handle_post(
            path=self.path, authorization=self.headers.get("Authorization", ""), body=raw
        )
        self._reply(status, payload)

    def do_GET(self) -> None:
        status, payload = self.server.fake._handle_get(
            path=self.path, authorization=self.headers.get("Authorization", "")
        )
        self._reply(status, payload)

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.wfile.write(head.encode() + body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    fake: FakeTwilio


# Lookup v2 line_type_intelligence answers by type, in Twilio's documented shape
# (https://www.twilio.com/docs/lookup/v2-api/line-type-intelligence: carrier_name, error_code,
# mobile_country_code, mobile_network_code, type; carrier data is not returned for personal, tollFree, premium,
# sharedCost, uan, voicemail, pager and unknown).
LINE_TYPE_CARRIERS: dict[str, tuple[str | None, str | None, str | None]] = {
    "mobile": ("T-Mobile USA, Inc.", "310", "160"),
    "landline": ("Qwest Corporation", None, None),
    "fixedVoip": ("Comcast IP Phone, LLC", None, None),
    "nonFixedVoip": ("Google (Grand Central) BWI - Bandwidth.com - SVR", None, None),
}


class FakeTwilio:
    """Twilio's ``POST /2010-04-01/Accounts/{sid}/Messages.json`` and Lookup v2's
    ``GET /v2/PhoneNumbers/{number}`` on 127.0.0.1, an ephemeral port."""

    def __init__(self, *, account_sid: str = FAKE_ACCOUNT_SID, auth_token: str = FAKE_AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []
        self._by_sid: dict[str, dict[str, Any]] = {}
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self._expected_auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._messages_path = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        # Lookup v2: the line type per E.164 number (else mobile; None: Twilio could not tell, error 60600).
        self.line_types: dict[str, str | None] = {}
        self.lookups: list[dict[str, Any]] = []
        self.lookup_delay = 0.0
        self._lookup_failures: deque[_Failure] = deque()

    # lifecycle

    def start(self) -> FakeTwilio:
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
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeTwilio is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # test controls

    def fail_next(
        self, *, status: int = 500, code: int | None = None, message: str = "", times: int = 1
    ) -> None:
        """Answer the next ``times`` Messages requests with this error instead of accepting them."""
        if code is None and status == 429:
            code = 20429
        failure = _Failure(status=status, code=code, message=message or HTTPStatus(status).phrase)
        with self._lock:
            self._failures.extend([failure] * times)

    def fail_next_lookup(self, *, status: int = 503, code: int | None = None, message: str = "") -> None:
        """Answer the next Lookup request with this error."""
        failure = _Failure(status=status, code=code, message=message or HTTPStatus(status).phrase)
        with self._lock:
            self._lookup_failures.append(failure)

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self._by_sid.clear()
            self._failures.clear()
            self.lookups.clear()
            self._lookup_failures.clear()

    def accepted(self) -> list[dict[str, Any]]:
        with self._lock:
            return [message for message in self.messages if message["sid"]]

    def status_callback_params(
        self, message_sid: str, status: str, error_code: int | None = None
    ) -> dict[str, str]:
        """The form Twilio posts to a message's StatusCallback: MessageSid/SmsSid, MessageStatus/SmsStatus,
        AccountSid, ApiVersion, From, To, MessagingServiceSid when one was used, ErrorCode on failure
        (https://www.twilio.com/docs/messaging/guides/track-outbound-message-status and
        .../outbound-message-status-in-status-callbacks)."""
        with self._lock:
            message = self._by_sid.get(message_sid, {})
        params = {
            "MessageSid": message_sid,
            "SmsSid": message_sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.get("From") or FAKE_FROM_NUMBER,
        }
        if message.get("To"):
            params["To"] = message["To"]
        if message.get("MessagingServiceSid"):
            params["MessagingServiceSid"] = message["MessagingServiceSid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    def signed_status_callback(
        self, message_sid: str, status: str, error_code: int | None = None, *, auth_token: str | None = None
    ) -> tuple[str, dict[str, str], str]:
        """(the recorded StatusCallback URL, the form, its X-Twilio-Signature) for a test client to post."""
        with self._lock:
            url = self._by_sid.get(message_sid, {}).get("StatusCallback")
        if not url:
            raise ValueError(f"no StatusCallback recorded for {message_sid}")
        params = self.status_callback_params(message_sid, status, error_code)
        return url, params, self.sign(url, params, auth_token=auth_token)

    def inbound_params(
        self,
        *,
        from_number: str,
        to: str,
        body: str,
        message_sid: str | None = None,
        messaging_service_sid: str = "",
        opt_out_type: str = "",
    ) -> dict[str, str]:
        """The form Twilio posts to a number's incoming-message webhook
        (https://www.twilio.com/docs/messaging/guides/webhook-request); ``OptOutType`` only comes from a
        Messaging Service with Advanced Opt-Out (https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out)."""
        sid = message_sid or "SM" + uuid.uuid4().hex
        params = {
            "ToCountry": "US", "ToState": "UT", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "SALT LAKE CITY",
            "FromZip": "84101", "SmsSid": sid, "FromState": "UT", "SmsStatus": "received", "FromCity": "SALT LAKE CITY",
            "Body": body, "FromCountry": "US", "To": to, "ToZip": "84101", "NumSegments": "1", "MessageSid": sid,
            "AccountSid": self.account_sid, "From": from_number, "ApiVersion": API_VERSION,
        }  # fmt: skip
        if messaging_service_sid:
            params["MessagingServiceSid"] = messaging_service_sid
        if opt_out_type:
            params["OptOutType"] = opt_out_type
        return params

    def sign(self, url: str, params: dict[str, str], *, auth_token: str | None = None) -> str:
        """The X-Twilio-Signature Twilio computes with the account's auth token (``auth_token`` to sign wrongly)."""
        return compute_signature(url=url, params=params, auth_token=auth_token or self.auth_token)

    def callback(
        self,
        message_sid: str,
        status: str,
        error_code: int | None = None,
        url: str | None = None,
        *,
        auth_token: str | None = None,
    ) -> int:
        """POST a status callback signed like Twilio's (with ``auth_token`` to sign it wrongly)."""
        with self._lock:
            message = self._by_sid.get(message_sid, {})
        url = url or message.get("StatusCallback")
        if not url:
            raise ValueError(f"no StatusCallback recorded for {message_sid}; pass url=")
        params = self.status_callback_params(message_sid, status, error_code)
        response = self._session().post(
            url,
            data=params,
            headers={"X-Twilio-Signature": self.sign(url, params, auth_token=auth_token)},
            timeout=10,
            allow_redirects=False,
        )
        return response.status_code

    # request handling (called from the server's threads)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session

    def _handle_get(self, *, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        if authorization != self._expected_auth:
            return 401, _error_body(401, 20003, "Authenticate")
        parts = urlsplit(path)
        if not parts.path.startswith("/v2/PhoneNumbers/"):
            return 404, _error_body(404, 20404, f"The requested resource {path} was not found")
        number = unquote(parts.path.removeprefix("/v2/PhoneNumbers/"))
        fields = parse_qs(parts.query).get("Fields", [""])[0]
        with self._lock:
            self.lookups.append({"number": number, "fields": fields})
            failure = self._lookup_failures.popleft() if self._lookup_failures else None
            delay = self.lookup_delay
        if delay:
            threading.Event().wait(delay)
        if failure is not None:
            return failure.status, _error_body(failure.status, failure.code, failure.message)
        return 200, self._lookup_answer(number, fields)

    def _lookup_answer(self, number: str, fields: str) -> dict[str, Any]:
        """Lookup v2's response (https://www.twilio.com/docs/lookup/v2-api#response-properties)."""
        try:
            parsed = phonenumbers.parse(number, "US")
            valid = phonenumbers.is_valid_number(parsed)
        except phonenumbers.NumberParseException:
            parsed, valid = None, False
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) if parsed else number
        line: dict[str, Any] | None = None
        if "line_type_intelligence" in fields.split(","):
            line_type = self.line_types.get(e164, "mobile")
            carrier, mcc, mnc = LINE_TYPE_CARRIERS.get(line_type or "", (None, None, None))
            line = {"carrier_name": carrier, "error_code": None if line_type else 60600,
                    "mobile_country_code": mcc, "mobile_network_code": mnc, "type": line_type}  # fmt: skip
        return {
            "calling_country_code": str(parsed.country_code) if parsed else None,
            "country_code": phonenumbers.region_code_for_number(parsed) if parsed else None,
            "phone_number": e164,
            "national_format": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
            if parsed
            else None,
            "valid": valid,
            "validation_errors": [] if valid else ["NOT_A_NUMBER"],
            "caller_name": None,
            "sim_swap": None,
            "call_forwarding": None,
            "line_status": None,
            "line_type_intelligence": line,
            "identity_match": None,
            "reassigned_number": None,
            "sms_pumping_risk": None,
            "phone_number_quality_score": None,
            "pre_fill": None,
            "url": f"https://lookups.twilio.com/v2/PhoneNumbers/{e164}",
        }

    def _handle_post(self, *, path: str, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if authorization != self._expected_auth:
            return 401, _error_body(401, 20003, "Authenticate")
        if path.split("?", 1)[0] != self._messages_path:
            return 404, _error_body(404, 20404, f"The requested resource {path} was not found")
        form = {key: values[0] for key, values in parse_qs(body.decode(), keep_blank_values=True).items()}
        record: dict[str, Any] = {
            "To": form.get("To"),
            "From": form.get("From"),
            "MessagingServiceSid": form.get("MessagingServiceSid"),
            "Body": form.get("Body"),
            "StatusCallback": form.get("StatusCallback"),
            "sid": None,
            "status": None,
            "error_code": None,
        }
        status, payload = self._answer(record)
        with self._lock:
            self.messages.append(record)
            if record["sid"]:
                self._by_sid[record["sid"]] = record
        return status, payload

    def _answer(self, record: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            record["error_code"] = failure.code
            return failure.status, _error_body(failure.status, failure.code, failure.message)
        if not record["To"]:
            return self._reject(record, 21604, "A 'To' phone number is required.")
        if not record["Body"]:
            return self._reject(record, 21602, "Message body is required.")
        if not record["From"] and not record["MessagingServiceSid"]:
            return self._reject(record, 21603, "A 'From' phone number is required.")
        if record["To"] in MAGIC_NUMBERS:
            return self._reject(record, *MAGIC_NUMBERS[record["To"]])
        sid = "SM" + uuid.uuid4().hex
        status = "accepted" if record["MessagingServiceSid"] else "queued"
        record["sid"], record["status"] = sid, status
        now = format_datetime(datetime.now(UTC))
        uri = f"{self._messages_path[: -len('.json')]}/{sid}.json"
        return 201, {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": record["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": record["From"],
            "messaging_service_sid": record["MessagingServiceSid"],
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": record["To"],
            "uri": uri,
        }

    @staticmethod
    def _reject(record: dict[str, Any], code: int, message: str) -> tuple[int, dict[str, Any]]:
        record["error_code"] = code
        return 400, _error_body(400, code, message)
