"""Trend metrics: per variant, metric events carrying the variant, day by day.

As in the reference systems, a trend counts events, not subjects: an event counts for a
variant when it carries `$feature/<flag>` = variant, lies in the window and is neither a
bot nor Do-Not-Track event. The daily series runs over every calendar day of the window
in the experiment's timezone, zeros included. `math: total` is the event count of the
day; `math: avg_count_per_actor` is that count divided by the distinct subjects with a
metric event that day (0 on a day without any).

Exposure is the number of distinct subjects with a `$feature_flag_called` event for the
variant in the window; the statistics use it relative to control. The SQL is
`trend_metrics_sql` over `engines/sql/trend_carrying.sql`, and `trend_exposures.sql`; it
runs on any `Engine`.

A trend aggregated by a group type (docs/groups.md) counts instead the metric events of the
exposed groups (each event for the group its `$groups` names, in the group's variant), and
its actors are groups; its exposure is the exposed groups (`exp_pipeline.analysis.units`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.units import group_type, unit_events_sql, unit_params
from exp_pipeline.engines.base import Warehouse, as_engine
from exp_pipeline.engines.sql import statement


def trend_metrics_sql(metric: dict[str, Any]) -> str:
    """A SELECT of `metric`'s events and actors per variant and calendar day of the
    experiment's zone, every day of the window (zeros included).

    The counted events (`day`, `variant`, `unit_id`) are those carrying the variant for a
    person trend, and the exposed groups' events for a grouped one. Parameters: $key,
    $flag, $start, $end, $metric, $event, $math, $timezone, $first_day, $last_day (the
    window's first and last local days, computed in Python) and the units' parameters.
    """
    if group_type(metric) is None:
        carrying = statement("trend_carrying")
    else:
        carrying = f"""SELECT CAST(ts AT TIME ZONE $timezone AS DATE) AS day, variant, unit_id
        FROM ({unit_events_sql(metric)}) s WHERE event = $event"""
    return f"""WITH variants AS (
        SELECT variant_key AS variant FROM experiment_variants WHERE experiment_key = $key
    ), days AS (
        SELECT CAST(d AS DATE) AS day
        FROM (
            SELECT unnest(generate_series(CAST($first_day AS DATE), CAST($last_day AS DATE),
                                          INTERVAL 1 DAY)) AS d
        ) s
    ), carrying AS ({carrying}
    ), daily AS (
        SELECT day, variant, count(*) AS event_count, count(DISTINCT unit_id) AS actors
        FROM carrying GROUP BY day, variant
    )
    SELECT $key, $metric, v.variant, d.day,
           coalesce(a.event_count, 0), coalesce(a.actors, 0),
           CASE WHEN $math = 'avg_count_per_actor'
                THEN coalesce(a.event_count / nullif(a.actors, 0), 0)
                ELSE coalesce(a.event_count, 0) END
    FROM variants v CROSS JOIN days d
    LEFT JOIN daily a ON a.day = d.day AND a.variant = v.variant"""


@dataclass(frozen=True)
class TrendSeries:
    """One trend metric for one variant: total count, exposure and the daily series."""

    count: int
    exposure: int
    days: list[str] = field(default_factory=list)
    data: list[float] = field(default_factory=list)


def build_trend_metrics(
    warehouse: Warehouse, experiment: ExperimentDefinition
) -> dict[str, dict[str, TrendSeries]]:
    """Replace `experiment`'s trend series and exposures; return {metric: {variant: series}}."""
    engine = as_engine(warehouse)
    days = experiment.local_days()
    params = {
        "key": experiment.key,
        "flag": experiment.flag_key,
        "start": experiment.start_utc,
        "end": experiment.end_utc,
        "timezone": experiment.timezone,
        "first_day": days[0],
        "last_day": days[-1],
    }
    with engine.replacing(experiment.key, "trend_metrics", "trend_exposures"):
        engine.insert("trend_exposures", statement("trend_exposures"), params)
        for metric in experiment.metrics:
            if metric["kind"] != "trend":
                continue
            engine.insert(
                "trend_metrics",
                trend_metrics_sql(metric),
                {
                    **params,
                    **unit_params(metric, engine.dialect),
                    "metric": metric["key"],
                    "event": metric["event"],
                    "math": metric.get("math", "total"),
                },
            )
    return read_trend_series(engine, experiment)


def read_trend_series(
    warehouse: Warehouse, experiment: ExperimentDefinition
) -> dict[str, dict[str, TrendSeries]]:
    engine = as_engine(warehouse)
    key = {"key": experiment.key}
    exposures = dict(engine.fetch(statement("trend_exposure_counts"), key))
    points: dict[tuple[str, str], list[tuple]] = {}
    for metric, variant, *point in engine.fetch(statement("trend_series"), key):
        points.setdefault((metric, variant), []).append(tuple(point))
    out: dict[str, dict[str, TrendSeries]] = {}
    for (metric, variant), series in points.items():
        out.setdefault(metric, {})[variant] = TrendSeries(
            count=sum(int(count) for _, count, _ in series),
            exposure=int(exposures.get(variant, 0)),
            days=[day.isoformat() for day, _, _ in series],
            data=[float(value) for _, _, value in series],
        )
    return {m: {v: out[m][v] for v in experiment.variants if v in out[m]} for m in sorted(out)}
