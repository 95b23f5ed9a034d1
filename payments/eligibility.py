"""Bulk payment request eligibility (SPEC §4, R1-R12).

Each rule is defined once, as a ``Rule``: a condition over ``Patient`` (a ``Q`` or a boolean expression) that
holds when the guarantor passes, plus the values shown to explain it. ``eligible_guarantors`` filters on every
condition in one set-based query (R9); ``explain_guarantor`` annotates the very same conditions, wrapped in
``Case``/``When``, on a one-row queryset (R12). ``When(condition)`` is true exactly when ``WHERE condition``
keeps the row (a NULL counts as false in both), so the list and the explanation cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypedDict

from django.db.models import (
    BooleanField,
    Case,
    DateField,
    Exists,
    Expression,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from payments.models import PaymentRequest, PaymentSettings, RequestMode, Snooze
from practices.models import Bill, BillState, Organization, Patient

# R7/R8: with no visit date on file the guarantor counts as never visited, so every campaign and every single
# request counts as "on or after the last visit": comparing with the earliest date expresses that in SQL.
NEVER_VISITED = date.min

Condition = Q | Expression


def payment_settings_get(*, organization: Organization) -> PaymentSettings:
    """The organization's payment settings; an unsaved row with the defaults when none was written yet."""
    row = PaymentSettings.objects.filter(organization=organization).first()
    return row if row is not None else PaymentSettings(organization=organization)


@dataclass(frozen=True)
class RuleContext:
    """What the rules compare with: the date and the organization's thresholds (read once per list)."""

    organization: Organization
    on: date
    min_payment_amount: Decimal
    eligible_aging: tuple[str, ...]
    max_open_claims: int | None

    @classmethod
    def build(
        cls, *, organization: Organization, on: date, settings: PaymentSettings | None = None
    ) -> RuleContext:
        settings = settings or payment_settings_get(organization=organization)
        return cls(
            organization=organization,
            on=on,
            min_payment_amount=settings.min_payment_amount,
            eligible_aging=tuple(settings.eligible_aging),
            max_open_claims=settings.max_open_claims,
        )


@dataclass(frozen=True)
class Rule:
    """One R-rule: ``condition`` holds for a passing guarantor (None: passes everyone, e.g. no limit set);
    ``seen`` names the values an explanation shows, ``detail`` words them."""

    id: str
    condition: Callable[[RuleContext], Condition | None]
    seen: Callable[[RuleContext], dict[str, Any]]
    detail: Callable[[dict[str, Any], bool, RuleContext], str]


def _last_visit_or_never() -> Coalesce:
    return Coalesce(OuterRef("last_visit_date"), Value(NEVER_VISITED), output_field=DateField())


# Each subquery also names the organization (implied by the guarantor): the planner can then read only
# this organization's rows when it joins in bulk (hash anti-joins for the whole list) instead of every
# tenant's, so the list's cost follows its own organization's size, not the database's (SPEC §11, R9).


def _open_snoozes(ctx: RuleContext) -> QuerySet:
    # Served by the partial index snooze_open_by_guarantor (guarantor, until) WHERE lifted_at IS NULL.
    return Snooze.objects.filter(
        organization=ctx.organization, guarantor=OuterRef("pk"), lifted_at__isnull=True, until__gt=ctx.on
    )


def _active_campaigns(ctx: RuleContext) -> QuerySet:
    # Served by the partial index bill_active_by_guarantor.
    return Bill.objects.filter(
        organization=ctx.organization, guarantor=OuterRef("pk"), state=BillState.ACTIVE
    )


def _campaigns_since_last_visit(ctx: RuleContext) -> QuerySet:
    return Bill.objects.filter(
        organization=ctx.organization,
        guarantor=OuterRef("pk"),
        effective_created_date__gte=_last_visit_or_never(),
    )


def _single_requests_since_last_visit(ctx: RuleContext) -> QuerySet:
    # Served by payreq_single_by_guarantor. The request's own date, not its bill's (which a reset may move).
    return PaymentRequest.objects.filter(
        organization=ctx.organization, guarantor=OuterRef("pk"), mode=RequestMode.SINGLE,
        request_date__gte=_last_visit_or_never(),
    )  # fmt: skip


def _latest(queryset: QuerySet, order: str, column: str) -> Subquery:
    return Subquery(queryset.order_by(f"-{order}", "-pk").values(column)[:1])


def _money(value: Decimal | None) -> str:
    return "none" if value is None else f"{value:.2f}"


def _visit(seen: dict[str, Any]) -> str:
    lvd = seen["last_visit_date"]
    return f"the last visit {lvd.isoformat()}" if lvd else "no visit date on file (never visited)"


def _r1_detail(seen: dict[str, Any], passed: bool, ctx: RuleContext) -> str:
    if passed:
        return "is a guarantor"
    return f"a dependent of guarantor {seen['r1_guarantor'] or '?'}: its balance rolls up to the guarantor"


