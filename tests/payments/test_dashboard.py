"""The payments dashboard: B1 (tabs), B2 (select all across pages, deselect, send, idempotent), B3 (snooze,
lift), B4 (single request), R12 (explain panel), the query budget of the list, T1/T2, T5 and accessible names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications.models import Channel, Kind, Message, State
from payments.campaigns import bulk_send
from payments.models import PaymentRequest, PaymentSettings, RequestMode, Snooze
from practices.models import AuditEvent, Bill, BillSource, Patient, Role
from tests.factories import (
    AccountFactory,
    GuarantorFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)
from tests.payments.factories import SnoozeFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 10:00 in Denver: outside quiet hours
TODAY = date(2026, 11, 24)
EVENING = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 22:00 on the 24th in Denver: quiet hours
ROW = re.compile(r'name="selected" value="([^"]+)"')


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(AT, tick=False) as traveller:
        yield traveller


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")


@pytest.fixture
def user(org):
    return MembershipFactory.create(organization=org, role=Role.FRONT_DESK, user__username="frontdesk").user


@pytest.fixture
def staff(client, user):
    client.force_login(user)
    return client


def guarantor(org, external_id: str, first: str = "Ana", last: str = "Diaz", *, portion: str = "100.00",
              aging: str = "0_30", **fields: Any):  # fmt: skip
    fields.setdefault("email", f"{external_id.lower()}@example.com")
    fields.setdefault("mobile_phone", "+18015550100")
    fields.setdefault("last_visit_date", date(2026, 10, 1))
    patient = GuarantorFactory.create(
        organization=org, external_id=external_id, first_name=first, last_name=last, **fields
    )
    AccountFactory.create(guarantor=patient, bucket_0_30=Decimal(portion), total=Decimal(portion),
                   patient_portion=Decimal(portion), aging_category=aging)  # fmt: skip
    return patient


def many(org, stop: int, *, start: int = 0) -> list:
    return [guarantor(org, f"G{n:04d}", "Pat", f"Number{n:04d}") for n in range(start, stop)]


def url(name: str, org, *args: str) -> str:
    return reverse(f"payments_dashboard:{name}", args=[org.slug, *args])


def bulk_url(org, **query: str) -> str:
    base = url("bulk", org)
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def listed(response) -> list[str]:
    return ROW.findall(response.content.decode())


def requested(org) -> list[str]:
    return sorted(
        Bill.objects.filter(organization=org, source=BillSource.REQUEST).values_list(
            "guarantor__external_id", flat=True
        )
    )


def flashes(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- mounting, roles, tenancy (T1, T2) -------------------------------------------------------------------


def test_the_dashboard_is_mounted_under_dashboard_payments(org):
    assert reverse("payments_dashboard:index") == "/dashboard/payments/"
    assert url("home", org) == "/dashboard/payments/smile-dental/"
    assert url("bulk", org) == "/dashboard/payments/smile-dental/bulk/"


def test_anonymous_users_are_sent_to_the_login_page(client, org):
    for path in (reverse("payments_dashboard:index"), url("bulk", org), url("guarantor", org, "G1")):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")


def test_a_user_without_a_membership_gets_403_on_the_index_and_404_on_an_organization(client, org):
    guarantor(org, "G1")
    client.force_login(UserFactory.create())
    assert client.get(reverse("payments_dashboard:index")).status_code == 403
    assert client.get(url("bulk", org)).status_code == 404
    assert client.get(url("guarantor", org, "G1")).status_code == 404
    assert client.post(url("send", org), {"select_all": "1"}).status_code == 404
    assert requested(org) == []


def test_one_organization_goes_straight_to_its_home_page_several_pick_one(client, org, user, staff):
    response = staff.get(reverse("payments_dashboard:index"))
    assert response.status_code == 302
    assert response["Location"] == url("home", org)

    other = OrganizationFactory.create(slug="bright-smiles", name="Bright Smiles")
    MembershipFactory.create(organization=other, user=user, role=Role.BILLING_MANAGER)
    user._organization_roles = None
    response = staff.get(reverse("payments_dashboard:index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="{url("home", org)}"' in html and f'href="{url("home", other)}"' in html


def test_another_organizations_guarantors_answer_404_and_are_never_sent_to(staff, org):
    other = OrganizationFactory.create(slug="bright-smiles")
    stranger = guarantor(other, "X1")
    guarantor(org, "G1")

    assert staff.get(url("bulk", other)).status_code == 404
    assert staff.get(url("guarantor", org, "X1")).status_code == 404
    assert staff.post(url("guarantor-request", org, "X1")).status_code == 404
    assert staff.post(url("lift", org), {"guarantor_id": "X1"}).status_code == 404
    assert staff.post(url("send", other), {"select_all": "1"}).status_code == 404

    staff.post(url("send", org), {"selected": ["G1", "X1"]})
    assert requested(org) == ["G1"]
    assert not Bill.objects.filter(guarantor=stranger).exists()
    response = staff.post(
        url("snooze", org), {"selected": ["X1"], "until": "2026-12-01", "reason": "Disputed balance"}
    )
    assert response.status_code == 400
    assert not Snooze.objects.exists()


# --- B1: the tabs ----------------------------------------------------------------------------------------


def test_all_shows_the_eligible_list_with_name_id_portion_aging_last_visit_and_channels(staff, org):
    guarantor(org, "G1", "Marisol", "Quintanilla", portion="1234.50", aging="61_90")
    guarantor(org, "G2", "Tom", "Okafor", mobile_phone="", email="tom@example.com", last_visit_date=None)
    guarantor(org, "G3", "Lena", "Park", mobile_phone="", email="")
    guarantor(org, "G4", "Ivy", "Chen", pms_sms_opt_out=True)
    guarantor(org, "G5", "Paula", "Plan", on_payment_plan=True)  # R2: not listed
    SnoozeFactory.create(guarantor=guarantor(org, "G6", "Sam", "Snoozed"), until=date(2026, 12, 1))  # R5

    response = staff.get(url("bulk", org))

    assert response.status_code == 200
    assert listed(response) == ["G1", "G2", "G3", "G4"]
    html = response.content.decode()
    assert "Marisol Quintanilla" in html and "$1,234.50" in html and "61-90 days" in html
    assert "Oct 1, 2026" in html
    assert "Paula Plan" not in html and "Sam Snoozed" not in html
    rows = {pid: html[html.index(f'value="{pid}"') :].split("</tr>")[0] for pid in ("G1", "G2", "G3", "G4")}
    assert ">SMS<" in rows["G1"] and ">Email<" in rows["G1"]
    assert ">SMS<" not in rows["G2"] and ">Email<" in rows["G2"] and "None on file" in rows["G2"]
    assert "No mobile or email" in rows["G3"]
    assert ">SMS<" not in rows["G4"]  # opted out of texts in the PMS
    assert response.context["counts"] == {"all": 4, "pending": 0, "snoozed": 1}


def test_all_also_shows_todays_request_messages_with_their_states(staff, org, user):
    guarantor(org, "G1", "Marisol", "Quintanilla")
    guarantor(org, "G2", "Tom", "Okafor", mobile_phone="")
    bulk_send(organization=org, at=AT, user=user)
    yesterday = Message.objects.create(organization=org, patient=guarantor(org, "G3", "Old", "Request"),
                                       kind=Kind.REQUEST, channel=Channel.SMS, state=State.DELIVERED)  # fmt: skip
    Message.objects.filter(pk=yesterday.pk).update(created_at=AT - timedelta(days=1))
    Message.objects.filter(patient__external_id="G1", channel=Channel.SMS).update(state=State.DELIVERED)

    response = staff.get(url("bulk", org))

    sent = response.context["sent_today"]
    assert {(m.patient.external_id, m.channel, m.state) for m in sent} == {
        ("G1", "sms", State.DELIVERED), ("G1", "email", State.PENDING),
        ("G2", "sms", State.UNDELIVERED), ("G2", "email", State.PENDING),
    }  # fmt: skip
    assert response.context["sent_today_total"] == 4
    html = response.content.decode()
    assert "Today's requests" in html and "Delivered: <strong>1</strong>" in html
    assert "Undelivered: <strong>1</strong>" in html and "Pending: <strong>2</strong>" in html
    assert listed(response) == ["G3"]


def test_pending_shows_request_messages_not_sent_yet_including_those_held_by_quiet_hours(
    staff, org, user, clock
):
    guarantor(org, "G2", "Tom", "Okafor")
    bulk_send(organization=org, at=AT, user=user)
    clock.move_to(EVENING)
    guarantor(org, "G1", "Marisol", "Quintanilla")
    bulk_send(organization=org, at=EVENING, user=user)  # 22:00 in Denver: held until 08:00
    Message.objects.filter(patient__external_id="G2", channel=Channel.EMAIL).update(state=State.SENT)
    Message.objects.create(organization=org, patient=guarantor(org, "G3", "Stella", "Statement"),
                           kind=Kind.STATEMENT, channel=Channel.SMS, state=State.PENDING)  # fmt: skip

    response = staff.get(bulk_url(org, tab="pending"))

    rows = [(m.patient.external_id, m.channel, m.state) for m in response.context["page"]]
    assert rows == [
        ("G2", "sms", State.PENDING),
        ("G1", "sms", State.SCHEDULED),
        ("G1", "email", State.SCHEDULED),
    ]
    html = response.content.decode()
    assert "Scheduled (held)" in html and "Nov 25, 08:00 MST" in html
    assert "Stella" not in html  # a dunning statement is not a payment request
    assert response.context["counts"]["pending"] == 3


def test_pending_includes_front_desk_resends_of_requests(staff, org):
    patient = guarantor(org, "G1", "Marisol", "Quintanilla")
    original = Message.objects.create(organization=org, patient=patient, kind=Kind.REQUEST, channel=Channel.SMS,
                                      state=State.UNDELIVERED)  # fmt: skip
    Message.objects.create(organization=org, patient=patient, kind=Kind.RESEND, channel=Channel.SMS,
                           state=State.PENDING, resend_of=original)  # fmt: skip

    response = staff.get(bulk_url(org, tab="pending"))

    assert [(m.kind, m.state) for m in response.context["page"]] == [(Kind.RESEND, State.PENDING)]


def test_snoozed_shows_running_snoozes_with_until_reason_by_and_a_lift_button(staff, org, user):
    SnoozeFactory.create(guarantor=guarantor(org, "G1", "Marisol", "Quintanilla"), until=date(2026, 12, 1),
                  reason="Insurance still processing", created_by=user)  # fmt: skip
    SnoozeFactory.create(guarantor=guarantor(org, "G2", "Ended", "Snooze"), until=TODAY)  # re-enrolled today
    SnoozeFactory.create(
        guarantor=guarantor(org, "G3", "Lifted", "Snooze"), until=date(2026, 12, 1), lifted_at=AT
    )

    response = staff.get(bulk_url(org, tab="snoozed"))

    assert [s.guarantor.external_id for s in response.context["page"]] == ["G1"]
    html = response.content.decode()
    assert "Dec 1, 2026" in html and "Insurance still processing" in html and "frontdesk" in html
    assert re.search(
        r"<button[^>]*>Lift snooze<span class=\"visually-hidden\"> for Marisol Quintanilla</span>", html
    )


# --- B2: select all across pages, deselect, send --------------------------------------------------------


def test_the_list_is_paginated_by_50_and_htmx_paging_returns_only_the_table(staff, org):
    many(org, 60)

    first = staff.get(url("bulk", org))
    assert len(listed(first)) == 50
    second = staff.get(url("bulk", org) + "?page=2", HTTP_HX_REQUEST="true")
    assert listed(second) == [f"G{n:04d}" for n in range(50, 60)]
    html = second.content.decode()
    assert "<html" not in html
    assert 'id="eligible"' in html and 'data-total="60"' in html
    assert second["Vary"] and "HX-Request" in second["Vary"]


def test_select_all_sends_to_every_page_except_the_deselected(staff, org, user):
    many(org, 60)

    response = staff.post(url("send", org), {"select_all": "1", "excluded": ["G0003", "G0055"]})

    assert response.status_code == 302
    expected = [f"G{n:04d}" for n in range(60) if n not in (3, 55)]
    assert requested(org) == expected  # G0050-G0059 were on page 2
    assert PaymentRequest.objects.filter(mode=RequestMode.BULK, requested_by=user).count() == 58
    assert Message.objects.filter(kind=Kind.REQUEST).count() == 58 * 2
    follow = staff.get(response["Location"])
    assert flashes(follow) == ["Payment requests started for 58 guarantors. Going out now: 116 messages."]
    assert listed(follow) == ["G0003", "G0055"]


def test_select_all_recomputes_the_list_at_send_time(staff, org):
    guarantor(org, "G1")
    guarantor(org, "G2")
    late = guarantor(org, "G3")
    # Between page load and Send: G2 pays at the desk (plan), G3 is snoozed by a colleague.
    guarantor(org, "G4")
    Patient.objects.filter(organization=org, external_id="G2").update(on_payment_plan=True)
    SnoozeFactory.create(guarantor=late, until=date(2026, 12, 1))

    staff.post(url("send", org), {"select_all": "1"})

    assert requested(org) == ["G1", "G4"]


def test_explicit_selection_sends_only_the_picked_ids(staff, org):
    for pid in ("G1", "G2", "G3"):
        guarantor(org, pid)

    response = staff.post(url("send", org), {"selected": ["G1", "G3"]}, follow=True)

    assert requested(org) == ["G1", "G3"]
    assert flashes(response) == ["Payment requests started for 2 guarantors. Going out now: 4 messages."]


def test_sending_with_nothing_selected_says_so_and_sends_nothing(staff, org):
    guarantor(org, "G1")

    response = staff.post(url("send", org), {}, follow=True)

    assert requested(org) == []
    assert Message.objects.count() == 0
    assert "Nothing selected, so nothing was sent. Tick guarantors or Select all." in flashes(response)

    response = staff.post(url("send", org), {"select_all": "1", "excluded": ["G1"]}, follow=True)
    assert requested(org) == []
    assert any(text.startswith("Nothing was sent") for text in flashes(response))


def test_a_double_submit_makes_one_campaign_per_guarantor(staff, org):
    many(org, 3)
    form = {"select_all": "1", "excluded": ["G0001"]}

    staff.post(url("send", org), form)
    response = staff.post(url("send", org), form, follow=True)

    assert requested(org) == ["G0000", "G0002"]
    assert Bill.objects.filter(source=BillSource.REQUEST).count() == 2
    assert Message.objects.count() == 4
    assert any(text.startswith("Nothing was sent") for text in flashes(response))
    # The same with explicit ids: the second submit finds them in their campaigns (R6).
    staff.post(url("send", org), {"selected": ["G0000", "G0002"]})
    assert Bill.objects.filter(source=BillSource.REQUEST).count() == 2


def test_the_send_message_counts_messages_held_by_quiet_hours_and_without_a_destination(staff, org, clock):
    guarantor(org, "G1")
    guarantor(org, "G2", mobile_phone="", email="")
    clock.move_to(EVENING)

    response = staff.post(url("send", org), {"select_all": "1"}, follow=True)

    assert flashes(response) == [
        "Payment requests started for 2 guarantors. Going out now: 0 messages. Held for quiet hours: 2 "
        "messages, until Nov 25 at 8:00 AM MST (the end of quiet hours in each patient's time zone). No mobile "
        "number or email: 2 messages, see the Undeliverable list."
    ]


def test_the_send_message_says_how_many_went_out_now_and_how_many_are_held_until_when(staff, org):
    """Issue 12: 52 of 60 messages were held for quiet hours and the banner said "sent". At 10:00 in Denver
    it is 7:00 in Honolulu and 12:00 in New York: Honolulu's texts and emails wait for 8:00 there, which is
    11:00 at the practice; the banner says so in the practice's clock and zone."""
    guarantor(org, "G1", timezone="America/New_York")
    guarantor(org, "G2", timezone="Pacific/Honolulu")
    guarantor(org, "G3", timezone="Pacific/Honolulu")

    response = staff.post(url("send", org), {"select_all": "1"}, follow=True)

    assert flashes(response) == [
        "Payment requests started for 3 guarantors. Going out now: 2 messages. Held for quiet hours: 4 "
        "messages, until Nov 24 at 11:00 AM MST (the end of quiet hours in each patient's time zone)."
    ]
    held = Message.objects.filter(state=State.SCHEDULED)
    assert set(held.values_list("patient__external_id", flat=True)) == {"G2", "G3"}
    assert set(held.values_list("scheduled_for", flat=True)) == {datetime(2026, 11, 24, 18, 0, tzinfo=UTC)}


