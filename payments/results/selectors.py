"""The Results report of an organization for a range of days (SPEC §16, V1): the daily figures added up by
channel, kind and preset step, recovered dollars per week, the median time to pay, the undeliverable rate by
reason, paper's cost against what it brought in, and AR by aging bucket over time.

Settled days are read from their summary rows (``DailyFigure``, built once, ``payments.results.services``); the days
since are computed from the live tables in the same pass that builds any settled day still missing. A fixed
number of queries whatever the range or the size of the organization; Python adds up figure rows (at most a
few hundred per day), never messages or payments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from dunning.models import DEFAULT_PAPER_COST, DunningSettings, PresetStep
from notifications.models import Channel, Kind, Reason
from payments.models import ARSnapshot, DailyFigure, Metric
from payments.results.daily import ZERO, Figure
from payments.results.services import daily_figures_build, settled_through
from practices.models import Organization
from practices.timezones import organization_today

MAX_DAYS = 3 * 365 + 1  # "at most 3 years", a leap day included
PRESETS = (("month", "This month"), ("30", "Last 30 days"), ("90", "Last 90 days"), ("365", "Last 365 days"))
FUNNEL = (Metric.SENT, Metric.DELIVERED, Metric.OPENED, Metric.VERIFIED, Metric.PAID)
REQUEST_STEP = "request"
CAMPAIGN = ""  # a payment without an opened message counts for its campaign (V2)
CHANNEL_ORDER = [Channel.SMS, Channel.EMAIL, Channel.PAPER]
KIND_ORDER = list(Kind.values)
# Above this many days the AR table and chart show one point a week (the week's last snapshot).
AR_DAILY_UP_TO = 92


class RangeError(ValueError):
    """A date range the report refuses, in words for the form and the command."""


def preset_range(preset: str, *, today: date) -> tuple[date, date]:
    """The presets of the page: this month, the last 30, 90 or 365 days, each ending today."""
    if preset == "month":
        return today.replace(day=1), today
    if preset in ("30", "90", "365"):
        return today - timedelta(days=int(preset) - 1), today
    raise RangeError(f"Unknown preset {preset!r}.")


def range_check(since: date, until: date) -> None:
    """A range ends on or after its start and spans at most 3 years (RangeError otherwise)."""
    if until < since:
        raise RangeError(
            f"The end date ({until.isoformat()}) is before the start date ({since.isoformat()})."
        )
    if (until - since).days + 1 > MAX_DAYS:
        raise RangeError(
            f"A range can be at most 3 years ({MAX_DAYS:,} days); this one is {(until - since).days + 1:,}."
        )


@dataclass
class Stage:
    count: int = 0
    amount: Decimal = ZERO


@dataclass
class FunnelRow:
    """One row of a funnel table: a channel, a kind or a preset step, and its five stages."""

    key: str
    label: str
    stages: dict[str, Stage] = field(default_factory=lambda: {m: Stage() for m in FUNNEL})

    def stage(self, metric: str) -> Stage:
        return self.stages[metric]


@dataclass(frozen=True)
class Week:
    start: date
    end: date
    amount: Decimal


@dataclass(frozen=True)
class ReasonRow:
    reason: str
    label: str
    count: int
    rate: Decimal | None  # of the messages attempted in the range


@dataclass(frozen=True)
class Paper:
    letters: int
    cost_each: Decimal
    cost: Decimal
    payments: int
    paid: Decimal


@dataclass(frozen=True)
class ARPoint:
    day: date
    bucket_0_30: Decimal
    bucket_31_60: Decimal
    bucket_61_90: Decimal
    bucket_over_90: Decimal
    total: Decimal
    guarantors: int


@dataclass
class Report:
    organization: Organization
    since: date
    until: date
    settled_through: date
    by_channel: list[FunnelRow]
    by_kind: list[FunnelRow]
    by_step: list[FunnelRow]
    total: FunnelRow
    weeks: list[Week]
    recovered: Decimal
    payments: int
    median_days: Decimal | None
    timed_payments: int
    attempted: int
    undeliverable: list[ReasonRow]
    paper: Paper
    ar: list[ARPoint]
    ar_weekly: bool


@contextmanager
def _without_jit() -> Iterator[None]:
    """PostgreSQL compiles a query to machine code once its estimated cost passes ``jit_above_cost``; for these
    queries, which read a few thousand indexed rows, that took 200 ms of a 300 ms budget to save a few (§11).
    Off for this transaction only."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        yield


