"""Demo data: an organization, one user per role, and a realistic PMS feed imported through the importer."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from practices.importer import ImportSummary, feed_import
from practices.models import FeedSource, Membership, Organization, Role
from practices.services import organization_settings_create

DEMO_SLUG = "demo-dental"
DEMO_PASSWORD = "demo-pass-2026"
DEMO_USERS = [
    ("frontdesk", Role.FRONT_DESK),
    ("billing", Role.BILLING_MANAGER),
    ("orgadmin", Role.ORG_ADMIN),
]
OPS_USER = "ops"

_PLACES = [
    ("Salt Lake City", "UT", "84101", "801"),
    ("Provo", "UT", "84601", "801"),
    ("Denver", "CO", "80202", "303"),
    ("Phoenix", "AZ", "85004", "602"),
    ("Boise", "ID", "83702", "208"),
    ("Chicago", "IL", "60601", "312"),
    ("Brooklyn", "NY", "11201", "718"),
    ("Los Angeles", "CA", "90012", "213"),
    ("Seattle", "WA", "98101", "206"),
    ("Honolulu", "HI", "96813", "808"),
    ("Miami", "FL", "33130", "305"),
    ("Austin", "TX", "78701", "512"),
]
_LAST = ["Diaz", "Nguyễn", "Smith", "Johnson", "García", "Okafor", "Kowalski", "Chen", "Patel", "Müller", "O'Brien",
         "Haddad", "Yamamoto", "Larsen", "Moreau", "Rossi", "Novak", "Ivanova", "Silva", "Kim"]  # fmt: skip
_FIRST_ADULT = ["Ana", "Łukasz", "Maria", "James", "Priya", "Chinedu", "Zoë", "Mateo", "Aiko", "Fatima", "Liam",
                "Sofia", "Noah", "Mei", "Omar", "Ingrid", "Diego", "Hana", "Pierre", "Grace"]  # fmt: skip
_FIRST_CHILD = ["Leo", "Mia", "Ella", "Kai", "Nora", "Eli", "Ava", "Luca", "Isla", "Theo", "Maya", "Finn"]
_STREETS = ["Main St", "Oak Ave", "Maple Dr", "2nd St", "Cedar Ln", "Park Blvd", "Hillcrest Rd", "Elm St"]


def _money(rng: random.Random, low: int, high: int) -> str:
    return str(Decimal(rng.randint(low * 100, high * 100)) / 100)


def demo_feed(
    *, today: date, generated_at: datetime, families: int = 120, seed: int = 2026
) -> dict[str, Any]:
    """A deterministic feed of about 300 patients: families with dependents, balances in every bucket,
    visits, payment plans, open claims and a few bad contacts."""
    rng = random.Random(seed)
    patients: list[dict[str, Any]] = []
    statements: list[dict[str, Any]] = []
    for family in range(families):
        gid = f"G{1000 + family}"
        last = rng.choice(_LAST)
        city, state, zip_code, area = rng.choice(_PLACES)
        address = {"line1": f"{rng.randint(1, 9999)} {rng.choice(_STREETS)}", "line2": "", "city": city,
                   "state": state, "zip": zip_code}  # fmt: skip
        kind = family % 10
        if kind == 7:
            address = {
                "line1": "",
                "line2": "",
                "city": city,
                "state": state,
                "zip": "",
            }  # incomplete address
        first = rng.choice(_FIRST_ADULT)
        phone = f"+1{area}555{rng.randint(0, 9999):04d}"
        if kind == 3:
            phone = "555-01"  # unparseable: stored as missing, reported as a warning
        email = f"{first.lower()}.{family}@example.com".encode("ascii", "ignore").decode()
        if kind in (3, 5):
            email = ""
        buckets = {"0_30": "0", "31_60": "0", "61_90": "0", "over_90": "0"}
        bucket = ["0_30", "31_60", "61_90", "over_90"][family % 4]
        buckets[bucket] = _money(rng, 25, 900)
        if family % 6 == 0:
            buckets["0_30"] = _money(rng, 10, 150)
        if family % 17 == 0:
            buckets = {"0_30": "-40.00", "31_60": "0", "61_90": "0", "over_90": "0"}  # a credit
        guarantor = {
            "id": gid, "guarantor_id": gid, "first_name": first, "last_name": last,
            "date_of_birth": date(rng.randint(1950, 1998), rng.randint(1, 12), rng.randint(1, 28)).isoformat(),
            "email": email, "mobile_phone": phone, "address": address,
            "last_visit_date": (today - timedelta(days=rng.randint(3, 400))).isoformat(),
            "on_payment_plan": family % 11 == 0,
            "open_claims": rng.choice([0, 0, 0, 0, 1, 2]),
            "do_not_contact": family % 29 == 0,
            "sms_opt_out": family % 13 == 0,
            "balance": {**buckets, "insurance_estimate": _money(rng, 0, 60) if family % 3 == 0 else "0"},
        }  # fmt: skip
        if family % 19 == 0:
            del guarantor["last_visit_date"]
        patients.append(guarantor)
        for child in range(rng.choice([0, 1, 1, 2, 2, 3])):
            patients.append(
                {
                    "id": f"{gid}-{child + 1}",
                    "guarantor_id": gid,
                    "first_name": rng.choice(_FIRST_CHILD),
                    "last_name": last,
                    "date_of_birth": date(
                        rng.randint(2008, 2022), rng.randint(1, 12), rng.randint(1, 28)
                    ).isoformat(),
                    "address": address,
                    "last_visit_date": (today - timedelta(days=rng.randint(3, 300))).isoformat(),
                }
            )
        if family % 2 == 0:
            statement_date = today - timedelta(days=rng.randint(1, 120))
            statements.append(
                {
                    "bill_id": f"S-{5000 + family}",
                    "guarantor_id": gid,
                    "statement_date": statement_date.isoformat(),
                    "due_date": (statement_date + timedelta(days=20)).isoformat(),
                    "amount_due": buckets[bucket],
                    "dunning_status": rng.choice(["new", "due", "past_due", "final"]),
                    "reset_bill": False,
                }
            )
    return {
        "organization": DEMO_SLUG,
        "generated_at": generated_at.isoformat().replace("+00:00", "Z"),
        "patients": patients,
        "statements": statements,
    }


@transaction.atomic
def _organization_and_users() -> tuple[Organization, list[tuple[str, str]]]:
    organization, _ = Organization.objects.get_or_create(
        slug=DEMO_SLUG,
        defaults={
            "name": "Demo Dental", "timezone": "America/Denver", "phone": "+18015550199",
            "email_from": "billing@demo-dental.example", "return_address_line1": "100 S Main St",
            "return_address_city": "Salt Lake City", "return_address_state": "UT", "return_address_zip": "84101",
        },
    )  # fmt: skip
    organization_settings_create(organization=organization)
    user_model = get_user_model()
    logins: list[tuple[str, str]] = []
    for username, role in DEMO_USERS:
        user, created = user_model.objects.get_or_create(username=username, defaults={"is_staff": True})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        Membership.objects.update_or_create(user=user, organization=organization, defaults={"role": role})
        logins.append((username, Role(role).label))
    ops, created = user_model.objects.get_or_create(
        username=OPS_USER, defaults={"is_staff": True, "is_superuser": True}
    )
    if created:
        ops.set_password(DEMO_PASSWORD)
        ops.save()
    logins.append((OPS_USER, "Ops (superuser)"))
    return organization, logins


# What other apps add to the demo once its feed is imported (payments: a few months of history for Results), each
# called with (organization=, today=): practices imports nothing from them.
_demo_extensions: list[Callable[..., Any]] = []


def register_demo_extension(extension: Callable[..., Any]) -> None:
    if extension not in _demo_extensions:
        _demo_extensions.append(extension)


def seed_demo(*, now: datetime | None = None) -> tuple[Organization, list[tuple[str, str]], ImportSummary]:
    organization, logins = _organization_and_users()
    moment = (now or timezone.now()).replace(microsecond=0)
    today = moment.astimezone(organization.tzinfo).date()
    document = demo_feed(today=today, generated_at=moment)
    summary = feed_import(
        raw=json.dumps(document).encode(), source=FeedSource.DEMO, organization=organization
    )
    for extension in _demo_extensions:
        extension(organization=organization, today=today)
    return organization, logins, summary
