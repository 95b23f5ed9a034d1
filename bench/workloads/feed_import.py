"""Feed import (SPEC §11, I0-I6): ``feed_import`` of a 100 000-patient + 100 000-statement feed.

Each repetition imports a freshly generated feed (``bench/feeds.py``; 60 MB of JSON) into a new organization
(the onboarding case: every row is new) and times the whole service: parsing, validating every record,
deriving time zones and address status, the set-based writes and the stored raw feed. The baseline writes
the very rows that import produced (read back, untimed) into another new organization with hand-written SQL:
COPY into temporary tables, then ``INSERT … ON CONFLICT DO UPDATE`` for patients, the guarantor link, accounts
and bills, in one transaction, with no parsing or validation. Two repetitions of each at full scale (half a minute
each), five at small scales.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import connection, transaction

from bench import data
from bench.feeds import big_feed
from bench.harness import Row, median, row, say, timed
from bench.workloads import Context
from practices.importer import feed_import
from practices.models import Account, Bill, Patient

PATIENT_COLUMNS = [
    "external_id", "guarantor_external_id", "is_guarantor", "first_name", "last_name", "date_of_birth", "email",
    "mobile_phone", "address_line1", "address_line2", "address_city", "address_state", "address_zip", "address_status",
    "timezone", "timezone_source", "last_visit_date", "on_payment_plan", "open_claims", "do_not_contact",
    "pms_sms_opt_out", "pms_email_opt_out", "last_feed_at", "home_phone", "work_phone", "sms_consent",
    "preferred_name", "language", "care_of", "deceased",
]  # fmt: skip
ACCOUNT_COLUMNS = [
    "bucket_0_30", "bucket_31_60", "bucket_61_90", "bucket_over_90", "insurance_estimate", "total", "patient_portion",
    "aging_category", "as_of",
]  # fmt: skip
BILL_COLUMNS = [
    "bill_id", "source", "statement_date", "due_date", "amount_due", "created_at", "effective_created_date",
    "generation", "dunning_status", "state", "last_seen_at", "next_dunning_date", "amount_changed", "patient_id",
    "sent_by_pms",
]  # fmt: skip


def run(ctx: Context) -> list[Row]:
    n = ctx.n(100_000, minimum=100)
    reps = 2 if ctx.scale >= 0.5 else 5  # about 30 s a repetition at full size
    imports, baselines = [], []
    for rep in range(reps):
        slug = f"feed-{rep}"
        data.organization(slug)
        raw = big_feed(n, slug=slug)
        seconds, summary = timed(partial(feed_import, raw=raw, organization_slug=slug))
        if summary.rejected or summary.applied != 2 * n:
            raise RuntimeError(f"the bench feed did not import cleanly: {summary.as_json()}")
        imports.append(seconds)
        rows = _rows_of(slug)
        target = data.organization(f"feedsql-{rep}")
        baseline, _ = timed(partial(_raw_upsert, target.pk, rows))
        baselines.append(baseline)
        say(
            f"feed import {rep + 1}/{reps}: {seconds:.1f} s; raw SQL upsert {baseline:.1f} s ({len(raw) / 1e6:.0f} MB)"
        )
    value, baseline = median(imports), median(baselines)
    return [
        row("feed_import", value=value, unit="s", baseline=baseline, budget="≤ 30 s, ratio ≤ 3",
            ok=value <= 30 and value / baseline <= 3, reps=imports,
            notes=f"{n:,} patients + {n:,} statements into a new organization; median of {reps}"),
    ]  # fmt: skip


def _rows_of(slug: str) -> dict[str, list[tuple[Any, ...]]]:
    patients = list(
        Patient.objects.filter(organization__slug=slug).order_by("pk").values_list(*PATIENT_COLUMNS)
    )
    accounts = list(
        Account.objects.filter(organization__slug=slug)
        .order_by("pk")
        .values_list("guarantor__external_id", *ACCOUNT_COLUMNS)
    )
    bills = list(
        Bill.objects.filter(organization__slug=slug)
        .order_by("pk")
        .values_list("guarantor__external_id", *BILL_COLUMNS)
    )
    return {"patients": patients, "accounts": accounts, "bills": bills}


def _copy(cursor: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for values in rows:
            copy.write_row(values)


def _raw_upsert(org_id: int, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """The same rows, hand-written: COPY into temporary tables and INSERT … ON CONFLICT DO UPDATE."""
    patient_cols = ", ".join(PATIENT_COLUMNS)
    account_cols = ", ".join(ACCOUNT_COLUMNS)
    bill_cols = ", ".join(BILL_COLUMNS)
    p_update = ", ".join(f"{c} = EXCLUDED.{c}" for c in PATIENT_COLUMNS if c != "external_id")
    a_update = ", ".join(f"{c} = EXCLUDED.{c}" for c in ACCOUNT_COLUMNS)
    b_update = ", ".join(f"{c} = EXCLUDED.{c}" for c in BILL_COLUMNS if c != "bill_id")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE raw_patient ON COMMIT DROP AS SELECT {patient_cols} FROM practices_patient WITH NO DATA;"
            f"CREATE TEMP TABLE raw_account ON COMMIT DROP AS SELECT ''::varchar AS g, {account_cols} "
            "FROM practices_account WITH NO DATA;"
            f"CREATE TEMP TABLE raw_bill ON COMMIT DROP AS SELECT ''::varchar AS g, {bill_cols} FROM practices_bill WITH NO DATA"
        )  # fmt: skip
        _copy(cursor, "raw_patient", PATIENT_COLUMNS, rows["patients"])
        _copy(cursor, "raw_account", ["g", *ACCOUNT_COLUMNS], rows["accounts"])
        _copy(cursor, "raw_bill", ["g", *BILL_COLUMNS], rows["bills"])
        cursor.execute(
            f"""
            INSERT INTO practices_patient (organization_id, {patient_cols}) SELECT %(org)s, {patient_cols} FROM raw_patient
            ON CONFLICT (organization_id, external_id) DO UPDATE SET {p_update};
            UPDATE practices_patient p SET guarantor_id = g.id FROM practices_patient g
            WHERE p.organization_id = %(org)s AND g.organization_id = %(org)s AND g.external_id = p.guarantor_external_id
              AND p.guarantor_id IS DISTINCT FROM g.id;
            INSERT INTO practices_account (organization_id, guarantor_id, {account_cols})
            SELECT %(org)s, p.id, {", ".join(f"r.{c}" for c in ACCOUNT_COLUMNS)} FROM raw_account r
            JOIN practices_patient p ON p.organization_id = %(org)s AND p.external_id = r.g
            ON CONFLICT (guarantor_id) DO UPDATE SET {a_update};
            INSERT INTO practices_bill (organization_id, guarantor_id, {bill_cols})
            SELECT %(org)s, p.id, {", ".join(f"r.{c}" for c in BILL_COLUMNS)} FROM raw_bill r
            JOIN practices_patient p ON p.organization_id = %(org)s AND p.external_id = r.g
            ON CONFLICT (organization_id, bill_id) DO UPDATE SET {b_update};
            """,
            {"org": org_id},
        )  # fmt: skip
