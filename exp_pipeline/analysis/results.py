"""Experiment results: the Bayesian verdict per metric, as a JSON document and a flat table.

Reads only the small per-variant aggregates (exposures, funnel step counts, trend totals)
and hands them to `exp_pipeline.stats`, so the statistics never scan events. The document
is what `exp-pipeline analyze` writes (schema in the README); the flat table
`experiment_results` has one row per experiment, metric and variant for SQL and the UI.

Funnel and trend metrics are analysed here; continuous and ratio metrics are built into
`conversions` and get their statistics with the frequentist methods (delta method, Welch).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

import duckdb

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.exposures import read_exposure_summary
from exp_pipeline.analysis.funnels import read_funnel_steps
from exp_pipeline.analysis.schema import replacing
from exp_pipeline.analysis.trends import TrendSeries, read_trend_series
from exp_pipeline.stats import BayesianResult, BetaPosterior, analyse_funnel, analyse_trend
from exp_pipeline.timeutil import iso_utc

ANALYSED_KINDS = ("funnel", "trend")


def _round(value: float) -> float:
    """Results are exact to ~1e-9; 12 significant digits keep the JSON stable and readable."""
    return float(f"{value:.12g}")


def _interval(bounds: tuple[float, float]) -> list[float]:
    return [_round(bounds[0]), _round(bounds[1])]


def _verdict(result: BayesianResult) -> dict[str, Any]:
    return {
        "probability": {k: _round(p) for k, p in result.probabilities.items()},
        "best_variant": result.best_variant,
        "expected_loss": _round(result.expected_loss),
        "significance_code": str(result.code),
        "significant": result.significant,
    }


def _posterior(result: BayesianResult, key: str) -> dict[str, Any]:
    """A variant's posterior by name and parameters, e.g. {"distribution": "beta", ...}."""
    posterior = result.posteriors[key]
    if isinstance(posterior, BetaPosterior):
        name, mean = "beta", posterior.alpha / (posterior.alpha + posterior.beta)
    else:
        name, mean = "gamma", posterior.shape / posterior.rate
    return {
        "distribution": name,
        **{k: _round(v) for k, v in asdict(posterior).items()},
        "mean": _round(mean),
    }


def _intervals(result: BayesianResult, key: str) -> dict[str, Any]:
    """A variant's posterior and credible interval, and its lift interval unless control."""
    intervals: dict[str, Any] = {
        "posterior": _posterior(result, key),
        "credible_interval": _interval(result.credible_intervals[key]),
    }
    if key in result.lift_intervals:
        intervals["lift_interval"] = _interval(result.lift_intervals[key])
    return intervals


def _metric(
    metric: dict[str, Any], result: BayesianResult, variants: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "metric_key": metric["key"],
        "kind": metric["kind"],
        **extra,
        "variants": variants,
        **_verdict(result),
    }


# Subjects completing the funnel per calendar day of the experiment's zone, zeros included.
_DAILY_CONVERSIONS_SQL = """
WITH days AS (SELECT unnest($days::DATE[]) AS day),
variants AS (
    SELECT variant_key AS variant FROM experiment_variants WHERE experiment_key = $key
),
daily AS (
    SELECT variant, CAST(timezone($timezone, first_conversion_utc) AS DATE) AS day,
           count(*) AS n
    FROM conversions
    WHERE experiment_key = $key AND metric_key = $metric AND first_conversion_utc IS NOT NULL
    GROUP BY ALL
)
SELECT v.variant, list(coalesce(d.n, 0) ORDER BY days.day)
FROM variants v CROSS JOIN days LEFT JOIN daily d ON d.variant = v.variant AND d.day = days.day
GROUP BY v.variant
"""


def _daily_conversions(
    con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition, metric_key: str
) -> tuple[list[str], dict[str, list[int]]]:
    days = [d.isoformat() for d in experiment.local_days()]
    rows = con.execute(
        _DAILY_CONVERSIONS_SQL,
        {
            "days": days,
            "key": experiment.key,
            "metric": metric_key,
            "timezone": experiment.timezone,
        },
    ).fetchall()
    return days, {variant: [int(n) for n in counts] for variant, counts in rows}


