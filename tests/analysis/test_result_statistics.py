"""Results documents of every metric kind, end to end, against independent computations.

Events of a seeded revenue experiment go through the real loader, exposures, conversions
and metric tables; the document's figures are then recomputed here from the per-subject
values the events encode: Welch's test by `scipy.stats.ttest_ind`, the delta method by
numpy covariances, Poisson rates and Pearson's dispersion by hand, sample-ratio mismatch
by `scipy.stats.chisquare`, Holm and e-BH by their rules written out, the mSPRT by its
closed form, conjugate updates of stated priors by precision weighting.
"""

from __future__ import annotations

import math
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
from tests.analysis.subject_data import Subjects, events_of, experiment_catalog, subject_values
from tests.analysis.test_results import NOW

SUBJECTS = 150
REVENUE = {"key": "revenue", "kind": "continuous", "event": "purchase", "property": "amount"}
ERRORS = {"key": "errors", "kind": "ratio", "numerator": "error", "denominator": "page"}
PAGES = {"key": "pages", "kind": "trend", "event": "page"}
BUYING = {"key": "buying", "kind": "funnel", "steps": ["page", "purchase"]}


def results(
    analysed: Analysed,
    warehouse: duckdb.DuckDBPyConnection,
    metrics: list[dict[str, Any]],
    values: dict[str, Subjects],
) -> dict[str, Any]:
    experiment = analysed(experiment_catalog(metrics), events_of(values))
    build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    build_funnel_metrics(warehouse, experiment)
    build_trend_metrics(warehouse, experiment)
    return build_experiment_results(warehouse, experiment, NOW)


def by_key(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["metric_key"]: m for m in document["metrics"]}


def mixture_p_value(effect: float, variance: float, tau: float) -> float:
    spread = variance + tau**2
    lam = math.sqrt(variance / spread) * math.exp(tau**2 * effect**2 / (2 * variance * spread))
    return min(1.0, 1 / lam)


@pytest.fixture
def values() -> dict[str, Subjects]:
    return subject_values(seed=8, subjects=SUBJECTS, buy_rates=(0.3, 0.4))


@pytest.fixture
def document(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection, values: dict[str, Subjects]
) -> dict[str, Any]:
    return results(analysed, warehouse, [REVENUE, ERRORS, PAGES, BUYING], values)


def test_continuous_metric_is_welch_and_a_normal_posterior(
    document: dict[str, Any], values: dict[str, Subjects]
) -> None:
    revenue = by_key(document)["revenue"]
    control, test = values["control"].revenue, values["test"].revenue
    for variant, x in zip(revenue["variants"], (control, test), strict=True):
        assert variant["exposures"] == SUBJECTS
        assert variant["mean"] == pytest.approx(x.mean(), rel=1e-9)
        assert variant["posterior"]["distribution"] == "normal"
        assert variant["posterior"]["mean"] == pytest.approx(x.mean(), rel=1e-9)
        assert variant["posterior"]["sd"] == pytest.approx(
            x.std(ddof=1) / math.sqrt(x.size), rel=1e-9
        )
    block = revenue["frequentist"]["test"]
    welch = stats.ttest_ind(test, control, equal_var=False)
    assert block["method"] == "welch_t"
    assert block["p_value"] == pytest.approx(welch.pvalue, rel=1e-8)
    assert block["statistic"] == pytest.approx(welch.statistic, rel=1e-8)
    assert block["effect"] == pytest.approx(test.mean() - control.mean(), rel=1e-9)
    # Beats control: Φ(Δ / √(σt² + σc²)) from the two normal posteriors.
    posteriors = [v["posterior"] for v in revenue["variants"]]
    spread = math.hypot(posteriors[0]["sd"], posteriors[1]["sd"])
    beats = stats.norm.cdf((posteriors[1]["mean"] - posteriors[0]["mean"]) / spread)
    assert revenue["variants"][1]["probability_beats_control"] == pytest.approx(beats, abs=1e-9)
    assert revenue["winsorisation"] is None and revenue["prior"] is None


