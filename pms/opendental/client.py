"""A client for Open Dental's REST API (https://www.opendental.com/site/apispecification.html).

What it follows from Open Dental's pages:

- Authorization: every request carries ``Authorization: ODFHIR {DeveloperKey}/{CustomerKey}``, the developer's
  key and the customer's key of the office (https://www.opendental.com/site/apisetup.html, "API Keys").
- URLs: resources are lowercase plurals under the base URL, ``https://api.opendental.com/api/v1`` for the
  Remote API, ``http://localhost:30222/api/v1`` for the Local API and port 30223 for the API Service
  (https://www.opendental.com/site/apiimplementation.html, https://www.opendental.com/site/apilocal.html).
- Paging: a list answers at most 100 items; "first perform an ordinary GET without any offset or limit. If
  your result is exactly 100 rows, then perform sequential GETs with offsets until your result is less than
  100 rows" (apiimplementation.html, Pagination). ``get_all`` does exactly that.
- Throttling: GET methods "are throttled at different rates for different users"
  (https://www.opendental.com/site/apipermissions.html); a throttled request answers 429 with Retry-After,
  which is honoured. 5xx answers (a busy eConnector, a 504 after the 60-second processing limit) and broken
  connections are retried with exponential backoff. 401/403 are not retried: the keys are wrong.

The transport is the standard library's ``http.client`` with one keep-alive connection per thread: a sync is
thousands of small requests, and ``requests`` spent ten times as long per request here as the server took to
answer (docs/decisions.md).
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

logger = logging.getLogger(__name__)

REMOTE_API = "https://api.opendental.com/api/v1"
PAGE_SIZE = 100  # Open Dental's hard limit for the Remote API and the API Service
RETRIED_STATUSES = frozenset({500, 502, 503, 504})
TRANSIENT_ERRORS = (OSError, http.client.HTTPException)  # refused, reset, timed out, remote disconnected


class OpenDentalError(Exception):
    """A request that could not be completed; ``str()`` says why in words ops can act on."""


class OpenDentalAuthError(OpenDentalError):
    pass


class OpenDentalUnavailable(OpenDentalError):
    """Open Dental did not answer usefully after every retry (down, throttling us, or failing)."""


class OpenDentalRefused(OpenDentalError):
    """A 4xx other than 401/403/429: the request itself was refused (e.g. 400 'Patient is deleted')."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def _decode(body: bytes) -> Any:
    if not body.strip():
        return None
    # Open Dental's money is a JSON number (a double): read it as Decimal from its text, never as a float.
    return json.loads(body, parse_float=Decimal)


def _explain(body: bytes) -> str:
    try:
        document = _decode(body)
    except ValueError:
        document = None
    if isinstance(document, dict):
        for key in ("message", "Message", "error"):
            if isinstance(document.get(key), str):
                return str(document[key])[:300]
    if isinstance(document, str):
        return document[:300]
    return body.decode("utf-8", errors="replace").strip()[:300]


