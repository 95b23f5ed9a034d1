"""K3 and K4 in a real browser, by role (issue 15, "Done when"): the front desk reads a guarantor's consent
history and downloads it as CSV; replies that might ask us to stop arrive through the signed Twilio
incoming-message webhook, wait on the review queue (counted on the Payments home page), and are decided there,
the opt-out's one confirmation text reaching the fake Twilio.

Inbound texts are posted to the live server in the form Twilio documents
(https://www.twilio.com/docs/messaging/guides/webhook-request), signed as Twilio signs them
(https://www.twilio.com/docs/usage/webhooks/webhooks-security); tests/fakes/twilio_server.py is the Messages API
the real SDK talks to. axe runs on each page (tests/browser/axe.py)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from django.urls import reverse
from playwright.sync_api import Page, expect

from notifications.consent import consent_record
from notifications.models import (
    Channel,
    Confirmation,
    InboundReview,
    OptOut,
    OptOutEvent,
    OptOutSource,
    ReviewState,
)
from notifications.providers.twilio import reset_client
from notifications.tasks import send_opt_out_confirmation
from practices.models import Organization, Role
from tests.browser.axe import describe, violations
from tests.browser.conftest import PASSWORD
from tests.factories import GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]

INBOUND = "/webhooks/twilio/inbound/"
SENDER = "+18015550000"
ANA = "+18015550100"
TOM = "+18015550177"


@pytest.fixture
def org() -> Organization:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver",
                                     twilio_from_number=SENDER)  # fmt: skip
    MembershipFactory.create(organization=org, role=Role.FRONT_DESK, user__username="frontdesk",
                             user__password=PASSWORD, user__first_name="Maria", user__last_name="Lopez")  # fmt: skip
    return org


@pytest.fixture
def twilio(settings, live_server) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
        settings.TWILIO_API_BASE_URL, settings.TWILIO_ENABLED = fake.base_url, True
        settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM_NUMBER = "", FAKE_FROM_NUMBER
        settings.TWILIO_ADVANCED_OPT_OUT = True
        # Twilio signs the URL it called: here, the live server's.
        settings.PUBLIC_BASE_URL = live_server.url
        reset_client()
        yield fake
        reset_client()


def text_in(live_server, twilio: FakeTwilio, number: str, body: str) -> str:
    """One incoming text, as Twilio posts it to the number's webhook; returns our TwiML answer."""
    params = twilio.inbound_params(from_number=number, to=SENDER, body=body)
    signature = twilio.sign(live_server.url + INBOUND, params)
    response = requests.post(live_server.url + INBOUND, data=params, headers={"X-Twilio-Signature": signature},
                             timeout=10)  # fmt: skip
    assert response.status_code == 200
    return response.text


def assert_accessible(page: Page) -> None:
    found = violations(page)
    assert not found, describe(found)


def test_the_front_desk_reads_and_downloads_a_guarantors_consent_history(
    page: Page, log_in, live_server, twilio, org
) -> None:
    ana = GuarantorFactory.create(organization=org, external_id="G1", first_name="Ana", last_name="Diaz",
                                  mobile_phone=ANA, email="ana@example.com")  # fmt: skip
    consent_record(organization=org, channel=Channel.SMS, address=ANA, active=False, source=OptOutSource.QUICK_ADD,
                   patient=ana, actor=org.memberships.get().user, text="Consent given at the front desk",
                   at=datetime(2026, 11, 20, 16, 0, tzinfo=UTC))  # fmt: skip
    text_in(live_server, twilio, ANA, "STOP")  # Twilio's own keyword: a revocation with its exact text

    log_in("frontdesk", reverse("payments_dashboard:guarantor", args=[org.slug, "G1"]))

    expect(page.get_by_role("heading", name="Consent history")).to_be_visible()
    table = page.get_by_role("table", name="Consent history of Ana Diaz")
    rows = table.get_by_role("row")
    expect(rows).to_have_count(3)  # the header and two ledger rows, newest first
    expect(rows.nth(1)).to_contain_text("Revoked")
    expect(rows.nth(1)).to_contain_text("SMS keyword (STOP/START)")
    expect(rows.nth(1).get_by_role("cell", name="STOP", exact=True)).to_be_visible()
    expect(rows.nth(2)).to_contain_text("Granted")
    expect(rows.nth(2)).to_contain_text("Maria Lopez")
    expect(rows.nth(2)).to_contain_text("Nov 20, 2026 9:00 AM MST")
    assert_accessible(page)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download consent history (CSV)").click()
    assert download.value.suggested_filename == "consent-smile-dental-G1.csv"
    exported = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    assert [(r["event"], r["source"], r["actor"], r["text"]) for r in exported] == [
        ("revocation", "sms_keyword", "patient", "STOP"),
        ("grant", "quick_add", "Maria Lopez", "Consent given at the front desk"),
    ]
    assert exported[1]["at_local"] == "2026-11-20T09:00:00-07:00"
    assert {r["ledger_id"] for r in exported} == {
        str(pk) for pk in OptOutEvent.objects.values_list("pk", flat=True)
    }


