"""PMS sync (SPEC §11, §13.2 C1): a full ``pms_sync`` of 20 000 patients in families from the fake Open Dental.

The fake (``tests/fakes/opendental_server.py``, Open Dental's documented shapes and paging) serves an office
built by its ``populate``: families of one to five, about a third owing (aging, a statement each, some plans
and claims), completed appointments, and Open Dental's quirks (0001-01-01 birthdates, states in full, ZIPs
that lost their zero, doubles). It runs in a forked process, as the practice's Open Dental would run
elsewhere, so that the server takes none of the client's time. Each repetition syncs a new organization (the
onboarding case: a full read, every row new) and times the whole sync: every request (patients page by page,
aging and payment plans of each owing family on ``PMS_CONCURRENCY`` connections, statements, open claims,
appointments), the mapping, and the import of the feed.

The baseline imports the very feed that sync built and kept (FeedImport.raw, its organization renamed) into
another new organization with ``import_feed`` from a file: the same import work, every row the same, without
reading the API. The ratio is what reading Open Dental costs on top of the import.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from functools import partial
from io import StringIO
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

from bench import data
from bench.harness import Row, median, row, say, timed
from bench.workloads import Context
from pms.services import pms_sync
from practices.importer import feed_import
from practices.models import FeedImport, FeedStatus, Patient
from practices.org_settings import org_settings_update
from tests.fakes.opendental_server import FakeOpenDental, populate

SYNC_AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BUDGET = "≤ 60 s, ratio ≤ 1.5"


def run(ctx: Context) -> list[Row]:
    n = ctx.n(20_000, minimum=200)
    reps = 3
    if not settings.PMS_KEYS_FERNET_KEY:
        from cryptography.fernet import Fernet

        settings.PMS_KEYS_FERNET_KEY = Fernet.generate_key().decode()
    fake = FakeOpenDental()
    families = populate(fake, patients=n)
    fake.advance(minutes=5)
    fake.start_in_process()
    syncs, imports, requests = [], [], 0
    _warm_up()
    try:
        for rep in range(reps):
            org = data.organization(f"pms-{rep}")
            org_settings_update(
                organization=org, actor_label="bench",
                assignments=["pms=opendental", f"pms_base_url={fake.base_url}",
                             f"pms_developer_key={fake.developer_key}", f"pms_customer_key={fake.customer_key}"],
            )  # fmt: skip
            seconds, result = timed(partial(pms_sync, organization=org, now=SYNC_AT))
            summary = result.summary
            if summary.status != FeedStatus.APPLIED or summary.rejected or not result.full:
                raise RuntimeError(
                    f"the bench sync did not import cleanly: {summary.status} {summary.errors[:3]}"
                )
            if Patient.objects.filter(organization=org).count() != n:
                raise RuntimeError("the bench sync did not mirror every patient")
            syncs.append(seconds)
            requests = result.requests
            baseline = _import_as_file(
                FeedImport.objects.get(pk=summary.feed_import_id).raw, f"pmsfile-{rep}"
            )
            imports.append(baseline)
            say(
                f"pms sync {rep + 1}/{reps}: {seconds:.2f} s ({requests} requests); import_feed of its feed {baseline:.2f} s"
            )
    finally:
        fake.stop()
    value, baseline = median(syncs), median(imports)
    return [
        row("pms_sync", value=value, unit="s", baseline=baseline, budget=BUDGET,
            ok=value <= 60 and value / baseline <= 1.5, reps=syncs,
            notes=f"{n:,} patients in {families:,} families from the fake Open Dental API, full read, {requests:,} "
                  f"requests, {settings.PMS_CONCURRENCY} connections; baseline import_feed of the same feed as a "
                  f"file; median of {reps}"),
    ]  # fmt: skip


def _warm_up() -> None:
    """The importer's one-off loads (the ZIP table, phone metadata) before anything is timed, so that the
    first sync does not pay for what its baseline then finds loaded."""
    data.organization("pms-warm-up")
    feed = {"organization": "pms-warm-up", "generated_at": SYNC_AT.isoformat(), "statements": [], "patients": [
        {"id": "1", "guarantor_id": "1", "first_name": "A", "last_name": "B", "mobile_phone": "(801)555-0100",
         "address": {"line1": "1 Main St", "city": "Boston", "state": "MA", "zip": "2108"}}]}  # fmt: skip
    feed_import(raw=json.dumps(feed).encode(), organization_slug="pms-warm-up")


def _import_as_file(raw: str, slug: str) -> float:
    data.organization(slug)
    document = json.loads(raw)
    document["organization"] = slug
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "feed.json"
        path.write_text(json.dumps(document, separators=(",", ":")))
        seconds, _ = timed(partial(call_command, "import_feed", str(path), "--org", slug, stdout=StringIO()))
    summary = FeedImport.objects.filter(organization__slug=slug).latest("id")
    if summary.status != FeedStatus.APPLIED or summary.rejected_count:
        raise RuntimeError(f"the baseline import did not import cleanly: {summary.status}")
    return seconds
