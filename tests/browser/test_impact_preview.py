"""The settings impact preview in a real browser (SPEC §17 W1): a billing manager changes a setting, presses
"Preview impact", watches its progress, reads the result beside the current settings, saves, and finds the
preview in the audit of that save. Everything by role and label, under the site's Content-Security-Policy,
and the result without serious or critical accessibility violations (axe-core).

The background task runs in a thread of the test (a worker stand-in) that holds at the forecast's first step
until the test has seen the progress bar, so the progress is seen for sure rather than by luck of timing."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import ConsoleMessage, Page, expect

from dunning.impact import impact_preview_run, service
from dunning.models import SettingsPreview
from payments.models import PaymentSettings
from practices.models import Organization, Role
from practices.services import organization_create
from practices.timezones import organization_today
from tests.browser.axe import describe, violations
from tests.browser.conftest import PASSWORD
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]


@pytest.fixture
def org() -> Organization:
    org = organization_create(slug="smile-dental", name="Smile Dental", timezone_name="America/Denver")
    MembershipFactory.create(
        organization=org, role=Role.BILLING_MANAGER, user__username="manager", user__password=PASSWORD
    )
    for pid, first, portion in (("G100", "Ana", "100.00"), ("G200", "Ben", "200.00")):
        patient = GuarantorFactory.create(organization=org, external_id=pid, first_name=first, last_name="Diaz",
                                          last_visit_date=date(2026, 1, 5))  # fmt: skip
        AccountFactory.create(guarantor=patient, patient_portion=Decimal(portion), total=Decimal(portion))
    return org


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Run each queued preview in a thread; it stops at its forecast until the returned event is set."""
    release = threading.Event()
    threads: list[threading.Thread] = []
    real = service._reporter

    def gated(rows: Any) -> Any:
        report = real(rows)

        def wrapped(fraction: float, stage: str) -> None:
            report(fraction, stage)
            if stage.startswith("Forecasting"):
                release.wait(timeout=30)

        return wrapped

    def enqueue(preview_id: int) -> None:
        def work() -> None:
            try:
                impact_preview_run(preview_id=preview_id)
            finally:
                connection.close()

        thread = threading.Thread(target=work, daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(service, "_reporter", gated)
    monkeypatch.setattr(service, "_enqueue", enqueue)
    yield release
    release.set()
    for thread in threads:
        thread.join(timeout=30)


@pytest.fixture
def csp_violations(page: Page) -> Iterator[list[str]]:
    refused: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", record)
    yield refused


def test_a_billing_manager_previews_a_change_then_saves_it_with_its_preview(
    page: Page,
    log_in: Any,
    live_server: Any,
    org: Organization,
    worker: threading.Event,
    csp_violations: list[str],
) -> None:
    settings, _ = PaymentSettings.objects.get_or_create(organization=org)
    log_in("manager", f"/admin/payments/paymentsettings/{settings.pk}/change/")
    page.get_by_label("Min payment amount").fill("150.00")
    page.get_by_role("button", name="Preview impact").click()

    progress = page.get_by_role("progressbar", name="Impact preview progress")
    expect(progress).to_be_visible()
    status = page.get_by_role("status").filter(has_text="Impact preview")
    expect(status).to_contain_text(re.compile(r"Forecasting 30 days… [1-9]\d%"))
    # Part of the way: the bar shows what the status says, neither nothing nor all.
    percent = re.search(r"(\d+)%", status.inner_text())
    assert percent is not None
    expect(progress).to_have_attribute("value", percent.group(1))
    worker.set()

    figures = page.get_by_role("table", name="The next 30 days")
    expect(figures).to_be_visible()
    today = organization_today(org).isoformat()
    bulk = figures.get_by_role("row", name=f"Bulk payment request list on {today}")
    expect(bulk.get_by_role("cell")).to_have_text(["2", "1", "-1"])
    changed = page.get_by_role("table", name="Changed settings")
    expect(changed.get_by_role("row", name="Minimum payment amount").get_by_role("cell")).to_have_text(
        ["0.00", "150.00"]
    )
    expect(page.get_by_text("Leaving (1):")).to_be_visible()
    expect(page.get_by_text("Ana Diaz (G100), $100.00")).to_be_visible()
    preview = SettingsPreview.objects.get(organization=org)
    assert csp_violations == []
    found = violations(page)
    assert found == [], describe(found)
    csp_violations.clear()  # axe's own injected styles are refused by the policy; they are not the page's

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    settings.refresh_from_db()
    assert settings.min_payment_amount == Decimal("150.00")

    page.goto(f"{live_server.url}/admin/practices/auditevent/")
    page.get_by_role("main").get_by_role("row", name="admin.change").get_by_role("link").first.click()
    expect(page.get_by_text(f"Impact preview {preview.pk}:")).to_be_visible()
    expect(page.get_by_text("Current settings:")).to_be_visible()
    preview.refresh_from_db()
    assert preview.audit_event is not None
    assert csp_violations == []
