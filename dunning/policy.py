"""The importer's bill policy (D7-D10) from the organization's dunning settings; registered at start-up so
that practices never imports dunning."""

from __future__ import annotations

from dunning.models import DunningSettings, PresetStep
from dunning.selectors import dunning_settings_get
from practices.importer.policy import BillPolicy
from practices.models import Organization


def bill_policy(organization: Organization) -> BillPolicy:
    return bill_policy_of(dunning_settings_get(organization=organization))


def bill_policy_of(settings: DunningSettings) -> BillPolicy:
    """The importer's policy under ``settings``, saved or not (the impact preview replays imports with it)."""
    status_ages: dict[str, int] = {}
    if settings.preset_id is not None:
        # D8: new → 0; due / past_due / final → the age of the preset's first step of that kind.
        for kind, age in (
            PresetStep.objects.filter(preset_id=settings.preset_id)
            .order_by("bill_age_days")
            .values_list("kind", "bill_age_days")
        ):
            status_ages.setdefault(kind, age)
    return BillPolicy(
        aging=settings.bill_aging,
        reset_flag=settings.bill_reset_flag,
        reset_on_fields=settings.reset_on_fields,
        reset_fields=frozenset(settings.reset_fields or []),
        communicate_on_update=settings.communicate_on_update,
        status_ages={k: v for k, v in status_ages.items() if k in ("due", "past_due", "final")},
    )
