"""Partial pooling of segment lifts: shrinkage where data are thin, none when tau is large."""

from __future__ import annotations

import json
import math

import numpy as np
import pymc as pm
import pytest

from exp_pipeline.stats.inputs import FunnelCounts, StatsInputError
from exp_pipeline.stats.intervals import lift_interval
from exp_pipeline.stats.posteriors import BetaPosterior
from exp_pipeline.stats.sampling import MAX_R_HAT, SamplingSettings
from exp_pipeline.stats.segment_pooling import (
    PoolingPriors,
    SegmentLift,
    SegmentPoolingResult,
    pool_segment_lift,
    pooling_model,
)

# Three large segments with a lift of about +10% and one tiny segment whose observed lift
# (+80%) is mostly noise: the textbook case for pooling.
COUNTS = {
    "big_1": {"control": [20000, 1000], "test": [20000, 1095]},
    "big_2": {"control": [20000, 1025], "test": [20000, 1138]},
    "big_3": {"control": [20000, 988], "test": [20000, 1080]},
    "tiny": {"control": [300, 15], "test": [300, 27]},
}
# Two chains keep the module under a minute of CPU. The r_hat gate still applies: these
# settings pass it on this data (500 draws did not: r_hat 1.0104 for the pooled lift).
SETTINGS = SamplingSettings(draws=600, tune=400, chains=2)
NO_POOLING_TAU = 5.0


@pytest.fixture(scope="module")
def pooled() -> SegmentPoolingResult:
    return pool_segment_lift(COUNTS, settings=SETTINGS)


@pytest.fixture(scope="module")
def unpooled() -> SegmentPoolingResult:
    return pool_segment_lift(
        COUNTS, priors=PoolingPriors(fixed_tau=NO_POOLING_TAU), settings=SETTINGS
    )


def _segment(result: SegmentPoolingResult, name: str) -> SegmentLift:
    return next(s for s in result.segments if s.segment == name)


def _width(interval: tuple[float, float]) -> float:
    return interval[1] - interval[0]


def test_raw_lifts_are_the_observed_ratios_with_exact_unpooled_intervals(
    pooled: SegmentPoolingResult,
) -> None:
    tiny = _segment(pooled, "tiny")
    assert tiny.raw_lift == pytest.approx((27 / 300) / (15 / 300) - 1)
    assert tiny.raw_interval == lift_interval(BetaPosterior(28, 274), BetaPosterior(16, 286))
    assert tiny.control_counts == FunnelCounts(300, 15)
    assert [(s.segment, s.variant) for s in pooled.segments] == [
        ("big_1", "test"),
        ("big_2", "test"),
        ("big_3", "test"),
        ("tiny", "test"),
    ]


def test_the_thin_segment_moves_toward_the_pooled_lift(pooled: SegmentPoolingResult) -> None:
    assert pooled.diagnostics.max_r_hat <= MAX_R_HAT and pooled.diagnostics.divergences == 0
    (typical,) = pooled.pooled
    centre = typical.lift.median
    assert 0.05 < centre < 0.16  # the large segments' lift, about +10%
    tiny = _segment(pooled, "tiny")
    # Most of the way from its raw +80% to the typical segment's lift...
    assert abs(tiny.shrunken_lift.median - centre) < 0.25 * abs(tiny.raw_lift - centre)
    # ...and far more certain than its own data alone allow.
    assert _width(tiny.shrunken_lift.interval) < 0.3 * _width(tiny.raw_interval)
    # The large segments keep their own lifts (within 2 points) and most of their
    # uncertainty: they borrow little because they have much.
    for name in ("big_1", "big_2", "big_3"):
        big = _segment(pooled, name)
        assert big.shrunken_lift.median == pytest.approx(big.raw_lift, abs=0.02)
        assert _width(big.shrunken_lift.interval) > 0.7 * _width(big.raw_interval)
    assert typical.heterogeneity is not None and typical.heterogeneity.mean < 0.25


