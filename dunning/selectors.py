"""Reads of the dunning app."""

from __future__ import annotations

from dunning.models import DunningSettings, Preset
from practices.models import Organization

# The preset an organization without a settings row is on (the first org_settings write stores it too).
DEFAULT_PRESET_SLUG = "standard-30"


def dunning_settings_get(*, organization: Organization) -> DunningSettings:
    """The organization's dunning settings; an unsaved row with the defaults when none was written yet.

    The default row's preset is the built-in ``standard-30`` when it exists (no preset, i.e. no dunning,
    otherwise); the other fields take the model defaults."""
    row = DunningSettings.objects.select_related("preset").filter(organization=organization).first()
    if row is not None:
        return row
    return DunningSettings(
        organization=organization, preset=Preset.objects.filter(slug=DEFAULT_PRESET_SLUG).first()
    )
