from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from notifications.delivery import TWILIO_STATES, sms_failure_outcome
from notifications.models import UNDELIVERABLE_STATES, Reason, State
from notifications.providers import twilio as provider
from notifications.providers.twilio import (
    ERROR_CLASSES,
    ProviderError,
    classify_error,
    compute_signature,
    empty_twiml,
    message_twiml,
    reset_client,
    send_sms,
    validate_signature,
)
from notifications.selectors import NOT_FOR_THE_FRONT_DESK
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

if TYPE_CHECKING:
    from pytest_django.fixtures import Settings

CALLBACK = "https://billing.example.org/webhooks/twilio/status/42/"
MESSAGING_SERVICE = "MG" + "a" * 32
PATIENT = "+15551234567"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def twilio(settings: Settings, fake: FakeTwilio) -> Iterator[FakeTwilio]:
    settings.TWILIO_ACCOUNT_SID = fake.account_sid
    settings.TWILIO_AUTH_TOKEN = fake.auth_token
    settings.TWILIO_API_BASE_URL = fake.base_url
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_FROM_NUMBER = FAKE_FROM_NUMBER
    reset_client()
    yield fake
    reset_client()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _send(to: str = PATIENT, **kwargs: Any) -> provider.SentSms:
    return send_sms(to=to, body="Your statement is ready", status_callback=CALLBACK, **kwargs)


# sending


def test_it_sends_through_the_sdk_to_the_fake_server(twilio: FakeTwilio) -> None:
    sent = _send(messaging_service_sid=MESSAGING_SERVICE)

    assert [m["sid"] for m in twilio.messages] == [sent.sid]
    assert sent.sid.startswith("SM") and len(sent.sid) == 34
    assert sent.status == "accepted"
    message = twilio.messages[0]
    assert message["To"] == PATIENT
    assert message["Body"] == "Your statement is ready"
    assert message["StatusCallback"] == CALLBACK
    assert message["MessagingServiceSid"] == MESSAGING_SERVICE
    assert message["From"] is None


def test_it_sends_from_the_configured_number_without_a_messaging_service(twilio: FakeTwilio) -> None:
    sent = _send()

    assert sent.status == "queued"
    assert twilio.messages[0]["From"] == FAKE_FROM_NUMBER
    assert twilio.messages[0]["MessagingServiceSid"] is None


def test_it_prefers_the_configured_messaging_service_to_the_configured_number(
    twilio: FakeTwilio, settings: Settings
) -> None:
    settings.TWILIO_MESSAGING_SERVICE_SID = MESSAGING_SERVICE

    _send()

    assert twilio.messages[0]["MessagingServiceSid"] == MESSAGING_SERVICE
    assert twilio.messages[0]["From"] is None


def test_an_explicit_from_number_wins_over_the_configured_messaging_service(
    twilio: FakeTwilio, settings: Settings
) -> None:
    settings.TWILIO_MESSAGING_SERVICE_SID = MESSAGING_SERVICE

    _send(from_number="+15557654321")

    assert twilio.messages[0]["From"] == "+15557654321"
    assert twilio.messages[0]["MessagingServiceSid"] is None


def test_each_send_gets_its_own_sid(twilio: FakeTwilio) -> None:
    sids = {_send().sid for _ in range(5)}

    assert len(sids) == 5
    assert len(twilio.accepted()) == 5


def test_it_reuses_one_client_until_the_settings_change(twilio: FakeTwilio, settings: Settings) -> None:
    first = provider._client()
    assert provider._client() is first

    settings.TWILIO_AUTH_TOKEN = "another-token"

    assert provider._client() is not first


# errors


