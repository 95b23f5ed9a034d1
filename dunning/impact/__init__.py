"""Settings impact preview (SPEC §17 W1): what a change of payment or dunning settings would do over the next
30 days against the organization's live data, beside the current settings, computed in the background and
kept with the audit event of the save.

``forecast`` runs the engine's own rules over the coming days without writing; ``imports`` replays the kept
feeds through the importer's clock rule (resets, aging); ``service`` starts, computes and keeps a preview.
"""

from __future__ import annotations

from dunning.impact.service import (
    current_values,
    impact_compute,
    impact_preview_attach,
    impact_preview_run,
    impact_preview_start,
    proposed_values,
)

__all__ = [
    "current_values",
    "impact_compute",
    "impact_preview_attach",
    "impact_preview_run",
    "impact_preview_start",
    "proposed_values",
]
