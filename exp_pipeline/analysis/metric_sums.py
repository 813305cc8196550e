"""Per-variant sufficient statistics of a metric's per-subject values, computed in SQL.

Continuous, ratio and trend metrics are compared per exposed subject (the unit that was
randomised), but the statistics need only a handful of sums per variant: n, Σx, Σx²,
Σy, Σy² and Σxy, with x the subject's value and y its denominator (ratio metrics) or 1.
This module asks the engine for exactly those, so no subject's row leaves the warehouse.

* Units: a metric aggregated by a group type is summed per exposed group instead
  (`exp_pipeline.analysis.units`); "subject" below then reads "group".
* Every exposed subject counts, those without any metric event with a value of 0: the
  `conversions` table only has rows for subjects who did something, so exposures are
  joined to it (a mean per exposed subject, not per buyer).
* x is the property sum (continuous), the numerator event count (ratio) or the metric
  event count (trend); y is the denominator event count for ratios and 1 otherwise.
* Winsorisation: with a percentile p, x is capped at the p-th percentile of all exposed
  subjects' values pooled over variants (one cap for every variant, so the cap cannot
  differ with the treatment effect; see `stats.winsorisation`). The cap comes from a histogram of
  the subjects' values with 3 significant digits per bin (`_CAP_CTES`): an aggregation
  that spills like any other instead of an exact quantile's sort of every subject, and,
  unlike a t-digest, the same whatever order the rows are stored in; the capped subjects
  are counted.

The statement is written in DuckDB's dialect and runs through the engine layer, like
every transform, so Spark gets sqlglot's translation of the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.units import exposed_units_sql, unit_params
from exp_pipeline.engines.base import Warehouse, as_engine
from exp_pipeline.engines.sql import exact_sum
from exp_pipeline.stats.ratios import RatioSummary

# Per kind: the per-subject value x and denominator y, from a subject's conversions row `c`
# (the CUPED and revenue-model sums read the same per-subject value).
SUBJECT_MEASURES = {
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


# The winsorisation cap: the p-th quantile of the pooled per-subject values x, from a
# histogram with 3 significant digits per bin (bins keyed by decimal exponent and
# mantissa, zero its own bin). Counts per bin are order-independent and aggregate (and
# spill) like any GROUP BY; the cap is the largest value of the first bin whose cumulative
# count reaches p·n, an observed value whose rank is off by at most that bin's members.
# (A t-digest, DuckDB's approx_quantile, depends on the order rows arrive in, so the same
# data stored in another order gave another cap.)
_CAP_CTES = """estimated AS (
        SELECT x, CASE WHEN x = 0 THEN 0
                       ELSE CAST(floor(log10(abs(x))) AS INTEGER) END AS guess
        FROM measured
    ), binned AS (
        -- Spark's log10 is ln(x) / ln(10), which can land just below an exact power of
        -- ten: the guess is corrected against the power itself, so engines agree.
        SELECT x, CASE WHEN x = 0 THEN 0
                       WHEN abs(x) >= power(10, guess + 1) THEN guess + 1
                       WHEN abs(x) < power(10, guess) THEN guess - 1
                       ELSE guess END AS exponent
        FROM estimated
    ), bins AS (
        SELECT exponent, CAST(floor(x / power(10, exponent - 2)) AS BIGINT) AS mantissa,
               count(*) AS n, max(x) AS top
        FROM binned GROUP BY 1, 2
    ), cumulative AS (
        SELECT top, sum(n) OVER (ORDER BY top ROWS BETWEEN UNBOUNDED PRECEDING
                                 AND CURRENT ROW) AS at_most,
               sum(n) OVER () AS total
        FROM bins
    ), quantile AS (
        SELECT min(top) AS cap FROM cumulative WHERE at_most >= $quantile * total
    )"""


def metric_sums_sql(kind: str, winsorised: bool, units: str) -> str:
    """The SELECT of per-variant sums over the exposed `units` relation (`unit_id`,
    `variant`: `units.exposed_units_sql`). Parameters: $key, $metric (and $quantile,
    and the units' own parameters)."""
    if kind not in SUBJECT_MEASURES:
        raise ValueError(f"no per-subject sums for metric kind {kind!r}")
    value, denominator = SUBJECT_MEASURES[kind]
    if winsorised:
        capped = f"""{_CAP_CTES}, capped AS (
        SELECT m.variant, least(m.x, q.cap) AS x, m.y, m.x > q.cap AS lowered, q.cap
        FROM measured m CROSS JOIN quantile q
    )"""
    else:
        capped = """capped AS (
        SELECT variant, x, y, FALSE AS lowered, CAST(NULL AS DOUBLE) AS cap FROM measured
    )"""
    return f"""WITH measured AS (
        SELECT s.variant, CAST({value} AS DOUBLE) AS x, CAST({denominator} AS DOUBLE) AS y
        FROM ({units}) s
        LEFT JOIN conversions c
          ON c.experiment_key = $key AND c.distinct_id = s.unit_id AND c.metric_key = $metric
    ), {capped}
    SELECT variant, count(*), {exact_sum("x")}, {exact_sum("y")}, {exact_sum("x * x")},
           {exact_sum("y * y")}, {exact_sum("x * y")}, count(*) FILTER (WHERE lowered),
           max(cap)
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
    engine = as_engine(warehouse)
    params: dict[str, Any] = {
        "key": experiment.key,
        "metric": metric["key"],
        **unit_params(metric, engine.dialect),
    }
    if percentile is not None:
        params["quantile"] = percentile / 100
    sql = metric_sums_sql(metric["kind"], percentile is not None, exposed_units_sql(metric))
    rows = {row[0]: row[1:] for row in engine.fetch(sql, params)}
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
