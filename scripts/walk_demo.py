#!/usr/bin/env python3
"""Walk the demo practice through its dunning schedule, day by day, and show what left us.

    .venv/bin/python scripts/walk_demo.py [--days N] [--json] [--keep]

On a scratch SQLite database in a temporary directory (never var/: DATABASE_URL, VAR_DIR and MEDIA_ROOT point
there before Django starts, so the filesystem broker's queue and the letter PDFs stay there too), it migrates,
runs ``seed_demo``, then walks the demo organization from today for N days (default: a few days past its
preset's last step). Each day, as production does: ``run_dunning`` at the organization's ``run_at``, the outbox
tick (``messages_send_due``, the ``send_due`` service) then and again at noon, with the SMS and email channels
in their offline log mode (they log the message and mark it sent, whatever providers the environment names),
and the nightly letter batch rendered and marked mailed by the ops user.

It prints, per kind x channel, the send decisions, the messages that left us (sent or delivered) and those
that did not (by state and reason), the final notices on their own lines; ``--json`` prints one JSON document
on stdout instead. Progress goes to stderr. The scratch directory is removed afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from io import StringIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
KIND_ORDER = ["statement", "reminder", "due", "past_due", "final", "bill_update"]
CHANNEL_ORDER = ["sms", "email", "paper"]
LEFT = ("sent", "delivered")
AFTER_LAST_STEP = 5
# Provider credentials the settings read; the walk never reaches a real provider.
PROVIDER_VARIABLES = (
    "REDIS_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "ANYMAIL_ESP",
    "POSTMARK_SERVER_TOKEN",
)


def _scratch_environment(directory: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "dunning_project.settings.local"
    os.environ["VAR_DIR"] = str(directory)
    os.environ["DATABASE_URL"] = f"sqlite:///{directory / 'walk.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(directory / "media")
    os.environ["DEBUG"] = "false"  # no query log kept in memory for a hundred days of runs
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # the channels log every message they "send" at INFO
    for name in PROVIDER_VARIABLES:
        os.environ.pop(name, None)


def _walk(days: int | None) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from dunning.engine import run_dunning
    from dunning.selectors import dunning_settings_get
    from notifications.letters.batch import letter_batch_mark_mailed, letter_batch_render
    from notifications.outbox import messages_send_due
    from practices.demo import DEMO_SLUG, OPS_USER
    from practices.models import Organization
    from practices.timezones import organization_today

    # The offline log mode of both channels (local settings print emails on stdout instead).
    settings.EMAIL_ENABLED = False
    settings.TWILIO_ENABLED = False

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=sys.stderr)
    org = Organization.objects.get(slug=DEMO_SLUG)
    ops = get_user_model().objects.get(username=OPS_USER)
    dunning = dunning_settings_get(organization=org)
    if dunning.preset is None:
        raise SystemExit(f"{org.slug} has no dunning preset")
    last_step = max(dunning.preset.steps.values_list("bill_age_days", flat=True))
    days = last_step + 1 + AFTER_LAST_STEP if days is None else days
    start = organization_today(org)
    zone = ZoneInfo(org.timezone)

    def at(day: date, hour: time) -> datetime:
        return datetime.combine(day, hour, tzinfo=zone)

    for offset in range(days):
        day = start + timedelta(days=offset)
        run_dunning(organization=org, on=day, now=at(day, dunning.run_at))
        messages_send_due(organization=org, now=at(day, dunning.run_at))
        messages_send_due(organization=org, now=at(day, time(12)))
        batch = letter_batch_render(organization=org, batch_date=day, now=at(day, time(22)))
        if batch is not None:
            letter_batch_mark_mailed(batch=batch, user=ops, now=at(day, time(22)))
        if offset % 10 == 0 or offset == days - 1:
            print(f"  day {offset + 1:>3} of {days}: {day}", file=sys.stderr)
    return _report(org, dunning.preset.name, start, days)


def _report(org: Any, preset: str, start: date, days: int) -> dict[str, Any]:
    from django.db.models import Count

    from dunning.models import Action, DunningDecision
    from practices.models import Bill

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    counts = (
        DunningDecision.objects.filter(organization=org, action=Action.SEND)
        .values_list("kind", "channel", "message__state", "message__reason")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for kind, channel, state, reason, n in counts:
        row = rows.setdefault(
            (kind, channel),
            {"kind": kind, "channel": channel, "send_decisions": 0, "left": 0, "not_left": defaultdict(int)},
        )
        row["send_decisions"] += n
        if state in LEFT:
            row["left"] += n
        else:
            row["not_left"][(state or "no message", reason or "")] += n
    ordered = sorted(
        rows.values(), key=lambda r: (_rank(KIND_ORDER, r["kind"]), _rank(CHANNEL_ORDER, r["channel"]))
    )
    for row in ordered:
        row["not_left"] = [
            {"state": state, "reason": reason, "count": n}
            for (state, reason), n in sorted(row["not_left"].items())
        ]
    bills = dict(
        Bill.objects.filter(organization=org).values_list("state").annotate(n=Count("pk")).order_by()
    )
    return {
        "organization": org.slug,
        "preset": preset,
        "start": start.isoformat(),
        "end": (start + timedelta(days=days - 1)).isoformat(),
        "days": days,
        "bills": bills,
        "rows": ordered,
        "final": _total([r for r in ordered if r["kind"] == "final"]),
        "total": _total(ordered),
    }


def _rank(order: list[str], value: str) -> int:
    return order.index(value) if value in order else len(order)


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    not_left: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        for item in row["not_left"]:
            not_left[(item["state"], item["reason"])] += item["count"]
    return {
        "send_decisions": sum(r["send_decisions"] for r in rows),
        "left": sum(r["left"] for r in rows),
        "not_left": [{"state": s, "reason": r, "count": n} for (s, r), n in sorted(not_left.items())],
    }


def _table(report: dict[str, Any]) -> str:
    out = StringIO()
    bills = ", ".join(f"{state} {n}" for state, n in sorted(report["bills"].items()))
    out.write(
        f"{report['organization']} on {report['preset']}: {report['days']} days walked, {report['start']} to "
        f"{report['end']}; bills at the end: {bills}\n\n"
    )
    header = f"{'kind':<12} {'channel':<8} {'send decisions':>14} {'left us':>8}  did not leave (state/reason count)"
    out.write(header + "\n" + "-" * len(header) + "\n")

    def line(kind: str, channel: str, row: dict[str, Any]) -> None:
        missed = ", ".join(
            f"{item['state']}{'/' + item['reason'] if item['reason'] else ''} {item['count']}"
            for item in row["not_left"]
        )
        out.write(f"{kind:<12} {channel:<8} {row['send_decisions']:>14} {row['left']:>8}  {missed or '-'}\n")

    for row in report["rows"]:
        if row["kind"] != "final":
            line(row["kind"], row["channel"], row)
    out.write("\n")
    for row in report["rows"]:
        if row["kind"] == "final":
            line("final", row["channel"], row)
    line("final", "all", report["final"])
    out.write("-" * len(header) + "\n")
    line("total", "", report["total"])
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--days", type=int, help="days to walk from today (default: a few past the last step)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory and say where it is")
    args = parser.parse_args(argv)
    if args.days is not None and args.days < 1:
        parser.error("--days must be 1 or more")

    directory = Path(tempfile.mkdtemp(prefix="walk-demo-"))
    try:
        _scratch_environment(directory)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        print(f"Scratch database in {directory}", file=sys.stderr)
        report = _walk(args.days)
    finally:
        if args.keep:
            print(f"Kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else _table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