def _r2_detail(seen: dict[str, Any], passed: bool, ctx: RuleContext) -> str:
    return f"on a payment plan: {'yes' if seen['r2_plan'] else 'no'}; required: no"


def _r3_detail(seen: dict[str, Any], passed: bool, ctx: RuleContext) -> str:
    minimum = _money(ctx.min_payment_amount)
    if seen["r3_portion"] is None:
        return f"no account balance on file; minimum payment amount {minimum}"
    relation = ">" if passed else "is not above"
    return f"patient portion {_money(seen['r3_portion'])} {relation} minimum payment amount {minimum}"


def _r4_detail(seen: dict[str, Any], passed: bool, ctx: RuleContext) -> str:
    category = seen["r4_aging"] or "none"
    eligible = ", ".join(ctx.eligible_aging) or "none"
    return f"aging category {category}; eligible categories: {eligible}"


def _r5_detail(seen: dict[str, Any], passed: bool, ctx: RuleContext) -> str:
    if passed:
        return f"not snoozed on {ctx.on.isoformat()}"
    return f"snoozed until {seen['r5_until'].isoformat()} ({seen['r5_reason']}); date {ctx.on.isoformat()}"


def _r6_detail(seen: dict[str, Any], passed: bool, ctx: RuleContext) -> str:
    return "no active campaign" if passed else f"in an active campaign (bill {seen['r6_bill']})"


def _r7_detail(seen: dict[str, Any], passed: bool, ctx: RuleContext) -> str:
    if seen["r7_bill"] is None:
        return f"no campaign on file; {_visit(seen)}"
    latest = f"latest campaign {seen['r7_bill']} started {seen['r7_start'].isoformat()}"
    if passed:
        return f"{latest}, before {_visit(seen)}"
    if seen["last_visit_date"] is None:
        return f"{latest}; {_visit(seen)}, so any campaign excludes"
    return f"{latest}, on or after {_visit(seen)}"


def _r8_detail(seen: dict[str, Any], passed: bool, ctx: RuleContext) -> str:
    if seen["r8_date"] is None:
        return f"no single payment request on file; {_visit(seen)}"
    latest = f"latest single payment request on {seen['r8_date'].isoformat()}"
    if passed:
        return f"{latest}, before {_visit(seen)}"
    if seen["last_visit_date"] is None:
        return f"{latest}; {_visit(seen)}, so any single request excludes"
    return f"{latest}, on or after {_visit(seen)}"


def _r10_condition(ctx: RuleContext) -> Condition | None:
    return None if ctx.max_open_claims is None else Q(open_claims__lte=ctx.max_open_claims)


def _r10_detail(seen: dict[str, Any], passed: bool, ctx: RuleContext) -> str:
    limit = "no limit" if ctx.max_open_claims is None else f"at most {ctx.max_open_claims}"
    return f"open insurance claims {seen['r10_claims']}; allowed: {limit}"


def _r11_detail(seen: dict[str, Any], passed: bool, ctx: RuleContext) -> str:
    return f"do not contact: {'yes' if seen['r11_dnc'] else 'no'}; required: no"


