from __future__ import annotations

from typing import Any

from notifications.letters.batch import letter_batch_render
from notifications.models import LetterBatch
from practices.management.commands._base import ContractCommand, parse_date


class Command(ContractCommand):
    help = (
        "Render the organization's pending paper letters into a batch PDF and CSV manifest (L1) and print "
        "the PDF's path on stdout, one line per batch (more than one only above 10 000 letters). Prints "
        "'no pending letters' on stderr when there is nothing to render. Exits 2 for an unknown "
        "organization or a bad date."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True, metavar="SLUG")
        parser.add_argument("--date", metavar="YYYY-MM-DD", help="the batch date; default the org's today")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_date = parse_date(options["date"], option="--date") if options["date"] else None
        organization = self.organization(options["org"])
        rendered = 0
        # Each call claims at most one batch's worth of pending letters and leaves none of them pending.
        while batch := letter_batch_render(organization=organization, batch_date=batch_date):
            self.stdout.write(_path(batch))
            rendered += 1
        if not rendered:
            self.stderr.write("no pending letters")


def _path(batch: LetterBatch) -> str:
    try:
        return batch.pdf.path
    except NotImplementedError:  # a storage without local files: its name is what ops can look up
        return batch.pdf.name
