"""Benchmark: the pipeline end to end at 1M, 10M or 100M events, time and peak memory.

One command per size. It generates the landing files once (`generate.py`, cached under
`--workdir`), then runs each stage in a fresh child process (`stages.py`) and measures
its wall time and the peak resident memory of the child (`wait4`'s `ru_maxrss`: the
child is the whole process tree, DuckDB's threads included):

- `scan`: the bare engine pass over the landing files (the yardstick);
- `catalog`: 500 running experiments into a SQLite control database, and the snapshot;
- `load`: the loader, file by file (staging, validation, dedup, flag assignments);
- `exposures`: exposures and conversions of the 20 analysed experiments;
- `results`: funnel and trend metrics and the Bayesian results documents;
- `guardrails`: the guardrail check of the 500 running experiments;
- `pandas` (1M and 10M, without a memory limit): the exposure build in pandas, checked
  against the SQL build;
- `pbest`: exact probability to be best for 10 variants;
- `fingerprint`: digests of every table written, to compare runs.

Every stage is reported as a ratio to the bare scan. The figures go to
`benchmarks/results/run_<size>_<format>[_mem<limit>].json` with the machine and the
library versions, and the table in `benchmarks/README.md` is rebuilt from every results
file present. With `--memory-limit`, each DuckDB connection gets that limit and a temp
directory, and the run's table digests are compared with the unconstrained run's.

    python benchmarks/run.py --events 1M [--format parquet|jsonl] [--memory-limit 2GiB]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import readme_table
from generate import generator_version, parse_count

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PIPELINE = ("catalog", "load", "exposures", "results", "guardrails")
PANDAS_MAX_EVENTS = 10_000_000
LIBRARIES = ("duckdb", "pandas", "pyarrow", "numpy", "scipy", "sqlalchemy", "exp-pipeline")
# The targets on this 2-core, 24 GiB machine.
TARGETS = {
    "end_to_end_seconds_at_100M": 180,
    "end_to_end_peak_gib_at_100M": 8,
    "exposure_build_to_scan_ratio": 3,
    "guardrail_check_500_seconds": 5,
    "probability_best_10_variants_ms": 10,
}


def _size_label(events: int) -> str:
    return f"{events // 1_000_000}M" if events % 1_000_000 == 0 else str(events)


def _load_average() -> float:
    return round(os.getloadavg()[0], 2)


def _directory_bytes(path: Path) -> int:
    """Bytes of the files below `path` now (0 when it does not exist)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # DuckDB deletes as it goes
                total += os.stat(os.path.join(root, name)).st_size
    return total


def _child(argv: list[str], spill_dir: Path | None = None) -> dict[str, Any]:
    """Run `argv`: its wall time, CPU time and peak RSS (of it and its waited-for children),
    the load average before and after (on a shared machine, wall time grows with the load
    while CPU time mostly does not) and, when given `spill_dir`, the most DuckDB had
    spilled there at once (sampled every half second)."""
    load_before = _load_average()
    started = time.perf_counter()
    process = subprocess.Popen(argv)
    spilled = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if spill_dir is not None:
            spilled = max(spilled, _directory_bytes(spill_dir))
        time.sleep(0.5)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"{' '.join(argv)} exited with {process.returncode}")
    figures = {
        "process_seconds": round(seconds, 3),
        "process_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),  # KiB on Linux
        "load_average": [load_before, _load_average()],
    }
    if spill_dir is not None:
        figures["peak_spill_mib"] = round(spilled / 2**20)
    return figures


def _landing(args: argparse.Namespace) -> tuple[Path, dict[str, Any], dict[str, float] | None]:
    """The landing files of this size and seed, generated unless already there."""
    data = args.workdir / f"data-{_size_label(args.events)}-seed{args.seed}"
    manifest_path = data / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if args.format in manifest["formats"] and manifest.get("generator") == generator_version():
            return data / args.format, manifest, None
    argv = [sys.executable, str(HERE / "generate.py"), "--events", str(args.events)]
    argv += ["--out", str(data), "--seed", str(args.seed)]
    if args.events <= 1_000_000 or args.format == "jsonl":
        argv.append("--jsonl")
    measured = _child(argv)
    return data / args.format, json.loads(manifest_path.read_text()), measured


