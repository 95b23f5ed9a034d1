"""K5 number checks: Twilio Lookup's line type on a number quick-added on the undeliverable list (U1), asked
through the real SDK of the local fake Twilio (tests/fakes/twilio_server.py), before the first text.

Lookup v2's request and response: https://www.twilio.com/docs/lookup/v2-api/line-type-intelligence
(GET https://lookups.twilio.com/v2/PhoneNumbers/{PhoneNumber}?Fields=line_type_intelligence, answering
``line_type_intelligence: {type, carrier_name, error_code, mobile_country_code, mobile_network_code}``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse

from notifications.models import (
    Channel,
    Kind,
    Message,
    NumberLookup,
    OptOutEvent,
    OptOutSource,
    Reason,
    State,
)
from notifications.optouts import opt_out_set
from notifications.providers import twilio
from notifications.providers.twilio import reset_client
from notifications.resend import ResendError, message_resend
from practices.models import AuditEvent, Role
from tests.factories import GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

pytestmark = pytest.mark.django_db

DAYTIME = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 10:00 in Denver
LANDLINE = "+18015550111"
MOBILE = "+18015550123"


@pytest.fixture
def fake(settings) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
        settings.TWILIO_API_BASE_URL, settings.TWILIO_ENABLED = fake.base_url, True
        settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM_NUMBER = "", FAKE_FROM_NUMBER
        fake.line_types[LANDLINE] = "landline"
        reset_client()
        yield fake
        reset_client()


@pytest.fixture
def organization():
    return OrganizationFactory.create()


@pytest.fixture
def user(organization):
    return MembershipFactory.create(organization=organization, role=Role.FRONT_DESK).user


@pytest.fixture
def staff_client(client, user):
    client.force_login(user)
    return client


def undeliverable(organization) -> Message:
    patient = GuarantorFactory.create(organization=organization, mobile_phone="+18015550100")
    return Message.objects.create(
        organization=organization, patient=patient, kind=Kind.REQUEST, channel=Channel.SMS,
        body="Smile Dental: $120 due. Pay: https://x/p/1 Reply STOP to opt out.", destination="+18015550100",
        state=State.UNDELIVERED, reason=Reason.LANDLINE,
    )  # fmt: skip


def quick_add(client, message, number):
    url = reverse("notifications_dashboard:undeliverable-resend", args=[message.pk])
    return client.post(url, {"action": "quick_add", "mobile_number": number, "consented": "on"})


def send_due() -> dict[str, int]:
    out = StringIO()
    call_command("send_due", "--json", stdout=out)
    return json.loads(out.getvalue())


@time_machine.travel(DAYTIME, tick=False)
def test_a_landline_is_refused_with_a_clear_message_and_nothing_is_texted(fake, staff_client, organization):
    message = undeliverable(organization)

    response = quick_add(staff_client, message, "(801) 555-0111")

    assert response.status_code == 400
    assert "This number is a landline (Qwest Corporation) and cannot receive texts." in response.text
    assert "Ask the patient for a mobile number." in response.text
    assert fake.lookups == [{"number": LANDLINE, "fields": "line_type_intelligence"}]
    assert not Message.objects.filter(resend_of=message).exists()
    assert not OptOutEvent.objects.filter(source=OptOutSource.QUICK_ADD).exists()  # no consent recorded
    send_due()
    assert fake.messages == []  # nothing reached Twilio's Messages API
    lookup = NumberLookup.objects.get()
    assert (lookup.organization, lookup.number, lookup.line_type, lookup.carrier_name, lookup.checked_at) == (
        organization, LANDLINE, "landline", "Qwest Corporation", DAYTIME,
    )  # fmt: skip
    event = AuditEvent.objects.get(action="number.lookup")
    assert event.changes["outcome"] == "landline" and event.changes["textable"] is False
    assert event.changes["number_last4"] == "0111" and "5550111" not in json.dumps(event.changes)


@time_machine.travel(DAYTIME, tick=False)
def test_a_mobile_number_is_checked_then_the_resend_reaches_twilio(fake, staff_client, organization, user):
    message = undeliverable(organization)

    response = quick_add(staff_client, message, "801-555-0123")

    assert response.status_code == 302
    assert fake.lookups == [{"number": MOBILE, "fields": "line_type_intelligence"}]
    resend = Message.objects.get(resend_of=message)
    assert (resend.destination, resend.state, resend.consent_by) == (MOBILE, State.PENDING, user)
    send_due()
    assert [m["To"] for m in fake.accepted()] == [MOBILE]
    lookup = NumberLookup.objects.get()
    assert (lookup.line_type, lookup.carrier_name, lookup.error_code) == (
        "mobile",
        "T-Mobile USA, Inc.",
        None,
    )
    assert AuditEvent.objects.get(action="message.resend").changes["line_type"] == "mobile"
    followed = staff_client.get(response.url)
    assert "Resent to Ana Diaz" in followed.text and "carrier" not in followed.text


@time_machine.travel(DAYTIME, tick=False)
def test_a_number_is_looked_up_once_per_organization(fake, staff_client, organization, user):
    first, second = undeliverable(organization), undeliverable(organization)
    assert quick_add(staff_client, first, LANDLINE).status_code == 400
    response = quick_add(staff_client, second, LANDLINE)
    assert response.status_code == 400 and "is a landline" in response.text
    assert len(fake.lookups) == 1  # the kept answer, not a second paid request
    assert AuditEvent.objects.filter(action="number.lookup").count() == 1

    other = OrganizationFactory.create()
    theirs = undeliverable(other)
    with pytest.raises(ResendError, match="is a landline"):
        message_resend(message=theirs, user=None, mobile_number=LANDLINE, consented=True)
    assert len(fake.lookups) == 2  # another organization's answer is its own
    assert NumberLookup.objects.filter(number=LANDLINE).count() == 2


@pytest.mark.parametrize(
    ("line_type", "words"),
    [
        ("fixedVoip", "a home or office internet phone line (fixed VoIP) (Comcast IP Phone, LLC)"),
        ("tollFree", "a toll-free number and"),
        ("pager", "a pager and"),
    ],
)
@time_machine.travel(DAYTIME, tick=False)
def test_other_line_types_that_cannot_take_texts_are_refused(
    fake, staff_client, organization, line_type, words
):
    fake.line_types[MOBILE] = line_type
    message = undeliverable(organization)
    response = quick_add(staff_client, message, MOBILE)
    assert response.status_code == 400 and f"This number is {words}" in response.text
    assert not Message.objects.filter(resend_of=message).exists()


@pytest.mark.parametrize("line_type", ["nonFixedVoip", "personal"])
@time_machine.travel(DAYTIME, tick=False)
def test_line_types_that_take_texts_are_allowed(fake, staff_client, organization, line_type):
    fake.line_types[MOBILE] = line_type
    message = undeliverable(organization)
    assert quick_add(staff_client, message, MOBILE).status_code == 302
    send_due()
    assert [m["To"] for m in fake.accepted()] == [MOBILE]


@time_machine.travel(DAYTIME, tick=False)
def test_a_number_twilio_cannot_type_is_allowed_and_the_front_desk_is_told(fake, staff_client, organization):
    fake.line_types[MOBILE] = None  # Twilio's 60600: unprovisioned or out of coverage
    message = undeliverable(organization)
    response = quick_add(staff_client, message, MOBILE)
    assert response.status_code == 302
    followed = staff_client.get(response.url)
    assert "The phone carrier could not say whether this number takes texts." in followed.text
    lookup = NumberLookup.objects.get()
    assert (lookup.line_type, lookup.error_code) == ("", 60600)
    send_due()
    assert [m["To"] for m in fake.accepted()] == [MOBILE]


@time_machine.travel(DAYTIME, tick=False)
def test_lookup_unavailable_allows_the_number_says_so_and_asks_again_next_time(
    fake, staff_client, organization
):
    fake.fail_next_lookup(status=503)
    message = undeliverable(organization)

    response = quick_add(staff_client, message, MOBILE)

    assert response.status_code == 302
    followed = staff_client.get(response.url)
    assert "The number could not be checked with the phone carrier" in followed.text
    assert not NumberLookup.objects.exists()  # no answer kept
    event = AuditEvent.objects.get(action="number.lookup")
    assert event.changes["outcome"] == "unavailable" and "503" in event.changes["error"]
    assert AuditEvent.objects.get(action="message.resend").changes["line_type"] == "unavailable"
    send_due()
    assert [m["To"] for m in fake.accepted()] == [MOBILE]

    fake.line_types[MOBILE] = "landline"  # the next quick-add of the number asks again
    with pytest.raises(ResendError, match="is a landline"):
        message_resend(message=undeliverable(organization), user=None, mobile_number=MOBILE, consented=True)
    assert len(fake.lookups) == 2


@time_machine.travel(DAYTIME, tick=True)
def test_a_slow_lookup_is_given_up_after_the_lookup_timeout(fake, staff_client, organization, monkeypatch):
    monkeypatch.setattr(twilio, "LOOKUP_TIMEOUT_SECONDS", 0.3)
    fake.lookup_delay = 3.0
    message = undeliverable(organization)

    started = time.monotonic()
    response = quick_add(staff_client, message, MOBILE)

    assert time.monotonic() - started < 2.5
    assert response.status_code == 302
    assert "could not be checked" in staff_client.get(response.url).text
    assert Message.objects.get(resend_of=message).destination == MOBILE


@time_machine.travel(DAYTIME, tick=False)
def test_without_twilio_credentials_nothing_is_asked_and_the_number_is_allowed(
    settings, staff_client, organization
):
    settings.TWILIO_ACCOUNT_SID = settings.TWILIO_AUTH_TOKEN = ""
    settings.TWILIO_ENABLED = False
    message = undeliverable(organization)
    response = quick_add(staff_client, message, MOBILE)
    assert response.status_code == 302
    assert "could not be checked" in staff_client.get(response.url).text
    assert Message.objects.get(resend_of=message).destination == MOBILE
    assert not NumberLookup.objects.exists()


def test_resend_as_is_asks_no_lookup(fake, organization):
    message = undeliverable(organization)
    Message.objects.filter(pk=message.pk).update(reason=Reason.UNREACHABLE)
    message.refresh_from_db()
    with time_machine.travel(DAYTIME, tick=False):
        message_resend(message=message, user=None)
    assert fake.lookups == []


def test_every_twilio_lookups_host_goes_to_the_configured_base_url():
    # The SDK's hosts without and with TWILIO_EDGE/TWILIO_REGION (twilio.base.client_base.get_hostname).
    for url in (
        "https://lookups.twilio.com/v2/PhoneNumbers/+18015550123",
        "https://lookups.us1.twilio.com/v2/PhoneNumbers/+18015550123",
        "https://lookups.sydney.au1.twilio.com/v2/PhoneNumbers/+18015550123",
    ):
        assert (
            twilio._API_HOST.sub("http://127.0.0.1:9", url)
            == "http://127.0.0.1:9/v2/PhoneNumbers/+18015550123"
        )
    assert twilio._API_HOST.sub("http://x", "https://lookups.twilio.com.evil.example/v2") == (
        "https://lookups.twilio.com.evil.example/v2"
    )


@time_machine.travel(DAYTIME, tick=False)
def test_billing_managers_see_the_answers_in_the_admin_and_may_delete_a_stale_one(fake, client, organization):
    message_resend(message=undeliverable(organization), user=None, mobile_number=MOBILE, consented=True)
    lookup = NumberLookup.objects.get()
    other = OrganizationFactory.create()
    NumberLookup.objects.create(
        organization=other, number="+18015550199", line_type="mobile", checked_at=DAYTIME
    )
    manager = MembershipFactory.create(organization=organization, role=Role.BILLING_MANAGER).user
    front_desk = MembershipFactory.create(organization=organization, role=Role.FRONT_DESK).user
    changelist = reverse("admin:notifications_numberlookup_changelist")

    client.force_login(front_desk)
    assert client.get(changelist).status_code == 403
    client.force_login(manager)
    page = client.get(changelist)
    assert page.status_code == 200
    assert MOBILE in page.text and "T-Mobile USA, Inc." in page.text and "+18015550199" not in page.text

    delete = reverse("admin:notifications_numberlookup_delete", args=[lookup.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not NumberLookup.objects.filter(organization=organization).exists()
    assert AuditEvent.objects.filter(action="admin.delete", object_id=str(lookup.pk)).exists()
    message_resend(message=undeliverable(organization), user=None, mobile_number=MOBILE, consented=True)
    assert len(fake.lookups) == 2  # asked again after the delete


@time_machine.travel(DAYTIME, tick=False)
def test_a_resend_refused_anyway_asks_no_lookup(fake, staff_client, organization):
    opted_out = undeliverable(organization)
    opt_out_set(
        organization=organization,
        channel=Channel.SMS,
        address=MOBILE,
        active=True,
        source=OptOutSource.STAFF,
        at=DAYTIME,
    )
    response = quick_add(staff_client, opted_out, MOBILE)
    assert response.status_code == 400 and "opted out of SMS" in response.text

    do_not_contact = undeliverable(organization)
    do_not_contact.patient.do_not_contact = True
    do_not_contact.patient.save(update_fields=["do_not_contact"])
    response = quick_add(staff_client, do_not_contact, LANDLINE)
    assert response.status_code == 400 and "do-not-contact" in response.text

    resent = undeliverable(organization)
    assert quick_add(staff_client, resent, "8015550177").status_code == 302
    response = quick_add(staff_client, resent, LANDLINE)
    assert response.status_code == 400 and "already been resent" in response.text

    assert [lookup["number"] for lookup in fake.lookups] == ["+18015550177"]
