"""B3 as the seed has it (issue 12): a clock button on each row opens a small dialog of its own (the fields at the
top are for the selection); a bulk snooze of more than a handful states its count and asks first; the banner
after a snooze offers an undo; the Snoozed tab lifts several at once. Every change is audited (T5)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.urls import reverse

from payments.dashboard_views import SNOOZE_CONFIRM_ABOVE
from payments.models import Snooze
from practices.models import AuditEvent, Role
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.payments.factories import SnoozeFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 10:00 in Denver
UNTIL = "2026-12-15"
REASON = "Insurance still processing"


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


def guarantors(org, count: int) -> list:
    made = []
    for n in range(count):
        patient = GuarantorFactory.create(organization=org, external_id=f"G{n:04d}", first_name="Pat",
                                          last_name=f"Number{n:04d}", email=f"g{n}@example.com",
                                          mobile_phone="+18015550100", last_visit_date=date(2026, 10, 1))  # fmt: skip
        AccountFactory.create(guarantor=patient, bucket_0_30=Decimal("90.00"), total=Decimal("90.00"),
                              patient_portion=Decimal("90.00"), aging_category="0_30")  # fmt: skip
        made.append(patient)
    return made


def url(name: str, org) -> str:
    return reverse(f"payments_dashboard:{name}", args=[org.slug])


def snooze(**fields: Any) -> dict[str, Any]:
    return {"until": UNTIL, "reason": REASON, **fields}


def snoozed_ids() -> list[str]:
    running = Snooze.objects.filter(lifted_at__isnull=True).order_by("guarantor__external_id")
    return list(running.values_list("guarantor__external_id", flat=True))


def flashes(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- the row's clock button and its dialog ---------------------------------------------------------------


def test_each_row_has_a_clock_button_that_opens_a_dialog_instead_of_submitting_the_shared_fields(staff, org):
    """Issue 12: every row's Snooze submitted the list's form and so read the shared fields at the top."""
    guarantors(org, 2)

    html = staff.get(url("bulk", org)).content.decode()

    list_form = html[
        html.index('<form id="bulk-form"') : html.index("</form>", html.index('<form id="bulk-form"'))
    ]
    assert 'name="snooze_one"' not in list_form
    rows = re.findall(r'<button type="button" class="icon-button" data-snooze-row="([^"]+)"[^>]*'
                      r'aria-haspopup="dialog" aria-controls="row-snooze-dialog"[^>]*><svg[^>]*>.*?</svg>'
                      r'<span class="visually-hidden">Snooze ([^<]+)</span></button>', list_form, re.S)  # fmt: skip
    assert rows == [("G0000", "Pat Number0000"), ("G0001", "Pat Number0001")]
    dialog = html[html.index('<dialog id="row-snooze-dialog"') : html.index("</dialog>")]
    assert (
        '<form method="post" action="/dashboard/payments/smile-dental/snooze/" id="row-snooze-form">'
        in dialog
    )
    assert (
        '<label for="row_until">Re-enrol date</label>' in dialog
        and 'id="row_until" min="2026-11-25"' in dialog
    )
    assert '<label for="row_reason">Reason</label>' in dialog and f'<option value="{REASON}">' in dialog
    assert 'name="snooze_one" value=""' in dialog
    assert " data-open" not in dialog  # closed until a clock button opens it


def test_the_dialog_snoozes_its_row_only_and_keeps_the_selection_made_for_send(staff, org):
    guarantors(org, 4)
    # What the dialog posts: its own fields, the row, and the selection the script copies into it.
    form = snooze(snooze_one="G0002", select_all="1", excluded=["G0001"], page="1")

    response = staff.post(url("snooze", org), form)

    assert snoozed_ids() == ["G0002"]
    assert parse_qs(urlsplit(response["Location"]).query) == {"select_all": ["1"], "excluded": ["G0001"]}


def test_a_dialog_with_errors_comes_back_open_for_its_row_with_the_bar_untouched(staff, org):
    guarantors(org, 2)

    response = staff.post(url("snooze", org), snooze(snooze_one="G0001", until="2026-11-24"))

    assert response.status_code == 400
    html = response.content.decode()
    dialog = html[html.index('<dialog id="row-snooze-dialog"') : html.index("</dialog>")]
    assert "data-open" in dialog and "Snooze <span data-snooze-name>Pat Number0001</span>" in dialog
    assert 'name="snooze_one" value="G0001"' in dialog
    assert "Choose a re-enrol date in the future (after today)." in dialog
    bar = html[html.index('<fieldset class="snooze-bar">') : html.index("</fieldset>")]
    assert "Choose a re-enrol date" not in bar
    assert not Snooze.objects.exists()


def test_a_row_of_another_organization_answers_404(staff, org):
    other = OrganizationFactory.create(slug="bright-smiles")
    stranger = GuarantorFactory.create(organization=other, external_id="X1")
    assert staff.post(url("snooze", org), snooze(snooze_one=stranger.external_id)).status_code == 404
    assert not Snooze.objects.exists()


# --- a bulk snooze states its count and asks above a handful ---------------------------------------------


def test_a_bulk_snooze_of_more_than_a_handful_asks_first_stating_the_count(staff, org):
    """Issue 12: following the seed's order (select all, deselect, snooze), Snooze snoozed 45 people without
    saying how many or asking."""
    guarantors(org, 46)

    response = staff.post(url("snooze", org), snooze(select_all="1", excluded=["G0003"]))

    assert response.status_code == 200
    assert not Snooze.objects.exists()
    html = response.content.decode()
    assert "<h1>Snooze 45 guarantors?</h1>" in html
    assert (
        "You are about to snooze <strong>45 guarantors</strong> until <strong>Dec 15, 2026</strong>" in html
    )
    assert "<li>Pat Number0000</li>" in html and "and 35 more" in html
    assert '<button type="submit" class="primary">Snooze 45 guarantors</button>' in html
    carried = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    assert (
        carried["confirmed_count"] == "45" and carried["select_all"] == "1" and carried["excluded"] == "G0003"
    )
    cancel = re.search(r'<a class="button secondary" href="([^"]+)">Cancel</a>', html)
    assert cancel is not None and "select_all=1" in cancel.group(1) and "excluded=G0003" in cancel.group(1)

    confirmed = staff.post(
        url("snooze", org), snooze(select_all="1", excluded=["G0003"], confirmed_count="45")
    )

    assert confirmed.status_code == 302
    assert len(snoozed_ids()) == 45 and "G0003" not in snoozed_ids()
    assert AuditEvent.objects.filter(action="snooze.create").count() == 45


def test_the_confirmation_asks_again_when_the_list_changed_meanwhile(staff, org):
    made = guarantors(org, 8)
    SnoozeFactory.create(guarantor=made[0], until=date(2026, 12, 1))  # a colleague snoozed one meanwhile

    response = staff.post(url("snooze", org), snooze(select_all="1", confirmed_count="8"))

    assert response.status_code == 200
    assert "the selection is now 7 guarantors, not 8" in response.content.decode()
    assert Snooze.objects.count() == 1


def test_a_handful_is_snoozed_at_once_and_the_threshold_is_five():
    assert SNOOZE_CONFIRM_ABOVE == 5


def test_five_ticked_guarantors_are_snoozed_without_a_confirmation(staff, org):
    guarantors(org, 6)
    ids = [f"G{n:04d}" for n in range(5)]
    response = staff.post(url("snooze", org), snooze(selected=ids))
    assert response.status_code == 302
    assert snoozed_ids() == ids


def test_the_bars_snooze_button_states_the_count_of_the_selection(staff, org):
    guarantors(org, 7)
    html = staff.get(url("bulk", org) + "?select_all=1&excluded=G0001").content.decode()
    assert re.search(r'id="snooze-button">Snooze 6 selected</button>', html)


# --- undo ------------------------------------------------------------------------------------------------


def test_the_banner_after_a_snooze_offers_an_undo_that_lifts_exactly_what_it_snoozed(staff, org, user):
    made = guarantors(org, 4)
    earlier = SnoozeFactory.create(guarantor=made[3], until=date(2026, 12, 1))  # not this snooze's

    response = staff.post(url("snooze", org), snooze(selected=["G0000", "G0002"]), follow=True)

    html = response.content.decode()
    banner = re.search(r'<form method="post" action="(/[^"]+)" class="message success undo-banner" role="status">'
                       r'.*?name="token" value="([^"]+)".*?<span>([^<]+)</span>\s*<button[^>]*>Undo', html, re.S)  # fmt: skip
    assert banner is not None
    assert banner.group(1) == "/dashboard/payments/smile-dental/snooze/undo/"
    assert banner.group(3) == f"Snoozed 2 guarantors until Dec 15, 2026 ({REASON})."
    # The banner is shown once, like a message.
    assert "undo-banner" not in staff.get(url("bulk", org)).content.decode()

    undone = staff.post(url("snooze-undo", org), {"token": banner.group(2)}, follow=True)

    assert flashes(undone) == ["Snooze undone: 2 guarantors are back on the list if eligible."]
    assert snoozed_ids() == ["G0003"]
    earlier.refresh_from_db()
    assert earlier.lifted_at is None
    events = AuditEvent.objects.filter(action="snooze.undo")
    assert events.count() == 2 and {e.actor for e in events} == {user}
    # Only once.
    again = staff.post(url("snooze-undo", org), {"token": banner.group(2)}, follow=True)
    assert flashes(again) == ["Nothing to undo: only the latest snooze can be undone, once."]
    assert AuditEvent.objects.filter(action="snooze.undo").count() == 2


def test_an_undo_with_a_wrong_token_or_for_another_practice_changes_nothing(staff, org, user):
    guarantors(org, 1)
    staff.post(url("snooze", org), snooze(selected=["G0000"]))
    other = OrganizationFactory.create(slug="bright-smiles")
    MembershipFactory.create(organization=other, user=user, role=Role.FRONT_DESK)
    user._organization_roles = None
    token = staff.session["payments.snooze_undo"]["token"]

    staff.post(url("snooze-undo", org), {"token": "forged"})
    staff.post(url("snooze-undo", other), {"token": token})

    assert snoozed_ids() == ["G0000"]
    assert not AuditEvent.objects.filter(action="snooze.undo").exists()


def test_undo_from_the_guarantor_page_returns_to_it(staff, org):
    guarantors(org, 1)
    page = reverse("payments_dashboard:guarantor", args=[org.slug, "G0000"])
    response = staff.post(url("snooze", org), snooze(selected=["G0000"], back_to="guarantor"), follow=True)
    html = response.content.decode()
    assert '<input type="hidden" name="back_to" value="guarantor">' in html and "undo-banner" in html
    token = staff.session["payments.snooze_undo"]["token"]

    undone = staff.post(url("snooze-undo", org), {"token": token, "back_to": "guarantor"})

    assert undone["Location"] == page
    assert snoozed_ids() == []


# --- the Snoozed tab's bulk lift -------------------------------------------------------------------------


def test_the_snoozed_tab_lifts_the_ticked_snoozes_at_once(staff, org, user):
    """Issue 12: there was no bulk lift."""
    for patient in guarantors(org, 4):
        SnoozeFactory.create(guarantor=patient, until=date(2026, 12, 1))

    html = staff.get(url("bulk", org) + "?tab=snoozed").content.decode()
    assert '<form method="post" action="/dashboard/payments/smile-dental/lift/" id="lift-form">' in html
    assert 'name="selected" value="G0001" aria-label="Select Pat Number0001"' in html
    assert (
        '<button type="submit" class="secondary" id="lift-selected">Lift snooze for selected</button>' in html
    )

    response = staff.post(url("lift", org), {"selected": ["G0001", "G0002", "G0003"]}, follow=True)

    assert flashes(response) == ["Snooze lifted for 3 guarantors: back on the list if eligible."]
    assert snoozed_ids() == ["G0000"]
    assert AuditEvent.objects.filter(action="snooze.lift", actor=user).count() == 3


def test_a_rows_own_lift_button_lifts_only_that_row_even_with_others_ticked(staff, org):
    for patient in guarantors(org, 3):
        SnoozeFactory.create(guarantor=patient, until=date(2026, 12, 1))
    staff.post(url("lift", org), {"selected": ["G0000", "G0001"], "guarantor_id": "G0002"})
    assert snoozed_ids() == ["G0000", "G0001"]


def test_lifting_nothing_says_so(staff, org):
    response = staff.post(url("lift", org), {}, follow=True)
    assert flashes(response) == ["Nothing selected: tick the snoozes to lift."]
