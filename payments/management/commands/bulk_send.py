from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone

from payments.campaigns import bulk_send, campaign_rows
from practices.management.commands._base import ContractCommand
from practices.models import Organization
from practices.timezones import organization_today

# A date and a time at least to the minute, an optional offset or Z: no bare dates, no week dates.
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")


def parse_at(raw: str | None, *, organization: Organization) -> datetime:
    """``--at``: an ISO 8601 date-time; without an offset it is read in the organization's time zone.

    None means now. Anything else exits 2.
    """
    if raw is None:
        return timezone.now()
    try:
        if not _ISO_DATETIME.fullmatch(raw.strip()):
            raise ValueError(raw)
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise CommandError(
            f"--at must be an ISO 8601 date-time such as 2026-11-24T09:30 or 2026-11-24T16:30:00Z, got {raw!r}",
            returncode=2,
        ) from None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=organization.tzinfo)
    return moment


def parse_id_list(raw: str | None, *, option: str) -> list[str] | None:
    if raw is None:
        return None
    ids = list(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    if not ids:
        raise CommandError(f"{option} needs at least one guarantor id", returncode=2)
    return ids


class Command(ContractCommand):
    help = (
        "Send a bulk payment request (B2, B5) as of --at (default now): every guarantor on the list of the "
        "organization's date of --at (recomputed now), narrowed by --only, less --exclude. An id in --only that "
        "is not eligible is skipped, not forced. A --at without an offset is read in the organization's time "
        "zone. Running it again for the same date starts nothing new. Bad input exits 2."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--only", help="comma list of guarantor ids: send to these only, if eligible")
        parser.add_argument("--exclude", help="comma list of guarantor ids to leave out")
        parser.add_argument(
            "--at", help="ISO 8601 date-time (default: now; no offset: the organization's zone)"
        )
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        at = parse_at(options["at"], organization=organization)
        only = parse_id_list(options["only"], option="--only")
        exclude = parse_id_list(options["exclude"], option="--exclude")
        bills = bulk_send(
            organization=organization, at=at, only=only, exclude=exclude, actor_label="command:bulk_send"
        )
        rows = campaign_rows(bills)
        on = organization_today(organization, at=at)
        skipped = sorted(set(only or []) - {row["guarantor_id"] for row in rows})
        if skipped:
            self.stderr.write(f"not eligible on {on.isoformat()}, skipped: {', '.join(skipped)}")
        if options["json"]:
            self.emit_json(rows)
            return
        for row in rows:
            states = ", ".join(f"{m['channel']} {m['state']}" for m in row["messages"]) or "no channels"
            self.stdout.write(f"{row['guarantor_id']:<14} {row['bill_id']:<40} {states}")
        self.stdout.write(f"{len(rows)} payment request(s) sent for {on.isoformat()}")
