"""The organization of the bulk list and the dashboard: 50 000 eligible guarantors, plus a tenth more that each
fail one R-rule, so that every condition of the list has rows to exclude.

Of the extra guarantors, by row number: on a payment plan (R2), a zero patient portion (R3), snoozed (R5), in
an active campaign (R6), a campaign since the last visit (R7), a single request since the last visit (R8),
do-not-contact (R11), and dependents (R1). A fifth of the eligible ones have an old completed campaign that
started before their last visit, so R7's subquery finds rows and lets them pass.
"""

from __future__ import annotations

from django.db import transaction

from bench import data
from payments.models import PaymentRequest, Snooze
from practices.models import Account, Bill, Organization, Patient

SLUG = "list"


def list_organization(eligible: int, *, slug: str = SLUG, prefix: str = "L") -> Organization:
    """The organization ``slug`` with ``eligible`` eligible guarantors (made on first use)."""
    existing = Organization.objects.filter(slug=slug).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        org = _build(eligible, slug, prefix)
    data.execute("VACUUM ANALYZE")
    return org


def _build(eligible: int, slug: str, prefix: str) -> Organization:
    org = data.organization(slug)
    extra = max(8, eligible // 10)
    data.guarantors(org, eligible + extra, prefix=prefix, mixed=False)
    p, b = data.table(Patient), data.table(Bill)
    lo = f"{prefix}{eligible + 1:07d}"
    params = {"org": org.pk, "lo": lo, "at": data.FEED_TIME}
    extra_rows = "p.organization_id = %(org)s AND p.external_id >= %(lo)s"
    kind = "(substr(p.external_id, 2)::int %% 8)"
    data.execute(f"UPDATE {p} p SET on_payment_plan = true WHERE {extra_rows} AND {kind} = 0", params)
    data.execute(
        f"UPDATE {data.table(Account)} a SET patient_portion = 0 FROM {p} p WHERE a.guarantor_id = p.id "
        f"AND {extra_rows} AND {kind} = 1",
        params,
    )
    data.execute(f"UPDATE {p} p SET do_not_contact = true WHERE {extra_rows} AND {kind} = 6", params)
    # Dependents of the first guarantor: not guarantors, no account of their own (R1).
    data.execute(
        f"DELETE FROM {data.table(Account)} a USING {p} p WHERE a.guarantor_id = p.id AND {extra_rows} AND {kind} = 7",
        params,
    )
    first = Patient.objects.get(organization=org, external_id=f"{prefix}0000001")
    data.execute(
        f"UPDATE {p} p SET is_guarantor = false, guarantor_id = %(first)s, guarantor_external_id = %(first_id)s "
        f"WHERE {extra_rows} AND {kind} = 7",
        {**params, "first": first.pk, "first_id": first.external_id},
    )
    data.insert_select(
        Snooze,
        {"organization_id": "p.organization_id", "guarantor_id": "p.id", "until": "date '2026-12-24'",
         "reason": "'Insurance pending'", "created_at": "%(at)s"},
        f"FROM {p} p WHERE {extra_rows} AND {kind} = 2",
        params,
    )  # fmt: skip
    campaign = {
        "organization_id": "p.organization_id", "guarantor_id": "p.id", "bill_id": "'C-' || p.external_id",
        "source": "'request'", "statement_date": "NULL", "due_date": "NULL", "amount_due": "50",
        "created_at": "%(at)s", "generation": "1", "dunning_status": "''", "last_seen_at": "%(at)s",
        "amount_changed": "false",
    }  # fmt: skip
    # R6: an active request campaign; R7: a completed one started after the last visit.
    data.insert_select(
        Bill, {**campaign, "state": "'active'", "effective_created_date": "date '2026-11-01'"},
        f"FROM {p} p WHERE {extra_rows} AND {kind} = 3", params,
    )  # fmt: skip
    data.insert_select(
        Bill, {**campaign, "state": "'completed'", "effective_created_date": "p.last_visit_date + 1"},
        f"FROM {p} p WHERE {extra_rows} AND {kind} = 4", params,
    )  # fmt: skip
    # R8: a single request since the last visit, whose campaign was closed since.
    data.insert_select(
        Bill, {**campaign, "state": "'closed'", "effective_created_date": "p.last_visit_date - 30"},
        f"FROM {p} p WHERE {extra_rows} AND {kind} = 5", params,
    )  # fmt: skip
    data.insert_select(
        PaymentRequest,
        {"organization_id": "b.organization_id", "guarantor_id": "b.guarantor_id", "bill_id": "b.id",
         "mode": "'single'", "requested_at": "%(at)s", "request_date": "p.last_visit_date + 2"},
        f"FROM {b} b JOIN {p} p ON p.id = b.guarantor_id WHERE {extra_rows} AND {kind} = 5 AND b.state = 'closed'",
        params,
    )  # fmt: skip
    # Eligible guarantors with an old campaign (before the last visit): R7 reads them and lets them pass.
    data.insert_select(
        Bill, {**campaign, "bill_id": "'OLD-' || p.external_id", "state": "'completed'",
               "effective_created_date": "p.last_visit_date - 60"},
        f"FROM {p} p WHERE p.organization_id = %(org)s AND p.external_id < %(lo)s "
        "AND substr(p.external_id, 2)::int %% 5 = 0", params,
    )  # fmt: skip
    return org
