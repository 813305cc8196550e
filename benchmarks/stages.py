"""One benchmark stage, run in a fresh process so its peak memory is its own.

`run.py` starts `python benchmarks/stages.py STAGE --run-dir DIR ...` once per stage and
reads the peak resident memory of the child from `wait4`; the stage writes what it did,
and how long the measured part took, to `DIR/<stage>.json`. The stages call the same
core-library functions as the Dagster assets, on a warehouse and a SQLite control
database inside the run directory. With `--memory-limit`, every DuckDB connection a stage
opens gets that limit and a temp directory to spill to.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas_exposures
import workload

from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.definitions import read_experiment
from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.funnels import build_funnel_metrics
from exp_pipeline.analysis.results import build_experiment_results
from exp_pipeline.analysis.trends import build_trend_metrics
from exp_pipeline.catalog import parse_catalog
from exp_pipeline.control.db import ControlDatabase, sqlite_url
from exp_pipeline.control.queries import describe, live_experiments
from exp_pipeline.control.sync import sync_catalog
from exp_pipeline.guardrails.aggregates import compute_aggregates
from exp_pipeline.guardrails.check import check_report, evaluate_snapshots, snapshot_guardrails
from exp_pipeline.guardrails.targets import running_targets
from exp_pipeline.settings import PipelineSettings
from exp_pipeline.stats import BetaPosterior, GammaPosterior, expected_loss, probability_to_be_best
from exp_pipeline.warehouse.connection import open_warehouse
from exp_pipeline.warehouse.definitions_snapshot import write_definitions_snapshot
from exp_pipeline.warehouse.loader import load_files


class Stage:
    """Where a stage reads and writes, and the DuckDB settings of the run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.run_dir: Path = args.run_dir
        self.landing: Path = args.landing
        self.format: str = args.format
        self.memory_limit: str | None = args.memory_limit
        self.warehouse = self.run_dir / "warehouse.duckdb"
        self.control_url = sqlite_url(self.run_dir / "control.db")

    @property
    def spill_dir(self) -> Path | None:
        return self.run_dir / "spill" if self.memory_limit else None

    @contextmanager
    def warehouse_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_warehouse(
            self.warehouse,
            read_only=read_only,
            memory_limit=self.memory_limit,
            temp_directory=self.spill_dir,
        ) as con:
            con.execute("SET enable_progress_bar = false")
            yield con


def _timed(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`work`'s figures with its wall time and CPU time (all threads of this process)."""
    started, cpu = time.perf_counter(), time.process_time()
    figures = work()
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
        **figures,
    }


def scan(stage: Stage) -> dict[str, Any]:
    """The bare engine pass over the landing files: every column the loader reads, once."""
    pattern = str(stage.landing / "*" / f"*.{stage.format}")
    if stage.format == "parquet":
        source = f"read_parquet('{pattern}')"
    else:
        columns = {c: "VARCHAR" for c in ("event", "distinct_id", "timestamp", "event_id")}
        columns["properties"] = "JSON"
        source = (
            f"read_json('{pattern}', format = 'newline_delimited', columns = {columns}, "
            "ignore_errors = true)"
        )

    def work() -> dict[str, Any]:
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            if stage.memory_limit:
                con.execute("SET memory_limit = ?", [stage.memory_limit])
                con.execute("SET temp_directory = ?", [str(stage.spill_dir)])
            rows, subjects, *_ = con.execute(
                f"""SELECT count(*), count(DISTINCT distinct_id), count(event), count(event_id),
                           max(length(timestamp)), max(length(properties::VARCHAR))
                    FROM {source}"""
            ).fetchone()
        return {"rows": int(rows), "distinct_subjects": int(subjects)}

    return _timed(work)


def catalog(stage: Stage) -> dict[str, Any]:
    """The control database with all 500 running experiments, and the warehouse snapshot of
    the 20 analysed ones (what the `experiment_catalog` and `experiment_definitions` assets do).
    """
    parsed = parse_catalog(workload.catalog_document(), "benchmark catalog")
    analysed = set(workload.analysed_keys())

    def work() -> dict[str, Any]:
        db = ControlDatabase(stage.control_url)
        with db.session() as session:
            report = sync_catalog(session, parsed)
        with db.session() as session:
            experiments = [describe(e) for e in live_experiments(session) if e.key in analysed]
        db.dispose()
        with stage.warehouse_connection() as con:
            write_definitions_snapshot(con, experiments, workload.AS_OF)
        return {"created": len(report.created), "started": len(report.started)}

    return _timed(work)