def test_held_messages_released_at_different_moments_are_given_as_a_range(staff, org):
    guarantor(org, "G1", timezone="Pacific/Honolulu")  # 7:00 there: held until 8:00 HST = 11:00 MST
    guarantor(org, "G2", timezone="America/Anchorage")  # 8:00 AKST there: quiet hours are over
    guarantor(org, "G3", timezone="Asia/Tokyo")  # 2:00 on the 25th: held until 8:00 JST = 4:00 PM MST

    response = staff.post(url("send", org), {"select_all": "1"}, follow=True)

    assert flashes(response) == [
        "Payment requests started for 3 guarantors. Going out now: 2 messages. Held for quiet hours: 4 "
        "messages, until between Nov 24 at 11:00 AM MST and Nov 24 at 4:00 PM MST (the end of quiet hours in "
        "each patient's time zone)."
    ]


def test_sends_are_audited_with_the_user(staff, org, user):
    guarantor(org, "G1")
    staff.post(url("send", org), {"select_all": "1"})
    event = AuditEvent.objects.get(action="payment_request.send")
    assert (event.actor, event.actor_label, event.organization) == (user, "frontdesk", org)


# --- B3: snooze and lift --------------------------------------------------------------------------------


def snooze_form(**fields: Any) -> dict[str, Any]:
    return {"until": "2026-12-15", "reason": "Insurance still processing", **fields}


