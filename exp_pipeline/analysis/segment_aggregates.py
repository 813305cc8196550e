"""Per-segment aggregates of an experiment, computed in SQL grouped by segment value.

A subject's segment for a context attribute is the value `subject_context` holds at that
attribute's path: strings as they are, other scalars and arrays as JSON text, `(none)`
when the subject has no such value. The `MAX_SEGMENT_VALUES` most common values are
segments of their own (ties by value); rarer ones are grouped as `(other)`, so an
attribute with thousands of values (a free-text field, an id) still gives a readable
breakdown and a bounded number of comparisons. Members are staged once per attribute, then
every aggregate (exposures, funnel counts, per-subject sums) is a GROUP BY over them: no
subject's row leaves the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb

from exp_pipeline.analysis.context import context_path
from exp_pipeline.analysis.metric_sums import SUBJECT_MEASURES
from exp_pipeline.engines.sql import exact_sum
from exp_pipeline.stats.ratios import RatioSummary

NO_VALUE = "(none)"
OTHER_VALUES = "(other)"
MAX_SEGMENT_VALUES = 20

_MEMBERS_TABLE = "segment_members"
_MEMBERS_SQL = f"""
WITH labelled AS (
    SELECT x.distinct_id, x.variant,
           CASE WHEN json_type(c.value) = 'VARCHAR' THEN c.value ->> '$'
                ELSE CAST(c.value AS VARCHAR) END AS raw_value
    FROM exposures x
    LEFT JOIN subject_context c
      ON c.experiment_key = x.experiment_key AND c.distinct_id = x.distinct_id
     AND c.path = $path
    WHERE x.experiment_key = $key
), ranked AS (
    SELECT raw_value, row_number() OVER (ORDER BY count(*) DESC, raw_value) AS rank
    FROM labelled WHERE raw_value IS NOT NULL GROUP BY raw_value
)
SELECT l.distinct_id, l.variant,
       CASE WHEN l.raw_value IS NULL THEN '{NO_VALUE}'
            WHEN r.rank <= $max_values THEN l.raw_value
            ELSE '{OTHER_VALUES}' END AS segment
FROM labelled l LEFT JOIN ranked r ON r.raw_value = l.raw_value
"""

_EXPOSURES_SQL = f"SELECT segment, variant, count(*) FROM {_MEMBERS_TABLE} GROUP BY ALL"

# Subjects reaching the first and the last step of a funnel, per segment and variant.
_FUNNEL_SQL = f"""
SELECT s.segment, s.variant,
       count(*) FILTER (WHERE c.funnel_step >= 1),
       count(*) FILTER (WHERE c.funnel_step >= $steps)
FROM {_MEMBERS_TABLE} s
JOIN conversions c
  ON c.experiment_key = $key AND c.metric_key = $metric AND c.distinct_id = s.distinct_id
GROUP BY ALL
"""


def _sums_sql(kind: str, capped: bool) -> str:
    """Per segment and variant n, Σx, Σy, Σx², Σy², Σxy of the per-subject values, every
    member counted (zeros included); x capped at $cap when the metric is winsorised."""
    value, denominator = SUBJECT_MEASURES[kind]
    x = f"least({value}, $cap)" if capped else value
    return f"""
WITH measured AS (
    SELECT s.segment, s.variant, CAST({x} AS DOUBLE) AS x, CAST({denominator} AS DOUBLE) AS y
    FROM {_MEMBERS_TABLE} s
    LEFT JOIN conversions c
      ON c.experiment_key = $key AND c.metric_key = $metric AND c.distinct_id = s.distinct_id
)
SELECT segment, variant, count(*), {exact_sum("x")}, {exact_sum("y")}, {exact_sum("x * x")},
       {exact_sum("y * y")}, {exact_sum("x * y")}
FROM measured GROUP BY ALL
"""


@dataclass(frozen=True)
class SegmentMembers:
    """The staged members of one attribute's segments, ordered by size (largest first)."""

    con: duckdb.DuckDBPyConnection
    experiment_key: str
    variants: tuple[str, ...]
    exposures: dict[str, dict[str, int]]  # segment -> variant -> exposed subjects

    @property
    def segments(self) -> list[str]:
        return list(self.exposures)

    def _by_segment(self, rows: list[tuple[Any, ...]], empty: Any) -> dict[str, dict[str, Any]]:
        """{segment: {variant: row values}} with every segment and variant present."""
        found = {(segment, variant): values for segment, variant, *values in rows}
        return {
            segment: {v: found.get((segment, v), empty) for v in self.variants}
            for segment in self.segments
        }

    def funnel_counts(self, metric: dict[str, Any]) -> dict[str, dict[str, list[int]]]:
        """{segment: {variant: [first-step subjects, converted subjects]}}."""
        rows = self.con.execute(
            _FUNNEL_SQL,
            {"key": self.experiment_key, "metric": metric["key"], "steps": len(metric["steps"])},
        ).fetchall()
        return {
            segment: {v: [int(first), int(last)] for v, (first, last) in by_variant.items()}
            for segment, by_variant in self._by_segment(rows, (0, 0)).items()
        }

    def sums(self, metric: dict[str, Any], cap: float | None) -> dict[str, dict[str, RatioSummary]]:
        """{segment: {variant: sums}} of a continuous or ratio metric's per-subject values."""
        params: dict[str, Any] = {"key": self.experiment_key, "metric": metric["key"]}
        if cap is not None:
            params["cap"] = cap
        rows = self.con.execute(_sums_sql(metric["kind"], cap is not None), params).fetchall()
        return {
            segment: {
                v: RatioSummary(int(n), *(float(s or 0.0) for s in sums))
                for v, (n, *sums) in by_variant.items()
            }
            for segment, by_variant in self._by_segment(rows, (0, 0, 0, 0, 0, 0)).items()
        }


@contextmanager
def segment_members(
    con: duckdb.DuckDBPyConnection, experiment_key: str, variants: tuple[str, ...], attribute: str
) -> Iterator[SegmentMembers]:
    """Stage the exposed subjects' segments of `attribute` for the duration of the block."""
    params = {"key": experiment_key, "path": context_path(con, attribute)}
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_MEMBERS_TABLE} AS {_MEMBERS_SQL}",
        {**params, "max_values": MAX_SEGMENT_VALUES},
    )
    try:
        rows = con.execute(_EXPOSURES_SQL).fetchall()
        totals: dict[str, int] = {}
        for segment, _, n in rows:
            totals[segment] = totals.get(segment, 0) + int(n)
        counts = {
            s: dict.fromkeys(variants, 0) for s in sorted(totals, key=lambda s: (-totals[s], s))
        }
        for segment, variant, n in rows:
            counts[segment][variant] = int(n)
        yield SegmentMembers(con, experiment_key, variants, counts)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_MEMBERS_TABLE}")
