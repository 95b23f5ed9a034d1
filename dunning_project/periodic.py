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
    # L1: the nightly paper batch, one run for every organization. 02:00 UTC is evening in the mainland US
    # zones (21:00/22:00 Eastern, 18:00/19:00 Pacific), ready for the mail house's morning pickup. Each batch
    # is dated in its organization's zone, and a letter created after the run simply goes into the next
    # night's batch, so a schedule per zone would buy nothing.
    Periodic(
        name="notifications: render letter batches",
        task="notifications.render_letter_batches",
        crontab={"minute": "0", "hour": "2"},
    ),
    # D-rules: every 10 minutes, run each organization whose local daily run time has passed and that has
    # not run today (one beat entry serves every organization, each in its own time zone).
    Periodic(name="dunning: daily runs", task="dunning.run_due_organizations", every_seconds=600),
    # C1: every 10 minutes, start the PMS sync of each organization whose local pms_sync_time has passed and
    # whose sync of today has not started (each claimed for its day; one entry serves every zone).
    Periodic(name="pms: daily syncs", task="pms.sync_due_organizations", every_seconds=600),
    # H5: every 15 minutes, charge the payment plan installments whose time has come (each at 10:00 local on
    # its date, a retry on its retry date; the first one of a plan at once).
    Periodic(
        name="payments: charge due installments", task="payments.charge_due_installments", every_seconds=900
    ),
]
