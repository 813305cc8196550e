"""Conversions: per experiment, exposed subject and metric, what the subject did.

Only analysis events (no bots, no Do-Not-Track) of exposed subjects inside the window
count. A funnel subject reaches step k when it performed steps 1..k in order (each step
strictly after the previous one in (time, event) order, so one event never fills two
steps), within the conversion window from step 1 when one is set. The first conversion
time is the earliest completion of the last step reached in full (funnels) or the
earliest metric event (other kinds); it is a minimum, so later events never move it.

SQL is generated from the metric definition with every user-supplied value (event
names, property paths) bound as a parameter, never pasted into the text.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.schema import replacing

# Analysis events of the experiment's exposed subjects inside its window.
_SUBJECT_EVENTS = """
    SELECT e.distinct_id, x.variant, e.event, e.ts, e.event_uid, e.properties
    FROM analysis_events e
    JOIN exposures x ON x.distinct_id = e.distinct_id AND x.experiment_key = $key
    WHERE e.ts >= $start AND e.ts <= $end
"""


def property_path(name: str) -> str:
    """The JSON path of top-level property `name`, quoted so any name is literal."""
    return "$." + json.dumps(name)


def _funnel_sql(steps: list[str], window_hours: float | None) -> tuple[str, dict[str, Any]]:
    """SQL inserting one conversions row per exposed subject for an ordered funnel."""
    params: dict[str, Any] = {f"step{i}": name for i, name in enumerate(steps, start=1)}
    within = ""
    if window_hours is not None:
        params["window_seconds"] = float(window_hours) * 3600.0
        within = " AND epoch(e.ts) - epoch(p.start_ts) <= $window_seconds"
    # Without a conversion window the earliest step-1 event is the best start; with one,
    # every step-1 event starts a chain and the furthest (then earliest) chain wins.
    first_only = "" if window_hours is not None else " WHERE rn = 1"
    ctes = [
        f"""ev AS (SELECT * FROM ({_SUBJECT_EVENTS}) s
                   WHERE event IN ({", ".join(f"$step{i}" for i in range(1, len(steps) + 1))}))""",
        f"""chain1 AS (
            SELECT distinct_id, ts AS start_ts, event_uid AS start_uid, ts AS t, event_uid AS u
            FROM (SELECT *, row_number() OVER (PARTITION BY distinct_id ORDER BY ts, event_uid)
                            AS rn
                  FROM ev WHERE event = $step1) s{first_only})""",
    ]
    for k in range(2, len(steps) + 1):
        ctes.append(
            f"""chain{k} AS (
            SELECT distinct_id, start_ts, start_uid, t, u FROM (
                SELECT p.distinct_id, p.start_ts, p.start_uid, e.ts AS t, e.event_uid AS u,
                       row_number() OVER (PARTITION BY p.distinct_id, p.start_uid
                                          ORDER BY e.ts, e.event_uid) AS rn
                FROM chain{k - 1} p JOIN ev e
                  ON e.distinct_id = p.distinct_id AND e.event = $step{k}
                 AND (e.ts > p.t OR (e.ts = p.t AND e.event_uid > p.u)){within}
            ) s WHERE rn = 1)"""
        )
    n = len(steps)
    reached_terms = " + ".join(
        f"CASE WHEN c{k}.t IS NULL THEN 0 ELSE 1 END" for k in range(2, n + 1)
    )
    joins = " ".join(
        f"LEFT JOIN chain{k} c{k} ON c{k}.distinct_id = c1.distinct_id "
        f"AND c{k}.start_uid = c1.start_uid"
        for k in range(2, n + 1)
    )
    ctes.append(
        f"""starts AS (
            SELECT c1.distinct_id, 1{" + " + reached_terms if reached_terms else ""} AS reached,
                   c{n}.t AS completed_at
            FROM chain1 c1 {joins})"""
    )
    ctes.append(
        """per_subject AS (
            SELECT distinct_id, max(reached) AS reached, min(completed_at) AS completed_at
            FROM starts GROUP BY distinct_id)"""
    )
    ctes.append("counts AS (SELECT distinct_id, count(*) AS n FROM ev GROUP BY distinct_id)")
    sql = f"""
    INSERT INTO conversions
    WITH {", ".join(ctes)}
    SELECT $key, $metric, x.distinct_id, x.variant, ps.completed_at,
           coalesce(c.n, 0), NULL, NULL, coalesce(ps.reached, 0)
    FROM exposures x
    LEFT JOIN per_subject ps ON ps.distinct_id = x.distinct_id
    LEFT JOIN counts c ON c.distinct_id = x.distinct_id
    WHERE x.experiment_key = $key
    """
    return sql, params


def _event_sql(metric: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """SQL for trend, continuous and ratio metrics: per-subject counts and sums."""
    kind = metric["kind"]
    if kind == "ratio":
        params = {"numerator": metric["numerator"], "denominator": metric["denominator"]}
        select = """min(ts) FILTER (WHERE event = $numerator),
                    count(*) FILTER (WHERE event = $numerator), NULL,
                    count(*) FILTER (WHERE event = $denominator)"""
        where = "event IN ($numerator, $denominator)"
    elif kind == "continuous":
        params = {"event": metric["event"], "path": property_path(metric["property"])}
        select = """min(ts), count(*),
                    sum(TRY_CAST(properties ->> $path AS DOUBLE)), NULL"""
        where = "event = $event"
    else:
        params = {"event": metric["event"]}
        select = "min(ts), count(*), NULL, NULL"
        where = "event = $event"
    sql = f"""
    INSERT INTO conversions
    WITH per_subject AS (
        SELECT distinct_id, {select}
        FROM ({_SUBJECT_EVENTS}) s WHERE {where} GROUP BY distinct_id
    )
    SELECT $key, $metric, x.distinct_id, x.variant, p.* EXCLUDE (distinct_id), NULL
    FROM exposures x JOIN per_subject p USING (distinct_id)
    WHERE x.experiment_key = $key
    """
    return sql, params


def build_conversions(con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition) -> int:
    """Replace `experiment`'s conversions, one metric at a time; return the rows written.

    Funnels get a row for every exposed subject (step 0 included), so step counts need
    no second source; other kinds get a row for each exposed subject with an event.
    """
    base = {"key": experiment.key, "start": experiment.start_utc, "end": experiment.end_utc}
    with replacing(con, experiment.key, "conversions"):
        for metric in experiment.metrics:
            if metric["kind"] == "funnel":
                sql, params = _funnel_sql(metric["steps"], metric.get("conversion_window_hours"))
            else:
                sql, params = _event_sql(metric)
            con.execute(sql, {**base, **params, "metric": metric["key"]})
        rows = con.execute(
            "SELECT count(*) FROM conversions WHERE experiment_key = ?", [experiment.key]
        ).fetchone()[0]
    return int(rows)
