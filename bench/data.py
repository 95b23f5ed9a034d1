"""Set-based data for the workloads: organizations, guarantors with accounts, bills, decisions.

Rows are made by ``INSERT … SELECT … FROM generate_series`` on the server (a million patients take seconds),
with the per-row variety (missing contacts, opt-outs, do-not-contact, invalid addresses) derived from the
row number so that every run sees the same data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from django.db import connection
from django.db.models import Model
from django.db.models.fields import NOT_PROVIDED

from practices.models import Organization

FEED_TIME = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def execute(statement: str, params: Any = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def scalar(statement: str, params: Any = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def insert_select(model: type[Model], values: dict[str, str], source: str, params: Any = None) -> int:
    """``INSERT INTO model (…) SELECT <values> <source>``; every NOT NULL column without a database default
    must be given."""
    columns = []
    expressions = []
    for field in model._meta.concrete_fields:
        if field.attname in values:
            columns.append(field.column)
            expressions.append(values[field.attname])
        elif not (field.null or field.primary_key or field.db_default is not NOT_PROVIDED):
            raise ValueError(f"{model.__name__}.{field.attname} needs a value")
    unknown = set(values) - {f.attname for f in model._meta.concrete_fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no {sorted(unknown)}")
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    return execute(f"INSERT INTO {table(model)} ({quoted}) SELECT {', '.join(expressions)} {source}", params)


def organization(slug: str, *, timezone: str = "America/Denver") -> Organization:
    return Organization.objects.create(
        slug=slug, name=f"Bench {slug}", timezone=timezone, phone="+18015550199",
        return_address_line1="100 Main St", return_address_city="Salt Lake City", return_address_state="UT",
        return_address_zip="84101", twilio_from_number="+15005550006",
    )  # fmt: skip


def guarantors(
    org: Organization, count: int, *, first: int = 1, prefix: str = "G", mixed: bool = True
) -> None:
    """``count`` guarantors (ids ``prefix`` + 7 digits from ``first``), each with an account of ~$50-$950 in
    the 0-30 bucket. ``mixed``: some without email or phone, opted out in the PMS, do-not-contact, with an
    invalid address (each a few percent, by row number)."""
    from practices.models import Account, Patient

    m = "true" if mixed else "false"
    insert_select(
        Patient,
        {
            "id": "s.id",
            "organization_id": "%(org)s",
            "external_id": "%(prefix)s || lpad(s.g::text, 7, '0')",
            "guarantor_id": "s.id",
            "guarantor_external_id": "%(prefix)s || lpad(s.g::text, 7, '0')",
            "is_guarantor": "true",
            "first_name": "(ARRAY['Ana','Ben','Chloe','Dev','Elena','Farid','Grace','Hugo'])[1 + s.g %% 8]",
            "last_name": "'Diaz' || (s.g %% 997)",
            "date_of_birth": "date '1950-01-01' + (s.g %% 20000)",
            "email": f"CASE WHEN {m} AND s.g %% 23 = 0 THEN '' ELSE 'p' || s.g || '@example.com' END",
            "mobile_phone": f"CASE WHEN {m} AND s.g %% 29 = 0 THEN '' ELSE '+1801555' || lpad((s.g %% 10000)::text, 4, '0') END",
            "address_line1": "(1 + s.g %% 9000) || ' Main St'",
            "address_line2": "''",
            "address_city": "'Salt Lake City'",
            "address_state": "'UT'",
            "address_zip": "'84101'",
            "address_status": f"CASE WHEN {m} AND s.g %% 31 = 0 THEN 'invalid' ELSE 'valid' END",
            "timezone": "'America/Denver'",
            "timezone_source": "'zip'",
            "last_visit_date": "date '2026-11-24' - (30 + s.g %% 400)",
            "on_payment_plan": "false",
            "open_claims": "s.g %% 3",
            "do_not_contact": f"{m} AND s.g %% 97 = 0",
            "pms_sms_opt_out": f"{m} AND s.g %% 41 = 0",
            "pms_email_opt_out": f"{m} AND s.g %% 43 = 0",
            "last_feed_at": "%(at)s",
        },
        "FROM (SELECT g, nextval(pg_get_serial_sequence('practices_patient', 'id')) AS id "
        "FROM generate_series(%(first)s, %(last)s) g) s",
        {"org": org.pk, "prefix": prefix, "first": first, "last": first + count - 1, "at": FEED_TIME},
    )  # fmt: skip
    insert_select(
        Account,
        {
            "organization_id": "p.organization_id",
            "guarantor_id": "p.id",
            "bucket_0_30": "50 + (p.id %% 900) + 0.25",
            "bucket_31_60": "0",
            "bucket_61_90": "0",
            "bucket_over_90": "0",
            "insurance_estimate": "10",
            "total": "50 + (p.id %% 900) + 0.25",
            "patient_portion": "40 + (p.id %% 900) + 0.25",
            "aging_category": "'0_30'",
            "as_of": "%(at)s",
        },
        f"FROM {table(Patient)} p WHERE p.organization_id = %(org)s AND p.external_id >= %(lo)s "
        "AND p.external_id <= %(hi)s",
        {
            "org": org.pk,
            "at": FEED_TIME,
            "lo": f"{prefix}{first:07d}",
            "hi": f"{prefix}{first + count - 1:07d}",
        },
    )


def statement_bills(org: Organization, *, effective: str, next_date: str = "NULL", params: Any = None) -> int:
    """One active statement bill per guarantor of ``org`` (``S-`` + the guarantor id), amount ~$30-$530;
    ``effective`` and ``next_date`` are SQL over ``p`` (the guarantor) and ``%(org)s``."""
    from practices.models import Bill, Patient

    return insert_select(
        Bill,
        {
            "organization_id": "p.organization_id",
            "guarantor_id": "p.id",
            "bill_id": "'S-' || p.external_id",
            "source": "'statement'",
            "statement_date": effective,
            "due_date": f"({effective}) + 20",
            "amount_due": "30 + (p.id %% 500) + 0.5",
            "created_at": "%(at)s",
            "effective_created_date": effective,
            "generation": "1",
            "dunning_status": "''",
            "state": "'active'",
            "last_seen_at": "%(at)s",
            "next_dunning_date": next_date,
            "amount_changed": "false",
        },
        f"FROM {table(Patient)} p WHERE p.organization_id = %(org)s AND p.is_guarantor",
        {"org": org.pk, "at": FEED_TIME, **(params or {})},
    )


def analyze() -> None:
    execute("ANALYZE")


def today_str(day: date) -> str:
    return day.isoformat()
