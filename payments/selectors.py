"""Reads for the payments dashboard (HackSoft selectors). Every queryset goes through ``scope_to_user`` (T1),
on top of the organization the view already resolved through the same mechanism."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, Min, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from notifications.models import OPEN_STATES, Channel, Kind, Message, OptOut, State
from notifications.outbox import quiet_window
from payments.eligibility import eligible_guarantors, payment_settings_get
from payments.models import (
    ALL_AGING,
    PLAN_OPEN_STATES,
    Payment,
    PaymentLink,
    PaymentPlan,
    PaymentRequest,
    PaymentStatus,
    Snooze,
)
from practices.models import BILL_OWING_STATES, AgingCategory, Organization, Patient
from practices.tenancy import scope_to_user

# "Request messages": the age-0 messages of payment requests and the front desk's resends of them (U1).
REQUEST_MESSAGES = Q(kind=Kind.REQUEST) | Q(kind=Kind.RESEND, resend_of__kind=Kind.REQUEST)


@dataclass(frozen=True)
class Selection:
    """What the staff picked on the bulk list (B2/B3): every eligible guarantor but ``ids``
    (``everyone=True``, "Select all" across pages), or exactly ``ids``."""

    everyone: bool
    ids: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.everyone and not self.ids


def dashboard_organizations(*, user: Any) -> list[Organization]:
    """The organizations whose payments dashboard ``user`` may use (front desk or above, T2), by name."""
    return list(scope_to_user(Organization.objects.order_by("name", "pk"), user, path="self"))


def _channel_available(channel: str, address_field: str, pms_flag: str) -> ExpressionWrapper:
    opted_out = OptOut.objects.filter(
        organization=OuterRef("organization"), channel=channel, address=OuterRef(address_field), active=True
    )
    return ExpressionWrapper(
        ~Q(**{address_field: ""}) & Q(**{pms_flag: False}) & ~Exists(opted_out), output_field=BooleanField()
    )


def bulk_list(*, user: Any, organization: Organization, on: date) -> QuerySet[Patient]:
    """B1: the eligible guarantors of ``organization`` on ``on`` (R1-R11, the same query as ``bulk_send``),
    with their account and whether each request channel can reach them (a number or address on file, no
    opt-out). One query per evaluation; sorted by guarantor id."""
    queryset = eligible_guarantors(organization=organization, on=on)
    return (
        scope_to_user(queryset, user)
        .select_related("account")
        .annotate(
            sms_available=_channel_available(Channel.SMS, "mobile_phone", "pms_sms_opt_out"),
            email_available=_channel_available(Channel.EMAIL, "email", "pms_email_opt_out"),
        )
    )


def selection_guarantor_ids(
    *, user: Any, organization: Organization, on: date, selection: Selection
) -> list[str]:
    """The guarantor ids a selection stands for on ``on``: with "Select all", the list recomputed now minus the
    deselected ids (the way ``bulk_send(exclude=…)`` sees it); otherwise the ids as picked."""
    if not selection.everyone:
        return list(selection.ids)
    queryset = scope_to_user(eligible_guarantors(organization=organization, on=on), user)
    if selection.ids:
        queryset = queryset.exclude(external_id__in=list(selection.ids))
    return list(queryset.values_list("external_id", flat=True))


def request_messages(*, user: Any, organization: Organization) -> QuerySet[Message]:
    """The organization's payment-request messages (kind ``request``, and resends of them)."""
    queryset = Message.objects.filter(REQUEST_MESSAGES, organization=organization)
    return scope_to_user(queryset, user).select_related("patient")


def pending_request_messages(*, user: Any, organization: Organization) -> QuerySet[Message]:
    """B1 "Pending": request messages created but not yet handed to the provider, ``pending`` or ``scheduled``
    (held by quiet hours, Q1), the next to go out first."""
    return (
        request_messages(user=user, organization=organization)
        .filter(state__in=OPEN_STATES)
        .order_by("scheduled_for", "pk")
    )


