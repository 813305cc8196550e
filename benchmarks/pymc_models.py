"""Benchmark: the PyMC models with their default sampling settings, on realistic sizes.

Times `pool_segment_lift` (10 segments, two variants, 300 000 subjects) and
`analyse_revenue_hurdle` (two variants of 100 000 subjects), each in a fresh process:
once with an empty PyTensor compilation cache (the first run on a new machine compiles C
code) and twice with a warm one (every later run). Reports wall and CPU seconds, peak
memory, the convergence diagnostics of the run, and the machine's load, since other jobs
share it. Writes benchmarks/results/pymc_models.json.

    python benchmarks/pymc_models.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from exp_pipeline.stats.revenue_hurdle import RevenueAggregates, analyse_revenue_hurdle
from exp_pipeline.stats.sampling import SamplingSettings
from exp_pipeline.stats.segment_pooling import pool_segment_lift

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("segment_pooling", "revenue_hurdle")
# Subjects per variant in each segment (a long tail of small countries), and the seed.
SEGMENT_SIZES = [60_000, 35_000, 20_000, 15_000, 10_000, 6_000, 3_000, 1_500, 500, 200]
SEED = 7


def _segment_counts() -> dict[str, dict[str, list[int]]]:
    """Control rates of 4-6% by segment, a true lift of +5% with a little heterogeneity."""
    rng = np.random.default_rng(SEED)
    counts = {}
    for i, n in enumerate(SEGMENT_SIZES):
        rate = rng.uniform(0.04, 0.06)
        lift = 1.05 * np.exp(rng.normal(0, 0.02))
        counts[f"country_{i:02d}"] = {
            "control": [n, int(rng.binomial(n, rate))],
            "test": [n, int(rng.binomial(n, rate * lift))],
        }
    return counts


def _revenue_aggregates() -> dict[str, RevenueAggregates]:
    """3% of 100 000 subjects convert, log order values Normal(3.5, 1.1); +4% in test."""
    rng = np.random.default_rng(SEED)
    aggregates = {}
    for variant, (rate, mu) in {"control": (0.030, 3.5), "test": (0.031, 3.51)}.items():
        converters = int(rng.binomial(100_000, rate))
        logs = rng.normal(mu, 1.1, converters)
        aggregates[variant] = RevenueAggregates(
            100_000, converters, float(logs.sum()), float((logs**2).sum())
        )
    return aggregates


def _run_one(model: str) -> None:
    """Child process: run one model with the defaults and print its figures as JSON."""
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    if model == "segment_pooling":
        result = pool_segment_lift(_segment_counts())
    else:
        result = analyse_revenue_hurdle(_revenue_aggregates())
    diagnostics = result.diagnostics
    print(
        json.dumps(
            {
                "wall_s": round(time.perf_counter() - started_wall, 2),
                "cpu_s": round(time.process_time() - started_cpu, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "max_r_hat": round(diagnostics.max_r_hat, 4),
                "min_ess_bulk": round(diagnostics.min_ess_bulk),
                "min_ess_tail": round(diagnostics.min_ess_tail),
                "divergences": diagnostics.divergences,
            }
        )
    )


def _child(model: str, compiledir: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if compiledir:
        env["PYTENSOR_FLAGS"] = f"compiledir={compiledir}"
    completed = subprocess.run(
        [sys.executable, __file__, "--child", model],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _memory_gb() -> float:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _run_one(args.child)
        return
    load_before = os.getloadavg()
    figures = {}
    for model in MODELS:
        with tempfile.TemporaryDirectory(prefix="pytensor-cold-") as cold_dir:
            cold = _child(model, cold_dir)
        _child(model, None)  # fills the shared cache
        figures[model] = {"cold_cache": cold, "warm_cache": _child(model, None)}
        print(model, json.dumps(figures[model]), flush=True)
    out = {
        "benchmark": "pymc_models",
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": _memory_gb(),
            "python": platform.python_version(),
            "load_average_1m_before_after": [
                round(load_before[0], 2),
                round(os.getloadavg()[0], 2),
            ],
            "note": (
                "shared with other engineers' test runs while measured: wall time is "
                "inflated by the load; cpu_s is this process's own time"
            ),
        },
        "default_settings": SamplingSettings().to_dict(),
        "sizes": {
            "segment_pooling": {
                "segments": len(SEGMENT_SIZES),
                "variants": 2,
                "subjects": 2 * sum(SEGMENT_SIZES),
            },
            "revenue_hurdle": {"variants": 2, "subjects": 200_000},
        },
        "figures": figures,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pymc_models.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
