"""A metric's `cuped` block: its verdict again, on values adjusted by pre-exposure behaviour.

The unadjusted result stays as it is; beside it, a metric with `cuped:` gets θ, the
covariate's means, the variance removed (pooled and per variant), and the same verdict
machinery run on the adjusted per-subject means: the Normal posteriors of
`analyse_continuous` (P(best), P(beats control), expected loss, lift intervals) and
Welch's test per treatment. The adjusted means are per exposed subject whatever the
kind: a funnel's is its conversion per exposed subject (completed every step), a
trend's its events per exposed subject. A stated prior and direction apply as they do
unadjusted, since the adjusted means keep the metric's units.
"""

from __future__ import annotations

from typing import Any

from exp_pipeline.analysis.comparisons import fixed_horizon_block
from exp_pipeline.analysis.cuped_sums import CovariateSums, read_cuped_sums
from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.verdict_fields import intervals, no_verdict, round_number, verdict
from exp_pipeline.engines.base import Warehouse
from exp_pipeline.stats import (
    BayesianResult,
    CupedResult,
    CupedSums,
    Prior,
    StatsInputError,
    analyse_continuous,
    cuped_adjust,
    welch_t_test,
)


def _adjusted(sums: dict[str, CovariateSums]) -> CupedResult:
    return cuped_adjust(
        {
            key: CupedSums.from_sums(s.n, s.sum_y, s.sum_y2, s.sum_x, s.sum_x2, s.sum_xy)
            for key, s in sums.items()
        }
    )


def _bayesian(metric: dict[str, Any], cuped: CupedResult) -> BayesianResult | str:
    stated = metric.get("prior")
    try:
        return analyse_continuous(
            cuped.adjusted,
            prior=None if stated is None else Prior(mean=stated["mean"], weight=stated["weight"]),
            lower_is_better=metric.get("direction") == "lower_is_better",
        )
    except StatsInputError as exc:
        return str(exc)


def _welch(cuped: CupedResult, control: str) -> dict[str, dict[str, Any]]:
    """Welch's test of each treatment's adjusted mean against control's, or why not."""
    tests: dict[str, dict[str, Any]] = {}
    for key, summary in cuped.adjusted.items():
        if key == control:
            continue
        try:
            tests[key] = fixed_horizon_block(welch_t_test(cuped.adjusted[control], summary))
        except StatsInputError as exc:
            tests[key] = {"reason": str(exc)}
    return tests


def cuped_block(
    warehouse: Warehouse,
    experiment: ExperimentDefinition,
    metric: dict[str, Any],
    cap: float | None = None,
) -> dict[str, Any]:
    """The CUPED block of a metric with `cuped:`; y capped at `cap`, the metric's
    winsorisation cap."""
    sums = read_cuped_sums(warehouse, experiment, metric, cap)
    return cuped_document(metric, sums, experiment.control)


def cuped_document(
    metric: dict[str, Any], sums: dict[str, CovariateSums], control: str
) -> dict[str, Any]:
    """The CUPED block from each variant's sums (control first); data that cannot support
    it yet (a variant under two subjects) gives a `reason` and no verdict."""
    head = {"lookback_days": metric["cuped"]["lookback_days"]}
    try:
        cuped = _adjusted(sums)
    except StatsInputError as exc:
        return {**head, **no_verdict(str(exc))}
    result = _bayesian(metric, cuped)
    bayesian = None if isinstance(result, str) else result
    variants = [
        {
            "variant_key": key,
            "exposures": s.n,
            "mean": round_number(s.sum_y / s.n),
            "covariate_mean": round_number(s.sum_x / s.n),
            "adjusted_mean": round_number(cuped.adjusted[key].mean),
            "variance_reduction": round_number(cuped.variance_reductions[key]),
            **intervals(bayesian, key),
        }
        for key, s in sums.items()
    ]
    return {
        **head,
        "theta": round_number(cuped.theta),
        "covariate_mean": round_number(cuped.covariate_mean),
        "variance_reduction": round_number(cuped.variance_reduction),
        "variants": variants,
        **(no_verdict(result) if isinstance(result, str) else verdict(result)),
        "frequentist": _welch(cuped, control),
    }