class OpenDentalClient:
    """Open Dental's API for one office. Thread-safe: each thread keeps its own keep-alive connection."""

    def __init__(
        self,
        *,
        base_url: str,
        developer_key: str,
        customer_key: str,
        timeout: float = 60.0,
        max_attempts: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_retry_after: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit((base_url or REMOTE_API).rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OpenDentalError(f"pms_base_url {base_url!r} is not an http(s) URL such as {REMOTE_API}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.base_url = f"{parts.scheme}://{parts.netloc}{self._prefix}"
        self._auth = f"ODFHIR {developer_key}/{customer_key}"
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.requests_made = 0
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None

    # requests

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path`` (relative to the base URL) and its decoded JSON, retried as the module says."""
        return self._request("GET", self._target(path, params), None, retry=True)

    def get_all(
        self, path: str, params: dict[str, Any] | None = None,
        on_page: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Every item of a list, page by page with Offset (Open Dental's documented strategy); ``on_page``
        sees each page as it arrives."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            query = dict(params or {})
            if offset:
                query["Offset"] = offset
            page = self.get(path, query)
            if not isinstance(page, list):
                raise OpenDentalError(f"GET {path} answered {type(page).__name__}, not a list")
            items.extend(page)
            if on_page is not None:
                on_page(page)
            if len(page) < PAGE_SIZE:
                return items
            offset += len(page)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST JSON once. Only a 429 (refused before any work) is tried again: a POST that may have reached
        Open Dental is never repeated here; the caller checks what was created before trying again (C3)."""
        data = json.dumps(body, default=str).encode()
        # A fresh connection: a keep-alive one the server has meanwhile closed would fail in a way that
        # cannot tell whether the payment reached Open Dental.
        self._drop_connection()
        return self._request("POST", self._target(path, None), data, retry=False)

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

    # internals

    def _target(self, path: str, params: dict[str, Any] | None) -> str:
        target = f"{self._prefix}/{path.lstrip('/')}"
        if params:
            # Open Dental's date-times ("2024-07-26 10:58:28") go as %20, not "+".
            target += "?" + urlencode({k: v for k, v in params.items() if v is not None}, quote_via=quote)
        return target

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._ssl is not None:
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout, context=self._ssl
                )
            else:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _send(self, method: str, target: str, data: bytes | None) -> _Answer:
        headers = {"Authorization": self._auth, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        connection = self._connection()
        try:
            connection.request(method, target, body=data, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except BaseException:
            self._drop_connection()
            raise
        with self._lock:
            self.requests_made += 1
        if response.will_close:
            self._drop_connection()
        return _Answer(status=response.status, headers=response.headers, body=body)

    def _request(self, method: str, target: str, data: bytes | None, *, retry: bool) -> Any:
        what = f"{method} {target}"
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                answer = self._send(method, target, data)
            except TRANSIENT_ERRORS as exc:
                last = f"no answer ({type(exc).__name__}: {exc})"
                if not retry and not isinstance(exc, ConnectionRefusedError | socket.gaierror):
                    raise OpenDentalUnavailable(f"{what}: {last}") from None
                self._pause(attempt, None, what, last)
                continue
            if 200 <= answer.status < 300:
                try:
                    return _decode(answer.body)
                except ValueError:
                    raise OpenDentalError(
                        f"{what} answered {answer.status} with a body that is not JSON"
                    ) from None
            if answer.status in (401, 403):
                raise OpenDentalAuthError(
                    f"Open Dental refused the developer key and customer key ({answer.status} for {what}: "
                    f"{_explain(answer.body) or 'unauthorized'}); check pms_developer_key and pms_customer_key, "
                    "and that the office enabled the API key (Setup > Advanced Setup > API)"
                )
            if answer.status == 429 or (retry and answer.status in RETRIED_STATUSES):
                last = f"{answer.status} {_explain(answer.body)}".strip()
                self._pause(attempt, answer.headers.get("Retry-After"), what, last)
                continue
            message = f"{what} answered {answer.status}: {_explain(answer.body) or http.client.responses.get(answer.status, '')}"
            if answer.status >= 500:
                raise OpenDentalUnavailable(message)
            raise OpenDentalRefused(message, status=answer.status)
        raise OpenDentalUnavailable(f"{what}: still failing after {self.max_attempts} attempts ({last})")

    def _pause(self, attempt: int, retry_after: str | None, what: str, last: str) -> None:
        if attempt >= self.max_attempts:
            return
        delay = self._retry_after(retry_after)
        if delay is None:
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        logger.info("Open Dental %s: %s; retrying in %.1f s", what, last, delay)
        self._sleep(delay)

    def _retry_after(self, value: str | None) -> float | None:
        """Retry-After as seconds or as an HTTP date (RFC 9110), capped; None when absent or unreadable."""
        if not value:
            return None
        value = value.strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                moment = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            seconds = moment.timestamp() - time.time()
        return max(0.0, min(seconds, self.max_retry_after))
