"""Per-variant sufficient statistics of a metric's per-subject values, computed in SQL.

Continuous, ratio and trend metrics are compared per exposed subject (the unit that was
randomised), but the statistics need only a handful of sums per variant: n, Σx, Σx²,
Σy, Σy² and Σxy, with x the subject's value and y its denominator (ratio metrics) or 1.
This module asks the engine for exactly those, so no subject's row leaves the warehouse.

* Every exposed subject counts, those without any metric event with a value of 0: the
  `conversions` table only has rows for subjects who did something, so exposures are
  joined to it (a mean per exposed subject, not per buyer).
* x is the property sum (continuous), the numerator event count (ratio) or the metric
  event count (trend); y is the denominator event count for ratios and 1 otherwise.
* Winsorisation: with a percentile p, x is capped at the p-th percentile of all exposed
  subjects' values pooled over variants (one cap for every variant, so the cap cannot
  differ with the treatment effect; see `stats.winsorisation`). The cap is the engine's
  approximate quantile (`approx_quantile`, a t-digest in DuckDB; Spark's
  `percentile_approx`), so it costs one streaming pass instead of a sort of every
  subject; the capped subjects are counted.

The statement is written in DuckDB's dialect and runs through the engine layer, like
every transform, so Spark gets sqlglot's translation of the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.engines.base import Warehouse, as_engine
from exp_pipeline.stats.ratios import RatioSummary

# Per kind: the per-subject value x and denominator y, from a subject's conversions row.
_MEASURES = {
    "continuous": ("coalesce(c.value_sum, 0)", "1"),
    "ratio": ("coalesce(c.event_count, 0)", "coalesce(c.denominator_count, 0)"),
    "trend": ("coalesce(c.event_count, 0)", "1"),
}


@dataclass(frozen=True)
class MetricSums:
    """Each variant's sums (control first; x the value, y the denominator or 1).

    `cap` is the winsorisation cap applied to x (None when the metric is not winsorised)
    and `capped` how many subjects' values it lowered.
    """

    variants: dict[str, RatioSummary]
    percentile: float | None
    cap: float | None
    capped: int


def metric_sums_sql(kind: str, winsorised: bool) -> str:
    """The SELECT of per-variant sums. Parameters: $key, $metric (and $quantile)."""
    if kind not in _MEASURES:
        raise ValueError(f"no per-subject sums for metric kind {kind!r}")
    value, denominator = _MEASURES[kind]
    if winsorised:
        capped = """capped AS (
        SELECT m.variant, least(m.x, q.cap) AS x, m.y, m.x > q.cap AS lowered, q.cap
        FROM measured m
        CROSS JOIN (SELECT approx_quantile(x, CAST($quantile AS FLOAT)) AS cap
                    FROM measured) q
    )"""
    else:
        capped = """capped AS (
        SELECT variant, x, y, FALSE AS lowered, CAST(NULL AS DOUBLE) AS cap FROM measured
    )"""
    return f"""WITH measured AS (
        SELECT s.variant, CAST({value} AS DOUBLE) AS x, CAST({denominator} AS DOUBLE) AS y
        FROM exposures s
        LEFT JOIN conversions c
          ON c.experiment_key = s.experiment_key AND c.distinct_id = s.distinct_id
         AND c.metric_key = $metric
        WHERE s.experiment_key = $key
    ), {capped}
    SELECT variant, count(*), sum(x), sum(y), sum(x * x), sum(y * y), sum(x * y),
           count(*) FILTER (WHERE lowered), max(cap)
    FROM capped
    GROUP BY variant"""


def read_metric_sums(
    warehouse: Warehouse, experiment: ExperimentDefinition, metric: dict[str, Any]
) -> MetricSums:
    """`metric`'s per-variant sums over `experiment`'s exposed subjects, all variants.

    A variant without exposed subjects gets all-zero sums (n = 0), which the statistics
    refuse with a message rather than this reader inventing anything.
    """
    percentile = metric.get("winsorize_percentile")
    params: dict[str, Any] = {"key": experiment.key, "metric": metric["key"]}
    if percentile is not None:
        params["quantile"] = percentile / 100
    rows = {
        row[0]: row[1:]
        for row in as_engine(warehouse).fetch(
            metric_sums_sql(metric["kind"], percentile is not None), params
        )
    }
    empty = (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, None)
    variants = {}
    capped = 0
    cap = None
    for variant in experiment.variants:
        n, *sums, lowered, variant_cap = rows.get(variant, empty)
        variants[variant] = RatioSummary(int(n), *(float(s) for s in sums))
        capped += int(lowered)
        cap = variant_cap if variant_cap is not None else cap
    return MetricSums(
        variants=variants,
        percentile=percentile,
        cap=None if cap is None else float(cap),
        capped=capped,
    )
