"""Experiment results: the verdict per metric, as a JSON document and a flat table.

Reads only the small per-variant aggregates (exposures, funnel step counts, trend totals,
per-variant sums of continuous, ratio and count metrics) and hands them to
`exp_pipeline.stats`, so the statistics never scan events. The document is what
`exp-pipeline analyze` writes (schema in the README); the flat table `experiment_results`
has one row per experiment, metric and variant for SQL and the UI.

Every metric gets its Bayesian result (Beta, Gamma, or Normal posteriors, flat priors
unless the catalog states one) and, beside it, a frequentist block (`comparisons`). Trend
posteriors are widened when the per-subject counts are overdispersed. A continuous or
ratio metric the data cannot describe yet (fewer than two subjects in a variant, no
variation at all) keeps its descriptive numbers and says why it has no verdict.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import duckdb

from exp_pipeline.analysis.comparisons import frequentist_blocks, json_number
from exp_pipeline.analysis.cuped_document import cuped_block
from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.exposures import read_exposure_summary
from exp_pipeline.analysis.funnels import read_funnel_steps
from exp_pipeline.analysis.group_exposures import read_group_exposure_summaries
from exp_pipeline.analysis.group_results import aggregation_fields, unit_exposures, unit_series
from exp_pipeline.analysis.metric_sums import MetricSums, read_metric_sums
from exp_pipeline.analysis.revenue import HURDLE, hurdle_block
from exp_pipeline.analysis.schema import replacing
from exp_pipeline.analysis.segments import segments_section
from exp_pipeline.analysis.trends import TrendSeries, read_trend_series
from exp_pipeline.analysis.verdict_fields import intervals as _intervals
from exp_pipeline.analysis.verdict_fields import no_verdict as _no_verdict
from exp_pipeline.analysis.verdict_fields import round_number as _round
from exp_pipeline.analysis.verdict_fields import sample_ratio_block
from exp_pipeline.analysis.verdict_fields import verdict as _verdict
from exp_pipeline.analysis.web_counters import read_web_counters
from exp_pipeline.errors import ExpPipelineError
from exp_pipeline.reporting import variant_measures
from exp_pipeline.stats import (
    BayesianResult,
    Dispersion,
    FrequentistResult,
    MeanSummary,
    Prior,
    RatioSummary,
    StatsInputError,
    analyse_continuous,
    analyse_funnel,
    analyse_ratio,
    analyse_trend,
    dispersion_test,
    poisson_rate_test,
    ratio_z_test,
    two_proportion_z_test,
    welch_t_test,
)
from exp_pipeline.stats.results import CONTROL_VARIANT
from exp_pipeline.stats.sampling_settings import SamplingSettings
from exp_pipeline.timeutil import iso_utc

DEFAULT_SAMPLING = SamplingSettings()

# Per treatment variant: the fixed-horizon test against control, or why there is none.
Tests = dict[str, FrequentistResult | str]


def _metric(
    metric: dict[str, Any],
    result: BayesianResult | str,
    variants: list[dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    """One metric's document: `result` is its Bayesian result, or why there is none."""
    return {
        "metric_key": metric["key"],
        "kind": metric["kind"],
        **extra,
        "prior": metric.get("prior"),
        "variants": variants,
        **(_no_verdict(result) if isinstance(result, str) else _verdict(result)),
    }


def _prior(metric: dict[str, Any]) -> Prior | None:
    stated = metric.get("prior")
    return None if stated is None else Prior(mean=stated["mean"], weight=stated["weight"])


def _settings(metric: dict[str, Any]) -> dict[str, Any]:
    """The stated prior and direction of a continuous or ratio metric."""
    return {
        "prior": _prior(metric),
        "lower_is_better": metric.get("direction") == "lower_is_better",
    }


def _attempt(analyse: Callable[[], Any]) -> Any:
    """`analyse()`, or the reason the aggregates cannot support it (a one-line message)."""
    try:
        return analyse()
    except StatsInputError as exc:
        return str(exc)


def _tests(
    control: str, variants: list[str], test: Callable[[str, str], FrequentistResult]
) -> Tests:
    """`test(control, variant)` for every treatment variant, or why it cannot be run."""
    return {key: _attempt(lambda key=key: test(control, key)) for key in variants if key != control}


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
) -> tuple[dict[str, Any], Tests]:
    result = analyse_funnel(steps, prior=_prior(metric))
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
    tests = _tests(
        CONTROL_VARIANT,
        list(steps),
        lambda c, t: two_proportion_z_test(steps[c][-1], steps[c][0], steps[t][-1], steps[t][0]),
    )
    return _metric(metric, result, variants, steps=metric["steps"]), tests


