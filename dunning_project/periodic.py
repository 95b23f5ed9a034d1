"""Every periodic job, declared in code (STYLE.md); `manage.py setup_periodic_tasks` writes them to
django-celery-beat's tables with update_or_create by name, so deploys are repeatable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Periodic:
    name: str
    task: str
    every_seconds: int | None = None
    crontab: dict[str, str] | None = None


PERIODIC_TASKS: list[Periodic] = [
    # N1/Q1: release messages held by quiet hours (and re-queue lost pending ones).
    Periodic(name="notifications: release held messages", task="notifications.release_due", every_seconds=60),
    # N1: move messages stuck in `sending` to `unknown`.
    Periodic(name="notifications: sweep stale sending", task="notifications.sweep_stale", every_seconds=300),
]
