"""Always-valid sequential test for guardrail harm on ratio metrics (mSPRT).

Why sequential: the guardrail sensor looks at a running experiment on every tick. A fixed-
horizon z-test applied at every look gets many chances to cross its threshold by luck, so
its false-alarm rate grows with the number of looks (one-sided at 5% with 20 looks it
pauses roughly one healthy experiment in five). The test here keeps its false-alarm rate
at or below `alpha` however many times, and at whatever moments, it is evaluated.

Method: the mixture sequential probability ratio test (mSPRT) of Johari, Pekelis and Walsh,
"Always valid inference" (2017; Operations Research 2022), with the normal approximation.
A guardrail ratio metric has per variant a numerator count (say error events) and a
denominator count (say exposure events); its rate is numerator / denominator. The effect
is theta = treatment rate - control rate, estimated by theta_hat with variance

    V = control_rate / control_den + treatment_rate / treatment_den,

the variance of a difference of two Poisson rates with the rates plugged in (it is also an
upper bound for the binomial variance r (1 - r) / n when numerators cannot exceed
denominators). Mixing the likelihood ratio of theta against theta = 0 over a normal
distribution N(0, tau^2) on theta gives, in closed form,

    Lambda_n = sqrt(V / (V + tau^2)) * exp(tau^2 theta_hat^2 / (2 V (V + tau^2))).

Under no effect, and with V known, Lambda_n is a non-negative martingale with mean 1, so
by Ville's inequality P(Lambda_n >= 1 / alpha at any look) <= alpha. The always-valid
p-value is the running minimum p_n = min(p_{n-1}, 1 / Lambda_n); the caller carries it
between looks as state (`previous_p_value` in, `always_valid_p_value` out). Detection is
one-sided: the p-value only moves on looks where theta_hat points the harmful way
(treatment rate higher when `lower_is_better`, lower when `higher_is_better`), and
`harmful` needs that as well. The looks that can fire are a subset of those where Lambda_n
>= 1 / alpha, so the nominal false-alarm rate stays <= alpha over any number of looks (in
practice well below it, since the bound is for the two-sided test and is loose for
discrete looks).

Choice of tau: tau is the effect size the test is tuned to. For a given z statistic,
Lambda is largest when tau^2 = theta^2 - V, so in large samples tau should be about the
smallest harm worth acting on. Pass `tau` explicitly, in the units of the rate difference,
to fix it for the life of a guardrail (which is what the martingale argument assumes).
By default tau is `DEFAULT_RELATIVE_TAU` (20%) of the pooled rate of both variants: a
guardrail exists to catch a clear regression quickly, not a 1% drift, and the pooled
rate (unlike the control rate alone) is positive whenever there are any events. In the
simulations 10% lost half the power against a 30% harm, while 20% to 50% performed
alike. The default is re-estimated at each look, which perturbs the martingale only while
the pooled rate is still settling; the tests measure the resulting false-alarm rate over
20 looks at alpha = 5%: about 0.4%.

Approximations to keep in mind: the normal approximation wants a handful of events per
variant, and the Poisson variance assumes events are independent across denominator
units. Heavy clustering (one subject producing many errors) makes V too small and raises
the false-alarm rate; per-subject variances would fix that, but the guardrail aggregates
carry only the two counts per variant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from exp_pipeline.errors import ExpPipelineError

Direction = Literal["lower_is_better", "higher_is_better"]

# Default tau as a fraction of the pooled rate: tuned to a 20% relative change.
DEFAULT_RELATIVE_TAU = 0.2


class SequentialInputError(ExpPipelineError, ValueError):
    """Arguments that no guardrail evaluation can mean (a negative count, alpha of 2).

    Missing data (NaN, no exposures yet) is not an error: it gives a result that does
    not fire, with the reason, because the sensor will look again on its next tick.
    """


@dataclass(frozen=True)
class SequentialResult:
    """One look of the sequential harm test of treatment against control.

    `effect` is treatment rate - control rate. `always_valid_p_value` is the running
    minimum to pass back as `previous_p_value` at the next look; when the look could not
    be tested it is the previous value unchanged, and `reason` says why (effect, standard
    error and lambda are NaN where they are undefined).
    """

    effect: float
    standard_error: float
    control_rate: float
    treatment_rate: float
    tau: float
    lambda_statistic: float
    always_valid_p_value: float
    harmful: bool
    reason: str | None = None


def rate_difference(
    control_num: npt.ArrayLike,
    control_den: npt.ArrayLike,
    treatment_num: npt.ArrayLike,
    treatment_den: npt.ArrayLike,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The effect (treatment rate - control rate) and its Poisson variance, elementwise.

    Vectorised so that simulations of many experiments use the very estimator the guardrail
    uses; a zero denominator gives NaN or infinity rather than an exception.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        control_rate = np.divide(control_num, control_den, dtype=np.float64)
        treatment_rate = np.divide(treatment_num, treatment_den, dtype=np.float64)
        variance = control_rate / control_den + treatment_rate / treatment_den
    return treatment_rate - control_rate, variance


def default_tau(
    control_num: npt.ArrayLike,
    control_den: npt.ArrayLike,
    treatment_num: npt.ArrayLike,
    treatment_den: npt.ArrayLike,
) -> npt.NDArray[np.float64]:
    """`DEFAULT_RELATIVE_TAU` times the pooled rate of both variants, elementwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = np.divide(
            np.add(control_num, treatment_num),
            np.add(control_den, treatment_den),
            dtype=np.float64,
        )
    return DEFAULT_RELATIVE_TAU * pooled


