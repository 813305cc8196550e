"""The PyMC runner: settings, per-parameter diagnostics, the convergence gate, determinism."""

from __future__ import annotations

import math

import arviz as az
import numpy as np
import pymc as pm
import pytest
from scipy import stats

from exp_pipeline.errors import SettingsError
from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.sampling import (
    MAX_R_HAT,
    ConvergenceError,
    SamplingSettings,
    binomial_count,
    check_convergence,
    diagnose,
    sample_posterior,
)


def _split_rank_r_hat(draws: np.ndarray) -> float:
    """Rank-normalised split r_hat written from Vehtari et al. (2021), section 4.

    Split each chain in half, replace draws by normal scores of their pooled ranks
    (Blom's offset 3/8), compute the classic potential scale reduction on those, do the
    same for the distances from the median (the folded draws), and take the larger.
    """

    def classic(chains: np.ndarray) -> float:
        n = chains.shape[1]
        within = chains.var(axis=1, ddof=1).mean()
        between = n * chains.mean(axis=1).var(ddof=1)
        return math.sqrt(((n - 1) / n * within + between / n) / within)

    def normal_scores(chains: np.ndarray) -> np.ndarray:
        ranks = stats.rankdata(chains, method="average").reshape(chains.shape)
        return stats.norm.ppf((ranks - 0.375) / (chains.size + 0.25))

    half = draws.shape[1] // 2
    split = np.concatenate([draws[:, :half], draws[:, half : 2 * half]])
    folded = np.abs(split - np.median(split))
    return max(classic(normal_scores(split)), classic(normal_scores(folded)))


def _trace(theta: np.ndarray, diverging: np.ndarray | None = None) -> az.InferenceData:
    """A hand-built trace of `theta` with dimensions (chain, draw, side=a|b)."""
    sample_stats = {"diverging": diverging} if diverging is not None else None
    return az.from_dict(
        posterior={"theta": theta},
        sample_stats=sample_stats,
        coords={"side": ["a", "b"]},
        dims={"theta": ["side"]},
    )


@pytest.fixture(scope="module")
def mixed_and_stuck() -> np.ndarray:
    """Four chains of 1000 iid draws: side a mixes, side b has one chain stuck elsewhere."""
    rng = np.random.default_rng(7)
    theta = rng.normal(size=(4, 1000, 2))
    theta[3, :, 1] += 2.0
    return theta


def test_defaults_are_valid_and_serialisable() -> None:
    settings = SamplingSettings()
    assert settings.chains >= 2 and settings.cores == 1 and settings.max_divergences == 0
    assert settings.to_dict()["random_seed"] == settings.random_seed


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("draws", 5),
        ("draws", 500.0),
        ("tune", -1),
        ("chains", 1),
        ("cores", 0),
        ("random_seed", -3),
        ("random_seed", None),
        ("max_divergences", -1),
        ("max_divergences", True),
        ("target_accept", 1.0),
        ("target_accept", 0),
        ("target_accept", "0.9"),
    ],
)
def test_invalid_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(SettingsError, match=field):
        SamplingSettings(**{field: value})


def test_summaries_match_the_draws_and_an_independent_r_hat(mixed_and_stuck: np.ndarray) -> None:
    diagnostics = diagnose(_trace(mixed_and_stuck), "synthetic", ["theta"])
    assert [p.name for p in diagnostics.parameters] == ["theta[a]", "theta[b]"]
    assert (diagnostics.chains, diagnostics.draws, diagnostics.divergences) == (4, 1000, 0)
    for index, summary in enumerate(diagnostics.parameters):
        values = mixed_and_stuck[:, :, index].ravel()
        assert summary.mean == pytest.approx(values.mean(), abs=1e-12)
        assert summary.median == pytest.approx(np.median(values), abs=1e-12)
        assert summary.sd == pytest.approx(values.std(ddof=1), abs=1e-12)
        assert summary.interval == pytest.approx(np.quantile(values, [0.025, 0.975]), abs=1e-12)
        expected = _split_rank_r_hat(mixed_and_stuck[:, :, index])
        assert summary.r_hat == pytest.approx(expected, rel=1e-9)
    mixed, stuck = diagnostics.parameters
    assert mixed.r_hat < MAX_R_HAT < stuck.r_hat
    # Independent draws: the bulk ESS is close to the 4000 draws (its sampling error is a
    # few percent); the stuck side's is far lower.
    assert 3400 < mixed.ess_bulk < 4600
    assert stuck.ess_bulk < 1000


def test_the_gate_names_the_model_and_only_the_parameter_that_failed(
    mixed_and_stuck: np.ndarray,
) -> None:
    diagnostics = diagnose(_trace(mixed_and_stuck), "synthetic", ["theta"])
    with pytest.raises(ConvergenceError) as raised:
        check_convergence(diagnostics)
    error = raised.value
    assert error.model == "synthetic"
    assert len(error.problems) == 1 and error.problems[0].startswith("r_hat of theta[b] is ")
    assert "'synthetic'" in str(error) and "\n" not in str(error)
    converged = diagnose(_trace(mixed_and_stuck[:3]), "synthetic", ["theta"])
    check_convergence(converged)


