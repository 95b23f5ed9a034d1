"""The PMS sync (C1-C3): post back, read the office's PMS completely, import it as a feed, post back again.

A sync that cannot read everything imports nothing: it is recorded like a failed import (a FeedImport with
status ``failed`` and the reason, source ``opendental``) and the next sync starts over from the last complete
one. A complete read goes through the importer like any feed (every I-rule holds; the feed is kept as
received, with its source). Incremental reads ask only for what changed since the last complete read; a full
read happens at least every ``FULL_SYNC_EVERY``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from pms.connections import PmsConfigError, connection_get, opendental_client
from pms.models import Connection, PmsKind
from pms.opendental.client import OpenDentalClient, OpenDentalError
from pms.opendental.mapping import BILL_PREFIX, build_feed
from pms.opendental.reader import Known, read_office
from pms.opendental.values import stamp_before
from pms.posting import PostingResult, pms_post_payments
from practices.importer import ImportSummary, feed_import
from practices.models import (
    BILL_OWING_STATES,
    Account,
    Bill,
    FeedImport,
    FeedSource,
    FeedStatus,
    Organization,
    Patient,
)
from practices.timezones import organization_today

logger = logging.getLogger(__name__)

FULL_SYNC_EVERY = timedelta(days=7)


@dataclass
class SyncResult:
    """What a sync did: the import's summary (the contract of import_feed, SPEC §10) and the posting."""

    summary: ImportSummary
    full: bool = False
    requests: int = 0
    posting: PostingResult = field(default_factory=PostingResult)

    def as_json(self) -> dict[str, Any]:
        return {**self.summary.as_json(), "full": self.full, "requests": self.requests,
                "payments": self.posting.as_json()}  # fmt: skip

    @property
    def exit_code(self) -> int:
        return self.summary.exit_code


def known_for(organization: Organization) -> Known:
    """What the organization mirrors already, in three set-based reads."""
    guarantor_of: dict[str, str] = {}
    last_visit: dict[str, date] = {}
    open_claims: dict[str, int] = {}
    rows = Patient.objects.filter(organization=organization).values_list(
        "external_id", "guarantor_external_id", "last_visit_date", "open_claims", "is_guarantor"
    )
    for external_id, guarantor, visit, claims, is_guarantor in rows.iterator(chunk_size=5000):
        guarantor_of[external_id] = guarantor
        if visit is not None:
            last_visit[external_id] = visit
        if is_guarantor:
            open_claims[external_id] = claims
    owing = Account.objects.filter(organization=organization).filter(~Q(total=0) | ~Q(patient_portion=0))
    bills = Bill.objects.filter(
        organization=organization, state__in=BILL_OWING_STATES, bill_id__startswith=BILL_PREFIX
    )
    return Known(
        guarantor_of=guarantor_of, last_visit=last_visit, open_claims=open_claims,
        owing=frozenset(owing.values_list("guarantor__external_id", flat=True)),
        owing_bills=frozenset(bills.values_list("bill_id", flat=True)),
    )  # fmt: skip


def _failed(organization: Organization, reason: str, started: float) -> ImportSummary:
    """A sync that read nothing usable, recorded like a failed import: nothing applied, the reason kept."""
    summary = ImportSummary(
        status=FeedStatus.FAILED, reason=f"the PMS sync failed and nothing was imported: {reason}"
    )
    summary.errors = [{"pointer": "", "message": summary.reason[:1000]}]
    feed = FeedImport.objects.create(
        organization=organization, source=FeedSource.OPENDENTAL, checksum=hashlib.sha256(b"").hexdigest(), raw="",
        status=FeedStatus.FAILED, errors=summary.errors, duration_ms=int((time.monotonic() - started) * 1000),
    )  # fmt: skip
    summary.feed_import_id = feed.pk
    return summary


def _post(
    organization: Organization, connection: Connection, client: OpenDentalClient, result: SyncResult
) -> None:
    try:
        result.posting.add(pms_post_payments(organization=organization, connection=connection, client=client))
    except OpenDentalError as exc:  # the auth errors of a first request, say; the read will say the same
        result.posting.errors.append(f"payments were not posted: {exc}")


