from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from dunning_project.periodic import PERIODIC_TASKS
from notifications.models import NotificationSettings
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def test_setup_periodic_tasks_declares_every_job_once_and_is_idempotent():
    call_command("setup_periodic_tasks", stdout=StringIO())
    call_command("setup_periodic_tasks", stdout=StringIO())
    tasks = {t.name: t.task for t in PeriodicTask.objects.all()}
    assert tasks == {job.name: job.task for job in PERIODIC_TASKS}
    assert "notifications.release_due" in tasks.values()
    assert "notifications.sweep_stale" in tasks.values()


def test_quiet_hours_is_an_org_setting():
    org = OrganizationFactory.create(slug="smile")
    out = StringIO()
    call_command("org_settings", "--org", "smile", "--json", stdout=out)
    assert json.loads(out.getvalue())["quiet_hours"] == "21:00-08:00"
    call_command("org_settings", "--org", "smile", "--set", "quiet_hours=20:30-09:00", stdout=StringIO())
    row = NotificationSettings.objects.get(organization=org)
    assert (row.quiet_start.strftime("%H:%M"), row.quiet_end.strftime("%H:%M")) == ("20:30", "09:00")


@pytest.mark.parametrize("value", ["9-5", "25:00-08:00", "21:00"])
def test_a_bad_quiet_hours_value_exits_2(value):
    OrganizationFactory.create(slug="smile")
    with pytest.raises(CommandError) as exc:
        call_command("org_settings", "--org", "smile", "--set", f"quiet_hours={value}", stdout=StringIO())
    assert exc.value.returncode == 2
    assert not NotificationSettings.objects.exists()