@pytest.mark.parametrize(
    ("to", "code", "opted_out", "undeliverable"),
    [
        ("+15005550001", 21211, False, True),
        ("+15005550002", 21612, False, True),
        ("+15005550003", 21408, False, True),
        ("+15005550004", 21610, True, False),
        ("+15005550009", 21614, False, True),
    ],
)
def test_magic_numbers_raise_permanent_classified_errors(
    twilio: FakeTwilio, to: str, code: int, opted_out: bool, undeliverable: bool
) -> None:
    """The fake answers Twilio's test-credential magic To numbers (https://www.twilio.com/docs/iam/test-credentials)
    with Twilio's 400 error body ({"code", "message", "more_info", "status"})."""
    with pytest.raises(ProviderError) as caught:
        _send(to=to)

    error = caught.value
    assert (error.code, error.status) == (code, 400)
    assert error.permanent is True
    assert error.opted_out is opted_out
    assert error.undeliverable is undeliverable
    assert error.reason == ERROR_CLASSES[code].reason
    # The fake received the request and refused it with the code: nothing was accepted.
    assert [(m["To"], m["error_code"], m["sid"]) for m in twilio.messages] == [(to, code, None)]


def test_an_unknown_client_error_is_permanent_but_not_undeliverable(twilio: FakeTwilio) -> None:
    twilio.fail_next(status=400, code=21999, message="Something Twilio dislikes")

    with pytest.raises(ProviderError) as caught:
        _send()

    assert (caught.value.code, caught.value.permanent, caught.value.undeliverable) == (21999, True, False)
    assert "Something Twilio dislikes" in caught.value.message


def test_wrong_credentials_are_permanent(twilio: FakeTwilio, settings: Settings) -> None:
    settings.TWILIO_AUTH_TOKEN = "not-the-token"

    with pytest.raises(ProviderError) as caught:
        _send()

    assert (caught.value.status, caught.value.code, caught.value.permanent) == (401, 20003, True)


@pytest.mark.parametrize(("status", "code"), [(500, 20500), (503, None), (429, 20429)])
def test_server_errors_and_rate_limits_are_transient(
    twilio: FakeTwilio, status: int, code: int | None
) -> None:
    twilio.fail_next(status=status, code=code)

    with pytest.raises(ProviderError) as caught:
        _send()

    # Without a code in the body the SDK would report the HTTP status as the code.
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.permanent is False
    assert caught.value.maybe_sent is False
    assert _send().sid  # the failure was injected for one request only


def test_a_refused_connection_is_transient_and_was_not_sent(settings: Settings) -> None:
    settings.TWILIO_ACCOUNT_SID = "AC" + "1" * 32
    settings.TWILIO_AUTH_TOKEN = "token"
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{_closed_port()}"
    settings.TWILIO_FROM_NUMBER = FAKE_FROM_NUMBER
    reset_client()

    with pytest.raises(ProviderError) as caught:
        _send()

    assert caught.value.permanent is False
    assert caught.value.status is None
    assert caught.value.maybe_sent is False
    reset_client()


# the code table (N2): one row per code Twilio documents at https://www.twilio.com/docs/api/errors/<code>.
# state: what a failed/undelivered status callback with that ErrorCode ends in (delivery.sms_failure_outcome);
# listed: on the front desk's undeliverable list (U1, selectors.NOT_FOR_THE_FRONT_DESK).

_U, _F, _C = State.UNDELIVERED, State.FAILED, State.CANCELLED
CODE_TABLE = [
    # code   permanent reason                       state listed
    (20003, True, Reason.PROVIDER_FAILED, _F, True),
    (20429, False, Reason.PROVIDER_FAILED, _F, True),
    (21211, True, Reason.INVALID_NUMBER, _U, True),
    (21408, True, Reason.UNREACHABLE_ROUTE, _U, True),
    (21606, True, Reason.PROVIDER_FAILED, _F, True),
    (21610, True, Reason.OPTED_OUT, _C, False),
    (21612, True, Reason.UNREACHABLE_ROUTE, _U, True),
    (21614, True, Reason.LANDLINE, _U, True),
    (21635, True, Reason.LANDLINE, _U, True),
    (30001, False, Reason.PROVIDER_FAILED, _F, True),
    (30002, True, Reason.PROVIDER_FAILED, _F, True),
    (30003, False, Reason.UNREACHABLE, _U, True),
    (30004, True, Reason.PROVIDER_UNDELIVERED, _U, True),
    (30005, True, Reason.UNKNOWN_HANDSET, _U, True),
    (30006, True, Reason.LANDLINE, _U, True),
    (30007, True, Reason.CARRIER_FILTERED, _F, False),
    (30008, False, Reason.PROVIDER_UNDELIVERED, _U, True),
    # https://www.twilio.com/docs/api/errors/30022 (10DLC rate limits), /30032 (toll-free not verified),
    # /30034 (message from an unregistered 10DLC number)
    (30022, False, Reason.PROVIDER_FAILED, _F, True),
    (30032, True, Reason.CARRIER_FILTERED, _F, False),
    (30034, True, Reason.CARRIER_FILTERED, _F, False),
]