def test_divergences_beyond_the_limit_fail() -> None:
    rng = np.random.default_rng(1)
    diverging = np.zeros((4, 1000), dtype=bool)
    diverging[0, [10, 20, 30]] = True
    diagnostics = diagnose(_trace(rng.normal(size=(4, 1000, 2)), diverging), "synthetic", ["theta"])
    assert diagnostics.divergences == 3
    check_convergence(diagnostics, max_divergences=3)
    with pytest.raises(ConvergenceError, match="3 divergent transitions > 2 allowed"):
        check_convergence(diagnostics, max_divergences=2)


def test_chains_that_never_move_fail() -> None:
    """ArviZ gives a NaN r_hat for constant chains; NaN is not convergence."""
    theta = np.ones((2, 100, 2))
    with pytest.raises(ConvergenceError, match=r"theta\[a\] is nan"):
        check_convergence(diagnose(_trace(theta), "stuck", ["theta"]))


def test_a_real_run_stuck_in_two_modes_fails_the_r_hat_gate() -> None:
    """Two chains started in the two modes of a well-separated mixture never meet."""
    with pm.Model():
        pm.NormalMixture("x", w=np.array([0.5, 0.5]), mu=np.array([-8.0, 8.0]), sigma=1.0)
        idata = pm.sample(
            draws=200,
            tune=200,
            chains=2,
            cores=1,
            random_seed=3,
            initvals=[{"x": -8.0}, {"x": 8.0}],
            progressbar=False,
            quiet=True,
            compute_convergence_checks=False,
        )
    with pytest.raises(ConvergenceError, match=r"'bimodal'.*r_hat of x is"):
        check_convergence(diagnose(idata, "bimodal", ["x"]))


def test_a_real_funnel_fails_on_divergences() -> None:
    """Neal's funnel, centred: its neck is too narrow for any one step size."""
    with pm.Model() as funnel:
        log_scale = pm.Normal("log_scale", 0.0, 3.0)
        pm.Normal("x", 0.0, pm.math.exp(log_scale / 2), shape=9)
    # PyMC's own target_accept of 0.8, and few draws: trajectories in the neck run to
    # the maximum tree depth, 1023 steps.
    settings = SamplingSettings(draws=300, tune=300, chains=2, target_accept=0.8)
    with pytest.raises(ConvergenceError) as raised:
        sample_posterior(funnel, "neal_funnel", ["log_scale", "x"], settings)
    assert raised.value.model == "neal_funnel"
    assert any("divergent transitions > 0 allowed" in p for p in raised.value.problems)


def _normal_mean_model() -> pm.Model:
    """Known sigma 2, prior Normal(0, 10), eight observations: a conjugate posterior."""
    observed = np.array([1.2, 3.4, 2.2, 0.7, 2.9, 1.8, 2.5, 3.1])
    with pm.Model() as model:
        mean = pm.Normal("mean", 0.0, 10.0)
        pm.Normal("y", mean, 2.0, observed=observed)
    return model


def test_a_converged_run_matches_the_conjugate_posterior_and_is_deterministic() -> None:
    """With the default settings: a one-dimensional model samples them in a second or two."""
    settings = SamplingSettings()
    first = sample_posterior(_normal_mean_model(), "normal_mean", ["mean"], settings)
    # Closed form: precision 1/100 + 8/4, mean (sum y / 4) / precision.
    precision = 1 / 100 + 8 / 4
    exact = stats.norm(loc=(17.8 / 4) / precision, scale=precision**-0.5)
    summary = first.summary("mean")
    # An ESS over 1000 puts the Monte Carlo error of the mean near 0.03 sd and of the
    # 2.5% and 97.5% quantiles near 0.085 sd; allow about three of them.
    assert summary.r_hat <= MAX_R_HAT and min(summary.ess_bulk, summary.ess_tail) > 1000
    assert summary.mean == pytest.approx(exact.mean(), abs=0.1 * exact.std())
    assert summary.interval == pytest.approx(exact.ppf([0.025, 0.975]), abs=0.25 * exact.std())

    again = sample_posterior(_normal_mean_model(), "normal_mean", ["mean"], settings)
    assert again.posterior.equals(first.posterior)
    assert again.diagnostics == first.diagnostics
    reseeded = SamplingSettings(random_seed=settings.random_seed + 1)
    other = sample_posterior(_normal_mean_model(), "normal_mean", ["mean"], reseeded)
    assert not other.posterior.equals(first.posterior)


def test_binomial_counts_must_be_whole() -> None:
    assert binomial_count(12.0, "exposed") == 12
    with pytest.raises(StatsInputError, match="exposed must be a whole number"):
        binomial_count(12.5, "exposed")
    with pytest.raises(StatsInputError, match="non-negative"):
        binomial_count(-1, "exposed")
