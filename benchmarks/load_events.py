"""Benchmark: generate demo landing files and load them into a fresh DuckDB warehouse.

Measures the demo generator and the loader (staging, validation, quarantine, dedup,
flag-assignment extraction) end to end on the machine it runs on, and writes the figures
as JSON to benchmarks/results/load_events-<events>.json. A second load of the same files
is timed too: it must be a no-op, and its cost is what a re-run of a day costs.

    python benchmarks/load_events.py --events 1000000 [--threads 2] [--memory-limit 4GB]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

from exp_pipeline.catalog import load_catalog
from exp_pipeline.demo.generator import generate_demo_data
from exp_pipeline.settings import PROJECT_ROOT
from exp_pipeline.warehouse.connection import open_warehouse
from exp_pipeline.warehouse.loader import load_files

RESULTS = Path(__file__).resolve().parent / "results"
BOT_PATTERN = "bot|crawl|spider|headless|python-requests"


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(n_events: int, threads: int, memory_limit: str, workdir: Path) -> dict[str, object]:
    catalog = load_catalog(PROJECT_ROOT / "config" / "experiments.yaml")
    landing = workdir / "landing"
    started = time.perf_counter()
    demo = generate_demo_data(landing, catalog, n_events=n_events, seed=7)
    generate_s = time.perf_counter() - started
    landing_bytes = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())

    with open_warehouse(
        workdir / "warehouse.duckdb", threads=threads, memory_limit=memory_limit
    ) as con:
        started = time.perf_counter()
        first = load_files(con, [landing], bot_pattern=BOT_PATTERN)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        again = load_files(con, [landing], bot_pattern=BOT_PATTERN)
        reload_s = time.perf_counter() - started
    warehouse_bytes = (workdir / "warehouse.duckdb").stat().st_size

    summary = first.summary()
    return {
        "benchmark": "load_events",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "parameters": {"events": n_events, "threads": threads, "memory_limit": memory_limit},
        "generate": {
            "seconds": round(generate_s, 2),
            "rows_written": demo.rows_written,
            "files": len(demo.files),
            "landing_mib": round(landing_bytes / 2**20, 1),
        },
        "load": {
            "seconds": round(load_s, 2),
            "rows_per_second": round(demo.rows_written / load_s),
            "rows_loaded": summary["rows_loaded"],
            "duplicates_skipped": summary["duplicates_skipped"],
            "quarantined": summary["quarantined_total"],
            "flag_assignment_rows": summary["flag_assignments"],
            "warehouse_mib": round(warehouse_bytes / 2**20, 1),
        },
        "reload": {
            "seconds": round(reload_s, 2),
            "rows_loaded": again.summary()["rows_loaded"],
        },
        "peak_rss_mib": round(_peak_rss_mib()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--workdir", type=Path, help="Keep the files here (default: a temp dir).")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="exp-bench-"))
    try:
        figures = run(args.events, args.threads, args.memory_limit, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"load_events-{args.events}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
