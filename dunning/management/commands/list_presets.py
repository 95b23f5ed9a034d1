from __future__ import annotations

from typing import Any

from dunning.models import StepKind
from dunning.presets import list_presets_rows
from practices.management.commands._base import ContractCommand


class Command(ContractCommand):
    help = (
        "List the dunning presets and their steps (SPEC §10). With --json: an array of {slug, name, cycle_days, "
        "paper_cycle_days, steps: [{bill_age_days, kind, channel, template}]} sorted by slug; template is null "
        "for the system default, else the template id."
    )

    def add_arguments(self, parser: Any) -> None:
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        rows = list_presets_rows()
        if options["json"]:
            self.emit_json(rows)
            return
        for row in rows:
            self.stdout.write(
                f"{row['slug']}: {row['name']} (cycle {row['cycle_days']} days, "
                f"paper every {row['paper_cycle_days']} days)"
            )
            for step in row["steps"]:
                template = "system default" if step["template"] is None else f"template {step['template']}"
                cycle = step["bill_age_days"] // row["cycle_days"] + 1
                self.stdout.write(
                    f"  cycle {cycle:>2}  day {step['bill_age_days']:>3}  {StepKind(step['kind']).label:<12} "
                    f"{step['channel']:<5}  {template}"
                )
