"""(Quasi-)Poisson z-test of a count metric: events per exposed subject, treatment vs control.

The frequentist twin of the trend posterior: it reads the same event count and exposure
per variant, so the two never describe different data. A rate r = count / exposure has
Poisson variance r / exposure; counts that are overdispersed by a factor φ (see
`overdispersion`) have φ times that, the quasi-Poisson variance, and the same φ widens
the trend's Gamma posteriors.

As for proportions, the statistic uses the variance under the null hypothesis (one
pooled rate r̂ = (x_c + x_t) / (e_c + e_t): Var₀ = φ r̂ (1/e_c + 1/e_t)), the interval of
the difference the unpooled variance φ (r_c/e_c + r_t/e_t), and the relative lift the
delta method on the log ratio: Var(log r) ≈ φ / count, so the interval is asymmetric and
above −100%.
"""

from __future__ import annotations

import math
from numbers import Real

from exp_pipeline.stats.frequentist import (
    CONFIDENCE_LEVEL,
    FrequentistResult,
    check_level,
    difference_result,
)
from exp_pipeline.stats.inputs import StatsInputError, check_count

POISSON_RATE_Z = "poisson_rate_z"
QUASI_POISSON_RATE_Z = "quasi_poisson_rate_z"


def _rate_counts(count: object, exposure: object, variant: str) -> tuple[float, float]:
    events = check_count(count, f"{variant} count")
    subjects = check_count(exposure, f"{variant} exposure")
    if subjects == 0:
        raise StatsInputError(f"{variant} exposure must be positive to estimate a rate")
    return events, subjects


def poisson_rate_test(
    control_count: Real,
    control_exposure: Real,
    treatment_count: Real,
    treatment_exposure: Real,
    *,
    dispersion: float = 1.0,
    level: float = CONFIDENCE_LEVEL,
) -> FrequentistResult:
    """Two-sided z-test of rate_treatment = rate_control, variances scaled by `dispersion`.

    Statistic, p-value and intervals are NaN when neither variant has an event; the
    relative lift is NaN when control has none, its interval unless both have some.
    """
    level = check_level(level)
    if not (math.isfinite(dispersion) and dispersion >= 1):
        raise StatsInputError(
            f"dispersion must be a finite number of at least 1, got {dispersion!r}"
        )
    x_c, e_c = _rate_counts(control_count, control_exposure, "control")
    x_t, e_t = _rate_counts(treatment_count, treatment_exposure, "treatment")
    r_c, r_t = x_c / e_c, x_t / e_t
    pooled = (x_c + x_t) / (e_c + e_t)
    return difference_result(
        POISSON_RATE_Z if dispersion == 1 else QUASI_POISSON_RATE_Z,
        r_c,
        r_t,
        dispersion * r_c / e_c,
        dispersion * r_t / e_t,
        df=None,
        null_standard_error=math.sqrt(dispersion * pooled * (1 / e_c + 1 / e_t)),
        level=level,
        log_relative=True,
    )