@pytest.mark.parametrize("until", ["2026-11-23", "2026-11-24"])
def test_a_snooze_date_that_is_not_in_the_future_is_an_error(staff, org, until):
    guarantor(org, "G1", "Marisol", "Quintanilla")

    response = staff.post(url("snooze", org), snooze_form(selected=["G1"], until=until))

    assert response.status_code == 400
    assert "Choose a re-enrol date in the future (after today)." in response.content.decode()
    assert not Snooze.objects.exists()
    # The selection is kept for another try.
    assert re.search(
        r'value="G1"\s+aria-label="Select Marisol Quintanilla" checked', response.content.decode()
    )


def test_a_snooze_needs_a_reason_from_the_list_or_typed(staff, org):
    guarantor(org, "G1")
    response = staff.post(url("snooze", org), snooze_form(selected=["G1"], reason=""))
    assert response.status_code == 400
    assert "Choose a reason or type one." in response.content.decode()

    staff.post(
        url("snooze", org), snooze_form(selected=["G1"], reason="__other__", reason_other="Moving away")
    )
    assert Snooze.objects.get().reason == "Moving away"


def test_the_reasons_come_from_the_organizations_settings(staff, org):
    PaymentSettings.objects.create(
        organization=org, snooze_reasons=["Waiting on the dentist", "Payment promised"]
    )
    guarantor(org, "G1")
    html = staff.get(url("bulk", org)).content.decode()
    assert '<option value="Waiting on the dentist">' in html and "Insurance still processing" not in html
    response = staff.post(url("snooze", org), snooze_form(selected=["G1"], reason="Not a listed reason"))
    assert response.status_code == 400


