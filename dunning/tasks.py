"""Thin, named Celery tasks over the dunning services; safe to run twice (decisions are unique)."""

from __future__ import annotations

from datetime import date

from celery import shared_task

from dunning.engine import run_dunning
from dunning.impact import impact_preview_run
from dunning.services import organizations_due_for_run
from practices.models import Organization


@shared_task(name="dunning.run_for_organization", acks_late=True, ignore_result=True)
def run_for_organization(organization_id: int, run_date: str) -> int:
    organization = Organization.objects.get(pk=organization_id)
    return len(run_dunning(organization=organization, on=date.fromisoformat(run_date)))


@shared_task(name="dunning.run_due_organizations", ignore_result=True)
def run_due_organizations() -> int:
    due = organizations_due_for_run()
    for organization_id, run_date in due:
        run_for_organization.delay(organization_id, run_date.isoformat())
    return len(due)


@shared_task(name="dunning.impact_preview", acks_late=True, ignore_result=True)
def impact_preview(preview_id: int) -> str:
    """Compute a settings impact preview (W1); a second delivery finds it taken and does nothing."""
    preview = impact_preview_run(preview_id=preview_id)
    return "taken" if preview is None else preview.status
