"""K5: ``hourly_sms_limit`` caps an organization's texts per clock hour (carrier registration limits), holding the
rest in order (reason ``hourly_limit``) and releasing them as the next hour frees, through the real send path:
messages are created through the outbox and sent by the tick (``messages_send_due``) through the SMS channel to
the local fake of Twilio (the real SDK posting to it), and what reached it is asserted.

Why an hourly cap: Twilio's A2P 10DLC throughput and daily caps are set per brand and campaign by the carriers
(https://www.twilio.com/docs/messaging/compliance/a2p-10dlc#carrier-fees-and-throughput); a sender over them is
queued or filtered (error 30007, https://www.twilio.com/docs/api/errors/30007)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications.hourly_limit import parse_hourly_sms_limit
from notifications.models import Channel, Kind, Message, NotificationSettings, Reason, SmsHourCount, State
from notifications.outbox import message_create, messages_send, messages_send_due
from notifications.providers.twilio import reset_client
from payments.campaigns import campaign_start
from payments.models import RequestMode
from practices.models import AuditEvent, Role
from practices.org_settings import SettingError
from tests.concurrency import in_threads
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

DENVER = ZoneInfo("America/Denver")
# A Monday, 10:00 in Denver (MDT since March 8: 16:00 UTC): inside every window, so only the hourly limit can hold a text.
MONDAY = datetime(2026, 3, 9, 10, 0, tzinfo=DENVER)


@pytest.fixture
def providers(settings) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
        settings.TWILIO_API_BASE_URL, settings.TWILIO_ENABLED = fake.base_url, True
        settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM_NUMBER = "", FAKE_FROM_NUMBER
        reset_client()
        yield fake
        reset_client()


def limited_org(slug: str = "limited", limit: int | None = 3):
    org = OrganizationFactory.create(slug=slug, timezone="America/Denver")
    NotificationSettings.objects.create(organization=org, hourly_sms_limit=limit)
    return org


def texts(org, count: int, at: datetime, *, prefix: str = "G") -> list[Message]:
    """``count`` reminders by text to ``count`` guarantors (numbers …0000, …0001, …), created at ``at``."""
    made = []
    with time_machine.travel(at, tick=False):
        for i in range(count):
            patient = GuarantorFactory.create(
                organization=org, external_id=f"{prefix}{i}", mobile_phone=f"+1801555{i:04d}", address_state="UT",
                address_zip="84101", timezone="America/Denver", timezone_source="zip",
            )  # fmt: skip
            message = Message(organization=org, patient=patient, channel=Channel.SMS, kind=Kind.REMINDER,
                              body="Your balance is due. Reply STOP to opt out.", destination=patient.mobile_phone)  # fmt: skip
            made.append(message_create(message, now=at))
    return made


def tick(at: datetime) -> dict[str, int]:
    with time_machine.travel(at, tick=False):
        return messages_send_due(now=at)


def sent_to(fake: FakeTwilio) -> list[str]:
    return [m["To"] for m in fake.accepted()]


@pytest.mark.django_db
def test_a_limit_of_3_sends_3_texts_an_hour_and_the_rest_follow_in_order_in_the_next_hours(providers):
    org = limited_org(limit=3)
    made = texts(org, 7, MONDAY)
    numbers = [m.destination for m in made]

    assert tick(MONDAY)["sent"] == 3
    assert sent_to(providers) == numbers[:3]
    held = Message.objects.filter(state=State.SCHEDULED).order_by("pk")
    assert [m.destination for m in held] == numbers[3:]
    next_hour = datetime(2026, 3, 9, 17, 0, tzinfo=UTC)  # 11:00 in Denver
    assert {(m.reason, m.scheduled_for) for m in held} == {(Reason.HOURLY_LIMIT, next_hour)}
    assert "limit 3 an hour" in held[0].hold_detail

    # Later in the same hour nothing more goes: the hour's three are spent.
    assert tick(MONDAY + timedelta(minutes=50))["sent"] == 0
    assert len(providers.accepted()) == 3

    # The next hour frees three more slots: the next three in the order they were queued.
    assert tick(MONDAY + timedelta(hours=1))["sent"] == 3
    assert sent_to(providers) == numbers[:6]
    assert tick(MONDAY + timedelta(hours=2, minutes=5))["sent"] == 1
    assert sent_to(providers) == numbers  # never dropped, never reordered
    last = Message.objects.get(pk=made[-1].pk)
    assert (last.state, last.reason, last.hold_detail) == (State.SENT, "", "")


@pytest.mark.django_db
def test_the_limit_is_per_organization_and_email_is_not_counted(providers):
    limited = limited_org(limit=2)
    texts(limited, 4, MONDAY)
    other = OrganizationFactory.create(slug="unlimited", timezone="America/Denver")
    texts(other, 4, MONDAY, prefix="O")
    email_to = GuarantorFactory.create(organization=limited, external_id="E1", email="ana@example.com",
                                       address_state="UT", address_zip="84101", timezone="America/Denver",
                                       timezone_source="zip")  # fmt: skip
    with time_machine.travel(MONDAY, tick=False):
        email = message_create(
            Message(organization=limited, patient=email_to, channel=Channel.EMAIL, kind=Kind.REMINDER,
                    subject="Your balance", body="Your balance is due.", destination="ana@example.com"),
            now=MONDAY,
        )  # fmt: skip
    assert tick(MONDAY)["sent"] == 2 + 4 + 1
    assert Message.objects.filter(organization=limited, state=State.SCHEDULED).count() == 2
    assert Message.objects.get(pk=email.pk).state == State.SENT
    assert SmsHourCount.objects.get(organization=limited).count == 2


@pytest.mark.django_db
def test_a_text_the_re_check_cancels_gives_its_slot_back(providers):
    """A slot reserved for a text that does not go (the patient is now do-not-contact) is returned at the end of
    the chunk, so the hour's count is what was sent."""
    org = limited_org(limit=5)
    made = texts(org, 3, MONDAY)
    made[0].patient.do_not_contact = True
    made[0].patient.save(update_fields=["do_not_contact"])
    counts = tick(MONDAY)
    assert (counts["sent"], counts["cancelled"]) == (2, 1)
    assert SmsHourCount.objects.get(organization=org).count == 2


