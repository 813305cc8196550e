"""Significance codes: order of the checks and their thresholds, at and around each edge."""

from __future__ import annotations

import pytest

from exp_pipeline.stats.significance import (
    MetricKind,
    SignificanceCode,
    has_enough_exposure,
    significance_code,
)

ENOUGH = {"control": 100, "test": 250}
CLEAR_WIN = {"control": 0.05, "test": 0.95}


def test_codes_are_the_strings_themselves() -> None:
    assert SignificanceCode.SIGNIFICANT == "significant"
    assert [str(c) for c in SignificanceCode] == [
        "not_enough_exposure",
        "low_win_probability",
        "high_loss",
        "significant",
    ]


@pytest.mark.parametrize(
    ("exposed", "enough"),
    [
        ({"control": 100, "test": 100}, True),
        ({"control": 99, "test": 5000}, False),
        ({"control": 5000, "test": 99.5}, False),
        ({"control": 5000, "test": None}, False),  # unknown exposure counts as none
    ],
)
def test_every_variant_needs_one_hundred_exposed_subjects(
    exposed: dict[str, float | None], enough: bool
) -> None:
    assert has_enough_exposure(exposed) is enough


def test_exposure_is_checked_before_anything_else() -> None:
    code = significance_code(MetricKind.FUNNEL, {"control": 99, "test": 500}, CLEAR_WIN, 0.5)
    assert code == SignificanceCode.NOT_ENOUGH_EXPOSURE


@pytest.mark.parametrize(
    ("probabilities", "expected"),
    [
        ({"control": 0.1, "test": 0.9}, SignificanceCode.SIGNIFICANT),  # 0.9 is enough
        ({"control": 0.1001, "test": 0.8999}, SignificanceCode.LOW_WIN_PROBABILITY),
        ({"control": 0.92, "test": 0.08}, SignificanceCode.SIGNIFICANT),  # control can win
        ({"control": 0.5, "a": 0.45, "b": 0.05}, SignificanceCode.LOW_WIN_PROBABILITY),
    ],
)
def test_some_variant_must_be_best_with_probability_ninety_percent(
    probabilities: dict[str, float], expected: SignificanceCode
) -> None:
    assert significance_code(MetricKind.FUNNEL, ENOUGH, probabilities, 0.001) == expected


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        (0.01, SignificanceCode.SIGNIFICANT),  # the threshold itself is acceptable
        (0.0100001, SignificanceCode.HIGH_LOSS),
        (0.2, SignificanceCode.HIGH_LOSS),
    ],
)
def test_funnels_need_an_expected_loss_of_at_most_one_point(
    loss: float, expected: SignificanceCode
) -> None:
    assert significance_code(MetricKind.FUNNEL, ENOUGH, CLEAR_WIN, loss) == expected


def test_trends_have_no_loss_threshold() -> None:
    code = significance_code(MetricKind.TREND, ENOUGH, CLEAR_WIN, 250.0)
    assert code == SignificanceCode.SIGNIFICANT
    # The kind compares as its string, so callers holding "funnel" from the catalog work too.
    plain_funnel = MetricKind("funnel")
    assert significance_code(plain_funnel, ENOUGH, CLEAR_WIN, 0.5) == SignificanceCode.HIGH_LOSS
