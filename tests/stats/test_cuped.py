"""CUPED against an analysis of covariance fitted by least squares, and raw-data moments.

The independent computation is `numpy.linalg.lstsq` on the raw per-subject rows of
y ~ 1 + variant indicators + x: its slope is the pooled within-variant θ, and its variant
coefficients are exactly the differences of CUPED-adjusted means. Adjusted variances are
compared with numpy's variance of y − θ x per variant.
"""

from __future__ import annotations

import numpy as np
import pytest

from exp_pipeline.stats.cuped import CupedSums, cuped_adjust
from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.means import MeanSummary, welch_t_test


def _experiment(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(y, x) per variant: spend during the experiment and in the lookback before it."""
    rng = np.random.default_rng(seed)
    data = {}
    for key, n, lift in (("control", 3000, 0.0), ("a", 2900, 1.5), ("b", 3100, -0.5)):
        habit = rng.gamma(2.0, 5.0, n)
        x = rng.poisson(habit).astype(np.float64)
        y = rng.poisson(habit * 1.1).astype(np.float64) + lift
        data[key] = (y, x)
    return data


def _sums(y: np.ndarray, x: np.ndarray) -> CupedSums:
    return CupedSums.from_sums(y.size, y.sum(), y @ y, x.sum(), x @ x, x @ y)


def test_adjusted_differences_are_the_ancova_coefficients() -> None:
    data = _experiment(1)
    result = cuped_adjust({k: _sums(y, x) for k, (y, x) in data.items()})

    keys = list(data)
    y = np.concatenate([data[k][0] for k in keys])
    x = np.concatenate([data[k][1] for k in keys])
    labels = np.concatenate([[k] * data[k][0].size for k in keys])
    design = np.column_stack([np.ones_like(y), *(labels == k for k in keys[1:]), x])
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)

    assert result.theta == pytest.approx(coefficients[-1], rel=1e-9)
    for i, key in enumerate(keys[1:], start=1):
        difference = result.adjusted[key].mean - result.adjusted["control"].mean
        assert difference == pytest.approx(coefficients[i], rel=1e-9)
    assert result.covariate_mean == pytest.approx(x.mean(), rel=1e-12)


def test_adjusted_variances_and_the_reduction_match_raw_residuals() -> None:
    data = _experiment(2)
    result = cuped_adjust({k: _sums(y, x) for k, (y, x) in data.items()})
    residual_ss = raw_ss = 0.0
    for key, (y, x) in data.items():
        adjusted = y - result.theta * x
        assert result.adjusted[key].variance == pytest.approx(adjusted.var(ddof=1), rel=1e-9)
        assert result.adjusted[key].n == y.size
        reduction = 1 - adjusted.var(ddof=1) / y.var(ddof=1)
        assert result.variance_reductions[key] == pytest.approx(reduction, rel=1e-9)
        residual_ss += ((adjusted - adjusted.mean()) ** 2).sum()
        raw_ss += ((y - y.mean()) ** 2).sum()
    assert result.variance_reduction == pytest.approx(1 - residual_ss / raw_ss, rel=1e-9)
    # Spending habits explain most of the spread here: a large, real reduction.
    assert result.variance_reduction > 0.5


def test_adjustment_sharpens_the_welch_test_without_moving_the_effect_much() -> None:
    data = _experiment(3)
    result = cuped_adjust({k: _sums(y, x) for k, (y, x) in data.items()})
    raw = {k: MeanSummary.from_values(y) for k, (y, _) in data.items()}
    before = welch_t_test(raw["control"], raw["a"])
    after = welch_t_test(result.adjusted["control"], result.adjusted["a"])
    assert after.standard_error < 0.75 * before.standard_error
    assert after.effect == pytest.approx(1.5, abs=3 * after.standard_error)


def test_no_pre_exposure_spread_means_no_adjustment() -> None:
    y = np.array([1.0, 4.0, 2.0, 8.0])
    zeros = np.zeros(4)
    result = cuped_adjust({"control": _sums(y, zeros), "test": _sums(y + 1, zeros)})
    assert result.theta == 0.0 and result.variance_reduction == 0.0
    assert result.adjusted["test"].mean == pytest.approx(y.mean() + 1, rel=1e-12)


def test_sums_need_two_subjects() -> None:
    with pytest.raises(StatsInputError, match="n must be at least 2"):
        CupedSums.from_sums(1, 1.0, 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(StatsInputError, match="at least one variant"):
        cuped_adjust({})
