from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from dunning_project.periodic import PERIODIC_TASKS


class Command(BaseCommand):
    help = (
        "Write the periodic jobs declared in dunning_project/periodic.py to the beat schedule (idempotent)."
    )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        names = []
        for job in PERIODIC_TASKS:
            defaults: dict[str, Any] = {"task": job.task, "enabled": True, "kwargs": json.dumps({})}
            if job.every_seconds:
                interval, _ = IntervalSchedule.objects.get_or_create(
                    every=job.every_seconds, period=IntervalSchedule.SECONDS
                )
                defaults.update(interval=interval, crontab=None)
            else:
                cron, _ = CrontabSchedule.objects.get_or_create(**(job.crontab or {}), timezone="UTC")
                defaults.update(crontab=cron, interval=None)
            PeriodicTask.objects.update_or_create(name=job.name, defaults=defaults)
            names.append(job.name)
        PeriodicTasks.update_changed()
        self.stdout.write(f"{len(names)} periodic task(s) in place: {', '.join(names)}")