def _mean_summaries(sums: MetricSums) -> dict[str, MeanSummary]:
    """(n, mean, s²) of each variant's per-subject values x."""
    return {
        key: MeanSummary.from_sums(s.n, s.sum_x, s.sum_x2, f"variant {key!r}")
        for key, s in sums.variants.items()
    }


def _dispersion(sums: MetricSums) -> Dispersion | str:
    """The dispersion test of the per-subject counts behind a trend."""
    return _attempt(lambda: dispersion_test(_mean_summaries(sums)))


def _dispersion_document(dispersion: Dispersion | str) -> dict[str, Any]:
    if isinstance(dispersion, str):
        return {"reason": dispersion, "widening": 1.0}
    return {
        "phi": _round(dispersion.phi),
        "statistic": _round(dispersion.statistic),
        "df": int(dispersion.df),
        "p_value": _round(dispersion.p_value),
        "overdispersed": dispersion.overdispersed,
        "widening": _round(dispersion.widening),
    }


def _trend_metric(
    metric: dict[str, Any], series: dict[str, TrendSeries], sums: MetricSums
) -> tuple[dict[str, Any], Tests]:
    # A variant without $feature_flag_called subjects has an unknown audience: its
    # relative exposure is 1 (ARCHITECTURE) and it counts as not exposed enough.
    exposures = {k: s.exposure for k, s in series.items() if s.exposure > 0}
    dispersion = _dispersion(sums)
    widening = 1.0 if isinstance(dispersion, str) else dispersion.widening
    result = _attempt(
        lambda: analyse_trend(
            {k: s.count for k, s in series.items()},
            exposures,
            prior=_prior(metric),
            widening=widening,
        )
    )
    bayesian = None if isinstance(result, str) else result
    variants = [
        {
            "variant_key": key,
            "count": s.count,
            "exposure": s.exposure,
            "days": s.days,
            "data": [_round(v) for v in s.data],
            **_intervals(bayesian, key),
        }
        for key, s in series.items()
    ]
    tests = _tests(
        CONTROL_VARIANT,
        list(series),
        lambda c, t: poisson_rate_test(
            series[c].count,
            series[c].exposure,
            series[t].count,
            series[t].exposure,
            dispersion=widening,
        ),
    )
    document = _metric(
        metric,
        result,
        variants,
        math=metric.get("math", "total"),
        event=metric["event"],
        dispersion=_dispersion_document(dispersion),
    )
    return document, tests


def _winsorisation(sums: MetricSums) -> dict[str, Any] | None:
    if sums.percentile is None:
        return None
    return {
        "percentile": sums.percentile,
        "cap": json_number(sums.cap),
        "capped_subjects": sums.capped,
    }


