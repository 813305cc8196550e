"""Informative priors: stated as a mean and a weight, checked against conjugate updates.

Funnel: Beta(mean·w, (1 − mean)·w) updated by successes and failures, compared with
`scipy.stats.beta`. Trend: Gamma(mean·w, w) on events per subject updated by a Poisson
count over n subjects, rescaled to the control-sized audience, compared with
`scipy.stats.gamma`. The flat default must leave results bit-identical.
"""

from __future__ import annotations

import pytest
from scipy import stats

from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.posteriors import BetaPosterior, GammaPosterior
from exp_pipeline.stats.priors import Prior
from exp_pipeline.stats.results import analyse_funnel, analyse_trend


@pytest.mark.parametrize(
    ("mean", "weight", "message"),
    [
        (0.1, 0.0, "weight must be positive"),
        (0.1, -5, "weight must be positive"),
        (float("nan"), 10, "mean must be finite"),
        (True, 10, "mean must be a number"),
        (0.1, float("inf"), "weight must be finite"),
    ],
)
def test_prior_refuses_what_no_prior_can_mean(mean: object, weight: object, message: str) -> None:
    with pytest.raises(StatsInputError, match=message):
        Prior(mean, weight)  # type: ignore[arg-type]


def test_scale_checks_belong_to_the_metric_family() -> None:
    assert Prior(0.2, 50).beta() == (10.0, 40.0)
    assert Prior(2.5, 40).gamma() == (100.0, 40.0)
    with pytest.raises(StatsInputError, match="between 0 and 1"):
        Prior(1.5, 10).beta()
    with pytest.raises(StatsInputError, match="must be positive"):
        Prior(-1.0, 10).gamma()


def test_funnel_prior_is_the_conjugate_beta_update() -> None:
    steps = {"control": [1000, 600, 100], "test": [1000, 610, 120]}
    prior = Prior(mean=0.1, weight=200)
    result = analyse_funnel(steps, prior=prior)
    assert result.posteriors == {
        "control": BetaPosterior(20 + 100, 180 + 900),
        "test": BetaPosterior(20 + 120, 180 + 880),
    }
    low, high = result.credible_intervals["test"]
    assert (low, high) == pytest.approx(stats.beta(140, 1060).ppf([0.025, 0.975]), rel=1e-10)
    # The prior pulls both rates towards 10%: the lift interval narrows toward 0.
    flat = analyse_funnel(steps)
    assert result.lift_intervals["test"][1] < flat.lift_intervals["test"][1]


def test_trend_prior_is_the_conjugate_gamma_update_per_control_audience() -> None:
    counts, exposures = {"control": 900, "test": 1100}, {"control": 400, "test": 500}
    prior = Prior(mean=2.0, weight=50)  # 100 pseudo-events over 50 pseudo-subjects
    result = analyse_trend(counts, exposures, prior=prior)
    # Per subject: Gamma(100 + count, 50 + n); per control-sized audience: × n_control.
    for key in counts:
        per_subject = stats.gamma(100 + counts[key], scale=1 / (50 + exposures[key]))
        low, high = result.credible_intervals[key]
        expected = 400 * per_subject.ppf([0.025, 0.975])
        assert (low, high) == pytest.approx(expected, rel=1e-10)
        assert result.posteriors[key].mean == pytest.approx(400 * per_subject.mean(), rel=1e-12)


def test_trend_prior_needs_measured_exposures() -> None:
    with pytest.raises(StatsInputError, match=r"variants \['test'\] have no measured exposure"):
        analyse_trend({"control": 10, "test": 12}, {"control": 100}, prior=Prior(0.1, 10))


def test_flat_default_keeps_the_reference_posteriors() -> None:
    assert analyse_funnel({"control": [2, 2], "test": [3, 1]}).posteriors == {
        "control": BetaPosterior(3, 1),
        "test": BetaPosterior(2, 3),
    }
    assert analyse_trend({"control": 4, "test": 5}, {"control": 2, "test": 1}).posteriors == {
        "control": GammaPosterior(5, 1),
        "test": GammaPosterior(6, 0.5),
    }
