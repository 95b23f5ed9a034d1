from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from practices.importer import feed_import
from practices.management.commands._base import ContractCommand
from practices.models import FeedSource


class Command(ContractCommand):
    help = (
        "Import a PMS feed (SPEC §3). Exit 0 when nothing was rejected, 3 when some records were rejected, "
        "2 when the document is unusable (unreadable, not JSON, wrong shape, unknown organization, stale)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", help="the feed document (JSON)")
        parser.add_argument("--org", help="the organization's slug (default: the feed's 'organization')")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            raw = Path(options["path"]).read_bytes()
        except OSError as exc:
            reason = f"cannot read {options['path']}: {exc.strerror or exc}"
            if options["json"]:
                self.emit_json({"applied": 0, "rejected": 0, "errors": [{"pointer": "", "message": reason}],
                                "warnings": []})  # fmt: skip
            raise CommandError(reason, returncode=2) from None

        summary = feed_import(raw=raw, source=FeedSource.COMMAND, organization_slug=options["org"])
        if options["json"]:
            self.emit_json(summary.as_json())
        else:
            self.stdout.write(f"applied {summary.applied}, rejected {summary.rejected}")
            for problem in summary.errors:
                self.stdout.write(f"  error   {problem['pointer'] or '/'}: {problem['message']}")
            for problem in summary.warnings:
                self.stdout.write(f"  warning {problem['pointer'] or '/'}: {problem['message']}")
        if summary.exit_code == 1:
            raise CommandError(summary.reason, returncode=1)
        if summary.exit_code == 2:
            raise CommandError(summary.reason, returncode=2)
        if summary.exit_code == 3:
            raise CommandError(f"{summary.rejected} record(s) rejected", returncode=3)