def test_the_table_has_a_row_here_for_every_code_it_classifies() -> None:
    assert sorted(ERROR_CLASSES) == [row[0] for row in CODE_TABLE]


@pytest.mark.parametrize(("code", "permanent", "reason", "state", "listed"), CODE_TABLE)
@pytest.mark.parametrize("twilio_status", ["failed", "undelivered"])
def test_each_code_is_classified_once_for_the_send_path_and_the_status_callback(
    code: int, permanent: bool, reason: str, state: str, listed: bool, twilio_status: str
) -> None:
    error_class = classify_error(code=code, status=400)
    outcome = sms_failure_outcome(state=TWILIO_STATES[twilio_status], error_code=str(code))

    assert error_class.reason in Reason.values
    assert (error_class.permanent, error_class.reason) == (permanent, reason)
    assert error_class.opted_out is (state == State.CANCELLED)
    assert error_class.undeliverable is (state == State.UNDELIVERED)
    assert outcome == (state, reason)
    assert (state in UNDELIVERABLE_STATES and reason not in NOT_FOR_THE_FRONT_DESK) is listed


@pytest.mark.parametrize(
    ("code", "status", "permanent", "reason"),
    [
        (None, 429, False, Reason.PROVIDER_FAILED),
        (None, 503, False, Reason.PROVIDER_FAILED),
        (None, 500, False, Reason.PROVIDER_FAILED),
        (21999, 400, True, Reason.PROVIDER_FAILED),
        (None, 404, True, Reason.PROVIDER_FAILED),
    ],
)
def test_an_unknown_code_is_classified_by_its_http_status(
    code: int | None, status: int, permanent: bool, reason: str
) -> None:
    error_class = classify_error(code=code, status=status)

    assert (error_class.permanent, error_class.reason) == (permanent, reason)
    assert (error_class.undeliverable, error_class.opted_out) == (False, False)


@pytest.mark.parametrize(
    ("twilio_status", "error_code", "outcome"),
    [
        ("undelivered", "", (State.UNDELIVERED, Reason.PROVIDER_UNDELIVERED)),
        ("failed", "", (State.FAILED, Reason.PROVIDER_FAILED)),
        ("undelivered", "39999", (State.UNDELIVERED, Reason.PROVIDER_UNDELIVERED)),
        ("failed", "not-a-code", (State.FAILED, Reason.PROVIDER_FAILED)),
    ],
)
def test_a_callback_with_an_unknown_code_keeps_twilios_state(
    twilio_status: str, error_code: str, outcome: tuple[str, str]
) -> None:
    assert sms_failure_outcome(state=TWILIO_STATES[twilio_status], error_code=error_code) == outcome


# the default base URL, with the transport faked by `responses`


@pytest.fixture
def real_twilio_url(settings: Settings) -> Iterator[str]:
    settings.TWILIO_ACCOUNT_SID = "AC" + "2" * 32
    settings.TWILIO_AUTH_TOKEN = "token"
    settings.TWILIO_API_BASE_URL = "https://api.twilio.com"
    settings.TWILIO_FROM_NUMBER = FAKE_FROM_NUMBER
    reset_client()
    yield f"https://api.twilio.com/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json"
    reset_client()


