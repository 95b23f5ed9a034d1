"""The daily figures of an organization (SPEC §16, V1-V2), computed in the database from the live tables.

Each figure is counted on the day it happened, in the practice's zone, and credited to the message it came
from (its channel, kind and preset step):

- ``sent``: messages handed to the provider or mailed (``sent_at``), with the amount they asked for;
- ``delivered``: delivery reports (``delivered_at``; paper has none);
- ``undeliverable``: messages that became undelivered or failed (by reason), and ``attempted``, the base of the
  rate: messages sent, or undeliverable without ever being sent;
- ``opened`` and ``verified``: a message's first link open (``?m=``), and its first verified date of birth;
- ``paid``: payments net of refunds and disputes, each counted for the most recent message of its campaign whose
  link was opened before it (a refund: before the payment it returns), or for the campaign (V2);
- ``paper_paid``: the same payments on campaigns that had mailed a letter before them;
- ``pay_delay``: payments by whole days from the campaign's first message that left us.

One grouped query per figure for any range of days: no loop over messages or payments here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    DateTimeField,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncDate

from notifications.models import UNDELIVERABLE_STATES, Channel, Message
from payments.models import LinkEvent, LinkEventKind, Metric, Payment, PaymentKind, PaymentStatus
from practices.models import Organization

ZERO = Decimal("0.00")
_MONEY: Any = DecimalField(max_digits=14, decimal_places=2)


@dataclass(frozen=True)
class Figure:
    """One row of figures: what ``payments.models.DailyFigure`` keeps for a settled day."""

    day: date
    metric: str
    channel: str = ""
    kind: str = ""
    step_key: str = ""
    reason: str = ""
    days: int = 0
    count: int = 0
    amount: Decimal = ZERO


def bounds(organization: Organization, first: date, last: date) -> tuple[datetime, datetime]:
    """Days ``first`` to ``last`` (inclusive) of the organization as an aware [start, end): from midnight in
    its zone, whatever the server's or the user's."""
    tz = organization.tzinfo
    return (
        datetime.combine(first, time.min, tzinfo=tz),
        datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz),
    )


def _asked() -> Cast:
    # The exact amount the message asked for, kept beside its formatted form (notifications.templating).
    return Cast(KT("context__amount_due_value"), _MONEY)


def _message_rows(
    queryset: QuerySet[Message], *, metric: str, at: Any, dims: tuple[str, ...], organization: Organization,
    amount: bool = True,
) -> Iterator[Figure]:  # fmt: skip
    values: dict[str, Any] = {"day_": TruncDate(at, tzinfo=organization.tzinfo)}
    rows = (
        queryset.order_by()
        .values(**values, **{f"{d}_": F(d) for d in dims})
        .annotate(n=Count("pk"), total=Sum(_asked()) if amount else Value(ZERO, output_field=_MONEY))
    )
    for row in rows:
        yield Figure(
            day=row["day_"], metric=metric, channel=row.get("channel_") or "", kind=row.get("kind_") or "",
            step_key=row.get("step_key_") or "", reason=row.get("reason_") or "", count=row["n"],
            amount=row["total"] or ZERO,
        )  # fmt: skip


def _opened_at(first_of: str, *, before: str) -> Subquery:
    """A column of the most recent opened message of the campaign (``bill``) no later than ``before``."""
    latest = (
        LinkEvent.objects.filter(bill=OuterRef("bill"), event=LinkEventKind.OPENED, at__lte=OuterRef(before))
        .order_by("-at", "-pk")
        .values(first_of)[:1]
    )
    return Subquery(latest)


def daily_figures(*, organization: Organization, first: date, last: date) -> list[Figure]:
    """Every figure of days ``first`` to ``last`` of ``organization``, grouped by day and message (see the
    module's docstring). Seven grouped queries whatever the range or the size of the organization."""
    start, end = bounds(organization, first, last)
    tz = organization.tzinfo
    messages = Message.objects.filter(organization=organization)
    dims = ("channel", "kind", "step_key")
    figures: list[Figure] = []

    sent = messages.filter(sent_at__gte=start, sent_at__lt=end)
    figures += _message_rows(sent, metric=Metric.SENT, at="sent_at", dims=dims, organization=organization)
    delivered = messages.filter(delivered_at__gte=start, delivered_at__lt=end)
    figures += _message_rows(
        delivered, metric=Metric.DELIVERED, at="delivered_at", dims=dims, organization=organization
    )
    # A message that could not be delivered: when it became so (terminal: nothing updates it afterwards).
    undeliverable = Q(state__in=UNDELIVERABLE_STATES, updated_at__gte=start, updated_at__lt=end)
    attempted = messages.filter(
        Q(sent_at__gte=start, sent_at__lt=end) | (undeliverable & Q(sent_at__isnull=True))
    )
    figures += _message_rows(
        attempted, metric=Metric.ATTEMPTED, at=Coalesce("sent_at", "updated_at"), dims=dims,
        organization=organization, amount=False,
    )  # fmt: skip
    figures += _message_rows(
        messages.filter(undeliverable), metric=Metric.UNDELIVERABLE, at="updated_at", dims=(*dims, "reason"),
        organization=organization, amount=False,
    )  # fmt: skip

    events = LinkEvent.objects.filter(organization=organization, at__gte=start, at__lt=end)
    # A message's first open, and its first verification: one query for both.
    earlier = LinkEvent.objects.filter(
        message=OuterRef("message"), event=OuterRef("event"), at__lt=OuterRef("at")
    )
    metrics = {LinkEventKind.OPENED: Metric.OPENED, LinkEventKind.VERIFIED: Metric.VERIFIED}
    rows = (
        events.filter(event__in=list(metrics))
        .filter(~Exists(earlier))
        .order_by()
        .values("event", "channel", "step_key", day_=TruncDate("at", tzinfo=tz), kind_=F("message_kind"))
        .annotate(n=Count("message", distinct=True), total=Sum("amount"))
    )
    figures += (
        Figure(day=r["day_"], metric=metrics[r["event"]], channel=r["channel"], kind=r["kind_"],
               step_key=r["step_key"], count=r["n"], amount=r["total"] or ZERO)
        for r in rows
    )  # fmt: skip

    payments = (
        Payment.objects.filter(
            organization=organization, status=PaymentStatus.SUCCEEDED, created_at__gte=start, created_at__lt=end
        )
        # V2: a refund or a dispute counts where the payment it returns counted.
        .annotate(paid_at=Coalesce(F("refund_of__created_at"), F("created_at"), output_field=DateTimeField()))
        .annotate(
            by_paper=Exists(
                Message.objects.filter(
                    bill=OuterRef("bill"), channel=Channel.PAPER, sent_at__isnull=False,
                    sent_at__lte=OuterRef("paid_at"),
                )
            ),
            a_channel=_opened_at("channel", before="paid_at"),
            a_kind=_opened_at("message_kind", before="paid_at"),
            a_step=_opened_at("step_key", before="paid_at"),
        )
    )  # fmt: skip
    paid = (
        payments.order_by()
        .values("a_channel", "a_kind", "a_step", day_=TruncDate("created_at", tzinfo=tz))
        .annotate(
            n=Count("pk", filter=Q(kind=PaymentKind.PAYMENT)), total=Sum("amount"),
            paper_n=Count("pk", filter=Q(kind=PaymentKind.PAYMENT, by_paper=True)),
            paper_total=Sum("amount", filter=Q(by_paper=True)),
        )
    )  # fmt: skip
    for r in paid:
        channel, kind, step = r["a_channel"] or "", r["a_kind"] or "", r["a_step"] or ""
        figures.append(
            Figure(
                day=r["day_"],
                metric=Metric.PAID,
                channel=channel,
                kind=kind,
                step_key=step,
                count=r["n"],
                amount=r["total"] or ZERO,
            )
        )
        if r["paper_n"] or r["paper_total"]:
            figures.append(
                Figure(day=r["day_"], metric=Metric.PAPER_PAID, count=r["paper_n"],
                       amount=r["paper_total"] or ZERO, channel=channel, kind=kind, step_key=step)
            )  # fmt: skip

    first_sent = (
        Message.objects.filter(bill=OuterRef("bill"), sent_at__isnull=False)
        .order_by("sent_at")
        .values("sent_at")[:1]
    )
    delays = (
        payments.filter(kind=PaymentKind.PAYMENT)
        .annotate(first_sent=Subquery(first_sent, output_field=DateTimeField()))
        .filter(first_sent__isnull=False)
        .annotate(
            waited=ExpressionWrapper(
                TruncDate("created_at", tzinfo=tz) - TruncDate("first_sent", tzinfo=tz),
                output_field=DurationField(),
            )
        )
        .order_by()
        .values("waited", day_=TruncDate("created_at", tzinfo=tz))
        .annotate(n=Count("pk"))
    )
    figures += (
        Figure(day=r["day_"], metric=Metric.PAY_DELAY, days=max(_days(r["waited"]), 0), count=r["n"])
        for r in delays
    )
    return figures


def _days(value: Any) -> int:
    if isinstance(value, timedelta):
        return value.days
    return int(value or 0)
