"""Trend metrics: per variant, metric events carrying the variant, day by day.

As in the reference systems, a trend counts events, not subjects: an event counts for a
variant when it carries `$feature/<flag>` = variant, lies in the window and is neither a
bot nor Do-Not-Track event. The daily series runs over every calendar day of the window
in the experiment's timezone, zeros included. `math: total` is the event count of the
day; `math: avg_count_per_actor` is that count divided by the distinct subjects with a
metric event that day (0 on a day without any).

Exposure is the number of distinct subjects with a `$feature_flag_called` event for the
variant in the window; the statistics use it relative to control.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.schema import replacing

_TREND_SQL = """
INSERT INTO trend_metrics
WITH variants AS (
    SELECT variant_key AS variant FROM experiment_variants WHERE experiment_key = $key
), days AS (
    SELECT unnest($days::DATE[]) AS day
), carrying AS (
    SELECT CAST(timezone($timezone, e.ts) AS DATE) AS day, f.variant, e.distinct_id
    FROM analysis_events e
    JOIN flag_assignments f
      ON f.event_uid = e.event_uid AND f.flag_key = $flag AND f.source = 'property'
    WHERE e.event = $event AND e.ts >= $start AND e.ts <= $end
), daily AS (
    SELECT day, variant, count(*) AS event_count, count(DISTINCT distinct_id) AS actors
    FROM carrying GROUP BY day, variant
)
SELECT $key, $metric, v.variant, d.day,
       coalesce(a.event_count, 0), coalesce(a.actors, 0),
       CASE WHEN $math = 'avg_count_per_actor'
            THEN coalesce(a.event_count / nullif(a.actors, 0), 0)
            ELSE coalesce(a.event_count, 0) END
FROM variants v CROSS JOIN days d
LEFT JOIN daily a ON a.day = d.day AND a.variant = v.variant
"""

_EXPOSURE_SQL = """
INSERT INTO trend_exposures
SELECT $key, v.variant_key,
       (SELECT count(DISTINCT f.distinct_id) FROM flag_assignments f
        WHERE f.flag_key = $flag AND f.source = 'flag_called' AND f.variant = v.variant_key
          AND f.ts >= $start AND f.ts <= $end AND NOT f.is_bot AND NOT f.is_dnt)
FROM experiment_variants v WHERE v.experiment_key = $key
"""


@dataclass(frozen=True)
class TrendSeries:
    """One trend metric for one variant: total count, exposure and the daily series."""

    count: int
    exposure: int
    days: list[str] = field(default_factory=list)
    data: list[float] = field(default_factory=list)


def build_trend_metrics(
    con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition
) -> dict[str, dict[str, TrendSeries]]:
    """Replace `experiment`'s trend series and exposures; return {metric: {variant: series}}."""
    window = {"key": experiment.key, "flag": experiment.flag_key}
    bounds = {"start": experiment.start_utc, "end": experiment.end_utc}
    days = [d.isoformat() for d in experiment.local_days()]
    with replacing(con, experiment.key, "trend_metrics", "trend_exposures"):
        con.execute(_EXPOSURE_SQL, {**window, **bounds})
        for metric in experiment.metrics:
            if metric["kind"] != "trend":
                continue
            con.execute(
                _TREND_SQL,
                {
                    **window,
                    **bounds,
                    "metric": metric["key"],
                    "event": metric["event"],
                    "math": metric.get("math", "total"),
                    "days": days,
                    "timezone": experiment.timezone,
                },
            )
    return read_trend_series(con, experiment)


def read_trend_series(
    con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition
) -> dict[str, dict[str, TrendSeries]]:
    exposures = dict(
        con.execute(
            "SELECT variant, subjects FROM trend_exposures WHERE experiment_key = ?",
            [experiment.key],
        ).fetchall()
    )
    rows = con.execute(
        "SELECT metric_key, variant, sum(event_count), list(day ORDER BY day), "
        "list(value ORDER BY day) FROM trend_metrics WHERE experiment_key = ? "
        "GROUP BY metric_key, variant",
        [experiment.key],
    ).fetchall()
    out: dict[str, dict[str, TrendSeries]] = {}
    for metric, variant, count, days, values in rows:
        out.setdefault(metric, {})[variant] = TrendSeries(
            count=int(count),
            exposure=int(exposures.get(variant, 0)),
            days=[d.isoformat() for d in days],
            data=[float(v) for v in values],
        )
    return {m: {v: out[m][v] for v in experiment.variants if v in out[m]} for m in sorted(out)}
