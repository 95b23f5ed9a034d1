"""``python -m bench [--scale S] [--only NAME,...] [--json-out PATH]``: the budgets of SPEC §11.

Needs PostgreSQL (``DATABASE_URL``; the figures mean nothing on SQLite) and, for the send pipeline, Redis
(``REDIS_URL``). Everything happens in a scratch database created on ``DATABASE_URL``'s server and dropped at
the end. Each figure is printed next to a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
import uuid
from pathlib import Path

from bench import scratch
from bench.harness import Row, failed, say, table, write_json

DEFAULT_JSON = Path(__file__).resolve().parent / "results.json"


def parse(argv: list[str]) -> argparse.Namespace:
    from bench.workloads import WORKLOADS

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="1.0 = the sizes of SPEC §11; 0.1 a quick run"
    )
    parser.add_argument(
        "--only", default="", help=f"comma list of workloads: {', '.join(w.NAME for w in WORKLOADS)}"
    )
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON, help="default: bench/results.json")
    parser.add_argument("--db-name", default="", help="scratch database name (default dunning_bench)")
    parser.add_argument("--keep-db", action="store_true", help="leave the scratch database for a look")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    return args


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores, {model or platform.processor()}, {memory}, Python {platform.python_version()}"


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        url = scratch.check_url(os.environ.get("DATABASE_URL"))
    except scratch.NotPostgres as exc:
        print(
            f"bench: {exc}. The budgets of SPEC §11 are measured on PostgreSQL; SQLite (the embedded default) "
            "is not a benchmark target. Run e.g.\n  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres "
            "REDIS_URL=redis://127.0.0.1:6379/0 make bench",
            file=sys.stderr,
        )
        return 2

    from bench.workloads import WORKLOADS, select

    try:
        chosen = select(WORKLOADS, args.only)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2

    name = args.db_name or "dunning_bench"
    bench_url = scratch.create(url, name)
    os.environ["DATABASE_URL"] = bench_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.setdefault("BENCH_CELERY_QUEUE", f"bench-{uuid.uuid4().hex[:8]}")
    say(
        f"bench: scale {args.scale:g}, scratch database {name!r}, PostgreSQL {scratch.server_version(bench_url)}"
    )
    say(f"bench: {machine()}")
    started = time.monotonic()
    rows: list[Row] = []
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        say(f"bench: migrated in {time.monotonic() - started:.0f} s")
        from bench.workloads import Context

        ctx = Context(scale=args.scale)
        for workload in chosen:
            say(f"\n== {workload.NAME} ==")
            began = time.monotonic()
            try:
                produced = workload.run(ctx)
            except Exception as exc:  # one broken workload must not hide the others' figures
                traceback.print_exc()
                produced = [failed(n, unit, budget, f"error: {exc!r}") for n, unit, budget in workload.ROWS]
            rows.extend(produced)
            say(f"== {workload.NAME}: {time.monotonic() - began:.0f} s")
            for r in produced:
                say(f"   {r.name}: {r.value} {r.unit} (baseline {r.baseline}, ratio {r.ratio}) ok={r.ok}")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            scratch.drop(url, name)
    write_json(rows, args.json_out, keep_others=bool(args.only.strip()))
    print(table(rows))
    print(f"\n{machine()}; {time.monotonic() - started:.0f} s in all; results in {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