def test_a_large_fixed_tau_pools_nothing(
    pooled: SegmentPoolingResult, unpooled: SegmentPoolingResult
) -> None:
    """With tau = 5 every segment stands alone: its lift matches the exact unpooled
    posterior of the funnel convention. The priors still differ (uniform on each rate
    there, normal on the log-odds here), which moves log(1 + lift) by under 0.01 with
    1000 conversions and by under 0.1 with the tiny segment's 15 and 27 (measured: 0.004
    and 0.07, Monte Carlo error included)."""
    assert unpooled.pooled[0].heterogeneity is None
    assert unpooled.diagnostics.max_r_hat <= MAX_R_HAT
    for segment in unpooled.segments:
        tolerance = 0.15 if segment.segment == "tiny" else 0.02
        shrunken = np.log1p(segment.shrunken_lift.interval)
        assert shrunken == pytest.approx(np.log1p(segment.raw_interval), abs=tolerance)
    tiny = _segment(unpooled, "tiny")
    # Unpooled, the tiny segment keeps a lift of about its raw +80%, nowhere near the
    # pooled run's.
    assert math.log1p(tiny.shrunken_lift.median) == pytest.approx(math.log1p(0.8), abs=0.1)
    assert tiny.shrunken_lift.median > 4 * _segment(pooled, "tiny").shrunken_lift.median


def test_the_result_is_a_json_document(pooled: SegmentPoolingResult) -> None:
    document = pooled.to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["segments"][3]["shrunken_lift"]["name"] == "lift[tiny, test]"
    assert document["pooled"][0]["heterogeneity"]["name"] == "tau[test]"
    assert set(document["diagnostics"]["parameters"]) >= {"mu[test]", "pooled_lift[test]"}
    assert document["priors"]["fixed_tau"] is None


def test_every_treatment_gets_its_own_effects_summing_to_zero_over_segments() -> None:
    """Prior draws: the deviations z sum to zero over the segments (not the treatments),
    and the lifts come out per (segment, treatment)."""
    counts = {
        segment: {variant: FunnelCounts(1000, 50 + i) for i, variant in enumerate("abc")}
        for segment in ("x", "y", "z")
    }
    model = pooling_model(counts, "a", ["b", "c"], PoolingPriors())
    assert model.named_vars_to_dims["lift"] == ("segment", "treatment")
    z, lift = pm.draw([model["z"], model["lift"]], random_seed=1)
    assert z.shape == (2, 3) and lift.shape == (3, 2)
    assert np.abs(z.sum(axis=1)).max() < 1e-12
    assert np.abs(z).min() > 0


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"only": {"control": [10, 1], "test": [10, 2]}}, "at least two segments"),
        (
            {"a": {"control": [10, 1], "test": [10, 2]}, "b": {"control": [10, 1]}},
            "segment 'b': at least two variants",
        ),
        (
            {
                "a": {"control": [10, 1], "test": [10, 2]},
                "b": {"control": [10, 1], "other": [10, 2]},
            },
            "segment 'b' has variants",
        ),
        (
            {
                "a": {"control": [10, 1], "test": [10, 11]},
                "b": {"control": [10, 1], "test": [10, 2]},
            },
            "segment 'a'.*more than",
        ),
        (
            {
                "a": {"control": [10, 1.5], "test": [10, 2]},
                "b": {"control": [10, 1], "test": [10, 2]},
            },
            "whole number",
        ),
        (
            {"": {"control": [10, 1], "test": [10, 2]}, "b": {"control": [10, 1], "test": [10, 2]}},
            "non-empty strings",
        ),
    ],
)
def test_impossible_counts_are_refused(counts: dict, message: str) -> None:
    with pytest.raises(StatsInputError, match=message):
        pool_segment_lift(counts)


@pytest.mark.parametrize("field", ["effect_scale", "heterogeneity_scale", "fixed_tau"])
def test_priors_must_be_positive(field: str) -> None:
    with pytest.raises(StatsInputError, match=field):
        PoolingPriors(**{field: 0.0})
