"""What every workload shares: the result row, repetitions and medians, the table, the JSON file."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One §11 figure with its same-run baseline. ``ratio`` is value / baseline; ``ok`` is every budget met."""

    name: str
    value: float | None
    unit: str
    baseline: float | None
    ratio: float | None
    budget: str
    ok: bool
    notes: str = ""
    reps: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def row(
    name: str, *, value: float, unit: str, baseline: float, budget: str, ok: bool, notes: str = "",
    reps: Sequence[float] = (),
) -> Row:  # fmt: skip
    ratio = value / baseline if baseline else None
    return Row(name=name, value=round(value, 4), unit=unit, baseline=round(baseline, 4),
               ratio=None if ratio is None else round(ratio, 3), budget=budget, ok=ok, notes=notes,
               reps=[round(r, 4) for r in reps])  # fmt: skip


def failed(name: str, unit: str, budget: str, error: str) -> Row:
    return Row(
        name=name, value=None, unit=unit, baseline=None, ratio=None, budget=budget, ok=False, notes=error
    )


def celery_queue() -> str:
    """The harness's own Celery queue on the developer's Redis (``bench.settings`` sends tasks there)."""
    return os.environ.get("BENCH_CELERY_QUEUE", "bench")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def repeat(
    fn: Callable[[], Any], *, reps: int, before: Callable[[], Any] | None = None,
    after: Callable[[], Any] | None = None, warmup: int = 0,
) -> list[float]:  # fmt: skip
    """Run ``fn`` ``warmup + reps`` times (``before``/``after`` around each, untimed); the timed seconds."""
    times = []
    for index in range(warmup + reps):
        if before is not None:
            before()
        seconds, _ = timed(fn)
        if after is not None:
            after()
        if index >= warmup:
            times.append(seconds)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def table(rows: Sequence[Row]) -> str:
    header = ("name", "value", "unit", "baseline", "ratio", "budget", "ok")
    lines = [
        (r.name, _fmt(r.value), r.unit, _fmt(r.baseline), _fmt(r.ratio), r.budget, "yes" if r.ok else "NO")
        for r in rows
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=True)]
    out = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in [header, tuple("-" * w for w in widths), *lines]
    ]
    notes = [f"  {r.name}: {r.notes}" for r in rows if r.notes]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def write_json(rows: Sequence[Row], path: Path, *, keep_others: bool = False) -> None:
    """Write ``rows`` to ``path``. With ``keep_others`` (a run of some workloads, ``--only``) the rows already
    there for other figures stay, in their place; a figure measured again replaces its row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = [r.as_json() for r in rows]
    if keep_others and path.exists():
        try:
            kept = json.loads(path.read_text())
        except ValueError:
            kept = []
        placed = {r["name"]: r for r in fresh}
        out = []
        for old in kept if isinstance(kept, list) else []:
            name = old.get("name") if isinstance(old, dict) else None
            out.append(placed.pop(name) if name in placed else old)
        fresh = out + list(placed.values())
    path.write_text(json.dumps(fresh, indent=2) + "\n")
