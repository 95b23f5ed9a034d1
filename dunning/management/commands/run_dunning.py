from __future__ import annotations

from typing import Any

from dunning.engine import run_dunning
from practices.management.commands._base import ContractCommand, parse_date
from practices.models import Organization
from practices.timezones import organization_today


class Command(ContractCommand):
    help = (
        "Run the dunning engine (SPEC §7) for a date (default: today in each organization's zone). Prints the "
        "decisions taken in this run; running twice for one date decides nothing the second time."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", help="the organization's slug (default: every organization)")
        parser.add_argument("--date", help="YYYY-MM-DD")
        parser.add_argument("--dry-run", action="store_true", help="decide, print, and write nothing")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        on = parse_date(options["date"], option="--date") if options["date"] else None
        organizations = (
            [self.organization(options["org"])]
            if options["org"]
            else list(Organization.objects.order_by("slug"))
        )
        rows: list[dict[str, Any]] = []
        for organization in organizations:
            day = on or organization_today(organization)
            decisions = run_dunning(organization=organization, on=day, dry_run=options["dry_run"])
            rows.extend(d.as_json() for d in decisions)
        rows.sort(key=lambda r: (r["bill_id"], r["step_age_days"], r["channel"]))
        if options["json"]:
            self.emit_json(rows)
            return
        for row in rows:
            self.stdout.write(
                f"{row['bill_id']:<16} g{row['generation']} age {row['bill_age_days']:>3} step {row['step_age_days']:>3} "
                f"{row['kind']:<12} {row['channel']:<6} {row['action']:<5} {row['reason']}"
            )
        self.stderr.write(
            f"{len(rows)} decision(s){' (dry run, nothing written)' if options['dry_run'] else ''}"
        )