@responses.activate
def test_the_default_base_url_is_twilios_own(real_twilio_url: str) -> None:
    responses.add(
        responses.POST, real_twilio_url, json={"sid": "SM" + "1" * 32, "status": "queued"}, status=201
    )

    sent = _send()

    assert sent.sid == "SM" + "1" * 32
    assert len(responses.calls) == 1
    body = responses.calls[0].request.body
    assert isinstance(body, str)
    assert parse_qs(body)["To"] == [PATIENT]


@responses.activate
def test_a_read_timeout_is_transient_but_may_have_been_sent(real_twilio_url: str) -> None:
    responses.add(responses.POST, real_twilio_url, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(ProviderError) as caught:
        _send()

    assert caught.value.permanent is False
    assert caught.value.maybe_sent is True


# webhook signatures

URL = "https://billing.example.org/webhooks/twilio/status/42/"
PARAMS = {"MessageSid": "SM" + "3" * 32, "MessageStatus": "delivered", "To": PATIENT}


def test_it_accepts_a_valid_signature(settings: Settings) -> None:
    settings.TWILIO_AUTH_TOKEN = "secret-token"
    signature = compute_signature(url=URL, params=PARAMS)

    assert validate_signature(url=URL, params=PARAMS, signature=signature) is True


def test_it_rejects_a_tampered_param(settings: Settings) -> None:
    settings.TWILIO_AUTH_TOKEN = "secret-token"
    signature = compute_signature(url=URL, params=PARAMS)

    tampered = {**PARAMS, "MessageStatus": "undelivered"}

    assert validate_signature(url=URL, params=tampered, signature=signature) is False


def test_it_rejects_a_signature_made_with_another_token(settings: Settings) -> None:
    settings.TWILIO_AUTH_TOKEN = "secret-token"
    signature = compute_signature(url=URL, params=PARAMS, auth_token="another-token")

    assert validate_signature(url=URL, params=PARAMS, signature=signature) is False
    assert validate_signature(url=URL, params=PARAMS, signature="bm90IGEgc2lnbmF0dXJl") is False


def test_it_rejects_an_empty_signature_and_a_missing_token(settings: Settings) -> None:
    settings.TWILIO_AUTH_TOKEN = "secret-token"
    signature = compute_signature(url=URL, params=PARAMS)

    assert validate_signature(url=URL, params=PARAMS, signature="") is False
    settings.TWILIO_AUTH_TOKEN = ""
    assert validate_signature(url=URL, params=PARAMS, signature=signature) is False


# the fake's status callbacks


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, str]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        params = {key: values[0] for key, values in parse_qs(body).items()}
        url = f"http://{self.headers['Host']}{self.path}"
        self.received.append((url, self.headers.get("X-Twilio-Signature", ""), params))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def app_server() -> Iterator[tuple[str, list[tuple[str, str, dict[str, str]]]]]:
    received: list[tuple[str, str, dict[str, str]]] = []
    handler = type("Recorder", (_Recorder,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_the_fake_sends_signed_status_callbacks_to_the_recorded_url(
    twilio: FakeTwilio, app_server: tuple[str, list[tuple[str, str, dict[str, str]]]]
) -> None:
    base, received = app_server
    sent = send_sms(to=PATIENT, body="Hi", status_callback=f"{base}/webhooks/twilio/status/7/")

    assert twilio.callback(sent.sid, "undelivered", error_code=30006) == 204

    url, signature, params = received[0]
    assert url == f"{base}/webhooks/twilio/status/7/"
    assert params["MessageSid"] == sent.sid
    assert params["MessageStatus"] == "undelivered"
    assert params["ErrorCode"] == "30006"
    assert params["To"] == PATIENT
    assert params["AccountSid"] == twilio.account_sid
    assert validate_signature(url=url, params=params, signature=signature) is True


# TwiML replies


def test_twiml_replies() -> None:
    assert empty_twiml() == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert "<Message>Reply STOP to opt out &amp; HELP for help</Message>" in message_twiml(
        "Reply STOP to opt out & HELP for help"
    )
