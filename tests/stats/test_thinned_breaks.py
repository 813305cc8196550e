"""Thinning merged break points: never coarser than any posterior's own rule, far fewer nodes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from exp_pipeline.stats.posteriors import BetaPosterior, GammaPosterior, Posterior
from exp_pipeline.stats.quadrature import quantile_breaks, thinned_breaks

NEAR_BETAS = [BetaPosterior(1001 + 7 * i, 9001 - 7 * i) for i in range(10)]
MIXED = [GammaPosterior(1, 1e-6), GammaPosterior(1e6, 1), GammaPosterior(1e6 + 1500, 1)]


def _own_breaks(posteriors: list[Posterior]) -> tuple[list[np.ndarray], float, float]:
    breaks = [quantile_breaks(p) for p in posteriors]
    return breaks, min(b[0] for b in breaks), max(b[-1] for b in breaks)


@pytest.mark.parametrize("posteriors", [NEAR_BETAS, MIXED], ids=["near_betas", "mixed"])
def test_no_interval_is_longer_than_an_own_interval_it_overlaps(
    posteriors: list[Posterior],
) -> None:
    breaks, lower, upper = _own_breaks(posteriors)
    kept = thinned_breaks(breaks, lower, upper)
    assert kept[0] == lower and kept[-1] == upper and np.all(np.diff(kept) > 0)
    for left, right in itertools.pairwise(kept):
        for own in breaks:
            overlapping = (own[1:] > left) & (own[:-1] < right)
            lengths = np.diff(own)[overlapping]
            if lengths.size:
                assert right - left <= lengths.min()


def test_a_single_posterior_keeps_every_break() -> None:
    breaks, lower, upper = _own_breaks([BetaPosterior(1.05, 3)])
    assert np.array_equal(thinned_breaks(breaks, lower, upper), breaks[0])


def test_near_posteriors_need_few_more_intervals_than_one() -> None:
    breaks, lower, upper = _own_breaks(NEAR_BETAS)
    merged = np.unique(np.concatenate(breaks))
    kept = thinned_breaks(breaks, lower, upper)
    assert len(merged) - 1 == 289
    assert len(kept) - 1 <= 50  # 28 intervals resolve one posterior alone
