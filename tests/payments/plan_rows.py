"""Payment plans as rows, for the tests of what staff see and what is exported (H5): a plan in a given state with
its installments, without going through the processor (tests/payments/test_plan_signup.py does that)."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from payments.links import payment_link_create
from payments.models import (
    Checkout,
    CheckoutMode,
    CheckoutStatus,
    Installment,
    InstallmentState,
    PaymentLink,
    PaymentPlan,
    PlanKind,
    PlanState,
)
from practices.models import Bill

CREATED = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)


def plan_make(
    bill: Bill,
    *,
    kind: str = PlanKind.MONTHLY,
    state: str = PlanState.ACTIVE,
    installments: list[tuple[date, str, str]],
    created_at: datetime = CREATED,
    **fields: Any,
) -> PaymentPlan:
    """A plan of ``bill`` whose installments are (due date, amount, state); the total is their sum."""
    link = PaymentLink.objects.filter(bill=bill).first() or payment_link_create(bill=bill)[0]
    checkout = Checkout.objects.create(
        organization=bill.organization, link=link, bill=bill, mode=CheckoutMode.SETUP,
        reference=secrets.token_hex(8), processor="sandbox", session_id=f"cs_{secrets.token_hex(8)}",
        status=CheckoutStatus.COMPLETE, setup_reference=f"seti_{secrets.token_hex(6)}",
    )  # fmt: skip
    plan = PaymentPlan.objects.create(
        organization=bill.organization, guarantor=bill.guarantor, bill=bill, checkout=checkout, kind=kind,
        total=sum((Decimal(amount) for _, amount, _ in installments), Decimal("0")),
        installment_count=len(installments), processor="sandbox", customer_reference="cus_1",
        payment_method_reference="pm_1", state=state, created_at=created_at,
        activated_at=created_at if state != PlanState.PENDING_CARD else None, **fields,
    )  # fmt: skip
    for sequence, (due, amount, installment_state) in enumerate(installments, start=1):
        Installment.objects.create(
            plan=plan, sequence=sequence, due_date=due, amount=Decimal(amount), state=installment_state,
            idempotency_key=f"inst_{plan.pk}_{sequence}_{secrets.token_hex(4)}",
            attempts=1 if installment_state in (InstallmentState.PAID, InstallmentState.RETRYING) else 0,
        )  # fmt: skip
    return plan
