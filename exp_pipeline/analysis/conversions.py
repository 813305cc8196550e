"""Conversions: per experiment, exposed unit and metric, what the unit did.

The unit is the exposed subject, or for a metric aggregated by a group type the exposed
group, whose events are those naming it in `$groups` (`exp_pipeline.analysis.units`,
docs/groups.md); the rules below then read "unit" for "subject".

Only analysis events (no bots, no Do-Not-Track) of exposed subjects inside the window
count. A funnel subject reaches step k when it performed steps 1..k in order (each step
strictly after the previous one in (time, event) order, so one event never fills two
steps), within the conversion window from step 1 when one is set. The first conversion
time is the earliest completion of the last step reached in full (funnels) or the
earliest metric event (other kinds); it is a minimum, so later events never move it.

SQL is generated from the metric definition, in DuckDB's dialect so any `Engine` runs it
(Spark through sqlglot), with every user-supplied value (event names, property paths)
bound as a parameter, never pasted into the text.
"""

from __future__ import annotations

from typing import Any

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.units import exposed_units_sql, unit_events_sql, unit_params
from exp_pipeline.engines.base import Warehouse, as_engine
from exp_pipeline.engines.sql import json_path, property_sum


def _funnel_sql(n_steps: int, window_hours: float | None, events: str, units: str) -> str:
    """A SELECT of one conversions row per exposed unit for an ordered funnel of n steps.

    `events` and `units` are the unit's relations (`exp_pipeline.analysis.units`).
    Parameters: $key, $metric, $start, $end, $step1..$stepN, the units' parameters and,
    with a conversion window, $window_hours (counted in hours, so no engine's calendar
    arithmetic is involved).
    """
    within = ""
    if window_hours is not None:
        within = " AND e.ts <= p.start_ts + $window_hours * INTERVAL 1 HOUR"
    # Without a conversion window the earliest step-1 event is the best start; with one,
    # every step-1 event starts a chain and the furthest (then earliest) chain wins.
    first_only = "" if window_hours is not None else " WHERE rn = 1"
    step_names = ", ".join(f"$step{i}" for i in range(1, n_steps + 1))
    ctes = [
        f"ev AS (SELECT * FROM ({events}) s WHERE event IN ({step_names}))",
        f"""chain1 AS (
            SELECT unit_id, ts AS start_ts, event_uid AS start_uid, ts AS t, event_uid AS u
            FROM (SELECT *, row_number() OVER (PARTITION BY unit_id ORDER BY ts, event_uid)
                            AS rn
                  FROM ev WHERE event = $step1) s{first_only})""",
    ]
    for k in range(2, n_steps + 1):
        ctes.append(
            f"""chain{k} AS (
            SELECT unit_id, start_ts, start_uid, t, u FROM (
                SELECT p.unit_id, p.start_ts, p.start_uid, e.ts AS t, e.event_uid AS u,
                       row_number() OVER (PARTITION BY p.unit_id, p.start_uid
                                          ORDER BY e.ts, e.event_uid) AS rn
                FROM chain{k - 1} p JOIN ev e
                  ON e.unit_id = p.unit_id AND e.event = $step{k}
                 AND (e.ts > p.t OR (e.ts = p.t AND e.event_uid > p.u)){within}
            ) s WHERE rn = 1)"""
        )
    reached_terms = "".join(
        f" + CASE WHEN c{k}.t IS NULL THEN 0 ELSE 1 END" for k in range(2, n_steps + 1)
    )
    joins = "".join(
        f" LEFT JOIN chain{k} c{k} ON c{k}.unit_id = c1.unit_id AND c{k}.start_uid = c1.start_uid"
        for k in range(2, n_steps + 1)
    )
    ctes.append(
        f"""starts AS (
            SELECT c1.unit_id, 1{reached_terms} AS reached, c{n_steps}.t AS completed_at
            FROM chain1 c1{joins})"""
    )
    ctes.append(
        """per_unit AS (
            SELECT unit_id, max(reached) AS reached, min(completed_at) AS completed_at
            FROM starts GROUP BY unit_id)"""
    )
    ctes.append("counts AS (SELECT unit_id, count(*) AS n FROM ev GROUP BY unit_id)")
    return f"""WITH {", ".join(ctes)}
    SELECT $key, $metric, x.unit_id, x.variant, pu.completed_at,
           coalesce(c.n, 0), CAST(NULL AS DOUBLE), CAST(NULL AS BIGINT), coalesce(pu.reached, 0)
    FROM ({units}) x
    LEFT JOIN per_unit pu ON pu.unit_id = x.unit_id
    LEFT JOIN counts c ON c.unit_id = x.unit_id"""


