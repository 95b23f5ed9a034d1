"""Issue 12, the front desk's start of the day: where a login lands (front desk: the Payments home page; admin
roles: the admin, T2), the admin's "View site", the home page's figures (each a link to its list) and the
read-only "Bulk payment request settings" (§4, the seed's step 5)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications.models import (
    Channel,
    InboundReview,
    Kind,
    Message,
    NotificationSettings,
    Reason,
    ReviewState,
    State,
)
from payments.campaigns import bulk_send
from payments.models import PaymentSettings
from practices.models import BillState, Role
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.payments.factories import BillFactory, SnoozeFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 10:00 in Denver
PASSWORD = "pw-2026"
TILE = re.compile(
    r'<a class="tile" href="(?P<href>[^"]*)">\s*<span class="tile-label">(?P<label>[^<]*)</span>\s*'
    r'<span class="tile-value">(?P<value>[^<]*)</span>\s*<span class="tile-detail">(?P<detail>[^<]*)</span>'
)


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(AT, tick=False) as traveller:
        yield traveller


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")


def member(org, role: str = Role.FRONT_DESK, username: str = "frontdesk"):
    return MembershipFactory.create(
        organization=org, role=role, user__username=username, user__password=PASSWORD
    ).user


def guarantor(org, external_id: str, portion: str = "100.00", **fields: Any):
    fields.setdefault("mobile_phone", "+18015550100")
    fields.setdefault("email", f"{external_id.lower()}@example.com")
    fields.setdefault("last_visit_date", date(2026, 10, 1))
    patient = GuarantorFactory.create(organization=org, external_id=external_id, **fields)
    AccountFactory.create(guarantor=patient, bucket_0_30=Decimal(portion), total=Decimal(portion),
                          patient_portion=Decimal(portion), aging_category="0_30")  # fmt: skip
    return patient


def log_in(client, username: str) -> Any:
    """The login page as a person uses it: GET the form, post it back with its hidden ``next``."""
    page = client.get("/admin/login/").content.decode()
    match = re.search(r'<input type="hidden" name="next" value="([^"]*)">', page)
    assert match is not None
    return client.post(
        "/admin/login/", {"username": username, "password": PASSWORD, "next": match.group(1)}, follow=True
    )


# --- where a login lands (T2) ---------------------------------------------------------------------------


def test_the_front_desk_lands_on_the_payments_home_page_after_logging_in(client, org):
    """Issue 12: the front desk landed on Django's "Site administration", which has no way to the dashboard."""
    member(org)

    response = log_in(client, "frontdesk")

    assert response.redirect_chain[-1][0] == "/dashboard/payments/smile-dental/"
    assert response.templates[0].name == "payments/dashboard/home.html"


@pytest.mark.parametrize("role", [Role.BILLING_MANAGER, Role.ORG_ADMIN])
def test_billing_managers_and_org_admins_still_land_on_the_admin(client, org, role):
    member(org, role, username="manager")

    response = log_in(client, "manager")

    assert response.redirect_chain[-1][0] == "/admin/"


def test_ops_land_on_the_admin(client, django_user_model):
    django_user_model.objects.create_superuser("ops", password=PASSWORD)
    assert log_in(client, "ops").redirect_chain[-1][0] == "/admin/"


def test_a_login_with_next_still_goes_there(client, org):
    member(org)
    response = client.post(
        "/admin/login/?next=/dashboard/undeliverable/",
        {"username": "frontdesk", "password": PASSWORD, "next": "/dashboard/undeliverable/"},
    )
    assert response["Location"] == "/dashboard/undeliverable/"


def test_the_root_and_the_login_page_send_a_logged_in_user_by_role(client, org):
    user = member(org)
    assert client.get("/")["Location"].startswith("/admin/login/?next=/")
    client.force_login(user)
    assert client.get("/")["Location"] == "/dashboard/payments/"
    assert client.get("/admin/login/")["Location"] == "/"


def test_the_admins_view_site_link_goes_to_the_payments_home_page_not_back_to_the_admin(client, org):
    """Issue 12: "View site" led to ``/``, which sent everyone back to the admin."""
    client.force_login(member(org, Role.BILLING_MANAGER, username="manager"))
    html = client.get("/admin/").content.decode()
    assert '<a href="/dashboard/payments/">View site</a>' in html


# --- the Payments home page ------------------------------------------------------------------------------


def tiles(response) -> dict[str, dict[str, str]]:
    return {m["label"]: m.groupdict() for m in TILE.finditer(response.content.decode())}


