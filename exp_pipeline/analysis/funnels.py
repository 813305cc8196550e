"""Funnel metrics: per variant, how many exposed subjects reached each step."""

from __future__ import annotations

import duckdb

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.schema import replacing

# Every (variant, step) pair appears, zeros included, so a variant nobody reached is shown.
_FUNNEL_SQL = """
INSERT INTO funnel_metrics
WITH variants AS (
    SELECT variant_key AS variant FROM experiment_variants WHERE experiment_key = $key
), steps AS (
    SELECT generate_subscripts($steps, 1) AS step, unnest($steps) AS step_event
)
SELECT $key, $metric, v.variant, s.step, s.step_event,
       (SELECT count(*) FROM conversions c
        WHERE c.experiment_key = $key AND c.metric_key = $metric
          AND c.variant = v.variant AND c.funnel_step >= s.step)
FROM variants v CROSS JOIN steps s
"""


def build_funnel_metrics(
    con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition
) -> dict[str, dict[str, list[int]]]:
    """Replace `experiment`'s funnel step counts; return {metric: {variant: step counts}}."""
    funnels = [m for m in experiment.metrics if m["kind"] == "funnel"]
    with replacing(con, experiment.key, "funnel_metrics"):
        for metric in funnels:
            con.execute(
                _FUNNEL_SQL,
                {"key": experiment.key, "metric": metric["key"], "steps": metric["steps"]},
            )
    return read_funnel_steps(con, experiment)


def read_funnel_steps(
    con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition
) -> dict[str, dict[str, list[int]]]:
    rows = con.execute(
        "SELECT metric_key, variant, list(subjects ORDER BY step) FROM funnel_metrics "
        "WHERE experiment_key = ? GROUP BY metric_key, variant",
        [experiment.key],
    ).fetchall()
    steps: dict[str, dict[str, list[int]]] = {}
    for metric, variant, counts in rows:
        steps.setdefault(metric, {})[variant] = [int(n) for n in counts]
    return {
        m: {v: steps[m][v] for v in experiment.variants if v in steps[m]} for m in sorted(steps)
    }