def results_report(
    *, organization: Organization, since: date, until: date, now: datetime | None = None
) -> Report:
    """The Results of ``organization`` from ``since`` to ``until`` (its own calendar days, inclusive)."""
    range_check(since, until)
    with _without_jit():
        return _results_report(organization=organization, since=since, until=until, now=now)


def _results_report(*, organization: Organization, since: date, until: date, now: datetime | None) -> Report:
    moment = now or timezone.now()
    through = settled_through(organization=organization, now=moment)
    live_from, live = daily_figures_build(
        organization=organization, first=since, last=min(until, through), now=moment,
        live_until=until if until > through else None,
    )  # fmt: skip
    # The live pass starts at the first settled day that was still missing (or after the settled ones): the
    # summary rows serve the days before it.
    kept_until = min(until, through) if live_from is None else min(until, live_from - timedelta(days=1))
    live_in_range = [f for f in live if since <= f.day <= until]
    kept = _kept_totals(organization, since, kept_until) if kept_until >= since else []
    by_day = _kept_paid_by_day(organization, since, kept_until) if kept_until >= since else {}
    for f in live_in_range:
        if f.metric == Metric.PAID:
            by_day[f.day] = by_day.get(f.day, ZERO) + f.amount
    figures = kept + live_in_range
    return _report(organization, since, until, through, figures, by_day)


def _kept_totals(organization: Organization, first: date, last: date) -> list[Figure]:
    rows = (
        DailyFigure.objects.filter(organization=organization, day__gte=first, day__lte=last)
        .values("metric", "channel", "kind", "step_key", "reason", "days")
        .annotate(n=Sum("count"), total=Sum("amount"))
        .order_by()
    )
    return [
        Figure(day=first, metric=r["metric"], channel=r["channel"], kind=r["kind"], step_key=r["step_key"],
               reason=r["reason"], days=r["days"], count=int(r["n"] or 0), amount=r["total"] or ZERO)
        for r in rows
    ]  # fmt: skip


