"""Per-variant sums of continuous, ratio and trend metrics, read in SQL from conversions.

The expected sums are computed with numpy from the events the test writes, per exposed
subject and zeros included; the winsorisation cap comes from a 3-significant-digit
histogram, checked to sit at the requested rank of the pooled values (within 1
percentile point), against a histogram written in Python, and to be the same whatever
order the subjects are stored in; it is applied exactly as `cap_values` would.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
import numpy as np
import pytest

from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.metric_sums import metric_sums_sql, read_metric_sums
from exp_pipeline.engines.base import DuckDBEngine
from exp_pipeline.stats.winsorisation import cap_values
from tests.analysis.conftest import Analysed
from tests.analysis.subject_data import Subjects, events_of, experiment_catalog, subject_values

SUBJECTS = 200  # per variant


def catalog(percentile: float | None) -> dict[str, Any]:
    revenue: dict[str, Any] = {
        "key": "revenue",
        "kind": "continuous",
        "event": "purchase",
        "property": "amount",
    }
    errors: dict[str, Any] = {
        "key": "errors",
        "kind": "ratio",
        "numerator": "error",
        "denominator": "page",
    }
    if percentile is not None:
        revenue["winsorize_percentile"] = errors["winsorize_percentile"] = percentile
    return experiment_catalog([revenue, errors, {"key": "pages", "kind": "trend", "event": "page"}])


def analysed_sums(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection, percentile: float | None
) -> tuple[dict[str, Any], dict[str, Subjects]]:
    values = subject_values(seed=4, subjects=SUBJECTS)
    experiment = analysed(catalog(percentile), events_of(values))
    build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    sums = {m["key"]: read_metric_sums(warehouse, experiment, m) for m in experiment.metrics}
    return sums, values


def moments(x: np.ndarray, y: np.ndarray) -> list[float]:
    return [x.size, x.sum(), y.sum(), x @ x, y @ y, x @ y]


def test_sums_cover_every_exposed_subject_zeros_included(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    sums, values = analysed_sums(analysed, warehouse, None)
    for variant, subjects in values.items():
        ones = np.ones(SUBJECTS)
        expected = {
            "revenue": moments(subjects.revenue, ones),
            "errors": moments(subjects.errors, subjects.pages),
            "pages": moments(subjects.pages, ones),
        }
        for key, sums_expected in expected.items():
            s = sums[key].variants[variant]
            got = [s.n, s.sum_x, s.sum_y, s.sum_x2, s.sum_y2, s.sum_xy]
            assert got == pytest.approx(sums_expected, rel=1e-12), key
    assert sums["revenue"].cap is None and sums["revenue"].capped == 0
    assert list(sums["revenue"].variants) == ["control", "test"]


def test_winsorised_sums_use_one_pooled_approximate_cap(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    sums, values = analysed_sums(analysed, warehouse, 95)
    pooled = np.concatenate([s.revenue for s in values.values()])
    cap = sums["revenue"].cap
    assert sums["revenue"].percentile == 95
    # The approximate cap sits at the 95th percentile of the pooled values.
    assert np.mean(pooled <= cap) == pytest.approx(0.95, abs=0.01)
    assert sums["revenue"].capped == int(np.sum(pooled > cap)) > 0
    for variant, subjects in values.items():
        capped = cap_values(subjects.revenue, cap)
        s = sums["revenue"].variants[variant]
        assert [s.sum_x, s.sum_x2] == pytest.approx([capped.sum(), capped @ capped], rel=1e-12)
        # Ratio metrics cap the numerator only.
        s = sums["errors"].variants[variant]
        capped = cap_values(subjects.errors, sums["errors"].cap)
        assert [s.sum_x, s.sum_y, s.sum_xy] == pytest.approx(
            [capped.sum(), subjects.pages.sum(), capped @ subjects.pages], rel=1e-12
        )


def _histogram_cap(values: np.ndarray, quantile: float) -> float:
    """The cap by its definition, in Python: bins of 3 significant digits (Decimal, so no
    logarithm is involved), the largest value of the first bin reaching the rank."""
    from decimal import Decimal

    def bin_of(value: float) -> tuple[int, int]:
        if value == 0:
            return (0, 0)
        exponent = Decimal(repr(abs(value))).adjusted()
        return (exponent, math.floor(value / 10.0 ** (exponent - 2)))

    bins: dict[tuple[int, int], list[float]] = {}
    for value in values.tolist():
        bins.setdefault(bin_of(value), []).append(value)
    at_most = 0
    for top in sorted(max(members) for members in bins.values()):
        at_most += sum(len(m) for m in bins.values() if max(m) == top)
        if at_most >= quantile * len(values):
            return top
    raise AssertionError("no bin reaches the rank")


@pytest.mark.parametrize("quantile", [0.5, 0.9, 0.99])
def test_the_cap_is_the_histogram_quantile_in_any_storage_order(quantile: float) -> None:
    rng = np.random.default_rng(11)
    values = np.round(np.concatenate([np.zeros(300), rng.lognormal(3, 1.2, 700), [1000.0]]), 2)
    caps = set()
    for order in (
        np.arange(values.size),
        rng.permutation(values.size),
        np.arange(values.size)[::-1],
    ):
        con = duckdb.connect()
        con.execute("CREATE TABLE u (unit_id VARCHAR, variant VARCHAR)")
        con.execute(
            "CREATE TABLE conversions (experiment_key VARCHAR, distinct_id VARCHAR, "
            "metric_key VARCHAR, value_sum DOUBLE)"
        )
        ids = [f"s{i}" for i in order]
        con.executemany("INSERT INTO u VALUES (?, ?)", [[i, "control"] for i in ids])
        con.executemany(
            "INSERT INTO conversions VALUES ('e', ?, 'revenue', ?)",
            [[f"s{i}", float(values[i])] for i in order],
        )
        sql = metric_sums_sql("continuous", True, "SELECT unit_id, variant FROM u")
        (row,) = DuckDBEngine(con).fetch(
            sql, {"key": "e", "metric": "revenue", "quantile": quantile}
        )
        caps.add(row[-1])
        con.close()
    assert caps == {_histogram_cap(values, quantile)}
    (cap,) = caps
    assert np.mean(values <= cap) == pytest.approx(quantile, abs=0.01)