def test_snoozing_from_the_list_moves_the_guarantors_to_snoozed_and_lifting_brings_them_back(
    staff, org, user
):
    for pid, name in (("G1", "Marisol"), ("G2", "Tom"), ("G3", "Lena")):
        guarantor(org, pid, name, "Doe")

    response = staff.post(url("snooze", org), snooze_form(selected=["G1", "G3"]), follow=True)

    assert (
        response.context["undo"]["text"]
        == "Snoozed 2 guarantors until Dec 15, 2026 (Insurance still processing)."
    )
    assert listed(response) == ["G2"]
    snoozed = staff.get(bulk_url(org, tab="snoozed"))
    assert [s.guarantor.external_id for s in snoozed.context["page"]] == ["G1", "G3"]
    assert all(s.created_by == user and s.until == date(2026, 12, 15) for s in Snooze.objects.all())

    response = staff.post(url("lift", org), {"guarantor_id": "G1"}, follow=True)

    assert response.redirect_chain[-1][0] == bulk_url(org, tab="snoozed")
    assert [s.guarantor.external_id for s in response.context["page"]] == ["G3"]
    assert "Snooze lifted: Marisol Doe is back on the list if eligible." in flashes(response)
    assert listed(staff.get(url("bulk", org))) == ["G1", "G2"]
    assert AuditEvent.objects.filter(action="snooze.lift", actor=user).count() == 1


