from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from payments.results.selectors import RangeError, Report, report_json, results_report
from payments.results.tables import report_tables
from practices.management.commands._base import ContractCommand, parse_date
from practices.timezones import organization_today


class Command(ContractCommand):
    help = (
        "The Results of an organization (SPEC §16) from --since to --until (default today), days in the "
        "organization's time zone: the funnel (sent, delivered, link opened, verified, paid) by channel, kind "
        "and preset step, dollars recovered per week, the median days from first message to payment, the "
        "undeliverable rate by reason, paper cost against what paper-reached campaigns paid, and AR by aging "
        "bucket over time; the same figures as the Results page. A range ending before it starts, over 3 years "
        "or a bad date exits 2."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--since", required=True, help="YYYY-MM-DD, the first day")
        parser.add_argument("--until", help="YYYY-MM-DD, the last day (default: today)")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        since = parse_date(options["since"], option="--since")
        until = (
            parse_date(options["until"], option="--until")
            if options["until"]
            else organization_today(organization)
        )
        try:
            report = results_report(organization=organization, since=since, until=until)
        except RangeError as exc:
            raise CommandError(str(exc), returncode=2) from None
        if options["json"]:
            self.emit_json(report_json(report))
            return
        self._print(report)

    def _print(self, report: Report) -> None:
        out = self.stdout
        org = report.organization
        out.write(f"Results of {org.name} ({org.slug}), {report.since} to {report.until} ({org.timezone})")
        for table in report_tables(report).values():
            out.write("")
            out.write(table.title)
            rows = [table.header, *[[c.text for c in row] for row in table.rows]]
            if table.footer:
                rows.append([c.text for c in table.footer])
            if len(rows) == 1:
                out.write("  (nothing in this range)")
                continue
            widths = [max(len(str(row[i])) for row in rows) for i in range(len(table.header))]
            for row in rows:
                cells = [
                    str(cell).ljust(w) if i == 0 else str(cell).rjust(w)
                    for i, (cell, w) in enumerate(zip(row, widths, strict=True))
                ]
                out.write("  " + "  ".join(cells))
        median = "—" if report.median_days is None else f"{report.median_days} days"
        out.write("")
        out.write(f"Median from first message to payment: {median} ({report.timed_payments} payments)")
