"""Benchmark: rendering an experiment report (tables and plots) from a results document.

Reads the stored results documents of a pipeline home (run `make demo` first), renders
each experiment's HTML report a few times, and writes the timings as JSON to
benchmarks/results/render_report.json. Timings belong here, not in tests: a loaded CI
machine would make a timed test flaky.

    python benchmarks/render_report.py [--home .exp_pipeline] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from exp_pipeline.analysis.results import read_result_documents
from exp_pipeline.report import render_report
from exp_pipeline.settings import PipelineSettings
from exp_pipeline.warehouse.connection import open_warehouse

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    settings = PipelineSettings.load(home=args.home)
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        documents = read_result_documents(con)
    if not documents:
        raise SystemExit(f"no results in {settings.home}: run `make demo` first")
    started = time.perf_counter()
    render_report(documents[0], "html")  # the first figure loads matplotlib's fonts
    first_s = time.perf_counter() - started
    per_experiment = {}
    for document in documents:
        times, size = [], 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            size = len(render_report(document, "html"))
            times.append(time.perf_counter() - started)
        per_experiment[document["experiment_key"]] = {
            "median_seconds": round(statistics.median(times), 3),
            "max_seconds": round(max(times), 3),
            "html_kib": round(size / 1024, 1),
        }
    figures = {
        "benchmark": "render_report",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "first_render_seconds": round(first_s, 3),
        "experiments": per_experiment,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "render_report.json"
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