def test_a_rows_own_snooze_button_snoozes_that_row_and_keeps_the_selection_for_send(staff, org):
    many(org, 4)
    form = snooze_form(
        select_all="1", excluded=["G0001"], selected=["G0000", "G0002", "G0003"], snooze_one="G0002"
    )

    response = staff.post(url("snooze", org), form)

    assert list(Snooze.objects.values_list("guarantor__external_id", flat=True)) == ["G0002"]
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query == {"select_all": ["1"], "excluded": ["G0001"]}
    page = staff.get(response["Location"])
    html = page.content.decode()
    assert listed(page) == ["G0000", "G0001", "G0003"]
    assert re.search(r'id="select-all" name="select_all" value="1" checked', html)
    assert re.search(r'value="G0001"\s+aria-label="Select Pat Number0001">', html)  # still deselected
    assert '<input type="hidden" name="excluded" value="G0001">' in html

    staff.post(url("send", org), {"select_all": "1", "excluded": ["G0001"]})
    assert requested(org) == ["G0000", "G0003"]


def test_snoozing_with_select_all_snoozes_everyone_on_the_list_but_the_deselected(staff, org):
    many(org, 55)
    staff.post(url("snooze", org), snooze_form(select_all="1", excluded=["G0054"], confirmed_count="54"))
    assert Snooze.objects.count() == 54
    assert not Snooze.objects.filter(guarantor__external_id="G0054").exists()


