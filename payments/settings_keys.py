"""`org_settings` keys owned by payments (SPEC §4, §10, §14): min_payment_amount, eligible_aging, max_open_claims,
request_channels, plan_max_months, plan_min_installment.

Values read as JSON: money as a string with 2 decimals, lists as arrays in a fixed order, max_open_claims as an
integer or null. The PaymentSettings row is created on the first write; until then the defaults apply.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from payments.eligibility import payment_settings_get
from payments.models import ALL_AGING, PaymentSettings
from practices.models import Organization
from practices.org_settings import SettingError, SettingKey, register

REQUEST_CHANNELS = ["sms", "email"]
# DecimalField(max_digits=12, decimal_places=2): at most 10 digits before the point.
_MONEY = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
_COUNT = re.compile(r"^\d{1,9}$")


def parse_money(raw: str) -> Decimal:
    if not _MONEY.match(raw):
        raise SettingError("expected an amount >= 0 with at most 2 decimals, e.g. 25.00")
    return Decimal(raw).quantize(Decimal("0.01"))


def parse_choice_list(raw: str, *, allowed: list[str]) -> list[str]:
    """A comma list, each item one of ``allowed``, at least one; returned in ``allowed`` order."""
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise SettingError(f"expected a comma list of at least one of {', '.join(allowed)}")
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise SettingError(f"unknown value(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return [value for value in allowed if value in items]


def parse_max_open_claims(raw: str) -> int | None:
    if raw == "none":
        return None
    if not _COUNT.match(raw):
        raise SettingError("expected an integer >= 0, or none for no limit")
    return int(raw)


PLAN_MAX_MONTHS_LIMIT = 24


def parse_plan_max_months(raw: str) -> int:
    if not _COUNT.match(raw) or int(raw) > PLAN_MAX_MONTHS_LIMIT:
        raise SettingError(
            f"expected an integer from 0 to {PLAN_MAX_MONTHS_LIMIT} (0 turns plans and pay-later off, 1 allows "
            "pay-later only)"
        )
    return int(raw)


def parse_plan_min_installment(raw: str) -> Decimal:
    amount = parse_money(raw)
    if amount <= 0:
        raise SettingError("expected an amount > 0 with at most 2 decimals, e.g. 25.00")
    return amount


def _writer(field: str) -> Callable[[Organization, Any], None]:
    def write(organization: Organization, value: Any) -> None:
        row, _ = PaymentSettings.objects.get_or_create(organization=organization)
        setattr(row, field, value)
        row.save(update_fields=[field])

    return write


register(
    SettingKey(
        name="min_payment_amount",
        read=lambda org: f"{payment_settings_get(organization=org).min_payment_amount:.2f}",
        parse=parse_money,
        write=_writer("min_payment_amount"),
        help="R3: the patient portion must exceed it (amount >= 0, 2 decimals)",
    )
)
register(
    SettingKey(
        name="eligible_aging",
        read=lambda org: list(payment_settings_get(organization=org).eligible_aging),
        parse=lambda raw: parse_choice_list(raw, allowed=ALL_AGING),
        write=_writer("eligible_aging"),
        help=f"R4: comma list of {', '.join(ALL_AGING)}",
    )
)
register(
    SettingKey(
        name="max_open_claims",
        read=lambda org: payment_settings_get(organization=org).max_open_claims,
        parse=parse_max_open_claims,
        write=_writer("max_open_claims"),
        help="R10: integer >= 0, or none for no limit",
    )
)
register(
    SettingKey(
        name="request_channels",
        read=lambda org: list(payment_settings_get(organization=org).request_channels),
        parse=lambda raw: parse_choice_list(raw, allowed=REQUEST_CHANNELS),
        write=_writer("request_channels"),
        help="B5: comma list of sms, email",
    )
)
register(
    SettingKey(
        name="plan_max_months",
        read=lambda org: payment_settings_get(organization=org).plan_max_months,
        parse=parse_plan_max_months,
        write=_writer("plan_max_months"),
        help=f"H5: the most monthly installments, 0-{PLAN_MAX_MONTHS_LIMIT} (0: no plans, 1: pay-later only)",
    )
)
register(
    SettingKey(
        name="plan_min_installment",
        read=lambda org: f"{payment_settings_get(organization=org).plan_min_installment:.2f}",
        parse=parse_plan_min_installment,
        write=_writer("plan_min_installment"),
        help="H5: the smallest installment (amount > 0, 2 decimals)",
    )
)
