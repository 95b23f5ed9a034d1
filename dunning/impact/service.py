"""Settings impact preview (SPEC §17 W1): asked for from the admin with the form's unsaved values, computed
by a background task with progress, kept with the audit event of the save it was made for.

The computation reads only: the engine's forecast (``forecast``), the bulk payment request list under both
payment settings (``eligible_guarantors``, the list's own rules) and the kept feeds replayed through the
importer's clock rule (``imports``). The one row it writes is the preview's own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from dunning.impact.forecast import CHANNELS, Forecast, forecast
from dunning.impact.imports import imports_replay
from dunning.impact.scenario import (
    ENGINE_KEYS,
    LABELS,
    PAYMENT_KEYS,
    Scenario,
    changed_keys,
    scenario,
    settings_values,
)
from dunning.models import DunningSettings, PreviewKind, PreviewStatus, SettingsPreview
from dunning.policy import bill_policy_of
from dunning.selectors import dunning_settings_get
from payments.eligibility import eligible_guarantors, payment_settings_get
from payments.models import PaymentSettings
from practices.models import AuditEvent, Organization, Patient
from practices.timezones import organization_today

logger = logging.getLogger(__name__)

DAYS = 30
SAMPLE = 20
# A preview left "running" this long by a worker that died is taken again by the next delivery of its task.
STALE_AFTER = timedelta(minutes=15)
# The importer's keys whose change the replay of the kept feeds can show (a preset matters to it only
# through the ages of its steps under dunning-status aging, D8).
RESET_KEYS = ("bill_aging", "bill_reset_flag", "reset_on_fields", "reset_fields")


def current_values(*, organization: Organization) -> dict[str, Any]:
    """The settings in force, as a preview keeps them."""
    return settings_values(
        dunning=dunning_settings_get(organization=organization),
        payment=payment_settings_get(organization=organization),
    )


def proposed_values(
    *,
    organization: Organization,
    dunning: DunningSettings | None = None,
    payment: PaymentSettings | None = None,
) -> dict[str, Any]:
    """The settings a form would save (``dunning`` or ``payment``, unsaved) with the saved other half."""
    return settings_values(
        dunning=dunning if dunning is not None else dunning_settings_get(organization=organization),
        payment=payment if payment is not None else payment_settings_get(organization=organization),
    )


def impact_preview_start(
    *, organization: Organization, kind: str, proposed: dict[str, Any], user: Any, today: date | None = None
) -> SettingsPreview:
    """A new preview of ``proposed`` against the current settings, from the organization's today; the
    ``dunning.impact_preview`` task computes it once this transaction commits."""
    preview = SettingsPreview.objects.create(
        organization=organization, kind=PreviewKind(kind), requested_by=user if getattr(user, "pk", None) else None,
        start_date=today or organization_today(organization), days=DAYS,
        current=current_values(organization=organization), proposed=proposed,
    )  # fmt: skip
    transaction.on_commit(lambda: _enqueue(preview.pk))
    return preview


def _enqueue(preview_id: int) -> None:
    from dunning.tasks import impact_preview

    impact_preview.delay(preview_id)


def impact_preview_run(*, preview_id: int) -> SettingsPreview | None:
    """Compute a pending preview (the task's work); None when another worker has it. Progress and the result
    are written to the preview's row as they come, so the admin page can show them."""
    now = timezone.now()
    claimed = (
        SettingsPreview.objects.filter(pk=preview_id)
        .filter(
            Q(status=PreviewStatus.PENDING)
            | Q(status=PreviewStatus.RUNNING, started_at__lt=now - STALE_AFTER)
        )
        .update(status=PreviewStatus.RUNNING, started_at=now, progress=0, stage="Starting")
    )
    if not claimed:
        return None
    preview = SettingsPreview.objects.select_related("organization").get(pk=preview_id)
    rows = SettingsPreview.objects.filter(pk=preview_id)
    try:
        result = impact_compute(
            organization=preview.organization, current=preview.current, proposed=preview.proposed,
            start=preview.start_date, days=preview.days, progress=_reporter(rows),
        )  # fmt: skip
    except Exception as exc:  # the page must say it failed rather than poll for ever
        logger.exception("settings impact preview %s failed", preview_id)
        rows.update(
            status=PreviewStatus.FAILED, stage="Failed", error=str(exc)[:2000], finished_at=timezone.now()
        )
    else:
        rows.update(
            status=PreviewStatus.DONE, progress=100, stage="Done", result=result, finished_at=timezone.now()
        )
    preview.refresh_from_db()
    return preview


def _reporter(rows: QuerySet[SettingsPreview]) -> Callable[[float, str], None]:
    last = [-1, ""]

    def report(fraction: float, stage: str) -> None:
        percent = max(0, min(99, int(fraction * 100)))
        if percent != last[0] or stage != last[1]:
            last[0], last[1] = percent, stage
            rows.update(progress=percent, stage=stage[:100])

    return report


def impact_compute(
    *, organization: Organization, current: dict[str, Any], proposed: dict[str, Any], start: date,
    days: int = DAYS, progress: Callable[[float, str], None] = lambda fraction, stage: None,
) -> dict[str, Any]:  # fmt: skip
    """What ``proposed`` would do beside ``current``, as the preview's result (JSON). Reads only."""
    began = time.monotonic()
    now, then = (
        scenario(name="current", organization=organization, values=current),
        scenario(name="proposed", organization=organization, values=proposed),
    )
    changed = changed_keys(current, proposed)
    engine_changed = any(key in ENGINE_KEYS for key in changed)
    sides = [now, then] if engine_changed else [now]
    forecasts = forecast(
        organization=organization, settings=[side.dunning for side in sides], start=start, days=days,
        progress=lambda fraction, stage: progress(0.85 * fraction, stage),
        claim_limits=[side.payment.max_open_claims for side in sides],
    )  # fmt: skip
    progress(0.85, "Comparing the bulk payment request list")
    bulk = bulk_list_change(
        organization=organization, current=now, proposed=then, on=start,
        changed=any(key in PAYMENT_KEYS for key in changed),
    )  # fmt: skip
    progress(0.9, "Replaying the imports of the last 30 days")
    resets = resets_change(organization=organization, current=now, proposed=then, start=start, changed=changed,
                           progress=lambda fraction: progress(0.9 + 0.1 * fraction, "Replaying the imports"))  # fmt: skip
    return {
        "start": start.isoformat(),
        "end": (start + timedelta(days=days - 1)).isoformat(),
        "days": days,
        "timezone": organization.timezone,
        "changed": [
            {
                "key": key,
                "label": LABELS.get(key, key),
                "current": current.get(key),
                "proposed": proposed.get(key),
            }
            for key in changed
        ],
        "same_forecast": not engine_changed,
        "current": _side(forecasts[0], now),
        "proposed": _side(forecasts[-1], then),
        "bulk_list": bulk,
        "resets": resets,
        "seconds": round(time.monotonic() - began, 3),
    }


def _side(result: Forecast, side: Scenario) -> dict[str, Any]:
    return result.as_json(paper_cost=side.paper_cost)


def _people(queryset: QuerySet[Patient]) -> list[dict[str, str]]:
    return [
        {
            "guarantor_id": external_id,
            "name": f"{first} {last}".strip(),
            "patient_portion": f"{portion or 0:.2f}",
        }
        for external_id, first, last, portion in queryset.values_list(
            "external_id", "first_name", "last_name", "account__patient_portion"
        )[:SAMPLE]
    ]


def bulk_list_change(
    *, organization: Organization, current: Scenario, proposed: Scenario, on: date, changed: bool
) -> dict[str, Any]:
    """The bulk payment request list on ``on`` under both payment settings, and who enters and leaves it:
    the list's own rules (R1-R11), in the database."""
    now = eligible_guarantors(organization=organization, on=on, settings=current.payment)
    count = now.count()
    if not changed:
        return {"on": on.isoformat(), "current": count, "proposed": count, "entering": {"count": 0, "sample": []},
                "leaving": {"count": 0, "sample": []}}  # fmt: skip
    then = eligible_guarantors(organization=organization, on=on, settings=proposed.payment)
    entering = then.exclude(pk__in=now.order_by().values("pk"))
    leaving = now.exclude(pk__in=then.order_by().values("pk"))
    return {
        "on": on.isoformat(),
        "current": count,
        "proposed": then.count(),
        "entering": {"count": entering.count(), "sample": _people(entering)},
        "leaving": {"count": leaving.count(), "sample": _people(leaving)},
    }


def resets_change(
    *, organization: Organization, current: Scenario, proposed: Scenario, start: date, changed: list[str],
    progress: Callable[[float], None],
) -> dict[str, Any]:  # fmt: skip
    """The bills the imports of the last 30 days would have reset under each settings (D9), and those whose
    clock the aging mode would have set apart (D7, D8), when a setting the importer reads changed."""
    aging = "dunning_status" in (current.values["bill_aging"], proposed.values["bill_aging"])
    if not any(key in RESET_KEYS for key in changed) and not ("preset" in changed and aging):
        return {"replayed": False}
    since = start - timedelta(days=DAYS)
    replay = imports_replay(
        organization=organization, since=since, progress=progress,
        policies=[bill_policy_of(current.dunning), bill_policy_of(proposed.dunning)],
    )  # fmt: skip
    now, then = replay.resets
    return {
        "replayed": True,
        "since": since.isoformat(),
        "feeds": replay.feeds,
        "statements": replay.statements,
        "current": len(now),
        "proposed": len(then),
        "would_reset": {"count": len(then - now), "sample": sorted(then - now)[:SAMPLE]},
        "no_longer": {"count": len(now - then), "sample": sorted(now - then)[:SAMPLE]},
        "clock_differs": len(replay.clock_differs),
    }


# --- kept with the save ----------------------------------------------------------------------------------


def impact_preview_attach(
    *, preview_id: Any, organization_id: int | None, kind: str, saved: dict[str, Any], event: AuditEvent
) -> SettingsPreview | None:
    """Keep a finished preview with the audit event of the save it was made for (W1): the preview names the
    event, and the event's changes carry the preview's figures, so the audit shows what was known when the
    change was saved. A preview made for other values than those saved says so."""
    try:
        pk = int(preview_id)
    except (TypeError, ValueError):
        return None
    if organization_id is None:
        return None
    preview = SettingsPreview.objects.filter(
        pk=pk, organization_id=organization_id, kind=kind, status=PreviewStatus.DONE, audit_event__isnull=True
    ).first()
    if preview is None:
        return None
    differs = [LABELS.get(key, key) for key in changed_keys(preview.proposed, saved)]
    preview.audit_event = event
    preview.save(update_fields=["audit_event"])
    event.changes = {**event.changes, "impact_preview": impact_summary(preview, differs=differs)}
    event.save(update_fields=["changes"])
    return preview


def impact_summary(preview: SettingsPreview, *, differs: Sequence[str] = ()) -> list[str]:
    """The preview's figures as an audit change: [current settings, the saved ones]."""
    result = preview.result or {}

    def side(name: str) -> str:
        figures = result.get(name, {})
        totals = figures.get("totals", {})
        counts = ", ".join(f"{_CHANNEL_WORDS[c]} {totals.get(c, 0):,}" for c in CHANNELS)
        text = (
            f"{figures.get('messages', 0):,} messages in {result.get('days', DAYS)} days from {result.get('start')} "
            f"({counts}); paper ${figures.get('paper_cost', '0.00')} at ${figures.get('paper_cost_each', '0.00')} "
            f"a letter; bulk list {result.get('bulk_list', {}).get(name, 0):,}"
        )
        resets = result.get("resets", {})
        if resets.get("replayed"):
            text += f"; {resets.get(name, 0):,} bills reset by the imports since {resets.get('since')}"
        return text

    bulk = result.get("bulk_list", {})
    proposed = (
        f"Impact preview {preview.pk}: {side('proposed')} "
        f"(+{bulk.get('entering', {}).get('count', 0):,} −{bulk.get('leaving', {}).get('count', 0):,} guarantors)"
    )
    if differs:
        proposed += f". Made for other values of: {', '.join(differs)}"
    return [f"Current settings: {side('current')}", proposed]


_CHANNEL_WORDS = {"sms": "texts", "email": "emails", "paper": "letters"}
