"""Two-sided always-valid inference for results that analysts look at every day.

A fixed-horizon p-value is valid once, at the sample size planned in advance. Results
here are recomputed every day and read every day, and "stop when it is significant" with
a fixed-horizon test declares about one A/A experiment in five a winner over two weeks.
The mixture sequential probability ratio test (mSPRT; Johari, Pekelis and Walsh, "Always
valid inference", 2017) keeps its error rate at or below alpha at any look, however
many looks there are and whenever the analyst stops.

For an effect estimate θ̂ (treatment − control, from the frequentist test of the metric's
kind) with variance V, the normal-mixture likelihood ratio against θ = θ₀, mixed over
θ ~ N(θ₀, τ²), is `sequential.msprt_lambda(θ̂ − θ₀, V, τ)`:

    Λ = √(V / (V + τ²)) · exp(τ² (θ̂ − θ₀)² / (2 V (V + τ²))).

Under θ = θ₀ it is a non-negative martingale with mean 1, so (Ville's inequality)
P(Λ ≥ 1/α at any look) ≤ α. Hence, at every look:

* the always-valid p-value min(1, 1/Λ) at θ₀ = 0: rejecting when it is ≤ α, at whatever
  look one stops, errs with probability ≤ α. Results are recomputed from scratch, so the
  value is that of the current look, not the running minimum over looks (which would need
  state and is valid too, only smaller);
* the e-value Λ itself, whose expectation under no effect is at most 1 at any stopping
  time: what e-BH needs to combine many comparisons (`multiple_testing.e_bh_adjust`);
* the confidence sequence {θ₀ : Λ(θ₀) < 1/α} = θ̂ ± √(V (V + τ²) / τ² · (2 log(1/α) +
  log((V + τ²) / V))), which covers the true effect at all looks at once with
  probability ≥ 1 − α, and excludes 0 exactly when the p-value is ≤ α.

Tuning: τ is the size of effect the test is most sensitive to (Λ for a given z statistic
is largest at τ² = θ² − V). It is `relative_tau` times the mean of the two variants'
absolute values, by default `DEFAULT_RELATIVE_TAU` = 10%: a 10% lift is the size of
effect product experiments are usually run to detect, and the guardrails' 20%
(`sequential.DEFAULT_RELATIVE_TAU`) is tuned for clear regressions instead. τ follows the
data from look to look, which the martingale argument does not cover; the simulation
tests measure the false-positive rate over 14 daily looks at alpha = 5%: 0.6% for a
funnel and 0 of 2000 for skewed revenue (a fixed-horizon test peeked at daily: 23%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from exp_pipeline.stats.frequentist import FrequentistResult
from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.sequential import msprt_lambda

DEFAULT_RELATIVE_TAU = 0.1
ALWAYS_VALID_ALPHA = 0.05


@dataclass(frozen=True)
class AlwaysValidResult:
    """One look of the two-sided mSPRT of effect = 0 for one comparison.

    NaN throughout (and p-value NaN) when the look cannot be tested: no variance yet, or
    no scale to set τ from (both variants' values 0).
    """

    tau: float
    e_value: float
    p_value: float
    confidence_sequence: tuple[float, float]
    alpha: float


def always_valid_p_value(
    effect: npt.ArrayLike, variance: npt.ArrayLike, tau: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """min(1, 1/Λ) at θ₀ = 0, elementwise (0 where Λ overflows to infinity)."""
    with np.errstate(divide="ignore"):
        return np.minimum(1.0, 1.0 / msprt_lambda(effect, variance, tau))


def confidence_sequence_half_width(
    variance: npt.ArrayLike, tau: npt.ArrayLike, alpha: float
) -> npt.NDArray[np.float64]:
    """Half-width of the (1 − alpha) confidence sequence around θ̂, elementwise."""
    variance, tau = (np.asarray(x, dtype=np.float64) for x in (variance, tau))
    spread = variance + tau**2
    return np.sqrt(
        variance * spread / tau**2 * (2 * math.log(1 / alpha) + np.log(spread / variance))
    )


def relative_tau_scale(
    control_value: npt.ArrayLike, treatment_value: npt.ArrayLike, relative_tau: float
) -> npt.NDArray[np.float64]:
    """τ = relative_tau × the mean of the variants' absolute values, elementwise."""
    return relative_tau * (np.abs(control_value) + np.abs(treatment_value)) / 2


def always_valid_test(
    result: FrequentistResult,
    *,
    relative_tau: float = DEFAULT_RELATIVE_TAU,
    alpha: float = ALWAYS_VALID_ALPHA,
) -> AlwaysValidResult:
    """The always-valid p-value, e-value and confidence sequence of a fixed-horizon result.

    Reads the effect, its standard error and both variants' values from `result` (of any
    test: proportions, Welch, delta method), so every metric kind is covered the same way.
    """
    if not 0 < alpha < 1:
        raise StatsInputError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    if not (math.isfinite(relative_tau) and relative_tau > 0):
        raise StatsInputError(f"relative_tau must be finite and positive, got {relative_tau!r}")
    variance = result.standard_error**2
    tau = float(relative_tau_scale(result.control_value, result.treatment_value, relative_tau))
    testable = all(map(math.isfinite, (result.effect, variance, tau))) and variance > 0 < tau
    if not testable:
        return AlwaysValidResult(math.nan, math.nan, math.nan, (math.nan, math.nan), alpha)
    half = float(confidence_sequence_half_width(variance, tau, alpha))
    return AlwaysValidResult(
        tau=tau,
        e_value=float(msprt_lambda(result.effect, variance, tau)),
        p_value=float(always_valid_p_value(result.effect, variance, tau)),
        confidence_sequence=(result.effect - half, result.effect + half),
        alpha=alpha,
    )
