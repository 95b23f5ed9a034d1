"""Writes of Results (SPEC §16): the AR snapshot at each import, the daily figures of settled days (summary rows
kept up to date incrementally), the link events of the payment page (V2)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from notifications.paylinks import message_id_from_ref
from payments.models import ARSnapshot, BuiltDay, DailyFigure, LinkEvent, LinkEventKind
from payments.results.daily import Figure, daily_figures
from practices.models import Account, Bill, Organization

# A day's figures are kept once nothing can still be dated into it: an ESP may deliver a tracking event with
# its original timestamp for up to 72 hours (retries), and every other figure is dated when it is written.
SETTLE = timedelta(hours=6)
# The import keeps the figures of the last weeks built; older days are built when a range first asks for them.
BUILD_AT_IMPORT = timedelta(days=35)


def settled_through(*, organization: Organization, now: datetime) -> date:
    """The last day of ``organization`` (its zone) whose figures can no longer change."""
    return (now - SETTLE).astimezone(organization.tzinfo).date() - timedelta(days=1)


def ar_snapshot_take(*, organization: Organization, on: date, now: datetime | None = None) -> ARSnapshot:
    """V1: the organization's receivables by aging bucket and the number of guarantors owing, as of ``on``
    (one row a day: a second import that day replaces it). Two queries."""
    totals = Account.objects.filter(organization=organization, guarantor__is_guarantor=True).aggregate(
        b0=Sum("bucket_0_30"), b31=Sum("bucket_31_60"), b61=Sum("bucket_61_90"), b90=Sum("bucket_over_90"),
        ar_total=Sum("total"), owing=Count("pk", filter=Q(total__gt=0)),
    )  # fmt: skip
    snapshot = ARSnapshot(
        organization=organization, day=on, bucket_0_30=totals["b0"] or Decimal(0),
        bucket_31_60=totals["b31"] or Decimal(0), bucket_61_90=totals["b61"] or Decimal(0),
        bucket_over_90=totals["b90"] or Decimal(0), total=totals["ar_total"] or Decimal(0),
        guarantors=totals["owing"] or 0, taken_at=now or timezone.now(),
    )  # fmt: skip
    fields = [
        "bucket_0_30",
        "bucket_31_60",
        "bucket_61_90",
        "bucket_over_90",
        "total",
        "guarantors",
        "taken_at",
    ]
    ARSnapshot.objects.bulk_create(
        [snapshot], update_conflicts=True, unique_fields=["organization", "day"], update_fields=fields
    )
    return snapshot


def results_after_import(organization: Organization, generated_at: Any) -> None:
    """The post-import hook (inside the import's transaction): the AR snapshot of the import date (I0), and
    the daily figures of the recent days that have settled since the last import."""
    if generated_at is None:
        return
    on = generated_at.astimezone(organization.tzinfo).date()
    ar_snapshot_take(organization=organization, on=on)
    now = timezone.now()
    through = settled_through(organization=organization, now=now)
    daily_figures_build(
        organization=organization, first=through - timedelta(days=BUILD_AT_IMPORT.days), last=through, now=now
    )


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def daily_figures_build(
    *, organization: Organization, first: date, last: date, now: datetime, live_until: date | None = None
) -> tuple[date | None, list[Figure]]:
    """Keep the figures of every settled day from ``first`` to ``last`` that has none yet.

    With ``live_until``, the same pass also computes the days after the settled ones up to it. Returns the
    first day the pass computed (None without one) and its figures from that day on, the new settled days'
    included: one pass over the live tables serves both. Rows are written once; two builds racing write the
    same rows, and the second's are ignored."""
    through = min(last, settled_through(organization=organization, now=now))
    built = set(
        BuiltDay.objects.filter(organization=organization, day__gte=first, day__lte=through).values_list(
            "day", flat=True
        )
    )
    missing = [day for day in _days(first, through) if day not in built] if through >= first else []
    if not missing and live_until is None:
        return None, []
    start = missing[0] if missing else max(through + timedelta(days=1), first)
    end = max(live_until, start) if live_until is not None else through
    figures = daily_figures(organization=organization, first=start, last=end) if start <= end else []
    if missing:
        new = set(missing)
        rows = [
            DailyFigure(
                organization=organization, day=f.day, metric=f.metric, channel=f.channel, kind=f.kind,
                step_key=f.step_key, reason=f.reason, days=f.days, count=f.count, amount=f.amount,
            )
            for f in figures
            if f.day in new
        ]  # fmt: skip
        # No savepoint of its own inside the report's transaction (two queries fewer for the page).
        with transaction.atomic(savepoint=False):
            DailyFigure.objects.bulk_create(rows, ignore_conflicts=True, batch_size=5000)
            BuiltDay.objects.bulk_create(
                [BuiltDay(organization=organization, day=day, built_at=now) for day in missing],
                ignore_conflicts=True,
                batch_size=5000,
            )
    return (start if start <= end else None), figures


def link_opened(*, bill: Bill, message_ref: str, at: datetime | None = None) -> LinkEvent | None:
    """V2: the patient opened the payment link of the message ``message_ref`` (the link's ``?m=``). A reference
    that names no message of this campaign (typed, cut, another campaign's) records nothing."""
    message_id = message_id_from_ref(message_ref)
    if message_id is None:
        return None
    from notifications.models import Message

    message = (
        Message.objects.filter(pk=message_id, bill_id=bill.pk, organization_id=bill.organization_id)
        .values("pk", "channel", "kind", "step_key", "context")
        .first()
    )
    if message is None:
        return None
    amount = _amount((message["context"] or {}).get("amount_due_value"))
    return LinkEvent.objects.create(
        organization_id=bill.organization_id, bill_id=bill.pk, message_id=message["pk"],
        event=LinkEventKind.OPENED, channel=message["channel"], message_kind=message["kind"],
        step_key=message["step_key"], amount=amount, at=at or timezone.now(),
    )  # fmt: skip


def link_verified(*, bill: Bill, at: datetime | None = None) -> LinkEvent | None:
    """V2: the patient verified their date of birth: it counts for the most recent opened message of the
    campaign (nothing when no link of it was opened through a message)."""
    moment = at or timezone.now()
    opened = (
        LinkEvent.objects.filter(bill_id=bill.pk, event=LinkEventKind.OPENED, at__lte=moment)
        .order_by("-at", "-pk")
        .first()
    )
    if opened is None:
        return None
    return LinkEvent.objects.create(
        organization_id=opened.organization_id, bill_id=bill.pk, message_id=opened.message_id,
        event=LinkEventKind.VERIFIED, channel=opened.channel, message_kind=opened.message_kind,
        step_key=opened.step_key, amount=opened.amount, at=moment,
    )  # fmt: skip


def _amount(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01")) if value not in (None, "") else None
    except ArithmeticError:
        return None