def load(stage: Stage) -> dict[str, Any]:
    pattern = PipelineSettings.load(home=stage.run_dir).bot_user_agent_pattern

    def work() -> dict[str, Any]:
        with stage.warehouse_connection() as con:
            summary = load_files(con, [stage.landing], bot_pattern=pattern).summary()
        return {"summary": summary}

    figures = _timed(work)
    figures["warehouse_mib"] = round(stage.warehouse.stat().st_size / 2**20, 1)
    return figures


def exposures(stage: Stage) -> dict[str, Any]:
    """Exposures and conversions of the 20 analysed experiments, timed apart."""
    spent = {"exposures": 0.0, "conversions": 0.0}
    per_experiment: dict[str, Any] = {}

    def work() -> dict[str, Any]:
        with stage.warehouse_connection() as con:
            for key in workload.analysed_keys():
                experiment = read_experiment(con, key, workload.AS_OF)
                started = time.perf_counter()
                summary = build_exposures(con, experiment)
                middle = time.perf_counter()
                rows = build_conversions(con, experiment)
                spent["exposures"] += middle - started
                spent["conversions"] += time.perf_counter() - middle
                per_experiment[key] = {
                    "exposures": summary.exposures,
                    "excluded": summary.excluded,
                    "conversion_rows": rows,
                    "exposure_seconds": round(middle - started, 3),
                }
        return {
            "exposure_seconds": round(spent["exposures"], 3),
            "conversion_seconds": round(spent["conversions"], 3),
            "experiments": per_experiment,
        }

    return _timed(work)


def results(stage: Stage) -> dict[str, Any]:
    """Funnel and trend metrics, then the Bayesian results documents."""
    significance: dict[str, dict[str, str]] = {}

    def work() -> dict[str, Any]:
        with stage.warehouse_connection() as con:
            for key in workload.analysed_keys():
                experiment = read_experiment(con, key, workload.AS_OF)
                build_funnel_metrics(con, experiment)
                build_trend_metrics(con, experiment)
                document = build_experiment_results(con, experiment, workload.AS_OF)
                significance[key] = {
                    m["metric_key"]: m["significance_code"] for m in document["metrics"]
                }
        return {"significance": significance}

    return _timed(work)


