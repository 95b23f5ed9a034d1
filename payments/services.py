"""Write services of the payments app: the settings row (§4) and snoozes (B3)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from payments.eligibility import payment_settings_get
from payments.models import SNOOZE_REASON_MAX_LENGTH, PaymentSettings, Snooze
from practices.models import Organization, Patient
from practices.services import audit_record
from practices.timezones import organization_today


class SnoozeError(ValueError):
    pass


def payment_settings_create(*, organization: Organization) -> PaymentSettings:
    """The organization's settings row, created with the defaults when it has none; called when an
    organization is created (``organization_settings_create``)."""
    row = payment_settings_get(organization=organization)
    if row.pk is None:
        row.save()
    return row


def _guarantors(*, organization: Organization, guarantor_ids: list[str], lock: bool) -> list[Patient]:
    """The organization's guarantors with these PMS ids, in the given order; SnoozeError naming unknown ids."""
    wanted = list(dict.fromkeys(i.strip() for i in guarantor_ids if i.strip()))
    if not wanted:
        raise SnoozeError("name at least one guarantor")
    queryset = Patient.objects.filter(organization=organization, is_guarantor=True, external_id__in=wanted)
    if lock:
        queryset = queryset.select_for_update(no_key=True)
    found = {p.external_id: p for p in queryset}
    unknown = [i for i in wanted if i not in found]
    if unknown:
        raise SnoozeError(f"unknown guarantor(s) in {organization.slug}: {', '.join(unknown)}")
    return [found[i] for i in wanted]


def snooze_create(
    *,
    organization: Organization,
    guarantor_ids: list[str],
    until: date,
    reason: str,
    user: Any = None,
    actor_label: str = "",
    today: date,
) -> list[Snooze]:
    """B3: take guarantors off the bulk list (R5) until the re-enrol date ``until``.

    ``until`` must be after ``today`` (the organization's today) and ``reason`` non-empty; every id must be a
    guarantor of the organization, else SnoozeError and nothing is created. A guarantor's snooze still running
    on ``today`` is replaced: it is lifted now and the new one takes its place, so each guarantor has at most
    one running snooze and the newest date and reason win. Each change is audited (T5).
    """
    reason = reason.strip()
    if until <= today:
        raise SnoozeError(
            f"the re-enrol date must be after today ({today.isoformat()}), got {until.isoformat()}"
        )
    if not reason:
        raise SnoozeError("a reason is required")
    if len(reason) > SNOOZE_REASON_MAX_LENGTH:
        raise SnoozeError(f"the reason is longer than {SNOOZE_REASON_MAX_LENGTH} characters")
    now = timezone.now()
    created_by = user if getattr(user, "pk", None) else None
    with transaction.atomic():
        # Row locks on the guarantors serialise two concurrent snoozes of one guarantor (PostgreSQL).
        guarantors = _guarantors(organization=organization, guarantor_ids=guarantor_ids, lock=True)
        _lift(
            organization=organization, guarantors=guarantors, today=today, now=now, user=created_by,
            actor_label=actor_label, action="snooze.replace",
        )  # fmt: skip
        snoozes = [
            Snooze.objects.create(
                organization=organization,
                guarantor=guarantor,
                until=until,
                reason=reason,
                created_by=created_by,
            )
            for guarantor in guarantors
        ]
        for snooze in snoozes:
            audit_record(
                organization=organization, actor=user, actor_label=actor_label, action="snooze.create",
                obj=snooze,
                changes={"guarantor": ["", snooze.guarantor.external_id], "until": ["", until.isoformat()],
                         "reason": ["", reason]},
            )  # fmt: skip
    return snoozes


def snooze_lift(
    *,
    organization: Organization,
    guarantor_ids: list[str],
    user: Any = None,
    actor_label: str = "",
    today: date | None = None,
) -> int:
    """B3: lift the running snoozes of these guarantors early; returns how many were lifted.

    Unknown ids raise SnoozeError and nothing changes. ``today`` defaults to the organization's today.
    """
    today = today or organization_today(organization)
    with transaction.atomic():
        guarantors = _guarantors(organization=organization, guarantor_ids=guarantor_ids, lock=True)
        return _lift(
            organization=organization, guarantors=guarantors, today=today, now=timezone.now(),
            user=user if getattr(user, "pk", None) else None, actor_label=actor_label, action="snooze.lift",
        )  # fmt: skip


def snooze_undo(
    *, organization: Organization, snooze_ids: list[int], user: Any = None, actor_label: str = ""
) -> list[Snooze]:
    """B3: undo a snooze just made (the banner's Undo): lift these snoozes of the organization that still run,
    whoever made them, and return them; ids of another organization, lifted or ended snoozes are ignored.
    Audited as ``snooze.undo`` (T5)."""
    today = organization_today(organization)
    now = timezone.now()
    lifted_by = user if getattr(user, "pk", None) else None
    with transaction.atomic():
        running = list(
            Snooze.objects.select_for_update(no_key=True, of=("self",))
            .select_related("guarantor")
            .filter(organization=organization, pk__in=snooze_ids, lifted_at__isnull=True, until__gt=today)
            .order_by("guarantor__external_id", "pk")
        )
        Snooze.objects.filter(pk__in=[s.pk for s in running]).update(lifted_at=now, lifted_by=lifted_by)
        for snooze in running:
            audit_record(
                organization=organization, actor=user, actor_label=actor_label, action="snooze.undo",
                obj=snooze, changes={"lifted_at": ["", now.isoformat()]},
            )  # fmt: skip
    return running


def _lift(
    *,
    organization: Organization,
    guarantors: list[Patient],
    today: date,
    now: datetime,
    user: Any,
    actor_label: str,
    action: str,
) -> int:
    # Only snoozes still running: one that expired on its own (until <= today) ended then, not now.
    running = list(Snooze.objects.filter(guarantor__in=guarantors, lifted_at__isnull=True, until__gt=today))
    if not running:
        return 0
    Snooze.objects.filter(pk__in=[s.pk for s in running]).update(lifted_at=now, lifted_by=user)
    for snooze in running:
        audit_record(
            organization=organization, actor=user, actor_label=actor_label, action=action, obj=snooze,
            changes={"lifted_at": ["", now.isoformat()]},
        )  # fmt: skip
    return len(running)