def test_the_home_page_shows_todays_figures_each_linking_to_its_list(client, org, clock):
    user = member(org)
    for n, portion in enumerate(["120.00", "80.50", "35.25"]):
        guarantor(org, f"G{n}", portion)
    guarantor(org, "SNT", "50.00")
    SnoozeFactory.create(guarantor=guarantor(org, "S1"), until=date(2026, 12, 1))
    SnoozeFactory.create(guarantor=guarantor(org, "S2"), until=date(2026, 12, 1))
    # Held: requests sent at 9:00 in Denver to a patient in Honolulu (6:00 there) wait for 8:00 there, 11:00
    # in Denver; the other patient's were handed to the provider at once.
    clock.move_to(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))  # 9:00 in Denver, 6:00 in Honolulu
    late = guarantor(org, "HNL", timezone="Pacific/Honolulu")
    bulk_send(organization=org, at=datetime(2026, 11, 24, 16, 0, tzinfo=UTC), only=["HNL", "SNT"])
    Message.objects.filter(patient__external_id="SNT").update(
        state=State.SENT, sent_at=datetime(2026, 11, 24, 16, 1, tzinfo=UTC)
    )
    clock.move_to(AT)
    # Undeliverable: one request without a destination; after final: two completed bills still owing.
    Message.objects.create(organization=org, patient=guarantor(org, "U1"), kind=Kind.REQUEST,
                           channel=Channel.SMS, state=State.UNDELIVERED, reason=Reason.NO_DESTINATION)  # fmt: skip
    for pid, amount in (("F1", "40.00"), ("F2", "60.00")):
        BillFactory.create(
            guarantor=guarantor(org, pid), state=BillState.COMPLETED, amount_due=Decimal(amount)
        )
    client.force_login(user)

    response = client.get(reverse("payments_dashboard:home", args=[org.slug]))

    assert response.status_code == 200
    shown = tiles(response)
    assert list(shown) == [
        "Eligible today", "Held for later", "Sent today", "Undeliverable", "Snoozed", "After final",
        "Replies to review",
    ]  # fmt: skip
    # Eligible: G0-G2 and U1 (S1/S2 are snoozed, HNL/SNT were requested, F1/F2 had a campaign, R7).
    assert shown["Eligible today"]["value"] == "4"
    assert shown["Eligible today"]["detail"] == "$335.75 in patient portions."
    assert shown["Eligible today"]["href"] == "/dashboard/payments/smile-dental/bulk/"
    assert shown["Held for later"]["value"] == "2"  # HNL's text and email
    assert shown["Held for later"]["detail"] == "The first go out Nov 24 at 11:00 AM MST."
    assert shown["Held for later"]["href"] == "/dashboard/payments/smile-dental/bulk/?tab=pending"
    assert shown["Sent today"]["value"] == "2"  # SNT's text and email
    assert shown["Sent today"]["href"] == "/dashboard/payments/smile-dental/bulk/#todays-requests-heading"
    assert shown["Undeliverable"]["value"] == "1"
    assert shown["Undeliverable"]["href"] == f"/dashboard/undeliverable/?organization={org.pk}"
    assert shown["Snoozed"]["value"] == "2"
    assert shown["Snoozed"]["href"] == "/dashboard/payments/smile-dental/bulk/?tab=snoozed"
    assert shown["After final"]["value"] == "2"
    assert shown["After final"]["detail"] == "$100.00 still owed after the final notice."
    assert shown["After final"]["href"] == "/dashboard/after-final/smile-dental/"
    assert late.messages.count() == 2
    for tile in shown.values():  # every link opens
        assert client.get(tile["href"].split("#")[0]).status_code == 200


def test_the_home_page_of_a_quiet_day_says_nothing_is_waiting(client, org):
    client.force_login(member(org))
    shown = tiles(client.get(reverse("payments_dashboard:home", args=[org.slug])))
    assert {label: tile["value"] for label, tile in shown.items()} == {
        "Eligible today": "0", "Held for later": "0", "Sent today": "0", "Undeliverable": "0",
        "Snoozed": "0", "After final": "0", "Replies to review": "0",
    }  # fmt: skip
    assert shown["Eligible today"]["detail"] == "$0.00 in patient portions."
    assert shown["Held for later"]["detail"] == "Nothing waiting for the morning."


def test_the_home_page_costs_the_same_few_queries_for_3_or_30_guarantors(
    client, org, django_assert_max_num_queries
):
    client.force_login(member(org))
    counts: list[int] = []
    for stop in (3, 30):
        for n in range(len(counts) * 3, stop):
            guarantor(org, f"G{n:03d}")
        with django_assert_max_num_queries(12), CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("payments_dashboard:home", args=[org.slug])).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_another_organizations_home_page_answers_404(client, org):
    other = OrganizationFactory.create(slug="bright-smiles")
    client.force_login(member(org))
    assert client.get(reverse("payments_dashboard:home", args=[other.slug])).status_code == 404


