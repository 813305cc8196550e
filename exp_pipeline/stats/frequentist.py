"""Frequentist results beside the Bayesian ones: the shared result and its conventions.

Analysts compare the Bayesian probability to be best with the p-values and confidence
intervals other platforms print, so every metric kind also gets a classic test. The tests
live in small modules that share this one result type and these conventions:

- `exp_pipeline.stats.proportions`: two-proportion z-test (binary metrics);
- `exp_pipeline.stats.means`: Welch t-test from per-variant summaries (continuous);
- `exp_pipeline.stats.ratios`: delta-method z-test of sum(x) / sum(y) (ratio metrics);
- `exp_pipeline.stats.rates`: (quasi-)Poisson z-test of events per subject (trends);
- `exp_pipeline.stats.multiple_testing`: Holm adjustment across secondary metrics;
- `exp_pipeline.stats.winsorisation`: percentile caps applied before summarising.

Conventions, the same for every test:

- `effect` is treatment − control (absolute lift); `relative_effect` is treatment /
  control − 1. A positive value always means "treatment is higher".
- The p-value is two-sided and tests effect = 0; the confidence intervals are two-sided
  at `level` (0.95 by default) and are Wald intervals: estimate ± critical value × SE.
- The relative interval comes from the delta method. For proportions and rates it is
  built on the log of the ratio and exponentiated, so it is asymmetric and never goes
  below −100% (proportions and event rates are positive, and the log scale is where the
  ratio is close to normal). For means and ratio metrics, whose values can be zero or
  negative (refunds), it is the linear delta method on the ratio itself, symmetric
  around the relative effect. Each result names its choice in `relative_method`.
- Quantities that the data cannot define are NaN, never an invented number: the relative
  lift when the control value is 0, every interval and statistic when no variation at
  all was observed (all subjects converted, or every value identical). Inputs that cannot
  describe an experiment (negative counts, conversions above subjects, fewer than two
  subjects where a variance is needed, a zero denominator, NaN) raise `StatsInputError`.

The normal and Student quantiles and tails come from `scipy.special` (`ndtri`, `ndtr`,
`stdtrit`, `stdtr`) rather than `scipy.stats`: the same numbers at a small fraction of the
call cost, which keeps the A/A simulations that check these tests fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

from scipy import special

from exp_pipeline.stats.inputs import StatsInputError

CONFIDENCE_LEVEL = 0.95

RELATIVE_LOG_DELTA = "delta_method_log_ratio"
RELATIVE_LINEAR_DELTA = "delta_method_ratio"


@dataclass(frozen=True)
class FrequentistResult:
    """One treatment-versus-control comparison of one metric.

    `control_value` and `treatment_value` are the per-variant estimates (proportion, mean
    or ratio). `standard_error` is that of `effect` as used for its interval (unpooled for
    the z-test of proportions, whose statistic uses the pooled one). `statistic` is z or t;
    `df` is the Welch–Satterthwaite degrees of freedom for the t-test and None for z-tests.
    `method` names the test and `relative_method` how the relative interval was built.
    """

    method: str
    control_value: float
    treatment_value: float
    effect: float
    ci_low: float
    ci_high: float
    standard_error: float
    relative_effect: float
    relative_ci_low: float
    relative_ci_high: float
    relative_method: str
    statistic: float
    p_value: float
    df: float | None
    level: float


def check_level(level: object) -> float:
    """`level` as a float strictly between 0 and 1, else `StatsInputError`."""
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < float(level) < 1:
        raise StatsInputError(f"confidence level must be strictly between 0 and 1, got {level!r}")
    return float(level)


def check_real(value: object, what: str) -> float:
    """`value` as a float if it is a finite real number (negative allowed), else raise.

    For means, sums and variances: NaN or infinity in an aggregate means the upstream query
    went wrong, and the error should name that field rather than surface as a NaN result.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise StatsInputError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise StatsInputError(f"{what} must be finite, got {value!r}")
    return number


