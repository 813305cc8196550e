"""Sample-ratio mismatch (SRM): do the exposed subjects split as the rollout says they should?

A variant that receives noticeably more or fewer subjects than its rollout percentage is a
sign that assignment or exposure logging is broken (a redirect that loses users, a bot
filter that hits one arm, a flag evaluated only on some code path). Every metric of such
an experiment is suspect, however significant it looks, so the mismatch is tested on its
own, before anyone reads the results.

The test is Pearson's chi-square goodness of fit of the observed exposed-subject counts
against the configured allocation, with one degree of freedom fewer than the number of
variants that receive traffic. Allocations are normalised before use: the catalog's
percentages may miss 100 by float rounding, and fractions (0.5/0.5) work as well as
percentages (50/50). A variant configured at 0% that nevertheless has subjects is a
mismatch no sampling noise can explain, so it gives a p-value of exactly 0.0 and is named
in `SrmResult.unexpected_variants` rather than being folded into an infinite statistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real

from scipy import stats

from exp_pipeline.errors import ExpPipelineError


class SrmInputError(ExpPipelineError, ValueError):
    """Counts or an allocation that cannot describe an experiment's split.

    A `ValueError` for callers of the statistics, and an `ExpPipelineError` so the CLI
    prints it as one line instead of a traceback.
    """


@dataclass(frozen=True)
class SrmResult:
    """The chi-square test of one experiment's exposed-subject split.

    `expected`, `observed_shares` and `expected_shares` are keyed by every variant of the
    allocation, in the allocation's order. `degrees_of_freedom` counts only variants with
    a positive allocation: a 0% variant contributes no expected subjects to compare with.
    """

    chi2: float
    degrees_of_freedom: int
    p_value: float
    total: int
    expected: dict[str, float]
    observed_shares: dict[str, float]
    expected_shares: dict[str, float]
    # Variants allocated 0% that have exposed subjects; non-empty means p_value is 0.0.
    unexpected_variants: tuple[str, ...] = ()


def _check_count(value: object, variant: str) -> int:
    """`value` as an int if it is a whole, non-negative number, else raise.

    Whole floats are accepted because counts often arrive as floats from dataframes;
    booleans are refused because a `True` where a count belongs is a bug upstream.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise SrmInputError(f"variant {variant!r}: observed count must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or not number.is_integer():
        raise SrmInputError(
            f"variant {variant!r}: observed count must be a whole non-negative number, "
            f"got {value!r}"
        )
    return int(number)


def _check_share(value: object, variant: str) -> float:
    """`value` as a float if it is a finite, non-negative allocation, else raise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise SrmInputError(f"variant {variant!r}: allocation must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise SrmInputError(
            f"variant {variant!r}: allocation must be a finite non-negative number, got {value!r}"
        )
    return number


def sample_ratio_mismatch(
    observed: Mapping[str, int], allocation: Mapping[str, float]
) -> SrmResult:
    """Chi-square test of observed exposed subjects per variant against the allocation.

    `allocation` maps every variant to its rollout percentage (or any weights: they are
    normalised). A variant of the allocation missing from `observed` counts as 0 subjects,
    because a GROUP BY over exposures yields no row for a variant nobody reached, and that
    is exactly the mismatch this test exists to catch. A variant in `observed` but not in
    the allocation is an error: there is nothing to compare it with.

    With no subjects at all there is nothing to test: the p-value is 1.0.
    """
    if not allocation:
        raise SrmInputError("allocation must name at least one variant")
    unknown = [key for key in observed if key not in allocation]
    if unknown:
        raise SrmInputError(
            f"observed variants {unknown} are missing from the allocation "
            f"(allocation: {list(allocation)})"
        )
    shares = {key: _check_share(value, key) for key, value in allocation.items()}
    counts = {key: _check_count(observed.get(key, 0), key) for key in allocation}
    weight = sum(shares.values())
    if weight <= 0:
        raise SrmInputError(f"allocation must give some variant a positive share, got {shares}")

    expected_shares = {key: share / weight for key, share in shares.items()}
    total = sum(counts.values())
    expected = {key: total * share for key, share in expected_shares.items()}
    observed_shares = {key: (n / total if total else 0.0) for key, n in counts.items()}
    allocated = [key for key, share in expected_shares.items() if share > 0]
    unexpected = tuple(key for key, share in expected_shares.items() if share == 0 and counts[key])
    dof = len(allocated) - 1

    if unexpected:
        chi2, p_value = math.inf, 0.0
    elif total == 0 or dof == 0:
        # No subjects, or all of them in the only variant with traffic: nothing can differ.
        chi2, p_value = 0.0, 1.0
    else:
        chi2 = math.fsum((counts[key] - expected[key]) ** 2 / expected[key] for key in allocated)
        p_value = float(stats.chi2.sf(chi2, dof))

    return SrmResult(
        chi2=chi2,
        degrees_of_freedom=dof,
        p_value=p_value,
        total=total,
        expected=expected,
        observed_shares=observed_shares,
        expected_shares=expected_shares,
        unexpected_variants=unexpected,
    )
