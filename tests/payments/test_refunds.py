"""Refunds (H3, §10 ``refund``, T1, T2, T5): through the processor, whole or part, from the command line and the
admin, recorded as negative payments that reopen what they return."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from payments.models import Payment, PaymentKind, ReviewReason, SandboxSession
from practices.models import AuditEvent, Bill, BillSource, BillState, Organization, Role
from tests.factories import GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.payments.paying import sandbox_payment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _sandbox(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PAYMENT_PROCESSOR = "sandbox"
    monkeypatch.setattr("payments.processors.sandbox.events_deliver_later", lambda event_ids: None)


@pytest.fixture
def organization() -> Organization:
    return OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")


def campaign(organization: Organization, amount: str = "100.00") -> Bill:
    guarantor = GuarantorFactory.create(organization=organization, date_of_birth=date(1980, 4, 12))
    now = datetime.now(UTC)
    return Bill.objects.create(
        organization=organization, guarantor=guarantor, bill_id=f"R-{guarantor.external_id}",
        source=BillSource.REQUEST, amount_due=Decimal(amount), created_at=now, effective_created_date=now.date(),
        last_seen_at=now,
    )  # fmt: skip


def refund(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("refund", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_partial_refund_goes_through_the_processor_and_reopens_what_it_returns(
    organization: Organization,
) -> None:
    bill = campaign(organization, "100.00")
    payment = sandbox_payment(bill, "100.00")
    bill.refresh_from_db()
    assert bill.state == BillState.PAID

    out, _err = refund("--org", "smile-dental", "--payment", str(payment.pk), "--amount", "30.00", "--json")

    document = json.loads(out)
    row = Payment.objects.get(kind=PaymentKind.REFUND)
    assert document == {
        "refund_id": row.pk, "payment_id": payment.pk, "amount": "-30.00", "status": "succeeded", "processor": "sandbox",
        "processor_reference": row.processor_reference, "left_to_refund": "70.00", "bill_id": bill.bill_id,
        "amount_due": "30.00", "bill_state": "active",
    }  # fmt: skip
    assert row.processor_reference.startswith("re_sbx_")
    assert (
        SandboxSession.objects.get(payment_intent=payment.processor_reference).amount_refunded_cents == 3000
    )
    audit = AuditEvent.objects.get(action="payment.refund")
    assert (audit.actor_label, audit.changes["amount"]) == ("refund command", "-30.00")


def test_without_an_amount_the_rest_is_refunded_and_then_nothing_is_left(organization: Organization) -> None:
    payment = sandbox_payment(campaign(organization), "80.00")
    refund("--org", "smile-dental", "--payment", str(payment.pk), "--amount", "20.00")

    _out, err = refund("--org", "smile-dental", "--payment", str(payment.pk))

    assert "refunded 60.00 of payment" in err
    assert "0.00 left to refund" in err
    assert sorted(Payment.objects.filter(kind=PaymentKind.REFUND).values_list("amount", flat=True)) == [
        Decimal("-60.00"), Decimal("-20.00"),
    ]  # fmt: skip
    with pytest.raises(CommandError) as excinfo:
        refund("--org", "smile-dental", "--payment", str(payment.pk), "--amount", "0.01")
    assert excinfo.value.returncode == 2
    assert "refunded in full" in str(excinfo.value)


@pytest.mark.parametrize(
    ("payment_id", "amount", "message"),
    [
        ("999999", None, "unknown payment '999999' in smile-dental"),
        ("abc", None, "unknown payment 'abc' in smile-dental"),
        (None, "50.01", "50.01 is more than what is left to refund"),
        (None, "0", "must be greater than zero"),
        (None, "1.005", "dollars and cents"),
        (None, "ten", "dollars and cents"),
    ],
)
def test_an_unknown_payment_or_a_bad_amount_exits_2_with_one_line_and_refunds_nothing(
    organization: Organization, payment_id: str | None, amount: str | None, message: str
) -> None:
    payment = sandbox_payment(campaign(organization), "50.00")
    args = ["--org", "smile-dental", "--payment", payment_id or str(payment.pk)]
    if amount is not None:
        args += ["--amount", amount]

    with pytest.raises(CommandError) as excinfo:
        refund(*args)

    assert excinfo.value.returncode == 2
    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)
    assert not Payment.objects.filter(kind=PaymentKind.REFUND).exists()
    assert SandboxSession.objects.get(payment_intent=payment.processor_reference).amount_refunded_cents == 0


def test_another_organizations_payment_is_unknown(organization: Organization) -> None:
    """T1."""
    other = OrganizationFactory.create(slug="other-practice")
    theirs = sandbox_payment(campaign(other), "50.00")

    with pytest.raises(CommandError) as excinfo:
        refund("--org", "smile-dental", "--payment", str(theirs.pk))

    assert excinfo.value.returncode == 2


def test_a_refund_is_not_a_payment_that_can_be_refunded(organization: Organization) -> None:
    payment = sandbox_payment(campaign(organization), "50.00")
    refund("--org", "smile-dental", "--payment", str(payment.pk), "--amount", "10.00")
    row = Payment.objects.get(kind=PaymentKind.REFUND)

    with pytest.raises(CommandError) as excinfo:
        refund("--org", "smile-dental", "--payment", str(row.pk))

    assert excinfo.value.returncode == 2


# The admin (T2: billing managers)


def staff(organization: Organization, role: str) -> Client:
    client = Client()
    client.force_login(
        MembershipFactory.create(organization=organization, role=role, user__is_staff=True).user
    )
    return client


def test_a_billing_manager_refunds_from_the_payment_page_after_confirming(organization: Organization) -> None:
    bill = campaign(organization, "100.00")
    payment = sandbox_payment(bill, "100.00")
    manager = staff(organization, Role.BILLING_MANAGER)
    change = reverse("admin:payments_payment_change", args=[payment.pk])
    assert "Refund…" in manager.get(change).content.decode()
    url = reverse("admin:payments_payment_refund", args=[payment.pk])

    form = manager.get(url)
    assert form.status_code == 200
    assert 'value="100.00"' in form.content.decode()  # the whole payment by default
    unconfirmed = manager.post(url, {"amount": "25.00"})
    assert unconfirmed.status_code == 200 and not Payment.objects.filter(kind=PaymentKind.REFUND).exists()
    done = manager.post(url, {"amount": "25.00", "confirm": "on"})

    assert done.status_code == 302 and done["Location"] == change
    row = Payment.objects.get(kind=PaymentKind.REFUND)
    assert row.amount == Decimal("-25.00")
    audit = AuditEvent.objects.get(action="payment.refund")
    assert audit.actor is not None and audit.actor.memberships.get().role == Role.BILLING_MANAGER
    bill.refresh_from_db()
    assert (bill.amount_due, bill.state) == (Decimal("25.00"), BillState.ACTIVE)
    over = manager.post(url, {"amount": "75.01", "confirm": "on"})
    assert "more than what is left to refund" in over.content.decode()


def test_the_front_desk_cannot_see_payments_or_refund(organization: Organization) -> None:
    payment = sandbox_payment(campaign(organization), "50.00")
    desk = staff(organization, Role.FRONT_DESK)

    assert desk.get(reverse("admin:payments_payment_changelist")).status_code == 403
    desk.post(
        reverse("admin:payments_payment_refund", args=[payment.pk]), {"amount": "5.00", "confirm": "on"}
    )
    assert not Payment.objects.filter(kind=PaymentKind.REFUND).exists()


def test_another_organizations_billing_manager_gets_404(organization: Organization) -> None:
    payment = sandbox_payment(campaign(organization), "50.00")
    other = staff(OrganizationFactory.create(slug="other"), Role.BILLING_MANAGER)

    assert other.get(reverse("admin:payments_payment_refund", args=[payment.pk])).status_code == 404


def test_payments_to_review_are_listed_for_staff_and_marked_reviewed_with_an_audit(
    organization: Organization,
) -> None:
    """H2: a confirmation for a link that had ended is flagged where billing managers look."""
    flagged = sandbox_payment(campaign(organization), "50.00")
    Payment.objects.filter(pk=flagged.pk).update(needs_review=ReviewReason.LINK_ENDED)
    routine = sandbox_payment(campaign(organization), "20.00")
    manager = staff(organization, Role.BILLING_MANAGER)
    changelist = reverse("admin:payments_payment_changelist")

    listed = manager.get(changelist, {"review": "to_review"}).content.decode()
    assert flagged.processor_reference in listed and routine.processor_reference not in listed
    assert "Paid after the link or campaign had ended" in listed
    manager.post(changelist, {"action": "mark_reviewed", "_selected_action": [flagged.pk, routine.pk]})

    flagged.refresh_from_db()
    assert flagged.reviewed_at is not None
    assert AuditEvent.objects.filter(action="payment.reviewed").count() == 1
    assert (
        flagged.processor_reference not in manager.get(changelist, {"review": "to_review"}).content.decode()
    )