@pytest.mark.django_db
def test_the_guarantor_page_explains_the_hold(providers, client):
    """A payment request's text waits once the hour's texts are spent; the page says why and until when."""
    org = limited_org(limit=1)
    texts(org, 1, MONDAY)
    tick(MONDAY)  # the hour's one text
    ana = GuarantorFactory.create(organization=org, external_id="G77", mobile_phone="+18015550177",
                                  address_state="UT", address_zip="84101", timezone="America/Denver",
                                  timezone_source="zip")  # fmt: skip
    AccountFactory.create(guarantor=ana, patient_portion="120.00", bucket_0_30="120.00", total="120.00")
    with time_machine.travel(MONDAY, tick=False):
        campaign_start(organization=org, guarantor=ana, mode=RequestMode.SINGLE, at=MONDAY)
    tick(MONDAY)
    held = Message.objects.get(patient=ana, channel=Channel.SMS)
    assert (held.state, held.reason) == (State.SCHEDULED, Reason.HOURLY_LIMIT)
    membership = MembershipFactory.create(organization=org, role=Role.FRONT_DESK)
    client.force_login(membership.user)
    with time_machine.travel(MONDAY, tick=False):
        page = client.get(reverse("payments_dashboard:guarantor", args=[org.slug, "G77"])).content.decode()
    assert "Held: the organization&#x27;s hourly text limit is reached" in page
    assert "limit 1 an hour" in page
    assert "goes Mar 9, 11:00 AM" in page
    assert [m["To"] for m in providers.accepted()] == ["+18015550000"]


def _queries(ids: list[int], at: datetime) -> int:
    with time_machine.travel(at, tick=False), CaptureQueriesContext(connection) as queries:
        states = messages_send(ids, now=at)
    assert set(states) == {State.SENT}
    return len(queries)


@pytest.mark.django_db
def test_the_limit_adds_no_query_per_message(providers):
    """SPEC §11 send pipeline: with the limit set a chunk costs a constant few queries more than with it unset
    (its reservation and the give-back), whatever its size: never one per message."""
    unset, limited = limited_org(slug="unset", limit=None), limited_org(slug="limited", limit=1000)
    extra = []
    for size in (5, 25):
        base = _queries([m.pk for m in texts(unset, size, MONDAY, prefix=f"U{size}-")], MONDAY)
        more = _queries([m.pk for m in texts(limited, size, MONDAY, prefix=f"L{size}-")], MONDAY)
        extra.append(more - base)
    assert extra[0] == extra[1] <= 6
    assert SmsHourCount.objects.get(organization=limited).count == 30


