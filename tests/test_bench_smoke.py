"""The benchmark harness (SPEC §11) runs end to end at a hundredth of the sizes: ``python -m bench --scale
0.01`` makes and drops its own scratch database, runs every workload with its baseline and writes one row
per budget. The figures themselves are not asserted: at this size they mean nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
ROWS = {
    "feed_import", "bulk_list", "dashboard_list_page", "dashboard_list_queries", "dunning_first_run",
    "dunning_daily_run", "dunning_daily_run_claims", "dunning_daily_growth", "paper_letters_1proc", "paper_letters_2proc", "send_pipeline",
    "send_pipeline_compliance", "results_page", "results_page_queries", "checkout_confirmations",
    "settings_impact_preview", "pms_sync",
}  # fmt: skip
KEYS = {"name", "value", "unit", "baseline", "ratio", "budget", "ok"}


@pytest.mark.postgres
@pytest.mark.redis
def test_the_harness_reports_every_budget_with_its_baseline(tmp_path):
    out = tmp_path / "results.json"
    env = {
        **os.environ,
        "REDIS_URL": settings.REDIS_URL,
        "BENCH_CELERY_QUEUE": f"bench-smoke-{uuid.uuid4().hex[:8]}",
    }
    database = f"dunning_bench_smoke_{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "0.01", "--json-out", str(out), "--db-name", database],
        # The impact preview's baseline alone is 30 dry runs of the engine (about a minute at this size).
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    rows = {r["name"]: r for r in json.loads(out.read_text())}
    assert set(rows) == ROWS
    for name, r in rows.items():
        assert set(r) >= KEYS, r
        assert "error:" not in r.get("notes", ""), r
        assert isinstance(r["value"], int | float), r
        assert isinstance(r["baseline"], int | float), r
        assert isinstance(r["ok"], bool), r
    assert "name" in done.stdout and "baseline" in done.stdout  # the table


def test_the_harness_refuses_sqlite(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--json-out", str(tmp_path / "r.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "PostgreSQL" in done.stderr
    assert not (tmp_path / "r.json").exists()
