"""The §11 workloads. Each module has ``run(ctx) -> list[Row]``; it is imported only once Django is set up."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class Context:
    scale: float
    # "Today" of every workload: fixed, so runs compare (the feeds of bench/feeds.py are dated 2026-11-24).
    today: date = date(2026, 11, 24)

    def n(self, full: int, *, minimum: int = 1) -> int:
        """``full`` (the §11 size) at this scale."""
        return max(minimum, round(full * self.scale))

    def reps(self, full_scale: int, *, minimum: int = 3) -> int:
        """More repetitions where one is short (small scales)."""
        return max(minimum, full_scale if self.scale >= 1 else full_scale * 2)


@dataclass(frozen=True)
class Workload:
    NAME: str
    module: str
    # (row name, unit, budget) of every row it produces, for the error rows when it breaks.
    ROWS: Sequence[tuple[str, str, str]]
    aliases: Sequence[str] = ()

    def run(self, ctx: Context) -> Any:
        return importlib.import_module(self.module).run(ctx)


WORKLOADS: tuple[Workload, ...] = (
    Workload("feed_import", "bench.workloads.feed_import", [("feed_import", "s", "≤ 30 s, ratio ≤ 3")], ("feed",)),
    Workload("bulk_list", "bench.workloads.bulk_list", [("bulk_list", "ms", "≤ 100 ms, ratio ≤ 2")]),
    Workload(
        "dashboard",
        "bench.workloads.dashboard",
        [("dashboard_list_page", "ms", "≤ 150 ms"), ("dashboard_list_queries", "queries", "≤ 15, same at any size")],
    ),
    Workload(
        "dunning",
        "bench.workloads.dunning",
        [
            ("dunning_first_run", "s", "≤ 60 s, ratio ≤ 1.5"),
            ("dunning_daily_run", "s", "≤ 3 s, ratio ≤ 1.3"),
            ("dunning_daily_run_claims", "s", "≤ 3 s, ratio ≤ 1.3"),
            ("dunning_daily_growth", "× per 2× bills", "≤ 1.1× time for 2× bills, same due count"),
        ],
        ("dunning_daily", "dunning_first_run"),
    ),
    Workload(
        "letters",
        "bench.workloads.letters",
        [("paper_letters_1proc", "letters/s", "≥ 150 letters/s"), ("paper_letters_2proc", "letters/s", "≥ 1.7× one process")],
        ("paper_letters",),
    ),
    Workload("send_pipeline", "bench.workloads.send_pipeline", [("send_pipeline", "msg/s", "≥ 300 msg/s per worker process")], ("send",)),
    Workload(
        "results",
        "bench.workloads.results",
        [("results_page", "ms", "≤ 300 ms, ratio ≤ 1.5"), ("results_page_queries", "queries", "≤ 20, same at any size")],
        ("results_page",),
    ),
    Workload(
        "checkout_confirmations",
        "bench.workloads.checkout_confirmations",
        [("checkout_confirmations", "events/s", "≥ 200 events/s per web process, 0 payments counted twice")],
        ("checkout", "webhook"),
    ),
    Workload(
        "impact_preview",
        "bench.workloads.impact_preview",
        [("settings_impact_preview", "s", "≤ 60 s, with progress; ratio ≤ 1")],
        ("settings_impact_preview", "preview"),
    ),
    Workload("pms_sync", "bench.workloads.pms_sync", [("pms_sync", "s", "≤ 60 s, ratio ≤ 1.5")], ("pms", "opendental")),
)  # fmt: skip


def select(workloads: Sequence[Workload], only: str) -> list[Workload]:
    if not only.strip():
        return list(workloads)
    names = [name.strip() for name in only.split(",") if name.strip()]
    chosen = []
    for name in names:
        match = [w for w in workloads if name == w.NAME or name in w.aliases]
        if not match:
            raise ValueError(f"unknown workload {name!r}; choose from {', '.join(w.NAME for w in workloads)}")
        if match[0] not in chosen:
            chosen.append(match[0])
    return [w for w in workloads if w in chosen]