RULES: tuple[Rule, ...] = (
    # R1: dependents' balances roll up to their guarantor; dependents never appear.
    Rule(
        id="R1",
        condition=lambda ctx: Q(is_guarantor=True),
        seen=lambda ctx: {"r1_guarantor": F("guarantor_external_id")},
        detail=_r1_detail,
    ),
    # R2: not on a payment plan.
    Rule(
        id="R2",
        condition=lambda ctx: Q(on_payment_plan=False),
        seen=lambda ctx: {"r2_plan": F("on_payment_plan")},
        detail=_r2_detail,
    ),
    # R3: patient portion strictly greater than the minimum payment amount.
    Rule(
        id="R3",
        condition=lambda ctx: Q(
            account__patient_portion__gt=ctx.min_payment_amount, account__organization=ctx.organization
        ),
        seen=lambda ctx: {"r3_portion": F("account__patient_portion")},
        detail=_r3_detail,
    ),
    # R4: aging category among the eligible ones.
    Rule(
        id="R4",
        condition=lambda ctx: Q(account__aging_category__in=ctx.eligible_aging),
        seen=lambda ctx: {"r4_aging": F("account__aging_category")},
        detail=_r4_detail,
    ),
    # R5: not snoozed on the date (an open snooze with date < until).
    Rule(
        id="R5",
        condition=lambda ctx: ~Exists(_open_snoozes(ctx)),
        seen=lambda ctx: {
            "r5_until": _latest(_open_snoozes(ctx), "until", "until"),
            "r5_reason": _latest(_open_snoozes(ctx), "until", "reason"),
        },
        detail=_r5_detail,
    ),
    # R6: not in an active campaign, whatever its source.
    Rule(
        id="R6",
        condition=lambda ctx: ~Exists(_active_campaigns(ctx)),
        seen=lambda ctx: {"r6_bill": _latest(_active_campaigns(ctx), "effective_created_date", "bill_id")},
        detail=_r6_detail,
    ),
    # R7: no campaign (any source, any state) started on or after the last visit; none on file at all
    # when there is no visit date.
    Rule(
        id="R7",
        condition=lambda ctx: ~Exists(_campaigns_since_last_visit(ctx)),
        seen=lambda ctx: {
            "r7_bill": _latest(
                Bill.objects.filter(guarantor=OuterRef("pk")), "effective_created_date", "bill_id"
            ),
            "r7_start": _latest(
                Bill.objects.filter(guarantor=OuterRef("pk")),
                "effective_created_date",
                "effective_created_date",
            ),
        },
        detail=_r7_detail,
    ),
    # R8: no single request since the last visit, even when its campaign was closed or its clock moved.
    Rule(
        id="R8",
        condition=lambda ctx: ~Exists(_single_requests_since_last_visit(ctx)),
        seen=lambda ctx: {
            "r8_date": _latest(
                PaymentRequest.objects.filter(guarantor=OuterRef("pk"), mode=RequestMode.SINGLE),
                "request_date",
                "request_date",
            )
        },
        detail=_r8_detail,
    ),
    # R10: open insurance claims at most max_open_claims, when the organization set a limit.
    Rule(
        id="R10",
        condition=_r10_condition,
        seen=lambda ctx: {"r10_claims": F("open_claims")},
        detail=_r10_detail,
    ),
    # R11: not flagged do_not_contact.
    Rule(
        id="R11",
        condition=lambda ctx: Q(do_not_contact=False),
        seen=lambda ctx: {"r11_dnc": F("do_not_contact")},
        detail=_r11_detail,
    ),
)


def _passed(condition: Condition | None) -> Expression:
    if condition is None:
        return Value(True, output_field=BooleanField())
    return Case(When(condition, then=Value(True)), default=Value(False), output_field=BooleanField())


def eligible_guarantors(
    *, organization: Organization, on: date, settings: PaymentSettings | None = None
) -> QuerySet[Patient]:
    """The bulk payment request list of ``organization`` on ``on`` (R1-R11), as one set-based query (R9).

    The payment settings are read here unless given (the impact preview passes unsaved ones, W1); evaluating
    the returned queryset is one query.
    """
    ctx = RuleContext.build(organization=organization, on=on, settings=settings)
    conditions = [c for rule in RULES if (c := rule.condition(ctx)) is not None]
    return Patient.objects.filter(organization=organization).filter(*conditions).order_by("external_id")


def explain_guarantor(*, organization: Organization, guarantor: Patient, on: date) -> dict[str, Any]:
    """R12: every rule with the value seen, the threshold and pass/fail, from the conditions of the list.

    Raises ``Patient.DoesNotExist`` when ``guarantor`` is not a patient of ``organization``.
    """
    ctx = RuleContext.build(organization=organization, on=on)
    annotations: dict[str, Any] = {}
    for rule in RULES:
        annotations[f"passed_{rule.id}"] = _passed(rule.condition(ctx))
        annotations.update(rule.seen(ctx))
    row = (
        Patient.objects.filter(organization=organization, pk=guarantor.pk)
        .annotate(**annotations)
        .values("external_id", "last_visit_date", *annotations)
        .get()
    )
    rules = []
    for rule in RULES:
        passed = bool(row[f"passed_{rule.id}"])
        rules.append({"rule": rule.id, "passed": passed, "detail": rule.detail(row, passed, ctx)})
    return {
        "guarantor_id": row["external_id"],
        "eligible": all(r["passed"] for r in rules),
        "rules": rules,
    }


class BulkListRow(TypedDict):
    guarantor_id: str
    name: str
    patient_portion: str
    aging_category: str
    last_visit_date: str | None


def bulk_list_rows(*, organization: Organization, on: date) -> list[BulkListRow]:
    """The ``bulk_list --json`` document (SPEC §10): eligible guarantors sorted by guarantor id."""
    rows = eligible_guarantors(organization=organization, on=on).values_list(
        "external_id",
        "first_name",
        "last_name",
        "account__patient_portion",
        "account__aging_category",
        "last_visit_date",
    )
    document = [
        BulkListRow(
            guarantor_id=external_id,
            name=f"{first} {last}".strip(),
            patient_portion=_money(portion),
            aging_category=aging,
            last_visit_date=lvd.isoformat() if lvd else None,
        )
        for external_id, first, last, portion, aging, lvd in rows
    ]
    # Code-point order whatever the database collation (already sorted under C collation: linear).
    document.sort(key=lambda row: row["guarantor_id"])
    return document
