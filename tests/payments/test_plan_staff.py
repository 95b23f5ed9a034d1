"""H5, what staff see of the plans patients chose: the guarantor page's "Payment plan" section (kind, state, total,
each installment's date, amount, state, attempts and last failure; ended plans with their reason; times in the
practice's zone), R2's explanation naming a plan taken here, and tenancy (T1)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from payments.models import Installment, InstallmentState, PlanKind, PlanState
from practices.models import AuditEvent, Role
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.payments.factories import BillFactory
from tests.payments.plan_rows import plan_make

pytestmark = pytest.mark.django_db

AT = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(AT, tick=False) as traveller:
        yield traveller


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")


@pytest.fixture
def staff(client, org):
    user = MembershipFactory.create(organization=org, role=Role.FRONT_DESK).user
    client.force_login(user)
    return client


def page_url(org, guarantor_id: str) -> str:
    return reverse("payments_dashboard:guarantor", args=[org.slug, guarantor_id])


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def plans_section(html: str) -> str:
    start = html.index('aria-labelledby="plans-heading"')
    return text_of(html[start : html.index("</section>", start)])


def guarantor_on_plan(org, external_id: str = "G1"):
    patient = GuarantorFactory.create(organization=org, external_id=external_id, on_payment_plan=True)
    AccountFactory.create(guarantor=patient)
    return patient, BillFactory.create(guarantor=patient, amount_due="300.00")


def test_the_section_lists_the_active_plan_with_each_installment(staff, org):
    _patient, bill = guarantor_on_plan(org)
    plan_make(bill, installments=[
        (date(2026, 11, 20), "100.00", InstallmentState.PAID),
        (date(2026, 12, 20), "100.00", InstallmentState.RETRYING),
        (date(2027, 1, 20), "100.00", InstallmentState.SCHEDULED),
    ])  # fmt: skip
    Installment.objects.filter(sequence=2).update(attempts=2, last_failure="Your card was declined.")

    section = plans_section(staff.get(page_url(org, "G1")).content.decode())

    assert "Monthly installments: $300.00 Active" in section
    assert bill.bill_id in section
    # 17:00 UTC is 10:00 in Denver: the practice's zone, not UTC.
    assert "Chosen Nov 20, 2026 10:00 AM MST" in section
    assert "1 Nov 20, 2026 $100.00 Paid 1 —" in section
    assert "2 Dec 20, 2026 $100.00 Declined: to be tried again 2 Your card was declined." in section
    assert "3 Jan 20, 2027 $100.00 Scheduled 0 —" in section


def test_an_ended_plan_shows_when_and_why_and_the_open_one_comes_first(staff, org):
    _patient, bill = guarantor_on_plan(org)
    plan_make(
        bill, kind=PlanKind.PAY_LATER, state=PlanState.CANCELLED,
        installments=[(date(2026, 12, 1), "300.00", InstallmentState.CANCELLED)],
        created_at=datetime(2026, 11, 1, 17, 0, tzinfo=UTC), ended_at=datetime(2026, 11, 2, 18, 30, tzinfo=UTC),
        end_reason="Cancelled by Pat Manager: patient asked by phone",
    )  # fmt: skip
    plan_make(bill, installments=[(date(2026, 12, 20), "150.00", InstallmentState.SCHEDULED)] * 2)

    section = plans_section(staff.get(page_url(org, "G1")).content.decode())

    assert section.index("Monthly installments: $300.00 Active") < section.index(
        "Pay later: $300.00 Cancelled"
    )
    assert "Ended Nov 2, 2026 11:30 AM MST: Cancelled by Pat Manager: patient asked by phone" in section


def test_r2_names_a_plan_taken_here(staff, org):
    _patient, bill = guarantor_on_plan(org)
    plan_make(bill, installments=[(date(2026, 12, 20), "300.00", InstallmentState.SCHEDULED)])

    page = text_of(staff.get(page_url(org, "G1")).content.decode())

    assert (
        "on a payment plan: yes; required: no; on a payment plan taken here on the payment page "
        "(monthly installments, since Nov 20, 2026)"
    ) in page


def test_a_plan_from_the_pms_only_keeps_r2_as_it_was(staff, org):
    guarantor_on_plan(org)

    html = staff.get(page_url(org, "G1")).content.decode()

    assert "on a payment plan: yes; required: no" in text_of(html)
    assert "taken here" not in html
    assert "No payment plan taken on the payment page." in plans_section(html)


def test_another_organizations_plans_are_never_shown(staff, org):
    other = OrganizationFactory.create(slug="other")
    _stranger, other_bill = guarantor_on_plan(other, "G1")
    plan_make(other_bill, installments=[(date(2026, 12, 20), "300.00", InstallmentState.SCHEDULED)])
    guarantor_on_plan(org, "G1")

    html = staff.get(page_url(org, "G1")).content.decode()

    assert "No payment plan taken on the payment page." in plans_section(html)
    assert staff.get(page_url(other, "G1")).status_code == 404


def admin_client(org, role: str):
    client = Client()
    client.force_login(MembershipFactory.create(organization=org, role=role, user__is_staff=True).user)
    return client


def test_the_admin_lists_plans_read_only_with_their_installments(org):
    _patient, bill = guarantor_on_plan(org)
    plan = plan_make(bill, installments=[(date(2026, 12, 20), "300.00", InstallmentState.SCHEDULED)])
    desk = admin_client(org, Role.FRONT_DESK)

    listing = desk.get(reverse("admin:payments_paymentplan_changelist"))
    change = desk.get(reverse("admin:payments_paymentplan_change", args=[plan.pk]))

    assert listing.status_code == 200 and "G1" in listing.content.decode()
    page = text_of(change.content.decode())
    assert "Dec. 20, 2026" in page and "300.00" in page
    assert 'name="total"' not in change.content.decode()  # nothing to edit
    assert (
        desk.post(reverse("admin:payments_paymentplan_change", args=[plan.pk]), {"total": "1"}).status_code
        == 403
    )


def test_a_billing_manager_cancels_a_plan_with_a_reason_audited_and_reminders_resume(org):
    patient, bill = guarantor_on_plan(org)
    plan = plan_make(bill, installments=[
        (date(2026, 11, 20), "100.00", InstallmentState.PAID),
        (date(2026, 12, 20), "200.00", InstallmentState.SCHEDULED),
    ])  # fmt: skip
    manager = admin_client(org, Role.BILLING_MANAGER)
    url = reverse("admin:payments_paymentplan_cancel", args=[plan.pk])
    assert (
        "Cancel plan…"
        in manager.get(reverse("admin:payments_paymentplan_change", args=[plan.pk])).content.decode()
    )

    unconfirmed = manager.post(url, {"reason": "Patient asked by phone"})
    assert unconfirmed.status_code == 200
    plan.refresh_from_db()
    assert plan.state == PlanState.ACTIVE
    done = manager.post(url, {"reason": "Patient asked by phone", "confirm": "on"})

    assert done.status_code == 302
    plan.refresh_from_db()
    patient.refresh_from_db()
    assert plan.state == PlanState.CANCELLED and "Patient asked by phone" in plan.end_reason
    assert list(plan.installments.values_list("state", flat=True)) == [
        InstallmentState.PAID,
        InstallmentState.CANCELLED,
    ]
    assert patient.on_payment_plan is False
    audit = AuditEvent.objects.get(action="payment_plan.cancelled")
    assert audit.actor is not None and audit.actor.memberships.get().role == Role.BILLING_MANAGER
    # And the guarantor page shows why it ended.
    assert "Patient asked by phone" in plans_section(
        admin_client(org, Role.FRONT_DESK).get(page_url(org, "G1")).content.decode()
    )


def test_the_front_desk_cannot_cancel_and_another_organization_gets_404(org):
    _patient, bill = guarantor_on_plan(org)
    plan = plan_make(bill, installments=[(date(2026, 12, 20), "300.00", InstallmentState.SCHEDULED)])
    url = reverse("admin:payments_paymentplan_cancel", args=[plan.pk])

    admin_client(org, Role.FRONT_DESK).post(url, {"reason": "no", "confirm": "on"})
    other = admin_client(OrganizationFactory.create(slug="other"), Role.BILLING_MANAGER)

    assert other.post(url, {"reason": "no", "confirm": "on"}).status_code == 404
    assert other.get(reverse("admin:payments_paymentplan_change", args=[plan.pk])).status_code == 404
    plan.refresh_from_db()
    assert plan.state == PlanState.ACTIVE