@pytest.mark.django_db
def test_with_the_limit_unset_the_chunk_costs_what_it_did(providers):
    """Unset, nothing of the limit runs: the queries of a chunk are the same as an organization without a sending
    settings row at all (the send pipeline benchmark's case)."""
    bare = OrganizationFactory.create(slug="bare", timezone="America/Denver")
    base = _queries([m.pk for m in texts(bare, 10, MONDAY, prefix="B")], MONDAY)
    unset = limited_org(slug="unset", limit=None)
    assert _queries([m.pk for m in texts(unset, 10, MONDAY, prefix="U")], MONDAY) == base
    assert not SmsHourCount.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_at_once_never_send_more_than_the_limit(providers):
    """Two workers (each its own database connection) send two chunks of one organization at the same instant:
    between them exactly the limit leaves, the rest is held."""
    org = limited_org(limit=15)
    made = [m.pk for m in texts(org, 40, MONDAY)]

    def worker(ids: list[int]):
        def run() -> list[str]:
            with time_machine.travel(MONDAY, tick=False):
                return messages_send(ids, now=MONDAY)

        return run

    results = in_threads(worker(made[:20]), worker(made[20:]))
    assert not [r for r in results if isinstance(r, Exception)], results
    states = [state for chunk in results for state in chunk]
    assert states.count(State.SENT) == 15
    assert states.count(State.SCHEDULED) == 25
    assert len(providers.accepted()) == 15
    assert SmsHourCount.objects.get(organization=org).count == 15
    assert Message.objects.filter(state=State.SCHEDULED, reason=Reason.HOURLY_LIMIT).count() == 25


# org_settings (SPEC §10: ``hourly_sms_limit`` integer or ``none``)


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_org_settings_shows_sets_and_audits_the_limit():
    org = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    document = json.loads(run("org_settings", "--org", "smile-dental", "--json")[1])
    assert document["hourly_sms_limit"] is None
    assert "hourly_sms_limit=none" in run("org_settings", "--org", "smile-dental")[1].splitlines()

    assert run("org_settings", "--org", "smile-dental", "--set", "hourly_sms_limit=250")[0] == 0
    assert NotificationSettings.objects.get(organization=org).hourly_sms_limit == 250
    assert json.loads(run("org_settings", "--org", "smile-dental", "--json")[1])["hourly_sms_limit"] == 250
    assert "hourly_sms_limit=250" in run("org_settings", "--org", "smile-dental")[1].splitlines()
    assert AuditEvent.objects.get(action="settings.change").changes["hourly_sms_limit"] == [None, 250]

    assert run("org_settings", "--org", "smile-dental", "--set", "hourly_sms_limit=none")[0] == 0
    assert NotificationSettings.objects.get(organization=org).hourly_sms_limit is None


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0", "-5", "ten", "2.5", "250/h", "", "１２"])
def test_a_bad_limit_exits_2_says_the_form_and_changes_nothing(value):
    org = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    NotificationSettings.objects.create(organization=org, hourly_sms_limit=100)
    code, _, message = run(
        "org_settings", "--org", "smile-dental", "--set", "send_on_sundays=false", f"hourly_sms_limit={value}"
    )
    assert code == 2
    assert "hourly_sms_limit" in message
    assert "an integer from 1" in message
    row = NotificationSettings.objects.get(organization=org)
    assert (row.hourly_sms_limit, row.send_on_sundays) == (100, True)
    assert not AuditEvent.objects.filter(action="settings.change").exists()


@pytest.mark.parametrize(("raw", "parsed"), [("1", 1), ("250", 250), ("none", None)])
def test_the_limit_parses_integers_from_1_and_none(raw, parsed):
    assert parse_hourly_sms_limit(raw) == parsed


def test_the_limit_refuses_zero():
    with pytest.raises(SettingError, match="an integer from 1"):
        parse_hourly_sms_limit("0")


# The sending settings admin (T2 billing managers, T5 audited)


def _admin_form(**overrides: str) -> dict[str, str]:
    data = {"quiet_start": "21:00", "quiet_end": "08:00", "frequency_cap": "", "send_on_sundays": "on",
            "send_on_holidays": "on", "hourly_sms_limit": ""}  # fmt: skip
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_a_billing_manager_sets_the_limit_in_the_admin_and_the_change_is_audited(client):
    org = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    membership = MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    row = NotificationSettings.objects.create(organization=org)
    url = reverse("admin:notifications_notificationsettings_change", args=[row.pk])
    assert 'name="hourly_sms_limit"' in client.get(url).content.decode()
    response = client.post(url, _admin_form(hourly_sms_limit="120"))
    assert response.status_code == 302, response.content.decode()[:3000]
    row.refresh_from_db()
    assert row.hourly_sms_limit == 120
    event = AuditEvent.objects.get(action="admin.change")
    assert (event.actor, event.changes["hourly_sms_limit"]) == (membership.user, ["", "120"])
    listing = client.get(reverse("admin:notifications_notificationsettings_changelist")).content.decode()
    assert "texts an hour" in listing

    refused = client.post(url, _admin_form(hourly_sms_limit="0"))
    assert refused.status_code == 200
    row.refresh_from_db()
    assert row.hourly_sms_limit == 120