def day_bounds(organization: Organization, on: date) -> tuple[datetime, datetime]:
    """The organization's calendar day ``on`` as an aware [start, end) interval."""
    start = datetime.combine(on, time.min, tzinfo=organization.tzinfo)
    end = datetime.combine(on + timedelta(days=1), time.min, tzinfo=organization.tzinfo)
    return start, end


def request_messages_of_day(*, user: Any, organization: Organization, on: date) -> QuerySet[Message]:
    """B1 "All", below the list: the request messages created on the organization's day ``on``, whatever
    their state, and those handed to the provider that day (yesterday evening's, held by quiet hours until
    this morning), newest first."""
    start, end = day_bounds(organization, on)
    return (
        request_messages(user=user, organization=organization)
        .filter(Q(created_at__gte=start, created_at__lt=end) | Q(sent_at__gte=start, sent_at__lt=end))
        .order_by("-created_at", "-pk")
    )


def state_counts(messages: QuerySet[Message]) -> dict[str, int]:
    """How many of ``messages`` are in each state (one grouped query)."""
    rows = messages.order_by().values("state").annotate(n=Count("pk")).values_list("state", "n")
    return dict(rows)


@dataclass(frozen=True)
class HomeFigures:
    """The Payments home page's figures of the payments app for one day (the other apps add theirs)."""

    eligible: int
    eligible_amount: Decimal
    held: int
    held_next_release: datetime | None
    sent_today: int
    snoozed: int


def payments_home_figures(*, user: Any, organization: Organization, on: date) -> HomeFigures:
    """Today's eligible guarantors and their patient portions (the bulk list, R1-R11), the request messages
    held by quiet hours (Q1) and the first release among them, the request messages handed to the provider
    on ``on``, and the running snoozes: three aggregate queries whatever the size."""
    eligible = scope_to_user(eligible_guarantors(organization=organization, on=on), user).aggregate(
        n=Count("pk"), amount=Sum("account__patient_portion")
    )
    start, end = day_bounds(organization, on)
    held = Q(state=State.SCHEDULED)
    sent = Q(sent_at__gte=start, sent_at__lt=end)
    messages = (
        request_messages(user=user, organization=organization)
        .filter(held | sent)
        .aggregate(
            held=Count("pk", filter=held), next_release=Min("scheduled_for", filter=held),
            sent=Count("pk", filter=sent),
        )
    )  # fmt: skip
    return HomeFigures(
        eligible=eligible["n"],
        eligible_amount=(eligible["amount"] or Decimal(0)).quantize(Decimal("0.01")),
        held=messages["held"],
        held_next_release=messages["next_release"],
        sent_today=messages["sent"],
        snoozed=active_snoozes(user=user, organization=organization, on=on).count(),
    )


@dataclass(frozen=True)
class BulkListSettings:
    """What decides who is on the bulk payment request list and how the requests go out, read-only (§4)."""

    timezone: str
    min_payment_amount: Decimal
    aging: list[tuple[str, bool]]
    max_open_claims: int | None
    quiet_start: time
    quiet_end: time
    request_channels: list[str]
    snooze_reasons: list[str]
    link_lifetime_days: int


def bulk_list_settings(*, organization: Organization) -> BulkListSettings:
    """The organization's settings behind the bulk list (R3, R4, R10) and its sending (Q1, B5, P1), with the
    defaults where nothing was saved yet; aging categories and channels in their display words."""
    settings_row = payment_settings_get(organization=organization)
    quiet_start, quiet_end = quiet_window(organization)
    eligible_aging = set(settings_row.eligible_aging)
    return BulkListSettings(
        timezone=organization.timezone,
        min_payment_amount=settings_row.min_payment_amount,
        aging=[(AgingCategory(value).label, value in eligible_aging) for value in ALL_AGING],
        max_open_claims=settings_row.max_open_claims,
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        request_channels=[Channel(c).label for c in Channel.values if c in settings_row.request_channels],
        snooze_reasons=list(settings_row.snooze_reasons or []),
        link_lifetime_days=settings_row.link_lifetime_days,
    )


