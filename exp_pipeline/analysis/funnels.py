"""Funnel metrics: per variant, how many exposed subjects reached each step.

Counted on the engine that holds `conversions` (DuckDB or Spark), from the same SQL.
"""

from __future__ import annotations

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.engines.base import Warehouse, as_engine
from exp_pipeline.engines.sql import statement


def funnel_metrics_sql(n_steps: int) -> str:
    """A SELECT of subjects per variant at each of `n_steps` steps, zeros included.

    Every (variant, step) pair appears, so a variant nobody reached is shown. The steps
    are a VALUES list of bound names (no array parameters: Spark's markers are scalars).
    Parameters: $key, $metric, $step1..$stepN.
    """
    steps = ", ".join(f"({i}, $step{i})" for i in range(1, n_steps + 1))
    return f"""WITH variants AS (
        SELECT variant_key AS variant FROM experiment_variants WHERE experiment_key = $key
    ), steps AS (
        SELECT * FROM (VALUES {steps}) AS s(step, step_event)
    ), reached AS (
        SELECT variant, funnel_step, count(*) AS subjects
        FROM conversions
        WHERE experiment_key = $key AND metric_key = $metric
        GROUP BY variant, funnel_step
    )
    SELECT $key, $metric, v.variant, s.step, s.step_event, coalesce(sum(r.subjects), 0)
    FROM variants v CROSS JOIN steps s
    LEFT JOIN reached r ON r.variant = v.variant AND r.funnel_step >= s.step
    GROUP BY v.variant, s.step, s.step_event"""


def build_funnel_metrics(
    warehouse: Warehouse, experiment: ExperimentDefinition
) -> dict[str, dict[str, list[int]]]:
    """Replace `experiment`'s funnel step counts; return {metric: {variant: step counts}}."""
    engine = as_engine(warehouse)
    funnels = [m for m in experiment.metrics if m["kind"] == "funnel"]
    with engine.replacing(experiment.key, "funnel_metrics"):
        for metric in funnels:
            steps = {f"step{i}": name for i, name in enumerate(metric["steps"], start=1)}
            engine.insert(
                "funnel_metrics",
                funnel_metrics_sql(len(metric["steps"])),
                {"key": experiment.key, "metric": metric["key"], **steps},
            )
    return read_funnel_steps(engine, experiment)


def read_funnel_steps(
    warehouse: Warehouse, experiment: ExperimentDefinition
) -> dict[str, dict[str, list[int]]]:
    steps: dict[str, dict[str, list[int]]] = {}
    for metric, variant, _step, subjects in as_engine(warehouse).fetch(
        statement("funnel_steps"), {"key": experiment.key}
    ):
        steps.setdefault(metric, {}).setdefault(variant, []).append(int(subjects))
    return {
        m: {v: steps[m][v] for v in experiment.variants if v in steps[m]} for m in sorted(steps)
    }