def _funnel_metric(
    metric: dict[str, Any],
    steps: dict[str, list[int]],
    exposures: dict[str, int],
    daily: tuple[list[str], dict[str, list[int]]],
) -> dict[str, Any]:
    result = analyse_funnel(steps)
    variants = [
        {
            "variant_key": key,
            "exposures": exposures[key],
            "step_counts": counts,
            "conversion_rate": _round(counts[-1] / counts[0]) if counts[0] else 0.0,
            "days": daily[0],
            "data": daily[1][key],
            **_intervals(result, key),
        }
        for key, counts in steps.items()
    ]
    return _metric(metric, result, variants, steps=metric["steps"])


def _trend_metric(metric: dict[str, Any], series: dict[str, TrendSeries]) -> dict[str, Any]:
    # A variant without $feature_flag_called subjects has an unknown audience: its
    # relative exposure is 1 (ARCHITECTURE) and it counts as not exposed enough.
    exposures = {k: s.exposure for k, s in series.items() if s.exposure > 0}
    result = analyse_trend({k: s.count for k, s in series.items()}, exposures)
    variants = [
        {
            "variant_key": key,
            "count": s.count,
            "exposure": s.exposure,
            "days": s.days,
            "data": [_round(v) for v in s.data],
            **_intervals(result, key),
        }
        for key, s in series.items()
    ]
    return _metric(
        metric, result, variants, math=metric.get("math", "total"), event=metric["event"]
    )


def experiment_document(
    con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition
) -> dict[str, Any]:
    """The results document of one experiment from its aggregate tables."""
    summary = read_exposure_summary(con, experiment)
    steps = read_funnel_steps(con, experiment)
    series = read_trend_series(con, experiment)
    metrics = []
    for metric in experiment.metrics:
        if metric["kind"] == "funnel":
            metrics.append(
                _funnel_metric(
                    metric,
                    steps[metric["key"]],
                    summary.exposures,
                    _daily_conversions(con, experiment, metric["key"]),
                )
            )
        elif metric["kind"] == "trend":
            metrics.append(_trend_metric(metric, series[metric["key"]]))
    return {
        "experiment_key": experiment.key,
        "status": experiment.status,
        "timezone": experiment.timezone,
        "window": {
            "start": iso_utc(experiment.start_utc),
            "end": iso_utc(experiment.end_utc),
            "open_ended": experiment.open_ended,
        },
        "exposures": summary.exposures,
        "excluded": summary.excluded,
        "metrics": metrics,
    }


def _flat_rows(document: dict[str, Any], computed_at: datetime) -> list[list[Any]]:
    rows = []
    primary = document["metrics"][0]["metric_key"] if document["metrics"] else None
    for metric in document["metrics"]:
        for v in metric["variants"]:
            if metric["kind"] == "funnel":
                exposed, value = v["exposures"], v["step_counts"][-1]
                rate = v["conversion_rate"]
            else:
                exposed, value, rate = v["exposure"], v["count"], None
            lift = v.get("lift_interval") or [None, None]
            rows.append(
                [
                    document["experiment_key"],
                    metric["metric_key"],
                    metric["kind"],
                    metric["metric_key"] == primary,
                    v["variant_key"],
                    exposed,
                    value,
                    rate,
                    *v["credible_interval"],
                    metric["probability"][v["variant_key"]],
                    *lift,
                    metric["expected_loss"],
                    metric["significance_code"],
                    metric["significant"],
                    computed_at,
                ]
            )
    return rows


def build_experiment_results(
    con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition, computed_at: datetime
) -> dict[str, Any]:
    """Compute `experiment`'s results, replace its stored rows, and return the document."""
    document = experiment_document(con, experiment)
    with replacing(con, experiment.key, "experiment_results", "experiment_result_documents"):
        rows = _flat_rows(document, computed_at)
        if rows:
            placeholders = ", ".join("?" * len(rows[0]))
            con.executemany(f"INSERT INTO experiment_results VALUES ({placeholders})", rows)
        con.execute(
            "INSERT INTO experiment_result_documents VALUES (?, ?, ?)",
            [experiment.key, json.dumps(document), computed_at],
        )
    return document


def read_result_documents(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every stored results document, ordered by experiment key."""
    rows = con.execute(
        "SELECT document FROM experiment_result_documents ORDER BY experiment_key"
    ).fetchall()
    return [json.loads(r[0]) for r in rows]
