"""The settings a preview compares: what the preview reads of the payment and dunning settings, as JSON (kept
on the preview row and in the audit) and back as unsaved settings rows for the engine, the importer's policy
and the bulk list.

The keys and value forms are those of ``org_settings`` (SPEC §10): the preset by slug, money as strings with
2 decimals, lists in their fixed order, booleans, ``max_open_claims`` as an integer or null.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dunning.models import DunningSettings, Preset
from payments.models import PaymentSettings
from practices.models import Organization

# What the engine and the importer read (S1, S4-S12) and what letters cost (§16).
DUNNING_KEYS = (
    "preset", "min_electronic", "min_print", "bill_aging", "communicate_on_update", "bill_reset_flag",
    "reset_on_fields", "reset_fields", "drop_to_paper_on_opt_out", "skip_paper_when_electronic", "paper_cost",
)  # fmt: skip
# What the bulk list reads (R3, R4, R10).
PAYMENT_KEYS = ("min_payment_amount", "eligible_aging", "max_open_claims")
# Of the keys, those the daily run reads (max_open_claims too: K6's hold), and those only an import reads
# (resets, aging).
ENGINE_KEYS = (
    "preset", "min_electronic", "min_print", "communicate_on_update", "drop_to_paper_on_opt_out",
    "skip_paper_when_electronic", "max_open_claims",
)  # fmt: skip
IMPORT_KEYS = ("preset", "bill_aging", "bill_reset_flag", "reset_on_fields", "reset_fields")
LABELS = {
    "preset": "Dunning configuration",
    "min_electronic": "Minimum dollar threshold, electronic",
    "min_print": "Minimum dollar threshold, print",
    "bill_aging": "Bill aging",
    "communicate_on_update": "Communications on bill update",
    "bill_reset_flag": "Enable billReset flag",
    "reset_on_fields": "Reset bill on fields changing",
    "reset_fields": "Reset bill fields",
    "drop_to_paper_on_opt_out": "Drop to paper on opt-out",
    "skip_paper_when_electronic": "Skip paper when electronic available",
    "paper_cost": "Paper cost per letter",
    "min_payment_amount": "Minimum payment amount",
    "eligible_aging": "Eligible aging categories",
    "max_open_claims": "Maximum open insurance claims",
}


def _money(value: Decimal | None) -> str:
    return f"{Decimal(value or 0):.2f}"


def settings_values(*, dunning: DunningSettings, payment: PaymentSettings) -> dict[str, Any]:
    """The values a preview compares, JSON-safe, from settings rows saved or not."""
    preset = dunning.preset if dunning.preset_id is not None else None
    return {
        "preset": preset.slug if preset is not None else None,
        "min_electronic": _money(dunning.min_electronic),
        "min_print": _money(dunning.min_print),
        "bill_aging": dunning.bill_aging,
        "communicate_on_update": bool(dunning.communicate_on_update),
        "bill_reset_flag": bool(dunning.bill_reset_flag),
        "reset_on_fields": bool(dunning.reset_on_fields),
        "reset_fields": list(dunning.reset_fields or []),
        "drop_to_paper_on_opt_out": bool(dunning.drop_to_paper_on_opt_out),
        "skip_paper_when_electronic": bool(dunning.skip_paper_when_electronic),
        "paper_cost": _money(dunning.paper_cost),
        "min_payment_amount": _money(payment.min_payment_amount),
        "eligible_aging": list(payment.eligible_aging or []),
        "max_open_claims": payment.max_open_claims,
    }


def changed_keys(current: dict[str, Any], proposed: dict[str, Any]) -> list[str]:
    return [key for key in (*DUNNING_KEYS, *PAYMENT_KEYS) if current.get(key) != proposed.get(key)]


@dataclass(frozen=True)
class Scenario:
    """One side of a preview: unsaved settings rows holding ``values``."""

    name: str
    values: dict[str, Any]
    dunning: DunningSettings
    payment: PaymentSettings

    @property
    def paper_cost(self) -> Decimal:
        return Decimal(self.values["paper_cost"])


def scenario(*, name: str, organization: Organization, values: dict[str, Any]) -> Scenario:
    """Unsaved settings rows for ``values`` (a preset that has since been deleted counts as no preset)."""
    preset = Preset.objects.filter(slug=values["preset"]).first() if values["preset"] else None
    dunning = DunningSettings(
        organization=organization, preset=preset, min_electronic=Decimal(values["min_electronic"]),
        min_print=Decimal(values["min_print"]), bill_aging=values["bill_aging"],
        communicate_on_update=values["communicate_on_update"], bill_reset_flag=values["bill_reset_flag"],
        reset_on_fields=values["reset_on_fields"], reset_fields=list(values["reset_fields"]),
        drop_to_paper_on_opt_out=values["drop_to_paper_on_opt_out"],
        skip_paper_when_electronic=values["skip_paper_when_electronic"], paper_cost=Decimal(values["paper_cost"]),
    )  # fmt: skip
    payment = PaymentSettings(
        organization=organization, min_payment_amount=Decimal(values["min_payment_amount"]),
        eligible_aging=list(values["eligible_aging"]), max_open_claims=values["max_open_claims"],
    )  # fmt: skip
    return Scenario(name=name, values=values, dunning=dunning, payment=payment)