def guardrails(stage: Stage) -> dict[str, Any]:
    """The guardrail check of 500 running experiments: aggregates, then decisions.

    `snapshot_guardrails` then `evaluate_snapshots` is what `check_all_running_experiments`
    does, called apart to time the DuckDB half and the control-database half. Afterwards,
    outside the measured time, one look per target of a sample is timed alone: targets
    with events (the 20 analysed experiments) cost more than the 480 without.
    """
    db = ControlDatabase(stage.control_url)
    with db.session() as session:
        targets = running_targets(session)
    split: dict[str, float] = {}

    def work() -> dict[str, Any]:
        with stage.warehouse_connection() as con:
            started = time.perf_counter()
            checked = snapshot_guardrails(con, db, workload.AS_OF)
            split["aggregates_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        decisions = evaluate_snapshots(db, workload.AS_OF, max_age=timedelta.max)
        split["decisions_seconds"] = time.perf_counter() - started
        report = check_report(len(checked), decisions)
        return {"checked": report["checked"], "triggered": report["triggered"]}

    figures = _timed(work)
    analysed = set(workload.analysed_keys())
    with stage.warehouse_connection(read_only=True) as con:
        per_look: dict[str, list[float]] = {"with_events": [], "without_events": []}
        for target in targets:
            kind = "with_events" if target.key in analysed else "without_events"
            if len(per_look[kind]) < workload.ANALYSED:
                started = time.perf_counter()
                compute_aggregates(con, target, workload.AS_OF)
                per_look[kind].append(time.perf_counter() - started)
    db.dispose()
    figures.update({k: round(v, 3) for k, v in split.items()})
    figures["seconds_per_look"] = {
        kind: round(statistics.mean(times), 4) for kind, times in per_look.items()
    }
    return figures


def pandas_baseline(stage: Stage) -> dict[str, Any]:
    """The exposure build in pandas on the same tables, checked against the SQL build."""
    split: dict[str, float] = {}
    with stage.warehouse_connection(read_only=True) as con:
        experiments = [read_experiment(con, k, workload.AS_OF) for k in workload.analysed_keys()]

        def work() -> dict[str, Any]:
            started = time.perf_counter()
            signals, events = pandas_exposures.fetch(con, experiments)
            split["fetch_seconds"] = round(time.perf_counter() - started, 3)
            return {
                "built": {e.key: pandas_exposures.classify(signals, events, e) for e in experiments}
            }

        figures = _timed(work)
        built = figures.pop("built")
        agrees = {e.key: pandas_exposures.agrees(con, built[e.key], e) for e in experiments}
    return {
        **figures,
        **split,
        "agrees_with_sql": all(agrees.values()),
        "disagreeing": sorted(k for k, ok in agrees.items() if not ok),
    }


def probability_best(stage: Stage) -> dict[str, Any]:
    """Exact P(best) and expected loss for 10 variants: median of 50 timed calls."""
    betas = {f"v{i}": BetaPosterior(1 + 1000 + 7 * i, 1 + 9000 - 7 * i) for i in range(10)}
    gammas = {f"v{i}": GammaPosterior(1 + 5000 + 20 * i, 1.0 + 0.001 * i) for i in range(10)}

    def median_ms(work: Callable[[], object]) -> float:
        work()
        times = []
        for _ in range(50):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        return round(statistics.median(times) * 1000, 3)

    return {
        "beta_probability_best_ms": median_ms(lambda: probability_to_be_best(betas)),
        "gamma_probability_best_ms": median_ms(lambda: probability_to_be_best(gammas)),
        "beta_expected_loss_ms": median_ms(lambda: expected_loss(betas, "v9")),
    }


# Floating-point columns are compared to 9 decimals: a parallel sum may add the same
# values in another order, which moves the last bits and nothing a reader sees.
_FINGERPRINTED = {
    "events": "source_file, loaded_at",
    "flag_assignments": None,
    "exposures": None,
    "exposure_exclusions": None,
    "conversions": None,
    "funnel_metrics": None,
    "trend_metrics": None,
    "trend_exposures": None,
    "experiment_results": "computed_at",
}
SIGNIFICANT_DIGITS = 9


def _significant(value: Any) -> Any:
    """A JSON document with every float rounded to `SIGNIFICANT_DIGITS` significant digits."""
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {k: _significant(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_significant(v) for v in value]
    return value


def _digest(rows: list[Any]) -> str:
    text = json.dumps(rows, sort_keys=True)
    return f"{len(rows)}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _table_fingerprint(con: duckdb.DuckDBPyConnection, table: str, skip: str | None) -> str:
    skipped = {c.strip() for c in (skip or "").split(",") if c.strip()}
    columns = [
        f"round({name}, 9)" if type_ == "DOUBLE" else name
        for name, type_, *_ in con.execute(f"DESCRIBE {table}").fetchall()
        if name not in skipped
    ]
    rows, digest = con.execute(
        f"SELECT count(*), sum(hash({', '.join(columns)})::HUGEINT) FROM {table}"
    ).fetchone()
    return f"{rows}:{digest}"


def fingerprint(stage: Stage) -> dict[str, Any]:
    """Order-independent digests of every table a run writes, to compare two runs.

    The results documents are compared exactly and to 9 significant digits (sums of
    doubles added in another order differ in the last bits, which the documents' 12
    digits can show); they are also written beside the run directory for diffing.
    """
    with stage.warehouse_connection(read_only=True) as con:
        tables = {t: _table_fingerprint(con, t, skip) for t, skip in _FINGERPRINTED.items()}
        documents = [
            [key, json.loads(text)]
            for key, text in con.execute(
                "SELECT experiment_key, document FROM experiment_result_documents ORDER BY 1"
            ).fetchall()
        ]
    tables["experiment_result_documents_exact"] = _digest(documents)
    tables["experiment_result_documents"] = _digest(_significant(documents))
    saved = stage.run_dir.parent / f"{stage.run_dir.name}-documents.json"
    saved.write_text(json.dumps(documents, indent=1, sort_keys=True) + "\n")
    with sqlite3.connect(stage.run_dir / "control.db") as control:
        payloads = control.execute(
            "SELECT e.key, s.payload FROM guardrail_snapshots s "
            "JOIN experiments e ON e.id = s.experiment_id ORDER BY e.key"
        ).fetchall()
        triggers = control.execute(
            "SELECT experiment_key, kind, action, metric_key, variant FROM guardrail_triggers "
            "ORDER BY 1, 2, 3, 4, 5"
        ).fetchall()
    tables["guardrail_snapshots"] = _digest(payloads)
    tables["guardrail_triggers"] = _digest(triggers)
    return {"tables": tables}


STAGES: dict[str, Callable[[Stage], dict[str, Any]]] = {
    "scan": scan,
    "catalog": catalog,
    "load": load,
    "exposures": exposures,
    "results": results,
    "guardrails": guardrails,
    "pandas": pandas_baseline,
    "pbest": probability_best,
    "fingerprint": fingerprint,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--format", choices=["parquet", "jsonl"], default="parquet")
    parser.add_argument("--memory-limit")
    args = parser.parse_args()
    figures = STAGES[args.stage](Stage(args))
    (args.run_dir / f"{args.stage}.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
