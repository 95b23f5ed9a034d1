"""What the dunning engine has for one guarantor, for the staff guarantor page (D12, K6; issue 15 "each held or
skipped message names its reason, which the guarantor page's explanation shows").

A module of its own rather than ``dunning.selectors``: it reads the engine's own constants and rule
(``dunning.engine.run``), and the engine imports ``dunning.selectors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from dunning.engine.run import HELD_UNTIL_SETTLED
from dunning.models import Action, DunningDecision, SkipReason
from notifications.models import Kind, Message
from payments.eligibility import payment_settings_get
from payments.models import claims_over
from payments.selectors import REQUEST_MESSAGES
from practices.models import BILL_OWING_STATES, Bill, BillState, Organization, Patient
from practices.tenancy import scope_to_user

BILLS_SHOWN = 20
MESSAGES_SHOWN = 20


@dataclass(frozen=True)
class BillReminders:
    """One owing bill as the engine has it: where its schedule stands and whether K6 holds it."""

    bill: Bill
    last_sent_kind: str  # the display word of the latest step the engine sent this generation ('' if none)
    last_sent_on: date | None
    held: bool  # K6: the last run held its due steps for the guarantor's claims (Bill.claims_held)
    held_kind: str  # the latest step held for the claims this generation, in words
    held_on: date | None
    next_on: date | None  # the next date the engine reads it; None when completed, new or held until settled
    waits_for_claims: bool  # held past its last step: only the claims settling brings it back


@dataclass(frozen=True)
class GuarantorReminders:
    bills: list[BillReminders]
    more_bills: bool
    messages: list[Message]
    more_messages: bool
    open_claims: int
    max_open_claims: int | None

    @property
    def claims_over(self) -> bool:
        """K6: the guarantor's open claims exceed the organization's limit now (none: no limit)."""
        return claims_over(self.open_claims, self.max_open_claims)

    @property
    def held(self) -> bool:
        return any(row.held for row in self.bills)


def _kind_word(value: str) -> str:
    return Kind(value).label if value in Kind.values else value


def _latest(decisions: QuerySet[DunningDecision], field: str) -> Subquery:
    return Subquery(decisions.order_by("-run_date", "-step_age_days", "-pk").values(field)[:1])


def guarantor_reminders(*, user: Any, organization: Organization, guarantor: Patient) -> GuarantorReminders:
    """The guarantor's owing bills (active or completed, newest first) with the engine's state of each, and
    the latest dunning messages of those bills (not the front desk's payment requests, ``REQUEST_MESSAGES``),
    newest first, with their reasons. Three queries whatever the number of bills, decisions or messages: the
    payment settings, the bills with their latest sent and held decisions as subqueries, the messages."""
    limit = payment_settings_get(organization=organization).max_open_claims
    ours = DunningDecision.objects.filter(bill_id=OuterRef("pk"), generation=OuterRef("generation"))
    sent = ours.filter(action=Action.SEND)
    held = ours.filter(reason=SkipReason.CLAIMS_PENDING)
    bills_queryset = Bill.objects.filter(
        organization=organization, guarantor=guarantor, state__in=BILL_OWING_STATES
    )
    annotated = scope_to_user(bills_queryset, user).annotate(
        last_sent_kind=_latest(sent, "kind"), last_sent_on=_latest(sent, "run_date"),
        held_kind=_latest(held, "kind"), held_on=_latest(held, "run_date"),
    )  # fmt: skip
    bills = list(annotated.order_by("-effective_created_date", "-pk")[: BILLS_SHOWN + 1])
    rows = []
    for bill in bills[:BILLS_SHOWN]:
        active = bill.state == BillState.ACTIVE
        waits = active and bill.claims_held and bill.next_dunning_date == HELD_UNTIL_SETTLED
        rows.append(
            BillReminders(
                bill=bill,
                last_sent_kind=_kind_word(bill.last_sent_kind or ""),
                last_sent_on=bill.last_sent_on,
                held=active and bill.claims_held,
                held_kind=_kind_word(bill.held_kind or ""),
                held_on=bill.held_on,
                next_on=bill.next_dunning_date if active and not waits else None,
                waits_for_claims=waits,
            )
        )
    messages_queryset = Message.objects.filter(
        organization=organization, bill__guarantor=guarantor, bill__state__in=BILL_OWING_STATES
    ).exclude(REQUEST_MESSAGES)
    messages = list(
        scope_to_user(messages_queryset, user)
        .select_related("bill")
        .order_by("-created_at", "-pk")[: MESSAGES_SHOWN + 1]
    )
    return GuarantorReminders(
        bills=rows,
        more_bills=len(bills) > BILLS_SHOWN,
        messages=messages[:MESSAGES_SHOWN],
        more_messages=len(messages) > MESSAGES_SHOWN,
        open_claims=guarantor.open_claims,
        max_open_claims=limit,
    )