def test_ratio_metric_is_the_delta_method(
    document: dict[str, Any], values: dict[str, Subjects]
) -> None:
    errors = by_key(document)["errors"]
    estimates = []
    for variant, key in zip(errors["variants"], ("control", "test"), strict=True):
        x, y = values[key].errors, values[key].pages
        ratio = x.sum() / y.sum()
        cov = np.cov(x, y, ddof=1)
        variance = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (
            x.size * y.mean() ** 2
        )
        assert variant["ratio"] == pytest.approx(ratio, rel=1e-9)
        assert variant["posterior"]["sd"] == pytest.approx(math.sqrt(variance), rel=1e-9)
        estimates.append((ratio, variance))
    (r_c, v_c), (r_t, v_t) = estimates
    z = (r_t - r_c) / math.sqrt(v_c + v_t)
    block = errors["frequentist"]["test"]
    assert block["method"] == "delta_method_ratio_z"
    assert block["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-8)
    tau = 0.1 * (abs(r_c) + abs(r_t)) / 2
    expected = mixture_p_value(r_t - r_c, v_c + v_t, tau)
    assert block["sequential"]["p_value"] == pytest.approx(expected, rel=1e-8)


def test_trend_metric_has_poisson_rates_and_the_dispersion_of_subject_counts(
    document: dict[str, Any], values: dict[str, Subjects]
) -> None:
    pages = by_key(document)["pages"]
    counts = {key: values[key].pages for key in ("control", "test")}
    pearson = sum(((c - c.mean()) ** 2).sum() / c.mean() for c in counts.values())
    assert pages["dispersion"]["statistic"] == pytest.approx(pearson, rel=1e-9)
    assert pages["dispersion"]["df"] == 2 * SUBJECTS - 2
    # Pages are 1 to 5 uniformly: far less spread than Poisson, so nothing is widened.
    assert pages["dispersion"]["overdispersed"] is False
    assert pages["dispersion"]["widening"] == 1.0
    x_c, x_t = counts["control"].sum(), counts["test"].sum()
    score = (x_t * SUBJECTS - x_c * SUBJECTS) / math.sqrt((x_c + x_t) * SUBJECTS**2)
    block = pages["frequentist"]["test"]
    assert block["method"] == "poisson_rate_z"
    assert block["statistic"] == pytest.approx(score, rel=1e-9)
    assert [v["count"] for v in pages["variants"]] == [x_c, x_t]


def test_corrections_span_the_experiments_comparisons(document: dict[str, Any]) -> None:
    metrics = document["metrics"]
    blocks = [m["frequentist"]["test"] for m in metrics]
    assert blocks[0]["holm_p_value"] is None  # the primary metric is not adjusted
    raw = [b["p_value"] for b in blocks[1:]]
    order = sorted(range(3), key=raw.__getitem__)
    expected, running = [0.0] * 3, 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw[index]))
        expected[index] = running
    assert [b["holm_p_value"] for b in blocks[1:]] == pytest.approx(expected, rel=1e-9)
    # e-BH over all four comparisons: the k* largest e-values are the discoveries.
    e_values = [b["sequential"]["e_value"] for b in blocks]
    adjusted = [b["sequential"]["e_bh_adjusted"] for b in blocks]
    for alpha in (0.01, 0.05, 0.2, 0.5):
        ranked = sorted(e_values, reverse=True)
        k_star = max((k for k in range(1, 5) if ranked[k - 1] >= 4 / (alpha * k)), default=0)
        rejected = {e for e in e_values if k_star and e >= ranked[k_star - 1]}
        assert {e for e, a in zip(e_values, adjusted, strict=True) if a <= alpha} == rejected


def test_sample_ratio_mismatch_is_in_every_document(document: dict[str, Any]) -> None:
    srm = document["sample_ratio_mismatch"]
    expected = stats.chisquare([SUBJECTS, SUBJECTS], [SUBJECTS, SUBJECTS])
    assert srm["chi2"] == pytest.approx(expected.statistic, abs=1e-12)
    assert srm["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert srm["mismatch"] is False


def test_stated_prior_and_winsorisation_reach_the_document(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection, values: dict[str, Subjects]
) -> None:
    revenue = {**REVENUE, "prior": {"mean": 20.0, "weight": 50}, "winsorize_percentile": 95}
    document = results(analysed, warehouse, [revenue, BUYING], values)
    metric = by_key(document)["revenue"]
    assert metric["prior"] == {"mean": 20.0, "weight": 50.0}
    cap = metric["winsorisation"]["cap"]
    pooled = np.concatenate([values[k].revenue for k in ("control", "test")])
    assert metric["winsorisation"]["capped_subjects"] == int(np.sum(pooled > cap)) > 0
    for variant, key in zip(metric["variants"], ("control", "test"), strict=True):
        x = np.minimum(values[key].revenue, cap)
        sampling_variance = x.var(ddof=1) / x.size
        prior_variance = x.var(ddof=1) / 50
        precision = 1 / sampling_variance + 1 / prior_variance
        mean = (x.mean() / sampling_variance + 20.0 / prior_variance) / precision
        assert variant["mean"] == pytest.approx(x.mean(), rel=1e-9)
        assert variant["posterior"]["mean"] == pytest.approx(mean, rel=1e-9)
        assert variant["posterior"]["sd"] == pytest.approx(math.sqrt(1 / precision), rel=1e-9)


def test_a_metric_without_variation_says_why_and_keeps_its_numbers(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    nobody_buys = subject_values(seed=3, subjects=SUBJECTS, buy_rates=(0.0, 0.0))
    document = results(analysed, warehouse, [BUYING, REVENUE], nobody_buys)
    revenue = by_key(document)["revenue"]
    assert "no variation between subjects" in revenue["reason"]
    assert (revenue["significance_code"], revenue["significant"]) == ("not_enough_exposure", False)
    assert [v["mean"] for v in revenue["variants"]] == [0.0, 0.0]
    assert "posterior" not in revenue["variants"][0]
    assert revenue["frequentist"]["test"]["p_value"] is None  # Welch of two constants
    rows = warehouse.execute(
        "SELECT DISTINCT metric_key FROM experiment_results WHERE experiment_key = ?",
        [document["experiment_key"]],
    ).fetchall()
    assert rows == [("buying",)]