def test_the_payments_and_after_final_indexes_share_one_practice_choice(client, org):
    """dunning's and payments' index views were near duplicates; one helper serves both."""
    user = member(org)
    other = OrganizationFactory.create(slug="bright-smiles", name="Bright Smiles")
    MembershipFactory.create(organization=other, user=user, role=Role.FRONT_DESK)
    client.force_login(user)

    payments = client.get(reverse("payments_dashboard:index"))
    after_final = client.get(reverse("dunning_dashboard:index"))

    assert payments.templates[0].name == after_final.templates[0].name == "dashboard/choose_organization.html"
    assert 'href="/dashboard/payments/smile-dental/"' in payments.content.decode()
    assert 'href="/dashboard/after-final/bright-smiles/"' in after_final.content.decode()
    assert "<h1>After final</h1>" in after_final.content.decode()


# --- Bulk payment request settings (read-only) -----------------------------------------------------------


def test_the_bulk_list_links_to_its_settings(client, org):
    """Issue 12: the seed's step 5 button, "Bulk Payment Request Settings", did not exist."""
    client.force_login(member(org))
    html = client.get(reverse("payments_dashboard:bulk", args=[org.slug])).content.decode()
    assert (
        '<a class="button secondary" href="/dashboard/payments/smile-dental/bulk/settings/">'
        "Bulk payment request settings</a>"
    ) in html


def test_the_settings_panel_shows_what_decides_who_is_on_the_list(client, org):
    PaymentSettings.objects.create(
        organization=org, min_payment_amount=Decimal("25.00"), eligible_aging=["31_60", "61_90", "over_90"],
        max_open_claims=0, request_channels=["sms"], snooze_reasons=["Waiting on the dentist"],
        link_lifetime_days=14,
    )  # fmt: skip
    NotificationSettings.objects.create(organization=org, quiet_start=time(20), quiet_end=time(9, 30))
    client.force_login(member(org))

    response = client.get(reverse("payments_dashboard:bulk-settings", args=[org.slug]))

    assert response.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))
    assert "Minimum amount $25.00 (the patient portion must be more than this, R3)" in text
    assert "0-30 days: left off" in text and "31-60 days: on the list" in text
    assert "Over 90 days: on the list" in text
    assert "Open insurance claims At most 0 (R10)" in text
    assert "Channels SMS " in text
    assert "Quiet hours 8:00 PM to 9:30 AM in each patient's own time zone" in text
    assert "Practice time zone America/Denver" in text
    assert "Payment link Works for 14 days" in text
    assert "Waiting on the dentist" in text
    assert "<form" not in response.content.decode().split("<main", 1)[1]  # read-only
    assert "a billing manager changes them in the admin" in text


def test_the_settings_panel_shows_the_defaults_before_anything_is_saved(client, org):
    client.force_login(member(org))
    text = client.get(reverse("payments_dashboard:bulk-settings", args=[org.slug])).content.decode()
    assert "$0.00" in text and "No limit" in text and "9:00 PM to 8:00 AM" in text
    assert "SMS, Email" in text and "Works for 30 days" in text


def test_a_billing_manager_is_pointed_to_the_admin_to_change_them(client, org):
    client.force_login(member(org, Role.BILLING_MANAGER, username="manager"))
    html = client.get(reverse("payments_dashboard:bulk-settings", args=[org.slug])).content.decode()
    assert f'href="{reverse("admin:payments_paymentsettings_changelist")}"' in html


def test_the_replies_tile_counts_this_practices_open_replies_and_opens_the_queue(client, org):
    """K4: the replies waiting for a person (open), not the decided ones, not another practice's."""
    other = OrganizationFactory.create(slug="bright-smiles")
    for n, (owner, state) in enumerate([(org, ReviewState.OPEN), (org, ReviewState.OPEN),
                                        (org, ReviewState.DISMISSED), (org, ReviewState.OPTED_OUT),
                                        (other, ReviewState.OPEN)]):  # fmt: skip
        InboundReview.objects.create(organization=owner, number=f"+1801555020{n}", text=f"who is this? ({n})",
                                     received_at=AT, state=state)  # fmt: skip
    client.force_login(member(org))

    shown = tiles(client.get(reverse("payments_dashboard:home", args=[org.slug])))

    tile = shown["Replies to review"]
    assert tile["value"] == "2"
    assert tile["href"] == "/dashboard/replies/smile-dental/"
    queue = client.get(tile["href"])
    assert queue.status_code == 200
    shown_texts = {n for n in range(5) if f"who is this? ({n})" in queue.content.decode()}
    assert shown_texts == {0, 1}
