"""Validation of the small per-variant aggregates the statistics read.

The metric tables hand the statistics plain numbers keyed by variant key. A wrong number
(a negative count, a funnel whose later step has more subjects than an earlier one, a
missing control) would still give a posterior and a confident-looking probability, so it
is rejected here with one line naming the variant and the field, before any maths runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

from exp_pipeline.errors import ExpPipelineError


class StatsInputError(ExpPipelineError, ValueError):
    """Per-variant aggregates that cannot describe an experiment.

    A `ValueError` for callers of the statistics, and an `ExpPipelineError` so the CLI
    prints it as one line instead of a traceback.
    """


@dataclass(frozen=True)
class FunnelCounts:
    """One variant's funnel: subjects at the first step and subjects reaching the last."""

    first_step: float
    last_step: float

    @property
    def successes(self) -> float:
        """Subjects that completed the funnel (PostHog's success count)."""
        return self.last_step

    @property
    def failures(self) -> float:
        """Subjects that entered the funnel but did not complete it."""
        return self.first_step - self.last_step


@dataclass(frozen=True)
class TrendCounts:
    """One variant's trend: event count and exposed subjects (None when not measured)."""

    count: float
    exposure: float | None


def check_count(value: object, what: str) -> float:
    """Return `value` as a float if it is a finite, non-negative number, else raise.

    Booleans are refused although Python treats them as integers: a `True` where a count
    belongs is a bug upstream, not one subject.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise StatsInputError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise StatsInputError(f"{what} must be a finite non-negative number, got {value!r}")
    return number


def ordered_variants(keys: Sequence[str], control: str) -> list[str]:
    """Variant keys with control first, the others in their given order.

    Comparisons need at least two variants and a control to measure lift against.
    """
    for key in keys:
        if not isinstance(key, str) or not key:
            raise StatsInputError(f"variant keys must be non-empty strings, got {key!r}")
    if control not in keys:
        raise StatsInputError(f"control variant {control!r} is missing (variants: {list(keys)})")
    if len(keys) < 2:
        raise StatsInputError(f"at least two variants are needed, got {list(keys)}")
    return [control, *(key for key in keys if key != control)]


def _step_list(given: object) -> list[object]:
    """The steps as a list, or [] when `given` is not a collection of counts at all."""
    if isinstance(given, str | bytes | Mapping) or not isinstance(given, Iterable):
        return []
    return list(given)


def funnel_counts(
    steps_by_variant: Mapping[str, Sequence[Real]], control: str
) -> dict[str, FunnelCounts]:
    """Per-variant first- and last-step subjects from ordered step counts, control first.

    Each variant's steps may be any sequence of counts (a list, a tuple, a numpy array).

    Step counts must not increase: a subject reaching step k has reached every earlier
    step, so an increase means the aggregates are wrong, not that the funnel converted
    more than everyone.
    """
    order = ordered_variants(list(steps_by_variant), control)
    result = {}
    for key in order:
        given = steps_by_variant[key]
        steps = _step_list(given)
        if not steps:
            raise StatsInputError(
                f"variant {key!r}: funnel steps must be a non-empty sequence of counts, "
                f"got {given!r}"
            )
        counts = [check_count(n, f"variant {key!r} step {i + 1}") for i, n in enumerate(steps)]
        for i in range(1, len(counts)):
            if counts[i] > counts[i - 1]:
                raise StatsInputError(
                    f"variant {key!r}: step {i + 1} has {steps[i]!r} subjects, more than "
                    f"step {i} ({steps[i - 1]!r})"
                )
        result[key] = FunnelCounts(first_step=counts[0], last_step=counts[-1])
    return result


def trend_counts(
    counts: Mapping[str, Real], exposures: Mapping[str, Real] | None, control: str
) -> dict[str, TrendCounts]:
    """Per-variant event counts and exposed subjects, control first.

    A variant absent from `exposures` (or `exposures` None) has an unknown exposure, kept
    as None so the posterior and the exposure check can each apply their own rule.
    """
    order = ordered_variants(list(counts), control)
    exposures = exposures or {}
    unknown = [key for key in exposures if key not in counts]
    if unknown:
        raise StatsInputError(f"exposures given for variants without counts: {unknown}")
    return {
        key: TrendCounts(
            count=check_count(counts[key], f"variant {key!r} count"),
            exposure=(
                check_count(exposures[key], f"variant {key!r} exposure")
                if key in exposures
                else None
            ),
        )
        for key in order
    }
