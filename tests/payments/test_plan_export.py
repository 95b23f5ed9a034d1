"""export_plans (H5): payment plans and pay-later dates as CSV for the PMS, one row per installment; --since keeps
the plans that changed since (chosen, started, ended, an installment paid) in the organization's zone; plans still
waiting for the card are left out; T1; bad input exits 2. A paid installment's money is in export_payments."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from payments.models import Installment, InstallmentState, Payment, PaymentStatus, PlanKind, PlanState
from payments.plan_export import PLAN_COLUMNS
from tests.factories import GuarantorFactory, OrganizationFactory
from tests.payments.factories import BillFactory
from tests.payments.plan_rows import plan_make

pytestmark = pytest.mark.django_db


def export(*args: str) -> list[dict[str, str]]:
    out = io.StringIO()
    call_command("export_plans", *args, stdout=out)
    text = out.getvalue()
    assert text.splitlines()[0] == ",".join(PLAN_COLUMNS)
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def denver():
    return OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")


def bill_of(org, external_id: str):
    return BillFactory.create(guarantor=GuarantorFactory.create(organization=org, external_id=external_id))


def test_each_installment_is_a_row_with_its_plans_terms_and_the_payment_it_became(denver):
    bill = bill_of(denver, "G1")
    plan = plan_make(bill, installments=[
        (date(2026, 11, 20), "33.34", InstallmentState.PAID),
        (date(2026, 12, 20), "33.33", InstallmentState.SCHEDULED),
        (date(2027, 1, 20), "33.33", InstallmentState.SCHEDULED),
    ])  # fmt: skip
    payment = Payment.objects.create(
        organization=denver, bill=bill, amount=Decimal("33.34"), status=PaymentStatus.SUCCEEDED,
        processor="sandbox", processor_reference="pi_sbx_plan_1",
    )  # fmt: skip
    Installment.objects.filter(plan=plan, sequence=1).update(
        payment=payment, paid_at=datetime(2026, 11, 20, 17, 5, tzinfo=UTC)
    )

    rows = export("--org", "smile-dental")

    assert [row["installment"] for row in rows] == ["1", "2", "3"]
    assert rows[0] == {
        "plan_id": str(plan.pk), "guarantor_id": "G1", "bill_id": bill.bill_id, "kind": "monthly",
        "plan_state": "active", "total": "100.00", "installment_count": "3", "processor": "sandbox",
        "created_at": "2026-11-20T17:00:00+00:00", "activated_at": "2026-11-20T17:00:00+00:00", "ended_at": "",
        "end_reason": "", "installment": "1", "due_date": "2026-11-20", "amount": "33.34",
        "installment_state": "paid", "attempts": "1", "paid_at": "2026-11-20T17:05:00+00:00",
        "payment_id": str(payment.pk),
    }  # fmt: skip
    assert (rows[2]["due_date"], rows[2]["amount"], rows[2]["payment_id"]) == ("2027-01-20", "33.33", "")
    # The same money, in the payments export: the PMS is told of it once, as a payment.
    out = io.StringIO()
    call_command("export_payments", "--org", "smile-dental", "--since", "2026-01-01", stdout=out)
    assert [row["payment_id"] for row in csv.DictReader(io.StringIO(out.getvalue()))] == [str(payment.pk)]


def test_since_keeps_plans_that_changed_that_day_or_later_in_the_organizations_zone(denver):
    old = datetime(2026, 10, 1, 17, 0, tzinfo=UTC)
    untouched = plan_make(bill_of(denver, "G1"), created_at=old,
                          installments=[(date(2026, 12, 20), "50.00", InstallmentState.SCHEDULED)])  # fmt: skip
    # Ended at 00:30 on Nov 24 in Denver (07:30 UTC): in. Chosen at 23:59 on Nov 23 in Denver: out.
    ended = plan_make(
        bill_of(denver, "G2"), kind=PlanKind.PAY_LATER, state=PlanState.CANCELLED, created_at=old,
        ended_at=datetime(2026, 11, 24, 7, 30, tzinfo=UTC), end_reason="Cancelled by staff",
        installments=[(date(2026, 12, 1), "80.00", InstallmentState.CANCELLED)],
    )  # fmt: skip
    plan_make(bill_of(denver, "G3"), created_at=datetime(2026, 11, 24, 6, 59, tzinfo=UTC),
              installments=[(date(2026, 12, 24), "50.00", InstallmentState.SCHEDULED)])  # fmt: skip
    paid = plan_make(bill_of(denver, "G4"), created_at=old,
                     installments=[(date(2026, 11, 24), "50.00", InstallmentState.PAID)])  # fmt: skip
    Installment.objects.filter(plan=paid).update(paid_at=datetime(2026, 11, 25, 16, 0, tzinfo=UTC))

    rows = export("--org", "smile-dental", "--since", "2026-11-24")

    assert [row["plan_id"] for row in rows] == [str(ended.pk), str(paid.pk)]
    assert (rows[0]["kind"], rows[0]["plan_state"], rows[0]["end_reason"]) == (
        "pay_later", "cancelled", "Cancelled by staff",
    )  # fmt: skip
    assert str(untouched.pk) in {row["plan_id"] for row in export("--org", "smile-dental")}


def test_a_plan_waiting_for_its_card_and_other_organizations_plans_are_left_out(denver):
    plan_make(bill_of(denver, "G1"), state=PlanState.PENDING_CARD,
              installments=[(date(2026, 12, 20), "50.00", InstallmentState.PENDING)])  # fmt: skip
    other = OrganizationFactory.create(slug="other-practice")
    plan_make(bill_of(other, "G1"), installments=[(date(2026, 12, 20), "50.00", InstallmentState.SCHEDULED)])

    assert export("--org", "smile-dental") == []


@pytest.mark.parametrize(
    "args", [("--org", "nope"), ("--org", "smile-dental", "--since", "11/24/2026")]
)  # fmt: skip
def test_an_unknown_organization_or_a_bad_date_exits_2(denver, args):
    with pytest.raises(CommandError) as excinfo:
        call_command("export_plans", *args, stdout=io.StringIO())

    assert excinfo.value.returncode == 2
