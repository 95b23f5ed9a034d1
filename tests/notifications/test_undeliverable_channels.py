"""The undeliverable list by channel (U1, issue 12): a guarantor reached on one channel is not listed for the gap
on another; a resend that fixes the text takes the email row off too; each row gives its own channel's reason;
the quick-add field is a labelled phone input with a format hint."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from notifications.models import Channel, Kind, Message, Reason, State
from notifications.resend import message_resend
from notifications.selectors import undeliverable_messages
from payments.campaigns import bulk_send
from practices.models import Role
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.payments.factories import BillFactory

pytestmark = pytest.mark.django_db

DAYTIME = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 10:00 in Denver
LIST_URL = "/dashboard/undeliverable/"
ROW = re.compile(
    r'<td>(?P<channel>SMS|Email|Paper)</td>\s*<td>[^<]*</td>\s*<td class="reason">(?P<reason>[^<]*)</td>\s*'
    r'<td><a href="/dashboard/undeliverable/(?P<pk>\d+)/">'
)


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(DAYTIME, tick=False) as traveller:
        yield traveller


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")


@pytest.fixture
def user(org):
    return MembershipFactory.create(organization=org, role=Role.FRONT_DESK).user


@pytest.fixture
def staff(client, user):
    client.force_login(user)
    return client


def guarantor(org, external_id: str, *, mobile: str = "", email: str = ""):
    patient = GuarantorFactory.create(organization=org, external_id=external_id, mobile_phone=mobile,
                                      email=email, last_visit_date=date(2026, 10, 1))  # fmt: skip
    AccountFactory.create(guarantor=patient, bucket_0_30=Decimal("80.00"), total=Decimal("80.00"),
                          patient_portion=Decimal("80.00"), aging_category="0_30")  # fmt: skip
    return patient


def rows(staff) -> list[tuple[str, str]]:
    html = staff.get(LIST_URL).content.decode()
    return [(m["channel"], m["reason"]) for m in ROW.finditer(html)]


def test_a_guarantor_reached_by_text_is_not_listed_for_the_missing_email(staff, org, user):
    """Issue 12: a patient who was reached by text also appeared for the missing email."""
    guarantor(org, "G1", mobile="+18015550100")

    bulk_send(organization=org, at=DAYTIME)

    email = Message.objects.get(channel=Channel.EMAIL)
    assert (email.state, email.reason) == (State.UNDELIVERED, Reason.NO_DESTINATION)
    assert Message.objects.get(channel=Channel.SMS).state == State.PENDING  # on its way
    assert rows(staff) == []
    assert list(undeliverable_messages(user=user)) == []


def test_the_gap_is_listed_again_when_the_text_fails_too(staff, org):
    guarantor(org, "G1", mobile="+18015550100")
    bulk_send(organization=org, at=DAYTIME)
    Message.objects.filter(channel=Channel.SMS).update(state=State.UNDELIVERED, reason=Reason.LANDLINE)

    assert sorted(rows(staff)) == [
        ("Email", "No email address on file"),
        ("SMS", "Not a mobile number (landline)"),
    ]


def test_after_a_resend_fixes_the_text_the_email_row_goes_too(staff, org, user):
    """Issue 12: after a quick-added number fixed the text, the email row stayed on the list."""
    guarantor(org, "G1")
    bulk_send(organization=org, at=DAYTIME)
    assert sorted(rows(staff)) == [("Email", "No email address on file"), ("SMS", "No mobile number on file")]
    sms = Message.objects.get(channel=Channel.SMS, kind=Kind.REQUEST)

    response = staff.post(
        f"/dashboard/undeliverable/{sms.pk}/resend/",
        {"action": "quick_add", "mobile_number": "(801) 555-0123", "consented": "on"},
    )

    assert response.status_code == 302
    assert Message.objects.get(resend_of=sms).state == State.PENDING
    assert rows(staff) == []
    # A resend that fails in its turn brings both back: the resend (to fix again) and the email gap.
    Message.objects.filter(resend_of=sms).update(state=State.UNDELIVERED, reason=Reason.UNKNOWN_HANDSET)
    assert sorted(rows(staff)) == [
        ("Email", "No email address on file"),
        ("SMS", "Unknown or out-of-service number"),
    ]


def test_each_row_gives_its_own_channels_reason(staff, org):
    """Issue 12: every row showed "No mobile number / email / valid address on file" whatever the channel."""
    patient = guarantor(org, "G1")
    for channel in (Channel.SMS, Channel.EMAIL, Channel.PAPER):
        bill = BillFactory.create(guarantor=patient)
        Message.objects.create(organization=org, patient=patient, bill=bill, generation=bill.generation,
                               step_key=f"s-{channel}",
                               kind=Kind.STATEMENT, channel=channel, state=State.UNDELIVERED,
                               reason=Reason.NO_DESTINATION)  # fmt: skip

    assert sorted(rows(staff)) == [
        ("Email", "No email address on file"),
        ("Paper", "No valid mailing address on file"),
        ("SMS", "No mobile number on file"),
    ]
    detail = staff.get(f"/dashboard/undeliverable/{Message.objects.get(channel=Channel.EMAIL).pk}/")
    assert '<dd class="reason">No email address on file</dd>' in detail.content.decode()


def test_a_dunning_step_reached_on_one_channel_is_not_listed_for_another_but_other_steps_are(staff, org):
    patient = guarantor(org, "G1", mobile="+18015550100")
    bill = BillFactory.create(guarantor=patient)

    def message(step: str, channel: str, state: str, reason: str = "") -> Message:
        return Message.objects.create(organization=org, patient=patient, bill=bill, generation=1, step_key=step,
                                      kind=Kind.REMINDER, channel=channel, state=state, reason=reason)  # fmt: skip

    message("reminder-14", Channel.SMS, State.DELIVERED)
    message("reminder-14", Channel.EMAIL, State.UNDELIVERED, Reason.NO_DESTINATION)
    message("statement-0", Channel.EMAIL, State.UNDELIVERED, Reason.NO_DESTINATION)
    message("statement-0", Channel.SMS, State.FAILED, Reason.PROVIDER_FAILED)
    # A reset (generation 2) starts again: generation 1's delivered text does not cover generation 2.
    bill.generation = 2
    bill.save(update_fields=["generation"])
    regenerated = Message.objects.create(organization=org, patient=patient, bill=bill, generation=2,
                                         step_key="reminder-14", kind=Kind.REMINDER, channel=Channel.EMAIL,
                                         state=State.UNDELIVERED, reason=Reason.NO_DESTINATION)  # fmt: skip

    listed = {int(m["pk"]) for m in ROW.finditer(staff.get(LIST_URL).content.decode())}

    assert listed == {regenerated.pk}  # generation 1's rows left with the reset (undeliverable_filter)
    bill.generation = 1
    bill.save(update_fields=["generation"])
    regenerated.delete()
    assert sorted(rows(staff)) == [
        ("Email", "No email address on file"),
        ("SMS", "The provider could not send it"),
    ]  # statement-0 reached nobody; reminder-14 reached the patient by text


def test_resending_the_email_row_by_text_takes_the_sms_gap_off_too(staff, org, user):
    guarantor(org, "G1")
    bulk_send(organization=org, at=DAYTIME)
    email = Message.objects.get(channel=Channel.EMAIL)

    message_resend(message=email, user=user, mobile_number="8015550123", consented=True)

    assert rows(staff) == []


def test_the_quick_add_field_is_a_labelled_phone_input_with_a_format_hint(staff, org):
    """Issue 12: the quick-add field was tiny and gave no format hint."""
    guarantor(org, "G1")
    bulk_send(organization=org, at=DAYTIME)
    sms = Message.objects.get(channel=Channel.SMS)

    html = staff.get(f"/dashboard/undeliverable/{sms.pk}/").content.decode()

    field = re.search(r'<input type="tel" id="mobile_number"[^>]*>', html)
    assert field is not None
    tag = field.group(0)
    assert '<label for="mobile_number">Mobile number</label>' in html
    assert 'inputmode="tel"' in tag and 'size="20"' in tag and 'class="phone-input"' in tag
    assert 'aria-describedby="mobile-number-hint"' in tag
    hint = re.search(r'<p class="hint" id="mobile-number-hint">([^<]+)</p>', html)
    assert hint is not None and "e.g. (801) 234-5678" in hint.group(1)


def test_after_an_error_the_field_is_described_by_the_hint_and_the_error(staff, org):
    guarantor(org, "G1")
    bulk_send(organization=org, at=DAYTIME)
    sms = Message.objects.get(channel=Channel.SMS)

    response = staff.post(f"/dashboard/undeliverable/{sms.pk}/resend/",
                          {"action": "quick_add", "mobile_number": "12345", "consented": "on"})  # fmt: skip

    assert response.status_code == 400
    assert 'aria-describedby="mobile-number-hint resend-error"' in response.content.decode()
