"""The (quasi-)Poisson rate test against the conditional binomial score test and simulations.

Independent closed form: given the total N = x_c + x_t, x_t is Binomial(N, e_t / (e_c +
e_t)) under equal rates, and that binomial's score statistic (x_t e_c − x_c e_t) /
√(N e_c e_t) must equal the pooled z statistic. Seeded A/A simulations (2000 runs):
Poisson counts are rejected 5% ± 1.5 points (three binomial standard errors) of the time;
clumpy negative-binomial counts are rejected far more often by the plain Poisson test,
and 5% ± 1.5 points once the dispersion estimated from the same data scales it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.means import MeanSummary
from exp_pipeline.stats.overdispersion import dispersion_test
from exp_pipeline.stats.rates import POISSON_RATE_Z, QUASI_POISSON_RATE_Z, poisson_rate_test

ALPHA = 0.05
SIMULATIONS = 2000
TOLERANCE = 3 * math.sqrt(ALPHA * (1 - ALPHA) / SIMULATIONS)


@pytest.mark.parametrize(
    ("x_c", "e_c", "x_t", "e_t"), [(900, 400, 1100, 410), (3, 10, 9, 12), (52, 1000, 40, 700)]
)
def test_statistic_is_the_conditional_binomial_score_test(
    x_c: int, e_c: int, x_t: int, e_t: int
) -> None:
    result = poisson_rate_test(x_c, e_c, x_t, e_t)
    score = (x_t * e_c - x_c * e_t) / math.sqrt((x_c + x_t) * e_c * e_t)
    assert result.method == POISSON_RATE_Z
    assert result.statistic == pytest.approx(score, rel=1e-12)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(score)), rel=1e-10)
    assert result.effect == pytest.approx(x_t / e_t - x_c / e_c, rel=1e-12)
    se = math.sqrt(x_c / e_c**2 + x_t / e_t**2)
    z = stats.norm.ppf(0.975)
    assert (result.ci_low, result.ci_high) == pytest.approx(
        (result.effect - z * se, result.effect + z * se), rel=1e-12
    )
    # Katz's log interval for a ratio of Poisson rates: SE(log ratio)² = 1/x_c + 1/x_t.
    log_se = math.sqrt(1 / x_c + 1 / x_t)
    ratio = (x_t / e_t) / (x_c / e_c)
    expected = (ratio * math.exp(-z * log_se) - 1, ratio * math.exp(z * log_se) - 1)
    assert (result.relative_ci_low, result.relative_ci_high) == pytest.approx(expected, rel=1e-10)


def test_dispersion_scales_every_variance() -> None:
    plain, quasi = (
        poisson_rate_test(900, 400, 1000, 410),
        poisson_rate_test(900, 400, 1000, 410, dispersion=4.0),
    )
    assert quasi.method == QUASI_POISSON_RATE_Z
    assert quasi.statistic == pytest.approx(plain.statistic / 2, rel=1e-12)
    assert quasi.standard_error == pytest.approx(2 * plain.standard_error, rel=1e-12)


def test_a_a_poisson_counts_reject_at_alpha() -> None:
    rng = np.random.default_rng(1)
    counts = rng.poisson([[2.0 * 500, 2.0 * 520]] * SIMULATIONS)
    rejected = np.mean([poisson_rate_test(c, 500, t, 520).p_value < ALPHA for c, t in counts])
    assert rejected == pytest.approx(ALPHA, abs=TOLERANCE)


def test_overdispersed_counts_need_the_quasi_poisson_scale() -> None:
    rng = np.random.default_rng(2)
    n, mean, r = 300, 2.0, 1.0  # negative binomial: variance 3 × the mean

    def subject_counts() -> np.ndarray:
        return rng.poisson(rng.gamma(r, mean / r, n)).astype(np.float64)

    plain = quasi = 0
    for _ in range(SIMULATIONS):
        control, test = subject_counts(), subject_counts()
        phi = dispersion_test(
            {k: MeanSummary.from_sums(n, v.sum(), v @ v) for k, v in (("c", control), ("t", test))}
        ).widening
        plain += poisson_rate_test(control.sum(), n, test.sum(), n).p_value < ALPHA
        quasi += poisson_rate_test(control.sum(), n, test.sum(), n, dispersion=phi).p_value < ALPHA
    assert plain / SIMULATIONS > 0.15  # about 25%: the Poisson variance is a third too small
    assert quasi / SIMULATIONS == pytest.approx(ALPHA, abs=TOLERANCE)


def test_no_events_and_no_exposure() -> None:
    result = poisson_rate_test(0, 100, 0, 100)
    assert math.isnan(result.statistic) and math.isnan(result.p_value)
    with pytest.raises(StatsInputError, match="control exposure must be positive"):
        poisson_rate_test(3, 0, 4, 10)
    with pytest.raises(StatsInputError, match="dispersion must be"):
        poisson_rate_test(3, 10, 4, 10, dispersion=0.5)
