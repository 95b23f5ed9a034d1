"""Synthetic PMS feeds for benchmarks: ``big_feed(n)`` gives n guarantors (with a statement each)."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

PLACES = [("Salt Lake City", "UT", "84101", "801"), ("Denver", "CO", "80202", "303"), ("Chicago", "IL", "60601", "312"),
          ("Brooklyn", "NY", "11201", "718"), ("Phoenix", "AZ", "85004", "602"), ("Seattle", "WA", "98101", "206")]  # fmt: skip


def big_feed(n: int, *, slug: str, generated_at: str = "2026-11-24T06:00:00Z", seed: int = 7) -> bytes:
    rng = random.Random(seed)
    today = date(2026, 11, 24)
    patients = []
    statements = []
    for i in range(n):
        pid = f"P{i:07d}"
        city, state, zip_code, area = PLACES[i % len(PLACES)]
        patients.append(
            {
                "id": pid,
                "guarantor_id": pid,
                "first_name": "Ana",
                "last_name": f"Diaz{i % 997}",
                "date_of_birth": "1980-04-12",
                "email": f"p{i}@example.com",
                "mobile_phone": f"+1{area}555{i % 10000:04d}",
                "address": {
                    "line1": f"{i % 9000 + 1} Main St",
                    "line2": "",
                    "city": city,
                    "state": state,
                    "zip": zip_code,
                },
                "last_visit_date": (today - timedelta(days=rng.randint(1, 500))).isoformat(),
                "on_payment_plan": i % 50 == 0,
                "open_claims": i % 3,
                "balance": {
                    "0_30": f"{rng.randint(0, 50000) / 100:.2f}",
                    "31_60": f"{rng.randint(0, 20000) / 100:.2f}",
                    "61_90": "0",
                    "over_90": f"{rng.randint(0, 9000) / 100:.2f}",
                    "insurance_estimate": "10.00",
                },
            }
        )
        statements.append(
            {
                "bill_id": f"S-{i:07d}",
                "guarantor_id": pid,
                "statement_date": (today - timedelta(days=i % 120)).isoformat(),
                "due_date": (today + timedelta(days=20)).isoformat(),
                "amount_due": f"{rng.randint(100, 90000) / 100:.2f}",
                "dunning_status": "due",
                "reset_bill": False,
            }
        )
    return json.dumps({"organization": slug, "generated_at": generated_at, "patients": patients,
                       "statements": statements}).encode()  # fmt: skip
