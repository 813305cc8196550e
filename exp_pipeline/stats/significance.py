"""Significance codes: whether a metric's result is ready to act on, and if not, why.

The rules are PostHog's, as the architecture's "Statistical conventions" state them, and
are checked in this order so the reason given is the most basic one that applies:

1. `not_enough_exposure`: some variant has fewer than 100 exposed subjects (funnel: at
   the first step; trend: with a `$feature_flag_called` event; continuous and ratio:
   exposed). With few subjects the allocation itself is noisy and any probability is
   premature.
2. `low_win_probability`: no variant is best with probability 0.9 or more.
3. `high_loss` (funnels only): the expected loss of the most probable winner exceeds
   0.01, i.e. choosing it could still cost more than one point of conversion rate.
   Trends, continuous and ratio metrics have no loss threshold because their loss is in
   the metric's own units, which no single constant fits. In practice a funnel hardly
   ever gets here: with at least 100 subjects per variant no posterior is wider than a
   standard deviation of 0.05, and a 0.9 win probability then leaves about 0.003 of
   expected loss at most (the largest found over two- and three-variant funnels of 100
   to 300 subjects). The check stays because the architecture and PostHog define it.
4. `significant` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class MetricKind(StrEnum):
    """The metric families with Bayesian posteriors here; significance rules differ."""

    FUNNEL = "funnel"
    TREND = "trend"
    CONTINUOUS = "continuous"
    RATIO = "ratio"


class SignificanceCode(StrEnum):
    """Outcome codes; members are the strings themselves (`code == "significant"`)."""

    NOT_ENOUGH_EXPOSURE = "not_enough_exposure"
    LOW_WIN_PROBABILITY = "low_win_probability"
    HIGH_LOSS = "high_loss"
    SIGNIFICANT = "significant"


MIN_EXPOSED_SUBJECTS = 100
MIN_WIN_PROBABILITY = 0.9
MAX_EXPECTED_LOSS = 0.01
# What PostHog reports as the expected loss while exposure is too low: the worst value,
# so nothing downstream mistakes an uncomputed loss for a small one.
NOT_ENOUGH_EXPOSURE_LOSS = 1.0


def has_enough_exposure(exposed_subjects: Mapping[str, float | None]) -> bool:
    """True when every variant has at least 100 exposed subjects (None counts as 0)."""
    return all((n or 0) >= MIN_EXPOSED_SUBJECTS for n in exposed_subjects.values())


def significance_code(
    kind: MetricKind,
    exposed_subjects: Mapping[str, float | None],
    probabilities: Mapping[str, float],
    best_expected_loss: float,
) -> SignificanceCode:
    """The code for one metric, from exposure, win probabilities and the winner's loss."""
    if not has_enough_exposure(exposed_subjects):
        return SignificanceCode.NOT_ENOUGH_EXPOSURE
    if max(probabilities.values()) < MIN_WIN_PROBABILITY:
        return SignificanceCode.LOW_WIN_PROBABILITY
    if kind == MetricKind.FUNNEL and best_expected_loss > MAX_EXPECTED_LOSS:
        return SignificanceCode.HIGH_LOSS
    return SignificanceCode.SIGNIFICANT
