"""Payment plans exported for the PMS (H5): one CSV row per installment, with its plan's terms repeated, so a
practice whose PMS we do not post to (and Open Dental, whose API cannot take our plans: docs/decisions.md) can
enter the plan and follow its progress. The installments' money goes the way of every payment: a paid
installment is a Payment, in ``export_payments`` and posted by a connector (C3), and its ``payment_id`` here
ties the two files together."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from django.db.models import Prefetch, Q

from payments.models import Installment, PaymentPlan
from practices.models import Organization

CENTS = Decimal("0.01")

PLAN_COLUMNS = [
    "plan_id", "guarantor_id", "bill_id", "kind", "plan_state", "total", "installment_count", "processor",
    "created_at", "activated_at", "ended_at", "end_reason", "installment", "due_date", "amount",
    "installment_state", "attempts", "paid_at", "payment_id",
]  # fmt: skip


def _stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else ""


def plans_export_rows(*, organization: Organization, since: date | None = None) -> list[dict[str, str]]:
    """The organization's plans, oldest first, each installment a row. With ``since`` (the organization's time
    zone), only the plans that changed on or after it: chosen, started, ended, or an installment paid then, so
    a daily export carries every change the PMS must hear of. A plan still waiting for its card is left out: it
    is not a plan until the processor has saved the card."""
    plans = PaymentPlan.objects.filter(organization=organization, activated_at__isnull=False)
    if since is not None:
        start = datetime.combine(since, time.min, tzinfo=organization.tzinfo)
        plans = plans.filter(
            Q(created_at__gte=start) | Q(activated_at__gte=start) | Q(ended_at__gte=start)
            | Q(installments__paid_at__gte=start)
        ).distinct()  # fmt: skip
    plans = (
        plans.select_related("guarantor", "bill")
        .prefetch_related(Prefetch("installments", queryset=Installment.objects.order_by("sequence")))
        .order_by("created_at", "pk")
    )
    rows = []
    for plan in plans:
        terms = {
            "plan_id": str(plan.pk),
            "guarantor_id": plan.guarantor.external_id,
            "bill_id": plan.bill.bill_id,
            "kind": plan.kind,
            "plan_state": plan.state,
            "total": str(plan.total.quantize(CENTS)),
            "installment_count": str(plan.installment_count),
            "processor": plan.processor,
            "created_at": _stamp(plan.created_at),
            "activated_at": _stamp(plan.activated_at),
            "ended_at": _stamp(plan.ended_at),
            "end_reason": plan.end_reason,
        }
        for installment in plan.installments.all():
            rows.append({
                **terms,
                "installment": str(installment.sequence),
                "due_date": installment.due_date.isoformat(),
                "amount": str(installment.amount.quantize(CENTS)),
                "installment_state": installment.state,
                "attempts": str(installment.attempts),
                "paid_at": _stamp(installment.paid_at),
                "payment_id": str(installment.payment_id or ""),
            })  # fmt: skip
    return rows
