"""The `cuped` block of a results document, end to end, against numpy and scipy.

Events with pre-exposure history (see `pre_exposure_data`) go through the real loader,
exposures, conversions and results. Here, from the per-subject values the events encode:
the adjusted difference is the treatment coefficient of the least-squares fit
y ~ 1 + variant + x (numpy's lstsq), θ its slope on x, the variance reduction
1 − Var(y_adj) / Var(y) of the adjusted arrays, Welch's test `scipy.stats.ttest_ind` on
them, and P(beats control) the Normal closed form Φ(Δ / √(s_c² + s_t²)).
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pytest
from scipy import stats

from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.funnels import build_funnel_metrics
from exp_pipeline.analysis.results import build_experiment_results
from exp_pipeline.analysis.trends import build_trend_metrics
from tests.analysis.conftest import Analysed
from tests.analysis.pre_exposure_data import (
    PreExposure,
    correlated_values,
    pre_exposure,
    pre_exposure_events,
)
from tests.analysis.subject_data import Subjects, events_of, experiment_catalog, subject_values
from tests.analysis.test_cuped_sums import metrics
from tests.analysis.test_results import NOW

SUBJECTS = 120  # per variant
KINDS = {"revenue": "continuous", "pages": "trend", "bought": "funnel"}


def outcome(key: str, subjects: Subjects) -> np.ndarray:
    if key == "revenue":
        return subjects.revenue
    if key == "pages":
        return subjects.pages
    return (subjects.revenue > 0).astype(float)


def document_of(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection, percentile: float | None = None
) -> tuple[dict[str, Any], dict[str, Subjects], dict[str, PreExposure]]:
    values = subject_values(seed=21, subjects=SUBJECTS, buy_rates=(0.3, 0.4))
    pre = pre_exposure(seed=22, subjects=SUBJECTS, variants=tuple(values))
    correlated_values(values, pre)
    events = events_of(values) + pre_exposure_events(pre)
    experiment = analysed(experiment_catalog(metrics(percentile)), events)
    build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    build_funnel_metrics(warehouse, experiment)
    build_trend_metrics(warehouse, experiment)
    document = build_experiment_results(warehouse, experiment, NOW)
    return document, values, pre


def ols(y_by_variant: list[np.ndarray], x_by_variant: list[np.ndarray]) -> np.ndarray:
    """Coefficients of y ~ 1 + [variant is test] + x over the pooled subjects."""
    y = np.concatenate(y_by_variant)
    x = np.concatenate(x_by_variant)
    treated = np.concatenate([np.zeros(y_by_variant[0].size), np.ones(y_by_variant[1].size)])
    design = np.column_stack([np.ones(y.size), treated, x])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def check_block(
    block: dict[str, Any], ys: list[np.ndarray], xs: list[np.ndarray], unadjusted: dict[str, Any]
) -> None:
    _, effect, theta = ols(ys, xs)
    control, test = block["variants"]
    assert block["lookback_days"] == 14
    assert block["theta"] == pytest.approx(theta, rel=1e-9)
    assert test["adjusted_mean"] - control["adjusted_mean"] == pytest.approx(effect, rel=1e-9)
    x_bar = np.concatenate(xs).mean()
    assert block["covariate_mean"] == pytest.approx(x_bar, rel=1e-9)
    adjusted = [y - theta * (x - x_bar) for y, x in zip(ys, xs, strict=True)]
    for variant, y, x, y_adj in zip(block["variants"], ys, xs, adjusted, strict=True):
        assert variant["mean"] == pytest.approx(y.mean(), rel=1e-9)
        assert variant["covariate_mean"] == pytest.approx(x.mean(), rel=1e-9)
        assert variant["adjusted_mean"] == pytest.approx(y_adj.mean(), rel=1e-9)
        reduction = 1 - y_adj.var(ddof=1) / y.var(ddof=1)
        assert variant["variance_reduction"] == pytest.approx(reduction, rel=1e-9)
        # The posterior is Normal on the adjusted mean, sd from the adjusted variance.
        assert variant["posterior"]["mean"] == pytest.approx(y_adj.mean(), rel=1e-9)
        sd = np.sqrt(y_adj.var(ddof=1) / y.size)
        assert variant["posterior"]["sd"] == pytest.approx(sd, rel=1e-9)
    pooled = 1 - sum((a.size - 1) * a.var(ddof=1) for a in adjusted) / sum(
        (y.size - 1) * y.var(ddof=1) for y in ys
    )
    assert block["variance_reduction"] == pytest.approx(pooled, rel=1e-9)
    welch = stats.ttest_ind(adjusted[1], adjusted[0], equal_var=False)
    frequentist = block["frequentist"]["test"]
    assert frequentist["method"] == "welch_t"
    assert frequentist["effect"] == pytest.approx(effect, rel=1e-9)
    assert frequentist["p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
    low, high = welch.confidence_interval(0.95)
    assert frequentist["ci"] == pytest.approx([low, high], rel=1e-6)
    spread = np.hypot(control["posterior"]["sd"], test["posterior"]["sd"])
    beats = stats.norm.cdf(effect / spread)
    assert test["probability_beats_control"] == pytest.approx(beats, abs=1e-6)
    assert block["probability"]["test"] == pytest.approx(beats, abs=1e-6)
    # The unadjusted numbers are untouched and agree with the block's.
    assert [v["variant_key"] for v in unadjusted["variants"]] == ["control", "test"]


def test_cuped_is_the_ancova_fit_for_every_kind(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    document, values, pre = document_of(analysed, warehouse)
    by_key = {m["metric_key"]: m for m in document["metrics"]}
    for key, kind in KINDS.items():
        ys = [outcome(key, values[v]) for v in ("control", "test")]
        xs = [pre[v].covariate(kind) for v in ("control", "test")]
        check_block(by_key[key]["cuped"], ys, xs, by_key[key])
    revenue = by_key["revenue"]
    for variant, plain in zip(revenue["cuped"]["variants"], revenue["variants"], strict=True):
        assert variant["mean"] == pytest.approx(plain["mean"], rel=1e-12)
    # Spending before the experiment predicts spending in it: a real reduction.
    assert revenue["cuped"]["variance_reduction"] > 0.2
    # Page views before and during are independent here: nothing to remove.
    assert abs(by_key["pages"]["cuped"]["variance_reduction"]) < 0.05


def test_winsorised_metrics_adjust_the_capped_values(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    document, values, pre = document_of(analysed, warehouse, percentile=95)
    revenue = document["metrics"][0]
    cap = revenue["winsorisation"]["cap"]
    ys = [np.minimum(values[v].revenue, cap) for v in ("control", "test")]
    xs = [pre[v].covariate("continuous") for v in ("control", "test")]
    check_block(revenue["cuped"], ys, xs, revenue)


def test_metrics_without_cuped_have_no_block(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    values = subject_values(seed=21, subjects=20)
    experiment = analysed(
        experiment_catalog([{"key": "pages", "kind": "trend", "event": "page"}]),
        events_of(values),
    )
    build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    build_trend_metrics(warehouse, experiment)
    document = build_experiment_results(warehouse, experiment, NOW)
    assert "cuped" not in document["metrics"][0]


def test_too_few_subjects_give_a_reason(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    values = subject_values(seed=21, subjects=1)
    experiment = analysed(experiment_catalog(metrics()), events_of(values))
    build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    build_funnel_metrics(warehouse, experiment)
    build_trend_metrics(warehouse, experiment)
    block = build_experiment_results(warehouse, experiment, NOW)["metrics"][0]["cuped"]
    assert block["best_variant"] is None and block["probability"] == {}
    assert "at least 2" in block["reason"]