def test_ambiguous_replies_wait_on_the_queue_and_the_front_desk_decides_them(
    page: Page, log_in, live_server, twilio, org, monkeypatch
) -> None:
    GuarantorFactory.create(
        organization=org, external_id="G1", first_name="Ana", last_name="Diaz", mobile_phone=ANA
    )
    GuarantorFactory.create(organization=org, external_id="G2", first_name="Tom", last_name="Okafor",
                            mobile_phone=TOM)  # fmt: skip
    queued: list[int] = []
    monkeypatch.setattr("notifications.tasks.send_opt_out_confirmation.delay", queued.append)
    empty = '<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert text_in(live_server, twilio, ANA, "who is this?") == empty  # might be a request to stop: no answer
    assert text_in(live_server, twilio, TOM, "¿Quién es?") == empty
    assert InboundReview.objects.filter(state=ReviewState.OPEN).count() == 2
    assert not OptOut.objects.exists()

    log_in("frontdesk")
    tile = page.get_by_role("link", name=re.compile("^Replies to review"))
    expect(tile.locator(".tile-value")).to_have_text("2")
    tile.click()
    expect(page.get_by_role("heading", name="Replies to review")).to_be_visible()
    queue = page.get_by_role("table", name="Replies waiting for a decision, newest first")
    expect(queue.get_by_role("row")).to_have_count(3)
    expect(queue).to_contain_text("who is this?")
    expect(queue).to_contain_text("¿Quién es?")
    assert_accessible(page)

    page.get_by_role("button", name="Not an opt-out ((•••) •••-0100)").click()
    expect(page.get_by_role("status").filter(has_text="0100")).to_contain_text("is not an opt-out")
    page.get_by_role("button", name="Opt out this number ((•••) •••-0177)").click()
    expect(page.get_by_role("status").filter(has_text="0177")).to_contain_text(
        "is opted out of texts; one confirmation text is on its way."
    )
    assert_accessible(page)

    # The worker's part: the one confirmation, in the reply's language, through the Messages API.
    assert len(queued) == 1
    send_opt_out_confirmation.apply(args=queued)
    send_opt_out_confirmation.apply(args=queued)  # a redelivered task sends nothing more
    assert [(m["To"], m["Body"]) for m in twilio.messages] == [
        (TOM, "Smile Dental: Se ha dado de baja y no recibira mas mensajes de texto nuestros. "
              "Responda START para volver a suscribirse."),
    ]  # fmt: skip
    tom = InboundReview.objects.get(number=TOM)
    assert tom.decided_by is not None and tom.decided_by.username == "frontdesk"
    assert (tom.state, tom.confirmation) == (ReviewState.OPTED_OUT, Confirmation.SENT)
    assert tom.confirmation_sid == twilio.accepted()[0]["sid"]
    assert InboundReview.objects.get(number=ANA).state == ReviewState.DISMISSED
    assert list(OptOut.objects.filter(active=True).values_list("address", flat=True)) == [TOM]

    page.get_by_role("link", name="Payments", exact=True).first.click()
    expect(
        page.get_by_role("link", name=re.compile("^Replies to review")).locator(".tile-value")
    ).to_have_text("0")
    page.get_by_role("link", name=re.compile("^Replies to review")).click()
    expect(page.get_by_text("Nothing to review: no reply is waiting for a decision.")).to_be_visible()
    page.get_by_role("link", name="Decided").click()
    decided = page.get_by_role("table", name="Replies decided, newest first")
    expect(decided.get_by_role("row").filter(has_text="¿Quién es?")).to_contain_text("Opted out")
    expect(decided.get_by_role("row").filter(has_text="who is this?")).to_contain_text("Not an opt-out")
    assert_accessible(page)
