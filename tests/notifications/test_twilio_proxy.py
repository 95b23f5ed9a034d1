"""The Twilio client and an egress proxy: the proxy variables are read once, when the client is made.

requests would read HTTP(S)_PROXY / NO_PROXY from the environment on every request (its ``trust_env``); the
client reads them once for its host instead (a tenth of a text's CPU in a worker, SPEC §11 send pipeline).
These tests check that a deployment behind a proxy still sends through it, and that NO_PROXY still bypasses it.
Variable names and NO_PROXY matching as requests documents them:
https://requests.readthedocs.io/en/latest/user/advanced/#proxies
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import requests

from notifications.providers.twilio import ProviderError, reset_client, send_sms
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

if TYPE_CHECKING:
    from pytest_django.fixtures import Settings

# A host that does not resolve: only a proxy can reach it.
TWILIO_HOST = "http://api.twilio.invalid"


class _Proxy:
    """A plain-HTTP forward proxy: it records each absolute request URI and forwards it to the fake Twilio."""

    def __init__(self, upstream: str) -> None:
        self.seen: list[str] = []
        proxy = self
        forward = requests.Session()
        forward.trust_env = False  # the proxy itself goes straight to the fake

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                proxy.seen.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")
                }
                answer = forward.post(
                    upstream + urlsplit(self.path).path, data=body, headers=headers, timeout=5
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Proxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxied(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Proxy]:
    with FakeTwilio() as fake, _Proxy(fake.base_url) as proxy:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
        settings.TWILIO_API_BASE_URL, settings.TWILIO_FROM_NUMBER = TWILIO_HOST, FAKE_FROM_NUMBER
        settings.TWILIO_MESSAGING_SERVICE_SID = ""
        for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        reset_client()
        yield proxy
        reset_client()


def test_a_text_goes_through_the_proxy_the_environment_names(proxied: _Proxy) -> None:
    sent = send_sms(to="+15551234567", body="Your statement is ready", status_callback="")

    assert sent.sid.startswith("SM")
    assert len(proxied.seen) == 1
    assert proxied.seen[0].startswith(f"{TWILIO_HOST}/2010-04-01/Accounts/")


def test_no_proxy_for_twilio_s_host_bypasses_the_proxy(
    proxied: _Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "api.twilio.invalid")
    reset_client()

    with pytest.raises(ProviderError):
        send_sms(to="+15551234567", body="Your statement is ready", status_callback="")
    assert proxied.seen == []


def test_the_environment_is_read_when_the_client_is_made_not_per_text(
    proxied: _Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_sms(to="+15551234567", body="first", status_callback="")
    monkeypatch.setenv("NO_PROXY", "*")  # read on the next client, not by the one already made

    send_sms(to="+15551234567", body="second", status_callback="")

    assert len(proxied.seen) == 2
