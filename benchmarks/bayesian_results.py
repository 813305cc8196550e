"""Benchmark: exact Bayesian results for metrics with 2 to 8 variants.

Times `analyse_funnel` and `analyse_trend` (probability to be best, expected loss,
credible and lift intervals, all by quadrature) and writes JSON figures to
benchmarks/results/bayesian_results.json. Timings belong here, not in tests.

    python benchmarks/bayesian_results.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from exp_pipeline.stats import analyse_funnel, analyse_trend

RESULTS = Path(__file__).resolve().parent / "results"
NAMES = ["control", "b", "c", "d", "e", "f", "g", "h"]


def _median_ms(run: Callable[[], object], repeat: int) -> float:
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {"funnel_ms": {}, "trend_ms": {}}
    for k in (2, 4, 8):
        names = NAMES[:k]
        funnels = {n: [1000, 600, 100 + 5 * i] for i, n in enumerate(names)}
        counts = {n: 1000 + 50 * i for i, n in enumerate(names)}
        exposures = {n: 500 + 5 * i for i, n in enumerate(names)}
        figures["funnel_ms"][str(k)] = _median_ms(lambda f=funnels: analyse_funnel(f), args.repeat)
        figures["trend_ms"][str(k)] = _median_ms(
            lambda c=counts, e=exposures: analyse_trend(c, e), args.repeat
        )
    out = {
        "benchmark": "bayesian_results",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "median_ms_by_variant_count": figures,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bayesian_results.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
