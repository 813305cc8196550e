"""CUPED's per-variant sums read in one SQL statement, against numpy on per-subject arrays.

The events carry purchases and page views before each subject's first exposure, inside
and outside the 14-day lookback, and bot purchases inside it; numpy computes x from the
generated values (lookback applied in Python), y from the in-experiment values.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pytest

from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.cuped_sums import CovariateSums, cuped_sums_sql, read_cuped_sums
from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.metric_sums import read_metric_sums
from exp_pipeline.engines.sql import translate
from exp_pipeline.stats.winsorisation import cap_values
from tests.analysis.conftest import Analysed
from tests.analysis.pre_exposure_data import (
    LOOKBACK_DAYS,
    PreExposure,
    correlated_values,
    pre_exposure,
    pre_exposure_events,
)
from tests.analysis.subject_data import Subjects, events_of, experiment_catalog, subject_values

SUBJECTS = 80  # per variant
CUPED = {"lookback_days": LOOKBACK_DAYS}


def metrics(percentile: float | None = None) -> list[dict[str, Any]]:
    revenue: dict[str, Any] = {
        "key": "revenue",
        "kind": "continuous",
        "event": "purchase",
        "property": "amount",
        "cuped": CUPED,
    }
    if percentile is not None:
        revenue["winsorize_percentile"] = percentile
    return [
        revenue,
        {"key": "pages", "kind": "trend", "event": "page", "cuped": CUPED},
        {"key": "bought", "kind": "funnel", "steps": ["purchase"], "cuped": CUPED},
    ]


def warehouse_with_history(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection, percentile: float | None = None
) -> tuple[Any, dict[str, Subjects], dict[str, PreExposure]]:
    values = subject_values(seed=11, subjects=SUBJECTS)
    pre = pre_exposure(seed=12, subjects=SUBJECTS, variants=tuple(values))
    correlated_values(values, pre)
    events = events_of(values) + pre_exposure_events(pre)
    experiment = analysed(experiment_catalog(metrics(percentile)), events)
    build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    return experiment, values, pre


def expected(y: np.ndarray, x: np.ndarray) -> list[float]:
    return [y.size, y.sum(), y @ y, x.sum(), x @ x, x @ y]


def as_list(s: CovariateSums) -> list[float]:
    return [s.n, s.sum_y, s.sum_y2, s.sum_x, s.sum_x2, s.sum_xy]


def test_sums_match_numpy_for_every_kind(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    experiment, values, pre = warehouse_with_history(analysed, warehouse)
    sums = {m["key"]: read_cuped_sums(warehouse, experiment, m) for m in experiment.metrics}
    for variant, subjects in values.items():
        ys = {
            "revenue": (subjects.revenue, "continuous"),
            "pages": (subjects.pages, "trend"),
            "bought": ((subjects.revenue > 0).astype(float), "funnel"),
        }
        for key, (y, kind) in ys.items():
            x = pre[variant].covariate(kind)
            assert x.any() and not x.all(), "the data must have subjects on both sides"
            got = as_list(sums[key][variant])
            assert got == pytest.approx(expected(y, x), rel=1e-9), (key, variant)
    assert list(sums["revenue"]) == ["control", "test"]


def test_y_is_capped_at_the_metric_sums_cap(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    experiment, values, pre = warehouse_with_history(analysed, warehouse, percentile=90)
    revenue = experiment.metric("revenue")
    unadjusted = read_metric_sums(warehouse, experiment, revenue)
    sums = read_cuped_sums(warehouse, experiment, revenue, cap=unadjusted.cap)
    for variant, subjects in values.items():
        y = cap_values(subjects.revenue, unadjusted.cap)
        x = pre[variant].covariate("continuous")
        assert as_list(sums[variant]) == pytest.approx(expected(y, x), rel=1e-9)
        # The same y as the unadjusted result.
        assert sums[variant].sum_y == pytest.approx(unadjusted.variants[variant].sum_x, rel=1e-12)


def test_a_variant_without_subjects_gets_zero_sums(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    experiment, _, _ = warehouse_with_history(analysed, warehouse)
    warehouse.execute("DELETE FROM exposures WHERE variant = 'test'")
    sums = read_cuped_sums(warehouse, experiment, experiment.metric("pages"))
    assert sums["test"] == CovariateSums(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert sums["control"].n == SUBJECTS


@pytest.mark.parametrize("kind", ["continuous", "trend", "funnel"])
@pytest.mark.parametrize("capped", [False, True])
def test_the_statement_translates_to_spark(kind: str, capped: bool) -> None:
    text, names = translate(cuped_sums_sql(kind, capped), "spark")
    assert "lookback_hours" in names and ("cap" in names) == capped
    assert "least" in text.lower() or not capped


def test_ratio_metrics_have_no_cuped_sums() -> None:
    with pytest.raises(ValueError, match="no CUPED sums for metric kind 'ratio'"):
        cuped_sums_sql("ratio", False)
