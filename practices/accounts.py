"""Derived account figures (SPEC §2): total, patient portion, aging category."""

from __future__ import annotations

from decimal import Decimal

from practices.models import BUCKETS, CENTS

ZERO = Decimal("0.00")


def account_figures(buckets: dict[str, Decimal], insurance_estimate: Decimal) -> tuple[Decimal, Decimal, str]:
    """Return (total, patient portion, aging category) for a guarantor's buckets.

    total = sum of the buckets; patient portion = max(total - insurance estimate, 0); aging category = the
    oldest bucket holding an amount > 0, or '' when the total is <= 0.
    """
    total = sum((buckets[name] for name in BUCKETS), ZERO).quantize(CENTS)
    portion = max(total - insurance_estimate, ZERO).quantize(CENTS)
    category = ""
    if total > 0:
        for name in reversed(BUCKETS):
            if buckets[name] > 0:
                category = name
                break
    return total, portion, category