def _measured_metric(
    metric: dict[str, Any],
    sums: MetricSums,
    result: BayesianResult | str,
    measures: Callable[[RatioSummary], dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    """The document of a continuous or ratio metric: per variant its subjects, `measures`
    and posterior; the metric's direction and winsorisation."""
    bayesian = None if isinstance(result, str) else result
    variants = [
        {"variant_key": key, "exposures": s.n, **measures(s), **_intervals(bayesian, key)}
        for key, s in sums.variants.items()
    ]
    return _metric(
        metric,
        result,
        variants,
        **extra,
        direction=metric.get("direction", "higher_is_better"),
        winsorisation=_winsorisation(sums),
    )


def _continuous_metric(metric: dict[str, Any], sums: MetricSums) -> tuple[dict[str, Any], Tests]:
    summaries = _attempt(lambda: _mean_summaries(sums))
    if isinstance(summaries, str):  # a variant with fewer than two subjects
        result: BayesianResult | str = summaries
        tests: Tests = {key: summaries for key in sums.variants if key != CONTROL_VARIANT}
    else:
        result = _attempt(lambda: analyse_continuous(summaries, **_settings(metric)))
        tests = _tests(
            CONTROL_VARIANT,
            list(sums.variants),
            lambda c, t: welch_t_test(summaries[c], summaries[t]),
        )
    document = _measured_metric(
        metric,
        sums,
        result,
        lambda s: {
            "sum": _round(s.sum_x),
            "mean": json_number(s.sum_x / s.n if s.n else math.nan),
        },
        event=metric["event"],
        property=metric["property"],
    )
    return document, tests


def _ratio_metric(metric: dict[str, Any], sums: MetricSums) -> tuple[dict[str, Any], Tests]:
    result = _attempt(lambda: analyse_ratio(sums.variants, **_settings(metric)))
    tests = _tests(
        CONTROL_VARIANT,
        list(sums.variants),
        lambda c, t: ratio_z_test(sums.variants[c], sums.variants[t]),
    )
    document = _measured_metric(
        metric,
        sums,
        result,
        lambda s: {
            "numerator": _round(s.sum_x),
            "denominator": _round(s.sum_y),
            "ratio": json_number(s.sum_x / s.sum_y if s.sum_y else math.nan),
        },
        numerator=metric["numerator"],
        denominator=metric["denominator"],
    )
    return document, tests


def _web_counters(
    con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition
) -> dict[str, dict[str, Any]]:
    """The classic web counters per variant ({} when the experiment has none of them)."""
    return {
        variant: {
            name: _round(value) if isinstance(value, float) else value
            for name, value in counters.as_dict().items()
            if name != "variant"
        }
        for variant, counters in read_web_counters(con, experiment).items()
    }


def experiment_document(
    con: duckdb.DuckDBPyConnection,
    experiment: ExperimentDefinition,
    sampling: SamplingSettings = DEFAULT_SAMPLING,
) -> dict[str, Any]:
    """The results document of one experiment from its aggregate tables; `sampling` is how
    the PyMC models a metric or segment breakdown asks for are sampled."""
    summary = read_exposure_summary(con, experiment)
    steps = read_funnel_steps(con, experiment)
    series = read_trend_series(con, experiment)
    groups = read_group_exposure_summaries(con, experiment)
    metrics = []
    tests: dict[str, Tests] = {}
    for metric in experiment.metrics:
        key, kind = metric["key"], metric["kind"]
        if kind == "funnel":
            daily = _daily_conversions(con, experiment, key)
            exposed = unit_exposures(metric, summary.exposures, groups)
            document, tests[key] = _funnel_metric(metric, steps[key], exposed, daily)
        elif kind == "trend":
            sums = read_metric_sums(con, experiment, metric)
            document, tests[key] = _trend_metric(
                metric, unit_series(metric, series[key], groups), sums
            )
        elif kind == "continuous":
            document, tests[key] = _continuous_metric(
                metric, read_metric_sums(con, experiment, metric)
            )
        elif kind == "ratio":
            document, tests[key] = _ratio_metric(metric, read_metric_sums(con, experiment, metric))
        else:
            raise ExpPipelineError(f"metric {key!r}: no analysis for metric kind {kind!r}")
        document.update(aggregation_fields(metric, experiment, groups, sample_ratio_block))
        if metric.get("cuped"):  # y capped as the unadjusted result caps it
            cap = (document.get("winsorisation") or {}).get("cap")
            document["cuped"] = cuped_block(con, experiment, metric, cap)
        if metric.get("model") == HURDLE:
            document["hurdle"] = hurdle_block(con, experiment, metric, sampling)
        metrics.append(document)
    blocks = frequentist_blocks(tests)
    for document in metrics:
        document["frequentist"] = blocks[document["metric_key"]]
    # After the blocks: the segments' comparisons join the overall ones in one e-BH family.
    segments = segments_section(con, experiment, metrics, (tests, blocks), sampling)
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
        "sample_ratio_mismatch": sample_ratio_block(summary.exposures, experiment.allocation),
        "web_counters": _web_counters(con, experiment),
        "metrics": metrics,
        "segments": segments,
    }


def _flat_rows(document: dict[str, Any], computed_at: datetime) -> list[list[Any]]:
    """One row per metric and variant with a verdict (the table has no row without one)."""
    rows = []
    primary = document["metrics"][0]["metric_key"] if document["metrics"] else None
    for metric in document["metrics"]:
        if "reason" in metric:
            continue
        for v in metric["variants"]:
            exposed, value, rate = variant_measures(metric, v)
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
    con: duckdb.DuckDBPyConnection,
    experiment: ExperimentDefinition,
    computed_at: datetime,
    sampling: SamplingSettings = DEFAULT_SAMPLING,
) -> dict[str, Any]:
    """Compute `experiment`'s results, replace its stored rows, and return the document."""
    document = experiment_document(con, experiment, sampling)
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
