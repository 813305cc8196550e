"""The revenue hurdle model against its conjugate closed forms and an exact simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import special, stats

from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.revenue_hurdle import (
    RevenueAggregates,
    RevenueHurdleResult,
    analyse_revenue_hurdle,
    hurdle_model,
)
from exp_pipeline.stats.sampling import MAX_R_HAT, ParameterSummary

# Tolerances, in posterior standard deviations. The default run keeps 4000 draws with
# bulk and tail ESS above 2000 (asserted below), so the Monte Carlo error is about 0.02 sd
# for a mean or median and about 0.06 sd for a 2.5% or 97.5% quantile of a normal-like
# posterior (more for the skewed revenue per subject); the tolerances are three to five
# of those.
CENTRE_TOLERANCE = 0.1
TAIL_TOLERANCE = 0.25
MIN_ESS = 2000


def _simulated_values(seed: int) -> dict[str, np.ndarray]:
    """Seeded per-subject revenue: zero for non-converters, log-normal for converters."""
    rng = np.random.default_rng(seed)
    truth = {"control": (0.05, 3.5, 1.0), "test": (0.06, 3.6, 0.9)}
    values = {}
    for variant, (p, mu, sigma) in truth.items():
        converted = rng.random(3000) < p
        values[variant] = np.where(converted, rng.lognormal(mu, sigma, 3000), 0.0)
    return values


def _aggregates(values: np.ndarray) -> RevenueAggregates:
    """The sufficient statistics the engine computes (see the module's SQL)."""
    logs = np.log(values[values > 0])
    return RevenueAggregates(
        subjects=values.size,
        converters=logs.size,
        log_value_sum=float(logs.sum()),
        log_value_sum_squares=float((logs**2).sum()),
    )


@pytest.fixture(scope="module")
def values() -> dict[str, np.ndarray]:
    return _simulated_values(11)


@pytest.fixture(scope="module")
def aggregates(values: dict[str, np.ndarray]) -> dict[str, RevenueAggregates]:
    # Given treatment first: the result must still put control first.
    return {"test": _aggregates(values["test"]), "control": _aggregates(values["control"])}


@pytest.fixture(scope="module")
def result(aggregates: dict[str, RevenueAggregates]) -> RevenueHurdleResult:
    """One run with the default settings, shared by the module's checks."""
    return analyse_revenue_hurdle(aggregates)


def _assert_matches(summary: ParameterSummary, exact: stats.rv_continuous) -> None:
    """Posterior summary against a closed-form distribution, in its standard deviations."""
    sd = exact.std()
    assert summary.mean == pytest.approx(exact.mean(), abs=CENTRE_TOLERANCE * sd)
    assert summary.median == pytest.approx(exact.median(), abs=CENTRE_TOLERANCE * sd)
    assert summary.sd == pytest.approx(sd, rel=0.1)
    assert summary.interval == pytest.approx(exact.ppf([0.025, 0.975]), abs=TAIL_TOLERANCE * sd)


def _posterior_parts(a: RevenueAggregates) -> tuple[float, float, float, float]:
    """(m, mean, spread S, Jeffreys' posterior a = (m - 1) / 2) of the log order values."""
    m = a.converters
    return m, a.log_value_sum / m, a.log_value_sum_squares - a.log_value_sum**2 / m, (m - 1) / 2


def test_the_run_converged_with_enough_draws_for_the_tolerances(
    result: RevenueHurdleResult,
) -> None:
    diagnostics = result.diagnostics
    assert diagnostics.max_r_hat <= MAX_R_HAT and diagnostics.divergences == 0
    assert diagnostics.min_ess_bulk > MIN_ESS and diagnostics.min_ess_tail > MIN_ESS
    assert [v.variant for v in result.variants] == ["control", "test"]


@pytest.mark.parametrize("variant", ["control", "test"])
def test_conversion_matches_the_beta_posterior(
    result: RevenueHurdleResult, aggregates: dict[str, RevenueAggregates], variant: str
) -> None:
    a = aggregates[variant]
    sampled = next(v for v in result.variants if v.variant == variant)
    _assert_matches(sampled.conversion, stats.beta(1 + a.converters, 1 + a.subjects - a.converters))


@pytest.mark.parametrize("variant", ["control", "test"])
def test_log_normal_part_matches_the_normal_inverse_gamma_posterior(
    result: RevenueHurdleResult, aggregates: dict[str, RevenueAggregates], variant: str
) -> None:
    """Jeffreys' prior: sigma² ~ Inv-Gamma((m−1)/2, S/2), mu ~ t(m − 1, ȳ, √(S/(m−1)/m))."""
    m, mean, spread, shape = _posterior_parts(aggregates[variant])
    sampled = next(v for v in result.variants if v.variant == variant)
    _assert_matches(sampled.log_value_mu, stats.t(m - 1, mean, math.sqrt(spread / (m - 1) / m)))
    # sigma = √(sigma²): its quantiles are the square roots of Inv-Gamma quantiles, and
    # E[sigma] = √(S/2) Γ(a − 1/2) / Γ(a).
    variance = stats.invgamma(shape, scale=spread / 2)
    sigma = sampled.log_value_sigma
    expected_mean = math.sqrt(spread / 2) * math.exp(
        special.gammaln(shape - 0.5) - special.gammaln(shape)
    )
    sd = math.sqrt(variance.mean() - expected_mean**2)
    assert sigma.mean == pytest.approx(expected_mean, abs=CENTRE_TOLERANCE * sd)
    assert sigma.median == pytest.approx(math.sqrt(variance.median()), abs=CENTRE_TOLERANCE * sd)
    assert sigma.interval == pytest.approx(
        np.sqrt(variance.ppf([0.025, 0.975])), abs=TAIL_TOLERANCE * sd
    )


def _exact_revenue_draws(a: RevenueAggregates, rng: np.random.Generator, size: int) -> np.ndarray:
    """Independent draws of conversion · exp(mu + sigma²/2) from the closed-form posteriors."""
    m, mean, spread, shape = _posterior_parts(a)
    conversion = rng.beta(1 + a.converters, 1 + a.subjects - a.converters, size)
    variance = stats.invgamma(shape, scale=spread / 2).rvs(size, random_state=rng)
    mu = rng.normal(mean, np.sqrt(variance / m))
    return conversion * np.exp(mu + variance / 2)


def test_revenue_per_subject_lift_and_win_probability_match_an_exact_simulation(
    result: RevenueHurdleResult, aggregates: dict[str, RevenueAggregates]
) -> None:
    """Revenue per subject has no closed form; 400 000 independent draws from the exact
    posteriors of its parts pin its quantiles to under 0.01 sd, far below the tolerances."""
    rng = np.random.default_rng(2024)
    exact = {key: _exact_revenue_draws(a, rng, 400_000) for key, a in aggregates.items()}
    lift = exact["test"] / exact["control"] - 1
    control, test = result.variants
    for sampled, draws in [
        (control.revenue_per_subject, exact["control"]),
        (test.revenue_per_subject, exact["test"]),
        (test.lift, lift),
    ]:
        sd = draws.std()
        assert sampled.median == pytest.approx(np.median(draws), abs=CENTRE_TOLERANCE * sd)
        assert sampled.interval == pytest.approx(
            np.quantile(draws, [0.025, 0.975]), abs=TAIL_TOLERANCE * sd
        )
    # A probability estimated from over 2000 effective draws: 3 standard errors.
    win = float((lift > 0).mean())
    assert 0.6 < win < 0.99
    assert test.probability_beats_control == pytest.approx(
        win, abs=3 * math.sqrt(win * (1 - win) / MIN_ESS)
    )
    assert control.lift is None and control.probability_beats_control is None


def test_sufficient_statistics_give_the_raw_rows_likelihood(
    values: dict[str, np.ndarray], aggregates: dict[str, RevenueAggregates]
) -> None:
    """ȳ ~ Normal(mu, sigma/√m) and S ~ Gamma((m−1)/2, 1/(2 sigma²)) differ from the
    product of the converters' normal densities by a constant: same posterior."""
    model = hurdle_model({"control": aggregates["control"], "test": aggregates["test"]})
    observed = [model["log_value_mean"], model["log_value_spread"]]
    logp = model.compile_logp(vars=observed, sum=True, jacobian=False)
    point = model.initial_point()
    logs = {key: np.log(v[v > 0]) for key, v in values.items()}
    differences = []
    for mu, sigma in [(3.0, 0.7), (3.8, 1.3), (3.5, 1.0)]:
        point["log_value_mu"] = np.array([mu, mu + 0.1])
        point["log_value_log_sigma"] = np.log([sigma, sigma * 1.1])
        raw = (
            stats.norm.logpdf(logs["control"], mu, sigma).sum()
            + stats.norm.logpdf(logs["test"], mu + 0.1, sigma * 1.1).sum()
        )
        differences.append(raw - logp(point))
    assert np.ptp(differences) < 1e-8 * abs(differences[0])


def test_the_result_is_a_json_document(result: RevenueHurdleResult) -> None:
    document = result.to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["variants"][1]["lift"]["name"] == "lift[test]"
    assert document["variants"][0]["lift"] is None
    assert document["diagnostics"]["parameters"]["revenue_per_subject[test]"]["r_hat"] <= 1.01
    assert document["sampling"]["random_seed"] == result.settings.random_seed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"converters": 3001}, "3001 converters but only 3000 subjects"),
        ({"converters": 1, "log_value_sum": 2.0, "log_value_sum_squares": 4.0}, "at least 2"),
        ({"converters": 10.5}, "whole number"),
        ({"log_value_sum": math.nan}, "log_value_sum must be a finite number"),
        ({"converters": 3, "log_value_sum": 6.0, "log_value_sum_squares": 12.0}, "do not vary"),
    ],
)
def test_impossible_aggregates_are_refused(change: dict[str, float], message: str) -> None:
    base = {"subjects": 3000, "converters": 100, "log_value_sum": 350.0}
    base["log_value_sum_squares"] = 350.0**2 / 100 + 99.0
    broken = RevenueAggregates(**{**base, **change})
    good = RevenueAggregates(**base)
    with pytest.raises(StatsInputError, match=message):
        analyse_revenue_hurdle({"control": good, "test": broken})


def test_a_missing_control_is_refused() -> None:
    a = RevenueAggregates(100, 10, 30.0, 100.0)
    with pytest.raises(StatsInputError, match="control variant 'control' is missing"):
        analyse_revenue_hurdle({"a": a, "b": a})