def _kept_paid_by_day(organization: Organization, first: date, last: date) -> dict[date, Decimal]:
    rows = (
        DailyFigure.objects.filter(
            organization=organization, metric=Metric.PAID, day__gte=first, day__lte=last
        )
        .values("day")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    return {r["day"]: r["total"] or ZERO for r in rows}


def _report(
    organization: Organization, since: date, until: date, through: date, figures: Iterable[Figure],
    paid_by_day: dict[date, Decimal],
) -> Report:  # fmt: skip
    channels: dict[str, FunnelRow] = {}
    kinds: dict[str, FunnelRow] = {}
    steps: dict[str, FunnelRow] = {}
    total = FunnelRow("total", "All messages")
    delays: dict[int, int] = defaultdict(int)
    reasons: dict[str, int] = defaultdict(int)
    attempted = 0
    paper_payments, paper_paid = 0, ZERO
    for f in figures:
        if f.metric in FUNNEL:
            for table, key in ((channels, f.channel), (kinds, f.kind), (steps, f.step_key)):
                if f.metric == Metric.PAID and not f.channel:
                    key = CAMPAIGN
                row = table.setdefault(key, FunnelRow(key, ""))
                row.stages[f.metric].count += f.count
                row.stages[f.metric].amount += f.amount
            total.stages[f.metric].count += f.count
            total.stages[f.metric].amount += f.amount
        elif f.metric == Metric.ATTEMPTED:
            attempted += f.count
        elif f.metric == Metric.UNDELIVERABLE:
            reasons[f.reason] += f.count
        elif f.metric == Metric.PAPER_PAID:
            paper_payments += f.count
            paper_paid += f.amount
        elif f.metric == Metric.PAY_DELAY:
            delays[f.days] += f.count
    cost_each = (
        DunningSettings.objects.filter(organization=organization).values_list("paper_cost", flat=True).first()
    )
    cost_each = DEFAULT_PAPER_COST if cost_each is None else cost_each
    letters = channels[Channel.PAPER].stages[Metric.SENT].count if Channel.PAPER in channels else 0
    median, timed = _median(delays)
    reason_labels = dict(Reason.choices)
    undeliverable = [
        ReasonRow(reason, reason_labels.get(reason, reason or "Unknown"), count,
                  (Decimal(count) / attempted).quantize(Decimal("0.0001")) if attempted else None)
        for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    ]  # fmt: skip
    ar, weekly = _ar(organization, since, until)
    return Report(
        organization=organization, since=since, until=until, settled_through=through,
        by_channel=_ordered(channels, CHANNEL_ORDER, dict(Channel.choices)),
        by_kind=_ordered(kinds, KIND_ORDER, dict(Kind.choices)),
        by_step=_steps(steps), total=total, weeks=_weeks(since, until, paid_by_day),
        recovered=total.stages[Metric.PAID].amount, payments=total.stages[Metric.PAID].count,
        median_days=median, timed_payments=timed, attempted=attempted, undeliverable=undeliverable,
        paper=Paper(letters=letters, cost_each=cost_each, cost=(cost_each * letters).quantize(Decimal("0.01")),
                    payments=paper_payments, paid=paper_paid),
        ar=ar, ar_weekly=weekly,
    )  # fmt: skip


def _label_campaign(rows: dict[str, FunnelRow]) -> FunnelRow | None:
    row = rows.pop(CAMPAIGN, None)
    if row is not None:
        row.label = "No opened link (the campaign)"
    return row


def _ordered(rows: dict[str, FunnelRow], order: Sequence[str], labels: dict[str, str]) -> list[FunnelRow]:
    campaign = _label_campaign(rows)
    out = []
    for key in sorted(rows, key=lambda k: (order.index(k) if k in order else len(order), k)):
        rows[key].label = labels.get(key, key)
        out.append(rows[key])
    return out + ([campaign] if campaign else [])


def _steps(rows: dict[str, FunnelRow]) -> list[FunnelRow]:
    """Preset steps by their preset, bill age and channel; the request, then the steps; bill updates and
    resends (no step) last."""
    campaign = _label_campaign(rows)
    ids = [int(key.split(":", 1)[1]) for key in rows if key.startswith("step:") and key[5:].isdigit()]
    found = {
        f"step:{pk}": (name, age, kind, channel)
        for pk, name, age, kind, channel in PresetStep.objects.filter(pk__in=ids).values_list(
            "pk", "preset__name", "bill_age_days", "kind", "channel"
        )
    }
    kind_labels, channel_labels = dict(Kind.choices), dict(Channel.choices)

    def order(key: str) -> tuple[int, str, int, str]:
        if key == REQUEST_STEP:
            return (0, "", 0, "")
        if key in found:
            name, age, _kind, channel = found[key]
            return (1, name, age, channel)
        return (2, key, 0, "")

    out = []
    for key in sorted(rows, key=order):
        row = rows[key]
        if key == REQUEST_STEP:
            row.label = "Payment request"
        elif key in found:
            name, age, kind, channel = found[key]
            row.label = f"{name}: day {age} {kind_labels.get(kind, kind).lower()} by {channel_labels.get(channel, channel)}"
        elif key.startswith("step:"):
            row.label = f"A step no longer in any preset ({key})"
        else:
            row.label = "No step (bill updates, resends)"
        out.append(row)
    return out + ([campaign] if campaign else [])


def _weeks(since: date, until: date, paid_by_day: dict[date, Decimal]) -> list[Week]:
    """Recovered dollars per week (Monday to Sunday), the first and last weeks cut to the range."""
    weeks: list[Week] = []
    start = since
    while start <= until:
        end = min(start + timedelta(days=6 - start.weekday()), until)
        amount = sum(
            (paid_by_day.get(start + timedelta(days=n), ZERO) for n in range((end - start).days + 1)), ZERO
        )
        weeks.append(Week(start, end, amount))
        start = end + timedelta(days=1)
    return weeks


def _median(delays: dict[int, int]) -> tuple[Decimal | None, int]:
    """The median of whole days from first message to payment, from the count of payments per number of days."""
    total = sum(delays.values())
    if not total:
        return None, 0
    ordered = sorted(delays.items())

    def at(position: int) -> int:
        seen = 0
        for days, count in ordered:
            seen += count
            if position < seen:
                return days
        return ordered[-1][0]

    low, high = at((total - 1) // 2), at(total // 2)
    return (Decimal(low + high) / 2).quantize(Decimal("0.1")), total


def _ar(organization: Organization, since: date, until: date) -> tuple[list[ARPoint], bool]:
    snapshots = list(
        ARSnapshot.objects.filter(organization=organization, day__gte=since, day__lte=until).order_by("day")
    )
    points = [
        ARPoint(s.day, s.bucket_0_30, s.bucket_31_60, s.bucket_61_90, s.bucket_over_90, s.total, s.guarantors)
        for s in snapshots
    ]
    weekly = (until - since).days + 1 > AR_DAILY_UP_TO
    if weekly:
        last_of_week: dict[date, ARPoint] = {}
        for point in points:
            last_of_week[point.day - timedelta(days=point.day.weekday())] = point
        points = list(last_of_week.values())
    return points, weekly


def default_range(organization: Organization) -> tuple[date, date]:
    return preset_range("90", today=organization_today(organization))


def money(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'))}"


def report_json(report: Report) -> dict[str, Any]:
    """The report as the ``results --json`` document: money as strings with 2 decimals, rates as decimals."""

    def funnel(rows: list[FunnelRow]) -> list[dict[str, Any]]:
        return [
            {"key": r.key, "label": r.label,
             **{str(m): {"count": r.stages[m].count, "amount": money(r.stages[m].amount)} for m in FUNNEL}}
            for r in rows
        ]  # fmt: skip

    return {
        "organization": report.organization.slug,
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "timezone": report.organization.timezone,
        "funnel": {
            "total": funnel([report.total])[0],
            "by_channel": funnel(report.by_channel),
            "by_kind": funnel(report.by_kind),
            "by_step": funnel(report.by_step),
        },
        "recovered": money(report.recovered),
        "payments": report.payments,
        "recovered_by_week": [
            {"week_start": w.start.isoformat(), "week_end": w.end.isoformat(), "amount": money(w.amount)}
            for w in report.weeks
        ],
        "median_days_to_pay": None if report.median_days is None else str(report.median_days),
        "timed_payments": report.timed_payments,
        "attempted": report.attempted,
        "undeliverable": [
            {"reason": r.reason, "label": r.label, "count": r.count, "rate": None if r.rate is None else str(r.rate)}
            for r in report.undeliverable
        ],
        "paper": {
            "letters": report.paper.letters, "cost_each": money(report.paper.cost_each),
            "cost": money(report.paper.cost), "payments": report.paper.payments, "paid": money(report.paper.paid),
        },
        "ar": [
            {"day": p.day.isoformat(), "0_30": money(p.bucket_0_30), "31_60": money(p.bucket_31_60),
             "61_90": money(p.bucket_61_90), "over_90": money(p.bucket_over_90), "total": money(p.total),
             "guarantors": p.guarantors}
            for p in report.ar
        ],
    }  # fmt: skip
