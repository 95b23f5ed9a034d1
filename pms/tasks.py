"""Thin, named Celery tasks over the PMS sync; safe to run twice (the importer dedupes, posts are leased)."""

from __future__ import annotations

from celery import shared_task

from pms.services import organizations_due_for_sync, pms_sync
from practices.models import Organization


@shared_task(name="pms.sync_organization", acks_late=True, ignore_result=True)
def sync_organization(organization_id: int) -> str:
    organization = Organization.objects.get(pk=organization_id)
    return str(pms_sync(organization=organization).summary.status)


@shared_task(name="pms.sync_due_organizations", ignore_result=True)
def sync_due_organizations() -> int:
    due = organizations_due_for_sync()
    for organization_id in due:
        sync_organization.delay(organization_id)
    return len(due)
