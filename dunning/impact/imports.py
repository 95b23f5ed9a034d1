"""Resets and aging (S6, S8-S10) act when a feed is imported, not in the daily run: the preview replays the
organization's kept feeds (I3) of the last days through the importer's own clock rule (``bill_clock``) under
each settings. The bills those imports would have reset, and those whose dunning clock the aging mode would
have set differently, are what the coming imports are expected to do alike.

Each statement of a feed is compared with the bill's previous version: the one in the applied feed before it
that carried the bill (the last applied feed before the window seeds them). A bill first seen in the window
has no previous version, so it cannot reset, but its clock depends on the aging mode (D7, D8). The clock
of a known bill is the one its first version in the replay set; only whether two settings set it apart is
reported, not the date itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from practices.importer.policy import BillPolicy, Clock, bill_clock
from practices.importer.records import RecordError, StatementRow, Warnings, read_statement
from practices.models import BillState, FeedImport, FeedStatus, Organization, Patient

APPLIED = (FeedStatus.APPLIED, FeedStatus.PARTIAL)


@dataclass(frozen=True, slots=True)
class _Version:
    """A bill as a previous statement left it: what ``bill_clock`` reads of the old bill."""

    amount_due: Decimal
    statement_date: date | None
    due_date: date | None
    guarantor_id: int
    dunning_status: str
    effective_created_date: date
    state: str = BillState.ACTIVE
    generation: int = 1
    amount_changed: bool = False


@dataclass
class Replay:
    """What the imports since ``since`` would have done under each policy."""

    since: date
    feeds: int = 0
    statements: int = 0
    resets: list[set[str]] = field(default_factory=list)  # bill ids, per policy
    clock_differs: set[str] = field(
        default_factory=set
    )  # bills whose clock the policies set apart (no reset)


def imports_replay(
    *, organization: Organization, policies: Sequence[BillPolicy], since: date,
    progress: Callable[[float], None] = lambda fraction: None,
) -> Replay:  # fmt: skip
    """Replay the applied feeds imported on or after ``since`` under each of ``policies``. Reads only."""
    replay = Replay(since=since, resets=[set() for _ in policies])
    applied = FeedImport.objects.filter(
        organization=organization, status__in=APPLIED, import_date__isnull=False
    )
    base = (
        applied.filter(import_date__lt=since)
        .order_by("-generated_at", "-pk")
        .values_list("pk", flat=True)[:1]
    )
    window = list(
        applied.filter(import_date__gte=since).order_by("generated_at", "pk").values_list("pk", flat=True)
    )
    versions: dict[str, _Version] = {}
    # The importer's guarantor of a statement: the named patient's guarantor (I1a), by PMS id.
    guarantors = dict(
        Patient.objects.filter(organization=organization).values_list("external_id", "guarantor_id")
    )
    feeds = [*base, *window]
    for done, pk in enumerate(feeds):
        raw, import_date = FeedImport.objects.values_list("raw", "import_date").get(pk=pk)
        assert import_date is not None  # applied feeds have one (filtered above)
        seeding = pk not in window
        for row in _statements(raw):
            old = versions.get(row.bill_id)
            guarantor = guarantors.get(row.guarantor_external_id) or 0
            if not seeding:
                replay.statements += old is not None
                clocks = [_clock(policy, old, row, guarantor, import_date) for policy in policies]
                for index, clock in enumerate(clocks):
                    if clock.reset:
                        replay.resets[index].add(row.bill_id)
                if not any(c.reset for c in clocks) and len({c.effective_created_date for c in clocks}) > 1:
                    replay.clock_differs.add(row.bill_id)
            versions[row.bill_id] = _Version(
                amount_due=row.amount_due, statement_date=row.statement_date, due_date=row.due_date,
                guarantor_id=guarantor, dunning_status=row.dunning_status,
                effective_created_date=old.effective_created_date if old is not None else row.statement_date,
            )  # fmt: skip
        if not seeding:
            replay.feeds += 1
        progress((done + 1) / len(feeds))
    return replay


def _clock(policy: BillPolicy, old: _Version | None, row: StatementRow, guarantor: int, on: date) -> Clock:
    return bill_clock(
        policy=policy, old=old, statement_date=row.statement_date, amount_due=row.amount_due, due_date=row.due_date,
        guarantor_id=guarantor, dunning_status=row.dunning_status, reset_bill=row.reset_bill, import_date=on,
    )  # fmt: skip


def replay_since(*, today: date, days: int) -> date:
    return today - timedelta(days=days)


def _statements(raw: str) -> list[StatementRow]:
    """The valid statements of a kept feed, as the importer reads them (I1, I2); invalid ones were rejected."""
    try:
        document = json.loads(raw)
    except ValueError:
        return []
    records = document.get("statements") if isinstance(document, dict) else None
    rows = []
    warnings = Warnings()
    for index, record in enumerate(records if isinstance(records, list) else []):
        try:
            rows.append(read_statement(index, record, warnings))
        except RecordError:
            continue
    return rows