def check_subjects(value: object, what: str, minimum: int) -> float:
    """A finite subject count of at least `minimum` (2 wherever a variance is estimated)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise StatsInputError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise StatsInputError(f"{what} must be a finite non-negative number, got {value!r}")
    if number < minimum:
        need = "to estimate a variance" if minimum >= 2 else "to estimate a rate"
        raise StatsInputError(f"{what} must be at least {minimum} {need}, got {value!r}")
    return number


def normal_critical(level: float) -> float:
    """The two-sided standard normal critical value: 1.959964 for level 0.95."""
    return float(special.ndtri(1 - (1 - level) / 2))


def student_critical(level: float, df: float) -> float:
    """The two-sided Student t critical value with `df` degrees of freedom (NaN if df is)."""
    if not math.isfinite(df) or df <= 0:
        return math.nan
    return float(special.stdtrit(df, 1 - (1 - level) / 2))


def normal_p_value(statistic: float) -> float:
    """Two-sided p-value of a z statistic; NaN stays NaN."""
    return float(2 * special.ndtr(-abs(statistic)))


def student_p_value(statistic: float, df: float) -> float:
    """Two-sided p-value of a t statistic with `df` degrees of freedom; NaN stays NaN."""
    if not (math.isfinite(df) and df > 0):
        return math.nan
    return float(2 * special.stdtr(df, -abs(statistic)))


def ratio_of(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN (not an error) when the denominator is 0."""
    return numerator / denominator if denominator != 0 else math.nan


def wald_interval(estimate: float, standard_error: float, critical: float) -> tuple[float, float]:
    """estimate ± critical × SE, or (NaN, NaN) when the SE is 0 or undefined.

    A zero SE means no variation was observed, not that the estimate is exact: a zero-width
    interval would claim certainty the data do not give.
    """
    if not (math.isfinite(standard_error) and standard_error > 0 and math.isfinite(critical)):
        return math.nan, math.nan
    half = critical * standard_error
    return estimate - half, estimate + half


def linear_relative_interval(
    control: float,
    treatment: float,
    control_variance: float,
    treatment_variance: float,
    critical: float,
) -> tuple[float, float]:
    """Interval of treatment / control − 1 by the delta method on the ratio itself.

    For independent estimates, Var(T / C) ≈ Var(T) / C² + T² Var(C) / C⁴. Symmetric, and
    valid whatever the signs of the means, which is why means and ratio metrics use it.
    """
    if control == 0:
        return math.nan, math.nan
    variance = treatment_variance / control**2 + treatment**2 * control_variance / control**4
    return wald_interval(treatment / control - 1, math.sqrt(variance), critical)


def log_relative_interval(
    control: float,
    treatment: float,
    control_variance: float,
    treatment_variance: float,
    critical: float,
) -> tuple[float, float]:
    """Interval of treatment / control − 1 from the delta method on log(treatment / control).

    Var(log T − log C) ≈ Var(T) / T² + Var(C) / C². The log-scale interval is
    exponentiated, so the result is asymmetric and above −1. Needs both estimates
    positive (for proportions: at least one conversion in each variant).
    """
    if control <= 0 or treatment <= 0:
        return math.nan, math.nan
    variance = treatment_variance / treatment**2 + control_variance / control**2
    low, high = wald_interval(math.log(treatment / control), math.sqrt(variance), critical)
    return math.expm1(low), math.expm1(high)


def difference_result(
    method: str,
    control_value: float,
    treatment_value: float,
    control_variance: float,
    treatment_variance: float,
    *,
    df: float | None,
    level: float,
    null_standard_error: float | None = None,
    log_relative: bool = False,
) -> FrequentistResult:
    """The result for a difference of two independent estimates with known variances.

    Shared by every test: Welch (t with `df`), the delta-method ratio test (normal, `df`
    None), proportions and (quasi-)Poisson rates. The interval of the difference is Wald
    with the unpooled variances. The statistic divides by `null_standard_error`, the SE
    under the null hypothesis where it differs (one pooled proportion or rate), else by
    the unpooled SE; NaN when that is 0. The relative interval is the linear delta method,
    or with `log_relative` the delta method on the log ratio (positive rates only).
    """
    effect = treatment_value - control_value
    standard_error = math.sqrt(control_variance + treatment_variance)
    divisor = standard_error if null_standard_error is None else null_standard_error
    statistic = effect / divisor if divisor > 0 else math.nan
    critical = normal_critical(level) if df is None else student_critical(level, df)
    ci_low, ci_high = wald_interval(effect, standard_error, critical)
    relative_interval = log_relative_interval if log_relative else linear_relative_interval
    relative_low, relative_high = relative_interval(
        control_value, treatment_value, control_variance, treatment_variance, critical
    )
    return FrequentistResult(
        method=method,
        control_value=control_value,
        treatment_value=treatment_value,
        effect=effect,
        ci_low=ci_low,
        ci_high=ci_high,
        standard_error=standard_error,
        relative_effect=ratio_of(treatment_value, control_value) - 1,
        relative_ci_low=relative_low,
        relative_ci_high=relative_high,
        relative_method=RELATIVE_LOG_DELTA if log_relative else RELATIVE_LINEAR_DELTA,
        statistic=statistic,
        p_value=normal_p_value(statistic) if df is None else student_p_value(statistic, df),
        df=df,
        level=level,
    )
