"""The front desk's undeliverable list and resend (U1), limited to the user's organizations (T1, T2, T5)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from notifications.models import Channel, Kind, Message, OptOutSource, Reason, State
from notifications.optouts import opt_out_set
from notifications.outbox import message_create
from notifications.resend import ResendError, message_resend
from notifications.selectors import undeliverable_messages
from practices.models import AuditEvent, Bill, BillState, Role
from tests.factories import GuarantorFactory, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

DAYTIME = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 10:00 in Denver
EVENING = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 22:00 in Denver, inside quiet hours
NEXT_MORNING = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 08:00 in Denver
LIST_URL = "/dashboard/undeliverable/"
ROW_LINK = re.compile(r'href="/dashboard/undeliverable/(\d+)/"')
REMINDER = "Update the patient's record in your practice-management system."


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


def undeliverable(patient, *, reason=Reason.NO_DESTINATION, updated_at=None, **fields):
    values = {"kind": Kind.REQUEST, "channel": Channel.SMS, "body": "Smile Dental: $120 due. Pay: https://x/p/1",
              "state": State.UNDELIVERED, "reason": reason, **fields}  # fmt: skip
    message = Message.objects.create(organization=patient.organization, patient=patient, **values)
    if updated_at is not None:
        Message.objects.filter(pk=message.pk).update(updated_at=updated_at)
    return message


def detail_url(message):
    return reverse("notifications_dashboard:undeliverable-detail", args=[message.pk])


def resend_url(message):
    return reverse("notifications_dashboard:undeliverable-resend", args=[message.pk])


def quick_add(client, message, number="(801) 555-0123", *, consented=True):
    data = {"action": "quick_add", "mobile_number": number}
    if consented:
        data["consented"] = "on"
    return client.post(resend_url(message), data)


# --- the list -----------------------------------------------------------------------------------------


def test_the_urls_are_mounted_under_dashboard():
    assert reverse("notifications_dashboard:undeliverable") == LIST_URL


def test_the_list_shows_undeliverable_messages_newest_first_with_the_reason(staff_client, organization):
    older = undeliverable(
        GuarantorFactory.create(organization=organization, first_name="Olga"),
        reason=Reason.LANDLINE, destination="+18015550177", updated_at=DAYTIME - timedelta(days=2),
    )  # fmt: skip
    newer = undeliverable(
        GuarantorFactory.create(organization=organization, first_name="Nina"),
        reason=Reason.BOUNCED, channel=Channel.EMAIL, destination="nina@example.com", updated_at=DAYTIME,
    )  # fmt: skip
    failed = undeliverable(
        GuarantorFactory.create(organization=organization, first_name="Fred"),
        state=State.FAILED, reason=Reason.PROVIDER_FAILED, updated_at=DAYTIME - timedelta(days=1),
    )  # fmt: skip
    delivered = GuarantorFactory.create(organization=organization, first_name="Dora")
    undeliverable(delivered, state=State.DELIVERED, reason="")

    response = staff_client.get(LIST_URL)

    assert response.status_code == 200
    assert [int(pk) for pk in ROW_LINK.findall(response.text)] == [newer.pk, failed.pk, older.pk]
    html = response.text
    assert "Email bounced" in html and "The provider could not send it" in html
    assert "Not a mobile number (landline)" in html
    assert "<td>nina@example.com</td>" in html and "<td>(•••) •••-0177</td>" in html  # phones: the last 4
    assert "Dora" not in html


def test_a_message_created_without_a_destination_is_listed(staff_client, organization):
    patient = GuarantorFactory.create(organization=organization, first_name="Walter")
    message = message_create(
        Message(organization=organization, patient=patient, channel=Channel.SMS, kind=Kind.REQUEST, body="Hi",
                destination="")
    )  # fmt: skip

    response = staff_client.get(LIST_URL)

    assert ROW_LINK.findall(response.text) == [str(message.pk)]
    assert "No mobile number on file" in response.text


def test_another_organizations_messages_are_not_listed_and_answer_404(staff_client, organization):
    mine = undeliverable(GuarantorFactory.create(organization=organization, first_name="Mine"))
    theirs = undeliverable(
        GuarantorFactory.create(organization=OrganizationFactory.create(), first_name="Theirs")
    )

    response = staff_client.get(LIST_URL)

    assert ROW_LINK.findall(response.text) == [str(mine.pk)]
    assert "Theirs" not in response.text
    assert staff_client.get(detail_url(theirs)).status_code == 404
    assert quick_add(staff_client, theirs).status_code == 404
    assert not Message.objects.filter(resend_of=theirs).exists()


def test_a_user_without_a_membership_is_refused(client, organization):
    message = undeliverable(GuarantorFactory.create(organization=organization))
    client.force_login(UserFactory.create())

    assert client.get(LIST_URL).status_code == 403
    assert client.get(detail_url(message)).status_code == 404
    assert quick_add(client, message).status_code == 404
    assert not Message.objects.filter(resend_of=message).exists()


def test_an_anonymous_user_is_sent_to_the_admin_login(client, organization):
    message = undeliverable(GuarantorFactory.create(organization=organization))
    login = reverse("admin:login")

    for response in (client.get(LIST_URL), client.get(detail_url(message)), quick_add(client, message)):
        assert response.status_code == 302
        assert response.url.startswith(f"{login}?next=")
    assert not Message.objects.filter(resend_of=message).exists()


def test_the_list_uses_a_bounded_number_of_queries(staff_client, organization, django_assert_max_num_queries):
    for n in range(30):
        undeliverable(
            GuarantorFactory.create(organization=organization, first_name=f"P{n}"), reason=Reason.LANDLINE
        )

    with django_assert_max_num_queries(10):
        response = staff_client.get(LIST_URL)

    assert len(ROW_LINK.findall(response.text)) == 30


def test_the_list_shows_50_messages_a_page(staff_client, organization):
    patient = GuarantorFactory.create(organization=organization)
    for _ in range(51):
        undeliverable(patient)

    first = staff_client.get(LIST_URL)
    second = staff_client.get(LIST_URL, {"page": 2})

    assert len(ROW_LINK.findall(first.text)) == 50
    assert len(ROW_LINK.findall(second.text)) == 1
    assert "Page 1 of 2" in first.text


def test_an_htmx_refresh_returns_only_the_table(staff_client, organization):
    message = undeliverable(GuarantorFactory.create(organization=organization))

    full = staff_client.get(LIST_URL)
    partial = staff_client.get(LIST_URL, headers={"HX-Request": "true"})

    assert "<html" in full.text and 'hx-get="/dashboard/undeliverable/"' in full.text
    assert "<html" not in partial.text and "<header" not in partial.text
    assert partial.text.lstrip().startswith('<div id="undeliverable-table">')
    assert ROW_LINK.findall(partial.text) == [str(message.pk)]
    assert "HX-Request" in partial["Vary"]


def test_a_resent_message_leaves_the_list(staff_client, organization, user):
    message = undeliverable(GuarantorFactory.create(organization=organization))
    message_resend(message=message, user=user, mobile_number="8015550123", consented=True)

    assert not ROW_LINK.findall(staff_client.get(LIST_URL).text)
    assert list(undeliverable_messages(user=user)) == []


# --- the detail page ----------------------------------------------------------------------------------


def test_the_detail_masks_the_number_and_reminds_staff_to_update_the_pms(staff_client, organization):
    patient = GuarantorFactory.create(organization=organization, first_name="Rosa", external_id="G-778")
    message = undeliverable(
        patient, reason=Reason.UNREACHABLE, destination="+18015550177", error_code="30003"
    )

    response = staff_client.get(detail_url(message))

    html = response.text
    assert response.status_code == 200
    assert "Rosa Diaz" in html and "G-778" in html and "30003" in html
    assert "Handset unreachable (a resend may work)" in html
    assert "0177" in html and "+18015550177" not in html and "555" not in html
    assert "This number is used for this request only." in html and REMINDER in html
    assert "The patient consented to receive texts at this number" in html
    assert "Resend as is" in html


def test_resend_as_is_is_offered_only_when_the_handset_was_unreachable(staff_client, organization):
    message = undeliverable(GuarantorFactory.create(organization=organization), reason=Reason.NO_DESTINATION)

    html = staff_client.get(detail_url(message)).text

    assert "Resend as is" not in html
    assert REMINDER in html


# --- resending ----------------------------------------------------------------------------------------


@time_machine.travel(DAYTIME, tick=False)
def test_quick_add_with_consent_resends_to_that_number_only(staff_client, organization, user):
    patient = GuarantorFactory.create(organization=organization, mobile_phone="+18015550100")
    message = undeliverable(patient, reason=Reason.LANDLINE, destination="+18015550100", subject="")

    response = quick_add(staff_client, message, "(801) 555-0123")

    assert response.status_code == 302 and response.url == LIST_URL
    resend = Message.objects.get(resend_of=message)
    assert resend.kind == Kind.RESEND and resend.channel == Channel.SMS
    assert resend.destination == "+18015550123"
    assert resend.state == State.PENDING  # daytime: goes now
    assert resend.body == message.body and resend.step_key == ""
    assert (resend.organization, resend.patient, resend.generation) == (
        organization,
        patient,
        message.generation,
    )
    assert resend.consent_by == user and resend.consent_at == DAYTIME
    assert resend.created_by == user
    patient.refresh_from_db()
    assert patient.mobile_phone == "+18015550100"
    event = AuditEvent.objects.get(action="message.resend")
    assert (event.organization, event.actor, event.object_id) == (organization, user, str(resend.pk))
    assert event.changes["destination_last4"] == "0123" and event.changes["consented"] is True
    assert "5550123" not in json.dumps(event.changes)
    followed = staff_client.get(response.url)
    assert "Resent to Ana Diaz" in followed.text


def test_quick_add_without_consent_is_refused_and_creates_nothing(staff_client, organization):
    message = undeliverable(GuarantorFactory.create(organization=organization))
    count = Message.objects.count()

    response = quick_add(staff_client, message, consented=False)

    assert response.status_code == 400
    assert "Confirm that the patient consented" in response.text
    assert 'value="(801) 555-0123"' in response.text  # kept for a second try
    assert Message.objects.count() == count
    assert not AuditEvent.objects.filter(action="message.resend").exists()


@pytest.mark.parametrize("number", ["12345", "not a number", "(801) 555-01"])
def test_an_invalid_number_is_refused(staff_client, organization, number):
    message = undeliverable(GuarantorFactory.create(organization=organization))

    response = quick_add(staff_client, message, number)

    assert response.status_code == 400
    assert "not a" in response.text and "phone number" in response.text
    assert not Message.objects.filter(resend_of=message).exists()


def test_an_empty_quick_add_is_refused(staff_client, organization):
    message = undeliverable(GuarantorFactory.create(organization=organization), reason=Reason.UNREACHABLE,
                            destination="+18015550177")  # fmt: skip

    response = quick_add(staff_client, message, "  ")

    assert response.status_code == 400 and "Enter a mobile number." in response.text
    assert not Message.objects.filter(resend_of=message).exists()


def test_an_opted_out_number_is_refused(staff_client, organization):
    message = undeliverable(GuarantorFactory.create(organization=organization))
    opt_out_set(organization=organization, channel=Channel.SMS, address="+18015550123", active=True,
                source=OptOutSource.SMS_KEYWORD, keyword="STOP")  # fmt: skip

    response = quick_add(staff_client, message, "801-555-0123")

    assert response.status_code == 400 and "opted out" in response.text
    assert not Message.objects.filter(resend_of=message).exists()


def test_the_pms_sms_opt_out_also_refuses_a_resend(organization, user):
    message = undeliverable(GuarantorFactory.create(organization=organization, pms_sms_opt_out=True))

    with pytest.raises(ResendError, match="opted out"):
        message_resend(message=message, user=user, mobile_number="8015550123", consented=True)


@time_machine.travel(EVENING, tick=False)
def test_a_resend_in_quiet_hours_is_held_until_morning(staff_client, organization):
    message = undeliverable(GuarantorFactory.create(organization=organization))

    response = quick_add(staff_client, message)

    resend = Message.objects.get(resend_of=message)
    assert resend.state == State.SCHEDULED
    assert resend.scheduled_for == NEXT_MORNING
    assert "Quiet hours: it goes out at 08:00" in staff_client.get(response.url).text


@time_machine.travel(DAYTIME, tick=False)
def test_resend_as_is_goes_to_the_same_destination_without_consent(staff_client, organization, user):
    message = undeliverable(GuarantorFactory.create(organization=organization), reason=Reason.UNREACHABLE,
                            destination="+18015550177", error_code="30003")  # fmt: skip

    response = staff_client.post(resend_url(message), {"action": "as_is"})

    assert response.status_code == 302
    resend = Message.objects.get(resend_of=message)
    assert (resend.channel, resend.destination, resend.state) == (Channel.SMS, "+18015550177", State.PENDING)
    assert resend.consent_by is None and resend.consent_at is None
    assert AuditEvent.objects.get(action="message.resend").changes["quick_added"] is False


def test_resend_as_is_is_refused_when_it_cannot_work(organization, user):
    message = undeliverable(GuarantorFactory.create(organization=organization), reason=Reason.INVALID_NUMBER,
                            destination="+18015550177")  # fmt: skip

    with pytest.raises(ResendError, match="add a mobile number"):
        message_resend(message=message, user=user)
    assert not Message.objects.filter(resend_of=message).exists()


@pytest.mark.parametrize("state", [State.DELIVERED, State.PENDING, State.CANCELLED])
def test_only_undeliverable_messages_can_be_resent(organization, user, state):
    message = undeliverable(GuarantorFactory.create(organization=organization), state=state)

    with pytest.raises(ResendError, match="not undeliverable"):
        message_resend(message=message, user=user, mobile_number="8015550123", consented=True)


def test_a_message_is_resent_once(staff_client, organization, user):
    message = undeliverable(GuarantorFactory.create(organization=organization))
    message_resend(message=message, user=user, mobile_number="8015550123", consented=True)

    with pytest.raises(ResendError, match="already been resent"):
        message_resend(message=message, user=user, mobile_number="8015550199", consented=True)
    response = quick_add(staff_client, message, "8015550199")

    assert response.status_code == 400 and "already been resent" in response.text
    assert Message.objects.filter(resend_of=message).count() == 1


def test_an_email_resent_by_text_uses_the_sms_template_with_the_opt_out_hint():
    from notifications.models import Channel, Kind, Message, State
    from notifications.resend import message_resend

    org = OrganizationFactory.create(name="Smile Dental")
    patient = GuarantorFactory.create(organization=org)
    user = MembershipFactory.create(organization=org).user
    original = Message.objects.create(
        organization=org, patient=patient, channel=Channel.EMAIL, kind=Kind.REQUEST, subject="Your balance",
        body="Dear Ana, a long email body.", destination="ana@bounced.example", state=State.UNDELIVERED,
        context={"patient.first_name": "Ana", "practice.name": "Smile Dental", "amount_due": "$50.00",
                 "pay_url": "https://pay.example/p/x/"},
    )  # fmt: skip
    resend = message_resend(message=original, user=user, mobile_number="(801) 555-0123", consented=True)
    assert resend.channel == Channel.SMS
    assert "STOP" in resend.body
    assert "long email body" not in resend.body
    assert "https://pay.example/p/x/" in resend.body


def test_a_closed_paid_or_reset_campaigns_failures_leave_the_list_and_their_pages(client):
    """U1 holds what the front desk can fix: after collections or a write-off (the bill closed), a payment or a
    reset, a failed message of that campaign cannot be resent, so it is neither listed nor opened by URL; a
    completed bill's final notice and a message without a bill stay."""
    org = OrganizationFactory.create(slug="smile-dental")
    membership = MembershipFactory.create(organization=org, role=Role.FRONT_DESK)
    moment = datetime(2026, 11, 24, 15, tzinfo=UTC)

    def failed(bill_state: str, generation: int = 1, **fields) -> Message:
        patient = GuarantorFactory.create(organization=org)
        bill = Bill.objects.create(
            organization=org, guarantor=patient, bill_id=f"S-{patient.pk}", source="statement", amount_due="10.00",
            created_at=moment, effective_created_date=moment.date(), last_seen_at=moment, state=bill_state,
            generation=generation,
        )  # fmt: skip
        return Message.objects.create(
            organization=org, patient=patient, bill=bill, generation=1, channel=Channel.SMS, kind=Kind.FINAL,
            body="x", destination="+18015550100", state=State.UNDELIVERED, reason=Reason.LANDLINE,
            **fields,
        )  # fmt: skip

    listed = failed(BillState.COMPLETED)
    gone = [failed(BillState.CLOSED), failed(BillState.PAID), failed(BillState.ACTIVE, generation=2)]
    no_bill = Message.objects.create(
        organization=org, patient=GuarantorFactory.create(organization=org), channel=Channel.SMS, kind=Kind.REQUEST,
        body="x", destination="", state=State.UNDELIVERED, reason=Reason.NO_DESTINATION,
    )  # fmt: skip

    assert set(undeliverable_messages(user=membership.user).values_list("pk", flat=True)) == {
        listed.pk,
        no_bill.pk,
    }
    client.force_login(membership.user)
    for message in gone:
        assert (
            client.get(reverse("notifications_dashboard:undeliverable-detail", args=[message.pk])).status_code
            == 404
        )
    assert (
        client.get(reverse("notifications_dashboard:undeliverable-detail", args=[listed.pk])).status_code
        == 200
    )
