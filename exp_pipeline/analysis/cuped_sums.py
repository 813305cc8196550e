"""Per-variant sums of a metric and its pre-exposure value, for CUPED, in one SQL statement.

CUPED (`exp_pipeline.stats.cuped`) needs, per variant, n, Σy, Σy², Σx, Σx² and Σxy, with
y a subject's metric in the experiment and x the same metric over the `lookback` before
its first exposure. The engine computes them in one statement, so no subject's row leaves
the warehouse:

* y is what the unadjusted result compares: the value sum (continuous) or event count
  (trend) that `metric_sums` reads, capped at the same winsorisation cap (passed in, so
  the adjusted and unadjusted numbers rest on the same y); for a funnel, 1 when the subject
  completed every step, else 0 (a conversion per exposed subject).
* x is measured the same way on analysis events (no bots, no Do-Not-Track) in
  [first exposure − lookback, first exposure): the property sum, the event count, or
  for a funnel 1 when the subject performed the last step then. Subjects not seen then
  have x = 0. The interval can reach into the window before the subject's first
  exposure: such events count in both x and y, which is harmless, because nothing
  before a subject's exposure can depend on its variant; that is all CUPED needs.
* x is not winsorised: a covariate only has to be independent of the variant, and an
  outlier in x costs some variance reduction, never bias.

The lookback is counted in hours (days × 24), so no engine's calendar arithmetic is
involved, and every user-supplied value is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.metric_sums import SUBJECT_MEASURES
from exp_pipeline.engines.base import Warehouse, as_engine
from exp_pipeline.engines.sql import exact_sum, json_path, property_sum

# Per kind: the subject's in-experiment y (from its conversions row `c`), its pre-exposure
# x (an aggregate over its events `e` in the lookback) and which events x reads.
_MEASURES = {
    "continuous": (
        SUBJECT_MEASURES["continuous"][0],
        property_sum("e.properties"),
        "e.event = $event",
    ),
    "trend": (SUBJECT_MEASURES["trend"][0], "count(*)", "e.event = $event"),
    "funnel": (
        "CASE WHEN c.funnel_step = $steps THEN 1 ELSE 0 END",
        "max(1)",
        "e.event = $last_step",
    ),
}
CUPED_KINDS = tuple(_MEASURES)


@dataclass(frozen=True)
class CovariateSums:
    """One variant's sums over its exposed subjects (y the metric, x its pre-exposure value)."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float


def cuped_sums_sql(kind: str, capped: bool) -> str:
    """The SELECT of per-variant sums. Parameters: $key, $metric, $lookback_hours, the
    kind's own ($event and $path; $steps and $last_step) and, when `capped`, $cap."""
    if kind not in _MEASURES:
        raise ValueError(f"no CUPED sums for metric kind {kind!r}")
    metric, covariate, events = _MEASURES[kind]
    y = "least(m.y, $cap)" if capped else "m.y"
    return f"""WITH measured AS (
        SELECT s.distinct_id, s.variant, s.first_exposure_utc, CAST({metric} AS DOUBLE) AS y
        FROM exposures s
        LEFT JOIN conversions c
          ON c.experiment_key = s.experiment_key AND c.distinct_id = s.distinct_id
         AND c.metric_key = $metric
        WHERE s.experiment_key = $key
    ), before AS (
        SELECT m.distinct_id, CAST({covariate} AS DOUBLE) AS x
        FROM measured m
        JOIN analysis_events e ON e.distinct_id = m.distinct_id
        WHERE e.ts >= m.first_exposure_utc - $lookback_hours * INTERVAL 1 HOUR
          AND e.ts < m.first_exposure_utc AND {events}
        GROUP BY m.distinct_id
    ), paired AS (
        SELECT m.variant, {y} AS y, coalesce(b.x, 0) AS x
        FROM measured m LEFT JOIN before b ON b.distinct_id = m.distinct_id
    )
    SELECT variant, count(*), {exact_sum("y")}, {exact_sum("y * y")}, {exact_sum("x")},
           {exact_sum("x * x")}, {exact_sum("x * y")}
    FROM paired
    GROUP BY variant"""


def _kind_params(metric: dict[str, Any], dialect: str) -> dict[str, Any]:
    if metric["kind"] == "funnel":
        return {"steps": len(metric["steps"]), "last_step": metric["steps"][-1]}
    params = {"event": metric["event"]}
    if metric["kind"] == "continuous":
        params["path"] = json_path(metric["property"], dialect)
    return params


def read_cuped_sums(
    warehouse: Warehouse,
    experiment: ExperimentDefinition,
    metric: dict[str, Any],
    cap: float | None = None,
) -> dict[str, CovariateSums]:
    """Per variant (all of the experiment's, control first), the sums for `metric`'s CUPED
    over its `cuped.lookback_days`; y capped at `cap` (the metric's winsorisation cap).

    A variant without exposed subjects gets all-zero sums, which the statistics refuse.
    """
    engine = as_engine(warehouse)
    params = {
        "key": experiment.key,
        "metric": metric["key"],
        "lookback_hours": float(metric["cuped"]["lookback_days"]) * 24,
        **_kind_params(metric, engine.dialect),
    }
    if cap is not None:
        params["cap"] = cap
    rows = {
        row[0]: row[1:]
        for row in engine.fetch(cuped_sums_sql(metric["kind"], cap is not None), params)
    }
    empty = (0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return {
        variant: CovariateSums(int(n), *(float(s or 0.0) for s in sums))
        for variant in experiment.variants
        for n, *sums in [rows.get(variant, empty)]
    }