def test_snoozing_nothing_is_an_error(staff, org):
    guarantor(org, "G1")
    response = staff.post(url("snooze", org), snooze_form())
    assert response.status_code == 400
    assert "Nothing selected: tick the guarantors to snooze." in response.content.decode()


# --- B4 and R12: the guarantor page ---------------------------------------------------------------------


def test_a_single_request_from_the_guarantor_page_starts_a_campaign_recorded_as_single(staff, org, user):
    guarantor(org, "G1", "Marisol", "Quintanilla", portion="150.00")

    response = staff.post(url("guarantor-request", org, "G1"), follow=True)

    request = PaymentRequest.objects.get()
    assert (request.mode, request.requested_by, request.bill.amount_due) == (
        RequestMode.SINGLE,
        user,
        Decimal("150.00"),
    )
    assert Message.objects.filter(bill=request.bill, kind=Kind.REQUEST).count() == 2
    assert response.redirect_chain[-1][0] == url("guarantor", org, "G1")
    assert (
        f"Payment request sent to Marisol Quintanilla for $150.00 (campaign {request.bill.bill_id})."
        in flashes(response)
    )
    html = response.content.decode()
    assert "Not on today's list: fails R6, R7, R8." in html  # now in its campaign, a single request
    assert request.bill.bill_id in html
    for message in Message.objects.filter(bill=request.bill, kind=Kind.REQUEST):
        assert f"{message.get_channel_display()}: {message.get_state_display()}</span>" in html


