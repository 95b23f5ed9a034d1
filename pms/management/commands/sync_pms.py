from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from pms.services import pms_sync
from practices.management.commands._base import ContractCommand


class Command(ContractCommand):
    help = (
        "Sync an organization with its PMS (SPEC §13.2): post back the payments not yet posted, read the PMS "
        "through its connector (Open Dental) and import it like a feed, then post back what was taken meanwhile. "
        "Same summary and exit codes as import_feed: 0 nothing rejected, 3 some records rejected, 2 unusable "
        "(no connector, stale), 1 the PMS could not be read completely (nothing imported; try again)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True, metavar="SLUG")
        parser.add_argument("--full", action="store_true", help="read everything, not only what changed")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        result = pms_sync(organization=organization, full=options["full"])
        summary = result.summary
        if options["json"]:
            self.emit_json(result.as_json())
        else:
            kind = "full" if result.full else "incremental"
            self.stdout.write(
                f"applied {summary.applied}, rejected {summary.rejected} ({kind} read, {result.requests} requests)"
            )
            for problem in summary.errors:
                self.stdout.write(f"  error   {problem['pointer'] or '/'}: {problem['message']}")
            for problem in summary.warnings:
                self.stdout.write(f"  warning {problem['pointer'] or '/'}: {problem['message']}")
            posting = result.posting
            self.stdout.write(
                f"payments: {posting.posted} posted, {posting.found} found already posted, {posting.failed} "
                f"refused, {posting.pending} left for the next sync"
            )
        code = result.exit_code
        if code == 1:
            raise CommandError(summary.reason, returncode=1)
        if code == 2:
            raise CommandError(summary.reason, returncode=2)
        if code == 3:
            raise CommandError(f"{summary.rejected} record(s) rejected", returncode=3)