def _log_msprt_lambda(
    effect: npt.ArrayLike, variance: npt.ArrayLike, tau: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """log Lambda, which stays finite where Lambda itself would overflow."""
    effect, variance, tau = (np.asarray(x, dtype=np.float64) for x in (effect, variance, tau))
    spread = variance + tau**2
    return 0.5 * np.log(variance / spread) + tau**2 * effect**2 / (2 * variance * spread)


def msprt_lambda(
    effect: npt.ArrayLike, variance: npt.ArrayLike, tau: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """The mSPRT statistic sqrt(V/(V+tau^2)) exp(tau^2 theta^2 / (2 V (V+tau^2))).

    Elementwise; overwhelming evidence gives infinity rather than an overflow error.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return np.exp(_log_msprt_lambda(effect, variance, tau))


def _check_direction(direction: str) -> None:
    if direction not in get_args(Direction):
        raise SequentialInputError(
            f"direction must be one of {list(get_args(Direction))}, got {direction!r}"
        )


def _points_to_harm(effect: npt.ArrayLike, direction: Direction) -> npt.NDArray[np.bool_]:
    """Whether the effect is on the harmful side: a higher rate when lower is better."""
    effect = np.asarray(effect, dtype=np.float64)
    return effect > 0 if direction == "lower_is_better" else effect < 0


def update_harm_p_value(
    effect: npt.ArrayLike,
    variance: npt.ArrayLike,
    tau: npt.ArrayLike,
    *,
    direction: Direction,
    previous_p_value: npt.ArrayLike = 1.0,
) -> npt.NDArray[np.float64]:
    """The always-valid p-value for harm after one more look, elementwise.

    min(previous, 1 / Lambda) where the effect points to harm and the look is testable
    (finite effect, positive finite variance and tau); the previous value elsewhere, so a
    look without evidence of harm can never make the p-value worse or better.
    """
    _check_direction(direction)
    effect, variance, tau, previous = (
        np.asarray(x, dtype=np.float64) for x in (effect, variance, tau, previous_p_value)
    )
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        candidate = np.exp(-_log_msprt_lambda(effect, variance, tau))
    testable = (
        np.isfinite(effect) & np.isfinite(variance) & (variance > 0) & np.isfinite(tau) & (tau > 0)
    )
    moves = testable & _points_to_harm(effect, direction)
    return np.where(moves, np.minimum(previous, candidate), previous)


def _check_count(value: object, what: str) -> float:
    """`value` as a float; NaN and infinity pass (they mean "no data"), negatives do not."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise SequentialInputError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if number < 0:
        raise SequentialInputError(f"{what} must be non-negative, got {value!r}")
    return number


def _check_arguments(alpha: float, tau: float | None, previous_p_value: float) -> None:
    if not 0 < alpha < 1:
        raise SequentialInputError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    if tau is not None and not (math.isfinite(tau) and tau > 0):
        raise SequentialInputError(f"tau must be a finite positive number, got {tau!r}")
    if not 0 <= previous_p_value <= 1:
        raise SequentialInputError(
            f"previous_p_value must be between 0 and 1, got {previous_p_value!r}"
        )


def _rate(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is zero or either is not finite."""
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator == 0:
        return math.nan
    return numerator / denominator


def _untestable_reason(
    control_num: float, control_den: float, treatment_num: float, treatment_den: float
) -> str | None:
    """Why these counts cannot be tested yet, or None when they can."""
    if not all(map(math.isfinite, (control_num, control_den, treatment_num, treatment_den))):
        return "counts are missing or not finite (NaN or infinity)"
    if control_den == 0 or treatment_den == 0:
        empty = [
            name
            for name, den in (("control", control_den), ("treatment", treatment_den))
            if not den
        ]
        return f"no denominator events yet in {' and '.join(empty)}"
    if control_num == 0 and treatment_num == 0:
        return "no numerator events in either variant: the effect has zero variance"
    return None


def sequential_harm_test(
    control_num: float,
    control_den: float,
    treatment_num: float,
    treatment_den: float,
    *,
    direction: Direction,
    alpha: float = 0.05,
    tau: float | None = None,
    previous_p_value: float = 1.0,
) -> SequentialResult:
    """One look of the always-valid test of whether treatment harms a guardrail ratio metric.

    Counts are cumulative since the experiment started. Pass the previous look's
    `always_valid_p_value` as `previous_p_value` (1.0 at the first look); `harmful` is
    True when that running minimum is at most `alpha` and the current effect points to
    harm. `tau` is in units of the rate difference; None uses `default_tau`.
    """
    _check_direction(direction)
    _check_arguments(alpha, tau, previous_p_value)
    counts = (
        _check_count(control_num, "control numerator"),
        _check_count(control_den, "control denominator"),
        _check_count(treatment_num, "treatment numerator"),
        _check_count(treatment_den, "treatment denominator"),
    )
    reason = _untestable_reason(*counts)
    control_rate, treatment_rate = _rate(*counts[:2]), _rate(*counts[2:])
    if reason is not None:
        # Zero variance still has a well-defined effect (0) and standard error (0).
        defined = math.isfinite(control_rate - treatment_rate)
        return SequentialResult(
            effect=treatment_rate - control_rate,
            standard_error=0.0 if defined else math.nan,
            control_rate=control_rate,
            treatment_rate=treatment_rate,
            tau=math.nan if tau is None else tau,
            lambda_statistic=math.nan,
            always_valid_p_value=previous_p_value,
            harmful=False,
            reason=reason,
        )

    effect, variance = rate_difference(*counts)
    used_tau = float(default_tau(*counts)) if tau is None else tau
    p_value = float(
        update_harm_p_value(
            effect, variance, used_tau, direction=direction, previous_p_value=previous_p_value
        )
    )
    return SequentialResult(
        effect=float(effect),
        standard_error=math.sqrt(variance),
        control_rate=control_rate,
        treatment_rate=treatment_rate,
        tau=used_tau,
        lambda_statistic=float(msprt_lambda(effect, variance, used_tau)),
        always_valid_p_value=p_value,
        harmful=bool(p_value <= alpha and _points_to_harm(effect, direction)),
        reason=None,
    )
