"""export_payments (§10, P3, H3): CSV for posting into the PMS, refunds and disputes as negative payments; T1: one
organization's payments only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from payments.checkout import payments_export_rows
from payments.models import Payment, PaymentKind, PaymentStatus
from practices.models import Bill, Organization, Patient
from tests.factories import GuarantorFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

HEADER = "payment_id,created_at,guarantor_id,bill_id,kind,amount,refund_of,status,processor,processor_reference,card_last4"
FEED_TIME = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def make_payment(
    organization: Organization, at: datetime, *, amount: str = "25.00", status: str = PaymentStatus.SUCCEEDED
) -> Payment:
    guarantor = GuarantorFactory.create(organization=organization)
    bill, _ = Bill.objects.get_or_create(
        organization=organization, bill_id=f"R-{guarantor.external_id}",
        defaults={"guarantor": guarantor, "source": "request", "state": "active", "amount_due": Decimal("500.00"),
                  "created_at": FEED_TIME, "effective_created_date": FEED_TIME.date(), "last_seen_at": FEED_TIME},
    )  # fmt: skip
    payment = Payment.objects.create(
        organization=organization, bill=bill, amount=Decimal(amount), status=status, processor="sandbox",
        processor_reference=f"pi_sbx_{at:%H%M}_{status}" + ("" if organization.slug == "smile-dental" else f"_{organization.slug}"),
        card_last4="4242",
    )  # fmt: skip
    Payment.objects.filter(pk=payment.pk).update(created_at=at)
    payment.refresh_from_db()
    return payment


def export(*args: str) -> list[dict[str, str]]:
    out = io.StringIO()
    call_command("export_payments", *args, stdout=out)
    text = out.getvalue()
    assert text.splitlines()[0] == HEADER
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def denver() -> Organization:
    return OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")


def test_it_exports_succeeded_payments_since_the_date_in_the_organizations_zone(denver: Organization) -> None:
    make_payment(denver, datetime(2026, 11, 24, 6, 59, tzinfo=UTC))  # 23:59 on the 23rd in Denver
    late = make_payment(denver, datetime(2026, 11, 25, 15, 0, tzinfo=UTC), amount="1234.50")
    early = make_payment(denver, datetime(2026, 11, 24, 7, 0, tzinfo=UTC))  # midnight on the 24th
    make_payment(denver, datetime(2026, 11, 24, 9, 0, tzinfo=UTC), status=PaymentStatus.DECLINED)

    rows = export("--org", "smile-dental", "--since", "2026-11-24")

    assert [row["payment_id"] for row in rows] == [str(early.pk), str(late.pk)]
    assert rows[1] == {
        "payment_id": str(late.pk),
        "created_at": "2026-11-25T15:00:00+00:00",
        "guarantor_id": late.bill.guarantor.external_id,
        "bill_id": late.bill.bill_id,
        "kind": "payment",
        "amount": "1234.50",
        "refund_of": "",
        "status": "succeeded",
        "processor": "sandbox",
        "processor_reference": "pi_sbx_1500_succeeded",
        "card_last4": "4242",
    }


def test_other_organizations_payments_are_absent(denver: Organization) -> None:
    other = OrganizationFactory.create(slug="other-practice", timezone="America/Denver")
    ours = make_payment(denver, datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    make_payment(other, datetime(2026, 11, 24, 12, 0, tzinfo=UTC))

    rows = export("--org", "smile-dental", "--since", "2026-11-01")

    assert [row["payment_id"] for row in rows] == [str(ours.pk)]


def test_with_nothing_to_export_it_prints_the_header_only(denver: Organization) -> None:
    assert export("--org", "smile-dental", "--since", "2026-11-24") == []


def test_the_rows_service_matches_the_command(denver: Organization) -> None:
    payment = make_payment(denver, datetime(2026, 11, 24, 12, 0, tzinfo=UTC))

    rows = payments_export_rows(organization=denver, since=datetime(2026, 11, 24).date())

    assert [row["payment_id"] for row in rows] == [str(payment.pk)]
    assert ",".join(rows[0]) == HEADER


@pytest.mark.parametrize(
    "args",
    [
        ("--org", "nope", "--since", "2026-11-24"),
        ("--org", "smile-dental", "--since", "11/24/2026"),
        ("--org", "smile-dental", "--since", "2026-02-30"),
    ],
)
def test_an_unknown_organization_or_a_bad_date_exits_2(denver: Organization, args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError) as excinfo:
        call_command("export_payments", *args, stdout=io.StringIO())

    assert excinfo.value.returncode == 2


def test_the_help_says_only_succeeded_payments_are_exported() -> None:
    from payments.management.commands.export_payments import Command

    assert "succeeded payments only" in Command.help


def test_pms_ids_that_would_run_as_formulas_are_neutralised(denver: Organization) -> None:
    """Issue 11: ids were written raw; a spreadsheet would run =HYPERLINK(...) as a formula."""
    payment = make_payment(denver, datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    Patient.objects.filter(pk=payment.bill.guarantor_id).update(external_id='=HYPERLINK("http://x","Pay")')
    Bill.objects.filter(pk=payment.bill_id).update(bill_id="+1-2")

    [row] = export("--org", "smile-dental", "--since", "2026-11-24")

    assert (row["guarantor_id"], row["bill_id"], row["amount"]) == (
        '\'=HYPERLINK("http://x","Pay")',
        "'+1-2",
        "25.00",
    )


def test_refunds_and_disputes_are_exported_as_negative_payments_naming_the_payment(
    denver: Organization,
) -> None:
    """H3: the PMS posts money going back as a negative payment."""
    payment = make_payment(denver, datetime(2026, 11, 24, 15, 0, tzinfo=UTC), amount="80.00")
    for kind, amount, reference, hour in (
        (PaymentKind.REFUND, "-20.00", "re_1", 16), (PaymentKind.DISPUTE, "-60.00", "dp_1", 17),
    ):  # fmt: skip
        row = Payment.objects.create(
            organization=denver, bill=payment.bill, kind=kind, refund_of=payment, amount=Decimal(amount),
            status=PaymentStatus.SUCCEEDED, processor="sandbox", processor_reference=reference,
        )  # fmt: skip
        Payment.objects.filter(pk=row.pk).update(created_at=datetime(2026, 11, 24, hour, 0, tzinfo=UTC))

    rows = export("--org", "smile-dental", "--since", "2026-11-24")

    assert [(r["kind"], r["amount"], r["refund_of"], r["processor_reference"]) for r in rows] == [
        ("payment", "80.00", "", "pi_sbx_1500_succeeded"),
        ("refund", "-20.00", str(payment.pk), "re_1"),
        ("dispute", "-60.00", str(payment.pk), "dp_1"),
    ]
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal("0.00")
