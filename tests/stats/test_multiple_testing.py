"""Holm and e-BH adjustments: hand-computed examples, the rules written out, properties.

scipy's `false_discovery_control` is Benjamini–Hochberg, not Holm, so the independent
check is (1) adjusted values computed by hand and (2) Holm's original step-down rejection
rule implemented here from its definition, which must agree with "adjusted p ≤ alpha".
e-BH likewise: Wang and Ramdas's rejection rule (the k* largest e-values, k* the largest
k with e₍ₖ₎ ≥ m / (alpha k)) written out here must agree with "adjusted ≤ alpha".
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.multiple_testing import e_bh_adjust, holm_adjust


def _holm_step_down_rejections(p_values: list[float], alpha: float) -> list[bool]:
    """Holm (1979): reject p₍ₖ₎ while p₍ₖ₎ ≤ alpha / (m − k + 1), stop at the first miss."""
    m = len(p_values)
    rejected = [False] * m
    for k, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        if p_values[index] > alpha / (m - k):
            break
        rejected[index] = True
    return rejected


def test_hand_computed_example() -> None:
    # Sorted: 0.005 × 4 = 0.02, 0.01 × 3 = 0.03, 0.03 × 2 = 0.06, 0.04 × 1 = 0.04 → running
    # maximum 0.02, 0.03, 0.06, 0.06; back in input order:
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_adjusted_values_are_capped_at_one() -> None:
    # 0.2 × 3 = 0.6, 0.5 × 2 = 1.0, 0.6 × 1 = 0.6 → 0.6, 1.0, 1.0.
    assert holm_adjust([0.5, 0.6, 0.2]) == pytest.approx([1.0, 1.0, 0.6])
    assert holm_adjust([0.9, 0.8]) == [1.0, 1.0]


def test_trivial_families() -> None:
    assert holm_adjust([]) == []
    assert holm_adjust([0.037]) == [0.037]
    assert holm_adjust((0.01, 0.01)) == [0.02, 0.02]
    assert holm_adjust(np.array([0.0, 1.0])) == [0.0, 1.0]


def test_properties_on_seeded_random_families() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        m = int(rng.integers(1, 12))
        raw = (rng.uniform(0, 0.2, m) ** rng.uniform(0.5, 2)).tolist()
        adjusted = holm_adjust(raw)
        assert all(p <= a <= 1 for p, a in zip(raw, adjusted, strict=True))
        # Monotone: a smaller raw p-value never gets a larger adjusted one.
        for i in range(m):
            for j in range(m):
                if raw[i] <= raw[j]:
                    assert adjusted[i] <= adjusted[j]
        # The smallest is Bonferroni-adjusted; none exceeds Bonferroni.
        assert min(adjusted) == pytest.approx(min(1.0, m * min(raw)))
        assert all(a <= min(1.0, m * p) + 1e-15 for p, a in zip(raw, adjusted, strict=True))
        # Order in, order out.
        permutation = rng.permutation(m)
        shuffled = holm_adjust([raw[i] for i in permutation])
        assert shuffled == pytest.approx([adjusted[i] for i in permutation])
        for alpha in (0.01, 0.05, 0.1):
            assert [a <= alpha for a in adjusted] == _holm_step_down_rejections(raw, alpha)


def test_family_wise_error_rate_stays_under_alpha_for_null_families() -> None:
    # 4000 families of 5 true nulls: unadjusted, some p < 0.05 in 1 − 0.95⁵ = 22.6% of
    # families; after Holm at most 5% (Monte Carlo error 0.35 points; bound 5% + 1.2).
    rng = np.random.default_rng(7)
    families = rng.uniform(size=(4000, 5))
    unadjusted = np.mean((families < 0.05).any(axis=1))
    adjusted = np.mean([min(holm_adjust(row)) < 0.05 for row in families])
    assert unadjusted == pytest.approx(1 - 0.95**5, abs=0.02)
    assert adjusted <= 0.05 + 0.012


@pytest.mark.parametrize("bad", [math.nan, -0.01, 1.01, True, "0.5", None])
def test_values_that_are_not_p_values_are_refused(bad: object) -> None:
    with pytest.raises(StatsInputError, match="p-value 1 must"):
        holm_adjust([0.01, bad])  # type: ignore[list-item]


def _e_bh_rejections(e_values: list[float], alpha: float) -> list[bool]:
    """Wang and Ramdas (2022): reject the k* largest e-values."""
    m = len(e_values)
    ranked = sorted(range(m), key=lambda i: -e_values[i])
    k_star = max(
        (k for k in range(1, m + 1) if e_values[ranked[k - 1]] >= m / (alpha * k)), default=0
    )
    rejected = [False] * m
    for index in ranked[:k_star]:
        rejected[index] = True
    return rejected


def test_e_bh_hand_computed_example() -> None:
    # m = 4: sorted e-values 80, 50, 10, 0.5 give m / (k e) = 0.05, 0.04, 0.1333, 2; the
    # running minimum from the bottom up is 0.04, 0.04, 0.1333, 1 (capped).
    adjusted = e_bh_adjust([10.0, 80.0, 0.5, 50.0])
    assert adjusted == pytest.approx([4 / 30, 0.04, 1.0, 0.04])
    assert e_bh_adjust([]) == []
    assert e_bh_adjust([math.inf, 0.0]) == [0.0, 1.0]


def test_e_bh_agrees_with_its_rejection_rule_on_seeded_families() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        m = int(rng.integers(1, 12))
        e_values = np.exp(rng.normal(1.0, 2.5, m)).tolist()
        adjusted = e_bh_adjust(e_values)
        for alpha in (0.01, 0.05, 0.1, 0.2):
            assert [a <= alpha for a in adjusted] == _e_bh_rejections(e_values, alpha)


@pytest.mark.parametrize("bad", [math.nan, -1.0, True, "2"])
def test_values_that_are_not_e_values_are_refused(bad: object) -> None:
    with pytest.raises(StatsInputError, match="e-value 1 must"):
        e_bh_adjust([3.0, bad])  # type: ignore[list-item]
