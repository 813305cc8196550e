"""Results documents of continuous and ratio metrics with frequentist blocks, for the renderers.

Built from the real statistics (`exp_pipeline.stats`) and the real frequentist block
(`analysis.comparisons`), shaped as the README's results document, so the terminal, the
report and the Dagster metadata are tested on numbers the pipeline can produce.
"""

from __future__ import annotations

from typing import Any

from exp_pipeline.analysis.comparisons import frequentist_blocks
from exp_pipeline.stats import (
    BayesianResult,
    MeanSummary,
    RatioSummary,
    analyse_continuous,
    analyse_ratio,
    ratio_z_test,
    welch_t_test,
)
from tests.report.conftest import _verdict, experiment

REVENUE = {
    "control": MeanSummary(4000, 5.4, 900.0),
    "test": MeanSummary(4100, 7.1, 1100.0),
}
ERRORS = {
    "control": RatioSummary(5000, 270, 12_600, 400, 40_000, 900),
    "test": RatioSummary(5100, 2600, 13_000, 9000, 41_000, 8000),
}


def _bayesian(result: BayesianResult, key: str) -> dict[str, Any]:
    p = result.posteriors[key]
    out: dict[str, Any] = {
        "posterior": {"distribution": "normal", "mean": p.mean, "sd": p.sd},
        "credible_interval": list(result.credible_intervals[key]),
    }
    if key in result.lift_intervals:
        out["lift_interval"] = list(result.lift_intervals[key])
        out["probability_beats_control"] = result.beats_control[key]
    return out


def _metric(
    key: str, kind: str, result: BayesianResult, measures: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """A metric of `kind` whose variants carry `measures` and their posteriors."""
    variants = [
        {"variant_key": v, **numbers, **_bayesian(result, v)} for v, numbers in measures.items()
    ]
    return {"metric_key": key, "kind": kind, "variants": variants, **_verdict(result)}


def revenue_metric() -> dict[str, Any]:
    measures = {
        key: {"exposures": s.n, "sum": s.mean * s.n, "mean": s.mean} for key, s in REVENUE.items()
    }
    return _metric("revenue", "continuous", analyse_continuous(REVENUE), measures) | {
        "event": "purchase",
        "property": "amount",
        "direction": "higher_is_better",
        "winsorisation": {"percentile": 99.0, "cap": 310.5, "capped_subjects": 81},
        "prior": {"mean": 5.0, "weight": 100.0},
    }


def errors_metric() -> dict[str, Any]:
    measures = {
        key: {
            "exposures": s.n,
            "numerator": s.sum_x,
            "denominator": s.sum_y,
            "ratio": s.sum_x / s.sum_y,
        }
        for key, s in ERRORS.items()
    }
    result = analyse_ratio(ERRORS, lower_is_better=True)
    return _metric("errors", "ratio", result, measures) | {
        "numerator": "app_error",
        "denominator": "app_exposure",
        "direction": "lower_is_better",
        "winsorisation": None,
        "prior": None,
    }


def statistics_document() -> dict[str, Any]:
    """Revenue (primary) and an error ratio, each with its frequentist block, and an SRM."""
    metrics = [revenue_metric(), errors_metric()]
    blocks = frequentist_blocks(
        {
            "revenue": {"test": welch_t_test(REVENUE["control"], REVENUE["test"])},
            "errors": {"test": ratio_z_test(ERRORS["control"], ERRORS["test"])},
        }
    )
    for metric in metrics:
        metric["frequentist"] = blocks[metric["metric_key"]]
    document = experiment("revenue-test", metrics, {"control": 5000, "test": 5100})
    document["sample_ratio_mismatch"] = {
        "chi2": 0.99,
        "df": 1,
        "p_value": 0.3197,
        "expected": {"control": 5050.0, "test": 5050.0},
        "mismatch": False,
    }
    return document