def active_snoozes(*, user: Any, organization: Organization, on: date) -> QuerySet[Snooze]:
    """B1 "Snoozed": snoozes running on ``on`` (not lifted, ``on < until``, R5), the soonest re-enrol first."""
    queryset = Snooze.objects.filter(organization=organization, lifted_at__isnull=True, until__gt=on)
    return (
        scope_to_user(queryset, user)
        .select_related("guarantor", "created_by")
        .order_by("until", "guarantor__external_id", "pk")
    )


def guarantor_get(*, user: Any, organization: Organization, guarantor_id: str) -> Patient | None:
    """The organization's patient with PMS id ``guarantor_id`` (with its account), or None."""
    queryset = Patient.objects.filter(organization=organization, external_id=guarantor_id)
    return scope_to_user(queryset, user).select_related("account").first()


def guarantor_snooze(*, user: Any, guarantor: Patient, on: date) -> Snooze | None:
    queryset = Snooze.objects.filter(guarantor=guarantor, lifted_at__isnull=True, until__gt=on)
    return scope_to_user(queryset, user).select_related("created_by").order_by("-until").first()


@dataclass(frozen=True)
class RequestWithMessages:
    request: PaymentRequest
    messages: list[Message]


def guarantor_requests(*, user: Any, guarantor: Patient, limit: int = 10) -> list[RequestWithMessages]:
    """The guarantor's latest payment requests with their campaign and request messages."""
    queryset = PaymentRequest.objects.filter(guarantor=guarantor)
    requests = list(
        scope_to_user(queryset, user)
        .select_related("bill", "requested_by")
        .order_by("-requested_at", "-pk")[:limit]
    )
    by_bill: dict[int | None, list[Message]] = {request.bill_id: [] for request in requests}
    messages = Message.objects.filter(REQUEST_MESSAGES, bill_id__in=list(by_bill)).order_by("channel", "pk")
    for message in scope_to_user(messages, user):
        by_bill[message.bill_id].append(message)
    return [RequestWithMessages(request=request, messages=by_bill[request.bill_id]) for request in requests]


def guarantor_blocked_links(*, user: Any, guarantor: Patient) -> list[PaymentLink]:
    """The guarantor's payment links blocked after repeated wrong dates of birth (P2 escalation) whose bill
    still owes: what the front desk must re-issue."""
    links = PaymentLink.objects.filter(
        bill__guarantor=guarantor, blocked_at__isnull=False, bill__state__in=BILL_OWING_STATES,
        expires_at__gt=timezone.now(),
    )  # fmt: skip
    return list(scope_to_user(links, user).select_related("bill").order_by("-blocked_at"))


def guarantor_plans(*, user: Any, guarantor: Patient, limit: int = 10) -> list[PaymentPlan]:
    """H5: the guarantor's payment plans taken on the payment page, open ones first, then the newest ended,
    each with its installments (one query for the plans, one for every installment)."""
    queryset = PaymentPlan.objects.filter(guarantor=guarantor)
    return list(
        scope_to_user(queryset, user)
        .select_related("bill")
        .prefetch_related("installments")
        .annotate(open_first=ExpressionWrapper(Q(state__in=PLAN_OPEN_STATES), output_field=BooleanField()))
        .order_by("-open_first", "-created_at", "-pk")[:limit]
    )


def money_movements_since(*, organization: Organization, since: datetime) -> QuerySet[Payment]:
    """What the PMS must be told of (P3, H3, C3): the organization's succeeded payments, refunds and disputes
    recorded at or after ``since``, oldest first. A refund or a dispute is a negative amount with ``refund_of``
    its payment; each row is one posting (a connector marks what it has posted; ``export_payments`` lists the
    same rows)."""
    return (
        Payment.objects.filter(
            organization=organization, status=PaymentStatus.SUCCEEDED, created_at__gte=since
        )
        .select_related("bill__guarantor", "refund_of")
        .order_by("created_at", "pk")
    )
