"""The revenue hurdle of a continuous metric (`model: hurdle`): aggregates in SQL, then PyMC.

A continuous metric such as revenue is zero for most subjects and heavy-tailed for the
rest; `exp_pipeline.stats.revenue_hurdle` models it as conversion probability times a
log-normal order value, from four numbers per variant the engine computes in one
statement: subjects, converters (per-subject value > 0), Σ log v and Σ (log v)² over
converters. The per-subject value is the metric's value sum, the one the unadjusted
result reads, but never winsorised: the log-normal is there to describe the tail that a
cap would cut off. A subject whose values sum to 0 or less (refunds) is not a converter.

The sampled block carries every reported quantity's r_hat and effective sample sizes;
a run that did not converge raises `ConvergenceError` (the asset fails) rather than
publishing numbers that look as sure as converged ones.

The model's module imports PyMC, which takes seconds; it is imported where a hurdle is
computed, so commands and runs without one (the results module imports this one) never
pay for it.

The log sums are exact (`engines.sql.exact_sum`): the sampler amplifies a last-bit difference in its
inputs into different draws, so sums that depend on the order rows arrive in would give
another r_hat on Spark, or on the next multi-threaded run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exp_pipeline.analysis.comparisons import json_number
from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.metric_sums import SUBJECT_MEASURES
from exp_pipeline.analysis.units import exposed_units_sql, unit_params
from exp_pipeline.engines.base import Warehouse, as_engine
from exp_pipeline.engines.sql import exact_sum
from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.sampling_settings import SamplingSettings

if TYPE_CHECKING:
    from exp_pipeline.stats.revenue_hurdle import RevenueAggregates, RevenueHurdleResult
    from exp_pipeline.stats.sampling import ParameterSummary

HURDLE = "hurdle"


def revenue_aggregates_sql(metric: dict[str, Any]) -> str:
    """The SELECT of per-variant hurdle aggregates. Parameters: $key, $metric and the
    unit relation's (`units.unit_params`)."""
    value = SUBJECT_MEASURES["continuous"][0]
    return f"""WITH units AS ({exposed_units_sql(metric)}), revenue AS (
        SELECT u.variant, CAST({value} AS DOUBLE) AS v
        FROM units u
        LEFT JOIN conversions c
          ON c.experiment_key = $key AND c.metric_key = $metric AND c.distinct_id = u.unit_id
    ), logged AS (
        SELECT variant, ln(CASE WHEN v > 0 THEN v END) AS log_v FROM revenue
    )
    SELECT variant, count(*), count(log_v),
           coalesce({exact_sum("log_v")}, 0), coalesce({exact_sum("log_v * log_v")}, 0)
    FROM logged
    GROUP BY variant"""


def read_revenue_aggregates(
    warehouse: Warehouse, experiment: ExperimentDefinition, metric: dict[str, Any]
) -> dict[str, RevenueAggregates]:
    """Per variant (all of the experiment's, control first), `metric`'s hurdle aggregates."""
    from exp_pipeline.stats.revenue_hurdle import RevenueAggregates  # PyMC: imported late

    engine = as_engine(warehouse)
    params = {"key": experiment.key, "metric": metric["key"], **unit_params(metric, engine.dialect)}
    rows = {row[0]: row[1:] for row in engine.fetch(revenue_aggregates_sql(metric), params)}
    return {
        variant: RevenueAggregates(int(n), int(k), float(s), float(s2))
        for variant in experiment.variants
        for n, k, s, s2 in [rows.get(variant, (0, 0, 0.0, 0.0))]
    }


def _quantity(summary: ParameterSummary) -> dict[str, Any]:
    """A sampled quantity: its posterior summary and its own convergence diagnostics."""
    return {
        "mean": json_number(summary.mean),
        "median": json_number(summary.median),
        "sd": json_number(summary.sd),
        "interval": [json_number(b) for b in summary.interval],
        "r_hat": json_number(summary.r_hat),
        "ess_bulk": json_number(summary.ess_bulk),
        "ess_tail": json_number(summary.ess_tail),
    }


def hurdle_document(result: RevenueHurdleResult) -> dict[str, Any]:
    """The metric's `hurdle` block: per variant revenue per subject and its parts, lift and
    P(beats control); the sampling settings and the run's diagnostics."""
    diagnostics = result.diagnostics
    return {
        "model": diagnostics.model,
        "variants": [
            {
                "variant_key": v.variant,
                "subjects": v.aggregates.subjects,
                "converters": v.aggregates.converters,
                "revenue_per_subject": _quantity(v.revenue_per_subject),
                "conversion": _quantity(v.conversion),
                "order_value": _quantity(v.order_value),
                "log_value_mu": _quantity(v.log_value_mu),
                "log_value_sigma": _quantity(v.log_value_sigma),
                **(
                    {
                        "lift": _quantity(v.lift),
                        "probability_beats_control": json_number(v.probability_beats_control),
                    }
                    if v.lift is not None
                    else {}
                ),
            }
            for v in result.variants
        ],
        "sampling": result.settings.to_dict(),
        "diagnostics": {
            "chains": diagnostics.chains,
            "draws": diagnostics.draws,
            "divergences": diagnostics.divergences,
            "max_r_hat": json_number(diagnostics.max_r_hat),
            "min_ess_bulk": json_number(diagnostics.min_ess_bulk),
            "min_ess_tail": json_number(diagnostics.min_ess_tail),
        },
    }


def hurdle_block(
    warehouse: Warehouse,
    experiment: ExperimentDefinition,
    metric: dict[str, Any],
    sampling: SamplingSettings,
) -> dict[str, Any]:
    """The `hurdle` block of a metric with `model: hurdle`, or `{"reason": ...}` when the
    aggregates cannot support the model yet (a variant with fewer than two converters,
    identical order values).

    Raises `ConvergenceError` when the chains did not converge: the run fails loudly.
    """
    from exp_pipeline.stats.revenue_hurdle import MODEL_NAME, analyse_revenue_hurdle

    aggregates = read_revenue_aggregates(warehouse, experiment, metric)
    try:
        result = analyse_revenue_hurdle(aggregates, experiment.control, sampling)
    except StatsInputError as exc:
        return {"model": MODEL_NAME, "reason": str(exc)}
    return hurdle_document(result)