def _machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(total_kib / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _checks(manifest: dict[str, Any], figures: dict[str, Any], fmt: str) -> dict[str, bool]:
    """The loader counted exactly what the generator planted; pandas agreed with SQL."""
    planted, summary = manifest["planted"], figures["load"]["summary"]
    quarantined = {r: planted[r] for r in ("missing_distinct_id", "invalid_timestamp")}
    quarantined |= {r: planted[r] for r in ("invalid_properties", "missing_event")}
    if fmt == "jsonl":
        quarantined["malformed_json"] = planted["malformed_json"]
    checks = {
        "rows_loaded": summary["rows_loaded"] == planted["events"],
        "duplicates": summary["duplicates_skipped"] == planted["duplicates"],
        "quarantine": summary["quarantined"] == dict(sorted(quarantined.items())),
        "bots_and_dnt": (summary["bot_events"], summary["dnt_events"])
        == (planted["bot_events"], planted["dnt_events"]),
        "flag_assignments": summary["flag_assignments"]
        == planted["flagged_events"] + planted["dark_mode_events"],
        "guardrails_checked_500": figures["guardrails"]["checked"] == 500,
    }
    if "pandas" in figures:
        checks["pandas_matches_sql"] = figures["pandas"]["agrees_with_sql"]
    return checks


def _compare(fingerprints: dict[str, str], reference: Path) -> dict[str, Any] | None:
    """Which tables differ from the unconstrained run's (None when there is none yet)."""
    if not reference.exists():
        return None
    theirs = json.loads(reference.read_text())["fingerprints"]
    differing = sorted(t for t in fingerprints if fingerprints[t] != theirs.get(t))
    return {"reference": reference.name, "identical": not differing, "differing": differing}


def run(args: argparse.Namespace) -> dict[str, Any]:
    landing, manifest, generated = _landing(args)
    suffix = f"_mem{args.memory_limit}" if args.memory_limit else ""
    run_dir = args.workdir / f"run-{_size_label(args.events)}-{args.format}{suffix}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    stages = ["scan", *PIPELINE, "pbest", "fingerprint"]
    if args.events <= PANDAS_MAX_EVENTS and not args.memory_limit:
        stages.insert(-2, "pandas")
    figures: dict[str, Any] = {}
    for name in stages:
        argv = [sys.executable, str(HERE / "stages.py"), name, "--run-dir", str(run_dir)]
        argv += ["--landing", str(landing), "--format", args.format]
        if args.memory_limit:
            argv += ["--memory-limit", args.memory_limit]
        # The directory stages.py gives DuckDB to spill to under a memory limit.
        measured = _child(argv, run_dir / "spill" if args.memory_limit else None)
        figures[name] = {**json.loads((run_dir / f"{name}.json").read_text()), **measured}
        print(f"{name}: {figures[name].get('seconds', '-')} s, {measured['peak_rss_mib']} MiB")
    fingerprints = figures.pop("fingerprint")["tables"]

    scan_s = figures["scan"]["seconds"]
    for name in (*PIPELINE, "pandas"):
        if name in figures:
            figures[name]["ratio_to_scan"] = round(figures[name]["seconds"] / scan_s, 2)
    figures["exposures"]["exposure_build_ratio_to_scan"] = round(
        figures["exposures"]["exposure_seconds"] / scan_s, 2
    )
    end_to_end = {
        "seconds": round(sum(figures[n]["seconds"] for n in PIPELINE), 1),
        "cpu_seconds": round(sum(figures[n]["cpu_seconds"] for n in PIPELINE), 1),
        "peak_rss_mib": max(figures[n]["peak_rss_mib"] for n in PIPELINE),
    }
    end_to_end["ratio_to_scan"] = round(end_to_end["seconds"] / scan_s, 2)
    reference = RESULTS / f"run_{_size_label(args.events)}_{args.format}.json"
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "benchmark": "run",
        "machine": _machine(),
        "libraries": {name: version(name) for name in LIBRARIES},
        "parameters": {
            "events": args.events,
            "format": args.format,
            "seed": args.seed,
            "memory_limit": args.memory_limit,
            "duckdb_threads": os.cpu_count(),
        },
        "data": {**manifest, "generate": generated},
        "stages": figures,
        "end_to_end": end_to_end,
        "targets": TARGETS,
        "checks": _checks(manifest, figures, args.format),
        "fingerprints": fingerprints,
        "same_results_as_unconstrained": _compare(fingerprints, reference)
        if args.memory_limit
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=parse_count, default=1_000_000, help="1M, 10M, 100M")
    parser.add_argument("--format", choices=["parquet", "jsonl"], default="parquet")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 2GiB (spills to disk)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/exp-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the warehouse of the run")
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    figures = run(args)
    RESULTS.mkdir(exist_ok=True)
    suffix = f"_mem{args.memory_limit}" if args.memory_limit else ""
    out = RESULTS / f"run_{_size_label(args.events)}_{args.format}{suffix}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    readme_table.update(HERE / "README.md", sorted(RESULTS.glob("run_*.json")))
    print(json.dumps({k: figures[k] for k in ("end_to_end", "checks")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
