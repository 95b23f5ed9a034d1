"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Chromium is not downloaded by Playwright (never run ``playwright install``): ``.ci/run`` installs the Debian
package. Without it these tests are skipped, unless REQUIRE_SERVICES=1 (then they fail), like the other
service-backed tests (tests/conftest.py). Messages are enqueued to Celery on commit; here the enqueue is a no-op
so no broker is needed, and the tests assert message rows and states instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an asyncio loop in this thread; Django would refuse ORM calls from the test body.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "front-desk-pw"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not CHROMIUM.exists():
        reason = f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}, "locale": "en-US"}


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("notifications.outbox._enqueue", lambda message_ids: None)


@pytest.fixture
def log_in(page: Any, live_server: Any) -> Callable[[str, str], None]:
    """Log in through the admin login page, then land on ``next``."""

    def do(username: str, next_path: str = "/dashboard/payments/") -> None:
        page.goto(f"{live_server.url}/admin/login/?next={next_path}")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server.url}{next_path}**")

    return do
