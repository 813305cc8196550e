"""Two-proportion z-test of a binary metric: treatment conversions against control.

Why pooled and unpooled standard errors side by side: under the null hypothesis both
variants share one conversion rate, so the test statistic uses the pooled rate p̂ =
(x_c + x_t) / (n_c + n_t), SE₀ = sqrt(p̂ (1 − p̂) (1/n_c + 1/n_t)), which gives the test
its nominal size (it is the square root of the 2×2 chi-square without continuity
correction, and what statsmodels' `proportions_ztest` computes). The interval is about the
difference wherever it is, so it uses the unpooled SE = sqrt(p_c (1 − p_c)/n_c +
p_t (1 − p_t)/n_t) (the Wald interval). In rare borderline cases the two can disagree
(p just under 0.05 with an interval just touching 0); both are reported as computed.

The relative lift p_t / p_c − 1 has its interval from the delta method on the log ratio:
Var(log p̂) ≈ (1 − p) / (n p) = (1 − p) / x, so SE(log p_t/p_c) = sqrt((1 − p_t)/x_t +
(1 − p_c)/x_c) (Katz's log interval), exponentiated: asymmetric and never below −100%.
"""

from __future__ import annotations

import math
from numbers import Real

from exp_pipeline.stats.frequentist import (
    CONFIDENCE_LEVEL,
    FrequentistResult,
    check_level,
    check_subjects,
    difference_result,
)
from exp_pipeline.stats.inputs import StatsInputError, check_count

TWO_PROPORTION_Z = "two_proportion_z"


def _proportion_counts(conversions: object, subjects: object, variant: str) -> tuple[float, float]:
    """Validated (conversions, subjects) of one variant."""
    converted = check_count(conversions, f"{variant} conversions")
    n = check_subjects(subjects, f"{variant} subjects", minimum=1)
    if converted > n:
        raise StatsInputError(
            f"{variant} conversions ({conversions!r}) exceed its subjects ({subjects!r})"
        )
    return converted, n


def two_proportion_z_test(
    control_conversions: Real,
    control_subjects: Real,
    treatment_conversions: Real,
    treatment_subjects: Real,
    *,
    level: float = CONFIDENCE_LEVEL,
) -> FrequentistResult:
    """Two-sided z-test of p_treatment = p_control, with absolute and relative lift intervals.

    Subjects are exposed subjects (at least one per variant), conversions the subjects who
    converted. Undefined parts are NaN: the statistic, p-value and intervals when nobody or
    everybody converted in both variants; the relative lift when control has no
    conversions; the relative interval unless both variants have some.
    """
    level = check_level(level)
    x_c, n_c = _proportion_counts(control_conversions, control_subjects, "control")
    x_t, n_t = _proportion_counts(treatment_conversions, treatment_subjects, "treatment")
    p_c, p_t = x_c / n_c, x_t / n_t
    pooled = (x_c + x_t) / (n_c + n_t)
    return difference_result(
        TWO_PROPORTION_Z,
        p_c,
        p_t,
        p_c * (1 - p_c) / n_c,
        p_t * (1 - p_t) / n_t,
        df=None,
        null_standard_error=math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t)),
        level=level,
        log_relative=True,
    )
