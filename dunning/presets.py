"""Dunning presets (SPEC §6): the rules a schedule must follow, and how it is shown.

``preset_validate`` is the one check of a schedule, used by the admin's step formset; the data migration
ships schedules that pass it (a test holds it to that). ``preset_schedule`` feeds the admin's table and
``list_presets_rows`` is the ``list_presets --json`` document (SPEC §10).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from dunning.models import STEP_KINDS, Preset

STEP_CHANNELS = ["sms", "email", "paper"]
SYSTEM_DEFAULT = "System default"


def preset_validate(
    *, cycle_days: int, paper_cycle_days: int, steps: list[tuple[int, str, str]]
) -> list[str]:
    """The errors of a schedule of ``(bill_age_days, kind, channel)`` steps; empty when it is valid.

    At least one step; known kinds and channels; ages >= 0; no two steps of one channel at the same age
    (so each channel's ages strictly increase); paper steps at multiples of ``paper_cycle_days``."""
    errors: list[str] = []
    if cycle_days is None or cycle_days <= 0:
        errors.append("Cycle days must be a positive number of days.")
    if paper_cycle_days is None or paper_cycle_days <= 0:
        errors.append("Paper cycle days must be a positive number of days.")
    if not steps:
        errors.append("A preset needs at least one step.")
    for age, kind, channel in steps:
        if kind not in STEP_KINDS:
            errors.append(f"Day {age}: unknown kind {kind!r}; expected one of {', '.join(STEP_KINDS)}.")
        if channel not in STEP_CHANNELS:
            errors.append(
                f"Day {age}: unknown channel {channel!r}; expected one of {', '.join(STEP_CHANNELS)}."
            )
        if age < 0:
            errors.append(f"Day {age}: a bill age cannot be negative.")
    for (age, channel), count in sorted(Counter((age, channel) for age, _, channel in steps).items()):
        if count > 1:
            errors.append(f"Day {age}: {count} {channel} steps; a channel has at most one step per bill age.")
    if paper_cycle_days and paper_cycle_days > 0:
        for age in sorted({age for age, _, channel in steps if channel == "paper"}):
            if age % paper_cycle_days:
                errors.append(
                    f"Day {age}: paper steps must sit at multiples of the paper cycle "
                    f"({paper_cycle_days} days), e.g. day {age - age % paper_cycle_days} or "
                    f"{age - age % paper_cycle_days + paper_cycle_days}."
                )
    return errors


def preset_schedule(preset: Preset) -> list[dict[str, Any]]:
    """The preset's steps as rows ``{cycle, bill_age_days, kind, channel, template}`` in schedule order.

    ``template`` is ``"System default"`` for an empty template, else the chosen template's id. Uses
    ``preset.steps.all()``, so a caller listing many presets prefetches ``steps``."""
    rows = []
    for step in sorted(preset.steps.all(), key=lambda s: (s.bill_age_days, s.channel)):
        rows.append(
            {
                "cycle": step.bill_age_days // preset.cycle_days + 1,
                "bill_age_days": step.bill_age_days,
                "kind": step.kind,
                "channel": step.channel,
                "template": SYSTEM_DEFAULT if step.template_id is None else step.template_id,
            }
        )
    return rows


def list_presets_rows() -> list[dict[str, Any]]:
    """Every preset, sorted by slug, as SPEC §10's ``list_presets`` rows.

    Steps are sorted by bill age, then channel; ``template`` is ``null`` for the system default of the
    step's kind and channel, else the template's id (an integer)."""
    presets = Preset.objects.prefetch_related("steps").order_by("slug")
    return [
        {
            "slug": preset.slug,
            "name": preset.name,
            "cycle_days": preset.cycle_days,
            "paper_cycle_days": preset.paper_cycle_days,
            "steps": [
                {
                    "bill_age_days": row["bill_age_days"],
                    "kind": row["kind"],
                    "channel": row["channel"],
                    "template": None if row["template"] == SYSTEM_DEFAULT else row["template"],
                }
                for row in preset_schedule(preset)
            ],
        }
        for preset in presets
    ]