def test_a_single_request_for_an_ineligible_guarantor_is_refused_with_the_failing_rules(staff, org):
    guarantor(org, "G1", "Marisol", "Quintanilla", on_payment_plan=True, do_not_contact=True)

    response = staff.post(url("guarantor-request", org, "G1"))

    assert response.status_code == 409
    assert not Bill.objects.exists()
    html = response.content.decode()
    assert "Not sent: Marisol Quintanilla is not eligible today." in html
    refused = html[html.index("failed-rules") : html.index("</ul>", html.index("failed-rules"))]
    assert "R2</span> Not on a payment plan: on a payment plan: yes; required: no" in refused
    assert "R11</span> Not flagged do-not-contact: do not contact: yes; required: no" in refused
    assert "R3" not in refused


def explain_rows(html: str) -> dict[str, tuple[str, str]]:
    table = html[html.index('class="data explain"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(
        r'<th scope="row" class="rule-id">(R\d+)</th>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>\s*<td><span class="result \w+">(\w+)</span>',
        table,
    )
    return {rule: (detail, result) for rule, detail, result in rows}


def test_the_explain_panel_shows_every_rule_with_value_threshold_and_result(staff, org):
    PaymentSettings.objects.create(organization=org, min_payment_amount=Decimal("25.00"), max_open_claims=0)
    patient = guarantor(org, "G1", "Marisol", "Quintanilla", portion="20.00", open_claims=2)
    SnoozeFactory.create(guarantor=patient, until=date(2026, 12, 1), reason="Disputed balance")

    response = staff.get(url("guarantor", org, "G1"))

    rows = explain_rows(response.content.decode())
    assert list(rows) == ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R10", "R11"]
    assert rows["R1"] == ("is a guarantor", "Pass")
    assert rows["R3"] == ("patient portion 20.00 is not above minimum payment amount 25.00", "Fail")
    assert rows["R5"] == ("snoozed until 2026-12-01 (Disputed balance); date 2026-11-24", "Fail")
    assert rows["R10"] == ("open insurance claims 2; allowed: at most 0", "Fail")
    assert rows["R11"][1] == "Pass"
    html = response.content.decode()
    assert "Not on today's list: fails R3, R5, R10." in html
    assert re.search(
        r'<button type="submit" class="primary" disabled[^>]*>Send payment request</button>', html
    )
    assert "Snoozed until Dec 1, 2026" in html and ">Lift snooze</button>" in html


def test_the_explain_panel_of_an_eligible_guarantor_passes_everything(staff, org):
    guarantor(org, "G1", "Marisol", "Quintanilla")
    html = staff.get(url("guarantor", org, "G1")).content.decode()
    assert {result for _, result in explain_rows(html).values()} == {"Pass"}
    assert '<button type="submit" class="primary">Send payment request</button>' in html
    assert "On today's list: every rule passes." in html


def test_the_guarantor_page_shows_the_mobile_number_masked_in_national_format(staff, org):
    """T4: the last four digits only; issue 12: in the shape a person reads a number, not E.164's."""
    guarantor(org, "G1", "Marisol", "Quintanilla", mobile_phone="+18015550177")

    html = staff.get(url("guarantor", org, "G1")).content.decode()

    assert "<dt>Mobile</dt><dd>(•••) •••-0177</dd>" in html
    assert "5550177" not in html


def test_snoozing_and_lifting_from_the_guarantor_page_returns_to_it(staff, org):
    guarantor(org, "G1", "Marisol", "Quintanilla")
    page = url("guarantor", org, "G1")

    response = staff.post(url("snooze", org), snooze_form(selected=["G1"], back_to="guarantor"))
    assert response["Location"] == page
    assert Snooze.objects.filter(guarantor__external_id="G1", lifted_at__isnull=True).count() == 1

    bad = staff.post(
        url("snooze", org), snooze_form(selected=["G1"], back_to="guarantor", until="2026-01-01")
    )
    assert bad.status_code == 400 and "Why Marisol is not on the list" in bad.content.decode()

    response = staff.post(url("lift", org), {"guarantor_id": "G1", "back_to": "guarantor"})
    assert response["Location"] == page
    assert not Snooze.objects.filter(lifted_at__isnull=True).exists()


# --- the query budget -----------------------------------------------------------------------------------


def page_queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


@pytest.mark.parametrize("tab", ["all", "pending", "snoozed"])
def test_a_page_costs_the_same_bounded_number_of_queries_for_20_or_120_guarantors(
    staff, org, user, tab, django_assert_max_num_queries
):
    counts = []
    for start, stop in ((0, 20), (20, 120)):
        people = many(org, stop, start=start)
        quarter = len(people) // 4
        for patient in people[:quarter]:
            SnoozeFactory.create(guarantor=patient, until=date(2026, 12, 1), created_by=user)
        sent = [p.external_id for p in people[quarter : 2 * quarter]]
        bulk_send(organization=org, at=AT, user=user, only=sent)
        with django_assert_max_num_queries(15):
            counts.append(page_queries(staff, bulk_url(org, tab=tab)))
    assert counts[0] == counts[1]


# --- accessible names -----------------------------------------------------------------------------------


def test_the_controls_have_accessible_names(staff, org):
    guarantor(org, "G1", "Marisol", "Quintanilla")
    html = staff.get(url("bulk", org)).content.decode()

    assert re.search(
        r'<input type="checkbox" id="select-all"[^>]*>\s*<label for="select-all">Select all</label>', html
    )
    assert re.search(r'<button type="submit" class="primary" id="send-button"[^>]*>Send</button>', html)
    assert re.search(
        r"<button[^>]*formaction=\"/dashboard/payments/smile-dental/snooze/\" id=\"snooze-button\">Snooze selected</button>",
        html,
    )
    assert 'aria-label="Select Marisol Quintanilla"' in html
    assert '<label for="id_until">Until</label>' in html and '<label for="id_reason">Reason</label>' in html
    assert 'aria-current="page">All' in html
    assert f'href="/dashboard/undeliverable/?organization={org.pk}"' in html
    assert '<a href="/dashboard/payments/" aria-current="page">Payments</a>' in html


@pytest.mark.parametrize("pms_id", ["A/1", "50%", "G 12", "José-ñ", "=HYPERLINK(1)", "a~b", "../x", "%2F"])
def test_any_pms_id_links_from_the_list_to_its_guarantor_page_and_back(staff, org, pms_id):
    """Issue 11: an id with "/" broke the whole list (NoReverseMatch) and its page answered 404."""
    guarantor(org, pms_id, "Marisol", "Quintanilla")

    listing = staff.get(url("bulk", org))
    assert listing.status_code == 200
    link = re.search(r'href="([^"]*/guarantors/[^"]*)"', listing.content.decode())
    assert link is not None
    page = staff.get(link.group(1).replace("&amp;", "&"))

    assert page.status_code == 200
    assert "Marisol Quintanilla" in page.content.decode()
    assert page.context["guarantor"].external_id == pms_id
    assert staff.post(url("guarantor-request", org, pms_id)).status_code in (200, 302)