# Per kind: the per-unit first conversion, event count, value sum and denominator
# events, and which metric events they read. Parameters as in `metric_params`.
_EVENT_AGGREGATES = {
    "ratio": (
        (
            "min(ts) FILTER (WHERE event = $numerator)",
            "count(*) FILTER (WHERE event = $numerator)",
            "CAST(NULL AS DOUBLE)",
            "count(*) FILTER (WHERE event = $denominator)",
        ),
        "event IN ($numerator, $denominator)",
    ),
    "continuous": (
        (
            "min(ts)",
            "count(*)",
            property_sum("properties"),
            "CAST(NULL AS BIGINT)",
        ),
        "event = $event",
    ),
    "trend": (
        ("min(ts)", "count(*)", "CAST(NULL AS DOUBLE)", "CAST(NULL AS BIGINT)"),
        "event = $event",
    ),
}
_AGGREGATE_COLUMNS = ("first_conversion_utc", "event_count", "value_sum", "denominator_count")


def _event_sql(kind: str, events: str, units: str) -> str:
    """A SELECT of trend, continuous or ratio per-unit counts and sums over the unit's
    relations `events` and `units`."""
    expressions, where = _EVENT_AGGREGATES[kind]
    aggregates = ", ".join(
        f"{expression} AS {name}"
        for expression, name in zip(expressions, _AGGREGATE_COLUMNS, strict=True)
    )
    return f"""WITH per_unit AS (
        SELECT unit_id, {aggregates}
        FROM ({events}) s WHERE {where} GROUP BY unit_id
    )
    SELECT $key, $metric, x.unit_id, x.variant,
           {", ".join(f"p.{name}" for name in _AGGREGATE_COLUMNS)}, CAST(NULL AS INTEGER)
    FROM ({units}) x JOIN per_unit p ON p.unit_id = x.unit_id"""


def metric_sql(metric: dict[str, Any]) -> str:
    """The DuckDB-dialect SELECT of `metric`'s conversions rows (one shape per kind), per
    unit of its aggregation (a person or a group)."""
    events, units = unit_events_sql(metric), exposed_units_sql(metric)
    if metric["kind"] == "funnel":
        window = metric.get("conversion_window_hours")
        return _funnel_sql(len(metric["steps"]), window, events, units)
    return _event_sql(metric["kind"], events, units)


def metric_params(metric: dict[str, Any], dialect: str) -> dict[str, Any]:
    """The user-supplied values of `metric`'s statement, bound as parameters."""
    kind = metric["kind"]
    params: dict[str, Any] = unit_params(metric, dialect)
    if kind == "funnel":
        params.update({f"step{i}": name for i, name in enumerate(metric["steps"], start=1)})
        if metric.get("conversion_window_hours") is not None:
            params["window_hours"] = float(metric["conversion_window_hours"])
        return params
    if kind == "ratio":
        return {**params, "numerator": metric["numerator"], "denominator": metric["denominator"]}
    if kind == "continuous":
        return {**params, "event": metric["event"], "path": json_path(metric["property"], dialect)}
    return {**params, "event": metric["event"]}


def build_conversions(warehouse: Warehouse, experiment: ExperimentDefinition) -> int:
    """Replace `experiment`'s conversions, one metric at a time; return the rows written.

    Funnels get a row for every exposed subject (step 0 included), so step counts need
    no second source; other kinds get a row for each exposed subject with an event.
    """
    engine = as_engine(warehouse)
    base = {"key": experiment.key, "start": experiment.start_utc, "end": experiment.end_utc}
    with engine.replacing(experiment.key, "conversions"):
        for metric in experiment.metrics:
            params = {**base, **metric_params(metric, engine.dialect), "metric": metric["key"]}
            engine.insert("conversions", metric_sql(metric), params)
    rows = engine.fetch(
        "SELECT count(*) FROM conversions WHERE experiment_key = $key", {"key": experiment.key}
    )
    return int(rows[0][0])