def pms_sync(
    *, organization: Organization, full: bool = False, now: datetime | None = None,
    client: OpenDentalClient | None = None,
) -> SyncResult:  # fmt: skip
    """Sync one organization with its PMS (``sync_pms``, the daily beat task).

    Payments not yet in the PMS are posted first, so that the balances read include them (the importer's
    re-application of unposted payments counts only those taken after the read began), then again at the
    end for those taken meanwhile.
    """
    started = time.monotonic()
    moment = now or timezone.now()
    connection = connection_get(organization=organization)
    if connection.pms == PmsKind.NONE:
        summary = ImportSummary(
            status=FeedStatus.UNUSABLE, reason="the organization has no PMS connector (org_settings pms=none)"
        )
        summary.errors = [{"pointer": "", "message": summary.reason}]
        return SyncResult(summary=summary)
    try:
        client = client or opendental_client(connection)
    except PmsConfigError as exc:
        return _finish(connection, SyncResult(summary=_failed(organization, str(exc), started)), moment)

    result = SyncResult(summary=ImportSummary(status=FeedStatus.FAILED))
    try:
        _post(organization, connection, client, result)
        full = (
            full
            or not connection.change_stamp
            or connection.last_full_sync_at is None
            or (moment - connection.last_full_sync_at >= FULL_SYNC_EVERY)
        )
        result.full = full
        known = known_for(organization)
        today = organization_today(organization, at=moment)
        try:
            read = read_office(
                client=client, today=today, known=known, stamp="" if full else connection.change_stamp,
                workers=settings.PMS_CONCURRENCY,
            )  # fmt: skip
        except OpenDentalError as exc:
            result.requests = client.requests_made
            result.summary = _failed(organization, str(exc), started)
            return _finish(connection, result, moment)
        document, notes = build_feed(
            read=read, known=known, organization=organization.slug, today=today,
            generated_at=moment.isoformat().replace("+00:00", "Z"),
            no_contact_types=frozenset(name.lower() for name in connection.no_contact_billing_types or []),
        )  # fmt: skip
        raw = json.dumps(document, separators=(",", ":")).encode()
        server_time = read.server_time
        # What was read is in the feed now: let it go before the import (the garbage collector would walk
        # it again and again while the importer allocates).
        del read, document, known
        summary = feed_import(raw=raw, source=FeedSource.OPENDENTAL, organization=organization)
        if notes and summary.feed_import_id is not None:
            summary.warnings = [*summary.warnings, *notes]
            FeedImport.objects.filter(pk=summary.feed_import_id).update(warnings=summary.warnings)
        result.summary = summary
        if summary.status in (FeedStatus.APPLIED, FeedStatus.PARTIAL, FeedStatus.DUPLICATE):
            # What the next incremental read asks for; with nothing changed, nothing answered a server time.
            stamp = stamp_before(server_time) if server_time else connection.change_stamp
            Connection.objects.filter(pk=connection.pk).update(change_stamp=stamp)
            if full:
                Connection.objects.filter(pk=connection.pk).update(last_full_sync_at=moment)
        _post(organization, connection, client, result)
        result.requests = client.requests_made
        if result.posting.errors:
            result.summary.warnings = [
                *result.summary.warnings,
                *({"pointer": "", "message": e} for e in result.posting.errors),
            ]
        return _finish(connection, result, moment)
    finally:
        client.close()


def _finish(connection: Connection, result: SyncResult, moment: datetime) -> SyncResult:
    if connection.pk is not None:
        Connection.objects.filter(pk=connection.pk).update(
            last_sync_at=moment, last_sync_status=result.summary.status,
            last_sync_reason=result.summary.reason[:2000], last_sync_feed_id=result.summary.feed_import_id,
        )  # fmt: skip
    logger.info(
        "PMS sync of %s: %s (%s requests)", connection.organization_id, result.summary.status, result.requests
    )
    return result


def organizations_due_for_sync(*, now: datetime | None = None) -> list[int]:
    """Organizations on Open Dental whose local ``sync_time`` has passed today and whose sync of today has not
    been started; each is claimed for today with a conditional UPDATE (a second tick finds it taken)."""
    moment = now or timezone.now()
    due = []
    for connection in Connection.objects.filter(pms=PmsKind.OPENDENTAL).select_related("organization"):
        local = moment.astimezone(connection.organization.tzinfo)
        if local.time() < connection.sync_time:
            continue
        today = local.date()
        claimed = (
            Connection.objects.filter(pk=connection.pk)
            .filter(Q(scheduled_on__isnull=True) | Q(scheduled_on__lt=today))
            .update(scheduled_on=today)
        )
        if claimed:
            due.append(connection.organization_id)
    return due
