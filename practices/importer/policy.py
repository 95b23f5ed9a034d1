"""How an import moves a statement bill's dunning clock (D7-D10). The dunning app owns the settings that
decide it and registers a provider at start-up; practices never imports dunning (data flows one way)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from practices.models import BillState, Organization


@dataclass(frozen=True)
class BillPolicy:
    aging: str = "natural"  # or "dunning_status" (S6)
    reset_flag: bool = False  # S8
    reset_on_fields: bool = False  # S9
    reset_fields: frozenset[str] = frozenset()  # S10
    communicate_on_update: bool = False  # S7
    status_ages: dict[str, int] = field(default_factory=dict)  # D8: dunning status -> its first step's age


NATURAL = BillPolicy()
_provider: Callable[[Organization], BillPolicy] = lambda organization: NATURAL  # noqa: E731


def register_policy_provider(provider: Callable[[Organization], BillPolicy]) -> None:
    global _provider
    _provider = provider


def policy_for(organization: Organization) -> BillPolicy:
    return _provider(organization)


@dataclass(frozen=True)
class Clock:
    effective_created_date: date
    generation: int
    state: str
    reset: bool
    amount_changed: bool
    recompute_next: bool


def bill_clock(
    *, policy: BillPolicy, old: Any, statement_date: date | None, amount_due: Decimal, due_date: date | None,
    guarantor_id: int, dunning_status: str, reset_bill: bool, import_date: date,
) -> Clock:  # fmt: skip
    """The bill's clock after this statement.

    D7 natural: the first statement date; it moves only on a reset. D8 dunning status: import date minus the
    age of the status's first step (new or unknown to the preset: age 0), set when first seen and whenever the
    status changes. D9 reset (S8 with reset_bill, or S9 with a change in an S10 field): generation + 1, clock
    = import date, a completed bill reopens. D10: an amount change without a reset flags a bill update.
    ``statement_date`` is None only for a bill we started (a payment request's campaign), never a new one.
    """

    def status_date() -> date:
        return import_date - timedelta(days=policy.status_ages.get(dunning_status, 0))

    if old is None:
        assert statement_date is not None
        effective = status_date() if policy.aging == "dunning_status" else statement_date
        return Clock(effective, 1, BillState.ACTIVE, reset=False, amount_changed=False, recompute_next=True)

    changed = {
        "amount_due": old.amount_due != amount_due,
        "statement_date": old.statement_date != statement_date,
        "due_date": old.due_date != due_date,
        "guarantor_id": old.guarantor_id != guarantor_id,
    }
    reset = (policy.reset_flag and reset_bill) or (
        policy.reset_on_fields and any(changed[name] for name in policy.reset_fields)
    )
    if reset:
        state = BillState.ACTIVE if old.state in (BillState.ACTIVE, BillState.COMPLETED) else old.state
        return Clock(
            import_date, old.generation + 1, state, reset=True, amount_changed=False, recompute_next=True
        )

    effective = old.effective_created_date
    recompute = False
    if policy.aging == "dunning_status" and dunning_status != old.dunning_status:
        effective, recompute = status_date(), True
    amount_changed = bool(old.amount_changed) or (policy.communicate_on_update and changed["amount_due"])
    return Clock(effective, old.generation, old.state, reset=False, amount_changed=amount_changed,
                 recompute_next=recompute)  # fmt: skip


# Hooks run inside the import's transaction after the I6 passes, with (organization, generated_at): the
# payments app registers one that re-applies payments the PMS cannot have posted yet.
_post_import_hooks: list[Callable[[Organization, Any], None]] = []


def register_post_import_hook(hook: Callable[[Organization, Any], None]) -> None:
    if hook not in _post_import_hooks:
        _post_import_hooks.append(hook)


def run_post_import_hooks(organization: Organization, generated_at: Any) -> None:
    for hook in _post_import_hooks:
        hook(organization, generated_at)
