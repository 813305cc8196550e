"""The revenue hurdle (`model: hurdle`): its SQL aggregates and its block in the document.

The aggregates are checked against numpy on the per-subject revenue the events encode
(refunds included: a subject whose purchases net to zero is no converter). The wired
document runs the real sampler with small settings, so it checks the plumbing and the
agreement of the conversion part with its conjugate Beta posterior within Monte Carlo
error; the sampler's own agreement with the closed forms is tested in tests/stats.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pytest
from scipy import stats

from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.results import build_experiment_results
from exp_pipeline.analysis.revenue import read_revenue_aggregates, revenue_aggregates_sql
from exp_pipeline.engines.sql import translate
from exp_pipeline.stats.sampling import ConvergenceError
from exp_pipeline.stats.sampling_settings import SamplingSettings
from tests.analysis.conftest import Analysed, event
from tests.analysis.subject_data import (
    FLAG,
    Subjects,
    events_of,
    experiment_catalog,
    subject_values,
)
from tests.analysis.test_results import NOW

SUBJECTS = 150  # per variant
REFUNDED = 4  # buyers per variant whose purchases are refunded in full
HURDLE = {
    "key": "revenue",
    "kind": "continuous",
    "event": "purchase",
    "property": "amount",
    "model": "hurdle",
}
SMALL = SamplingSettings(draws=500, tune=400, chains=2, random_seed=7)


def refunds(values: dict[str, Subjects]) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Refund events for the first buyers of each variant, and the net revenue per subject."""
    events, net = [], {}
    for variant, subjects in values.items():
        revenue = subjects.revenue.copy()
        for i in np.flatnonzero(revenue > 0)[:REFUNDED]:
            when = f"2020-01-03T{i % 24:02d}:00:00Z"
            amount = -float(revenue[i])
            events.append(
                event("purchase", f"{variant}-{i}", when, flag=FLAG, variant=variant, amount=amount)
            )
            revenue[i] = 0.0
        net[variant] = revenue
    return events, net


def experiment_with_revenue(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> tuple[Any, dict[str, np.ndarray]]:
    values = subject_values(seed=31, subjects=SUBJECTS, buy_rates=(0.3, 0.36))
    refund_events, net = refunds(values)
    experiment = analysed(experiment_catalog([HURDLE]), events_of(values) + refund_events)
    build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    return experiment, net


def test_aggregates_match_numpy(analysed: Analysed, warehouse: duckdb.DuckDBPyConnection) -> None:
    experiment, net = experiment_with_revenue(analysed, warehouse)
    aggregates = read_revenue_aggregates(warehouse, experiment, experiment.metric("revenue"))
    assert list(aggregates) == ["control", "test"]
    for variant, revenue in net.items():
        logs = np.log(revenue[revenue > 0])
        got = aggregates[variant]
        assert (got.subjects, got.converters) == (SUBJECTS, logs.size)
        expected = [logs.sum(), logs @ logs]
        assert [got.log_value_sum, got.log_value_sum_squares] == pytest.approx(expected, rel=1e-9)


def test_the_statement_translates_to_spark() -> None:
    _, names = translate(revenue_aggregates_sql(HURDLE), "spark")
    assert names == {"key", "metric"}


def test_the_document_carries_the_hurdle_and_its_diagnostics(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    experiment, net = experiment_with_revenue(analysed, warehouse)
    metric = build_experiment_results(warehouse, experiment, NOW, SMALL)["metrics"][0]
    hurdle = metric["hurdle"]
    assert hurdle["model"] == "revenue_hurdle"
    assert hurdle["sampling"] == SMALL.to_dict()
    assert hurdle["diagnostics"]["chains"] == 2 and hurdle["diagnostics"]["draws"] == 500
    assert hurdle["diagnostics"]["max_r_hat"] <= 1.01
    control, test = hurdle["variants"]
    assert "lift" not in control and "probability_beats_control" not in control
    assert 0 <= test["probability_beats_control"] <= 1
    for variant, revenue in zip(hurdle["variants"], net.values(), strict=True):
        converters = int((revenue > 0).sum())
        assert (variant["subjects"], variant["converters"]) == (SUBJECTS, converters)
        for name in ("revenue_per_subject", "conversion", "order_value", "lift"):
            if name in variant:
                quantity = variant[name]
                assert quantity["r_hat"] <= 1.01 and quantity["ess_bulk"] > 100
                assert quantity["interval"][0] < quantity["median"] < quantity["interval"][1]
        # The conversion part is conjugate: Beta(1 + k, 1 + n − k), within 4 MC errors.
        beta = stats.beta(1 + converters, 1 + SUBJECTS - converters)
        conversion = variant["conversion"]
        error = conversion["sd"] / np.sqrt(conversion["ess_bulk"])
        assert conversion["mean"] == pytest.approx(beta.mean(), abs=4 * error)
        # Revenue per subject is conversion times order value; its median sits near the
        # plug-in estimate k/n · mean of the converters' values.
        plug_in = revenue[revenue > 0].sum() / SUBJECTS
        assert variant["revenue_per_subject"]["median"] == pytest.approx(plug_in, rel=0.35)
    # The unadjusted result is still there beside the model.
    assert metric["variants"][0]["mean"] == pytest.approx(net["control"].mean(), rel=1e-9)


def test_an_unconverged_run_fails_loudly(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    experiment, _ = experiment_with_revenue(analysed, warehouse)
    hopeless = SamplingSettings(draws=10, tune=0, chains=2, random_seed=7)
    with pytest.raises(ConvergenceError, match="model 'revenue_hurdle' did not converge: r_hat"):
        build_experiment_results(warehouse, experiment, NOW, hopeless)


def test_too_few_converters_give_a_reason(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    values = subject_values(seed=31, subjects=3, buy_rates=(0.0, 0.0))
    experiment = analysed(experiment_catalog([HURDLE]), events_of(values))
    build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    hurdle = build_experiment_results(warehouse, experiment, NOW, SMALL)["metrics"][0]["hurdle"]
    assert hurdle == {
        "model": "revenue_hurdle",
        "reason": "variant 'control': the order value needs at least 2 converters to estimate "
        "its spread, got 0",
    }
