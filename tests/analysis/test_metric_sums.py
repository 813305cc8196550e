"""Per-variant sums of continuous, ratio and trend metrics, read in SQL from conversions.

The expected sums are computed with numpy from the events the test writes, per exposed
subject and zeros included; the winsorisation cap is the engine's approximate quantile,
checked to sit at the requested rank of the pooled values (within 1 percentile point) and
applied exactly as `cap_values` would.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pytest

from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.metric_sums import read_metric_sums
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
