"""Sample-ratio mismatch: chi-square goodness of fit against the configured allocation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from exp_pipeline.errors import ExpPipelineError
from exp_pipeline.stats.srm import SrmInputError, SrmResult, sample_ratio_mismatch


def test_fifty_fifty_with_1000_and_1100_matches_the_hand_computation() -> None:
    result = sample_ratio_mismatch({"control": 1000, "test": 1100}, {"control": 50, "test": 50})
    # Expected 1050 each; chi2 = 2 * 50**2 / 1050. With one degree of freedom the chi-square
    # tail is the two-sided normal tail: p = erfc(sqrt(chi2 / 2)).
    chi2 = 2 * 50**2 / 1050
    assert result.chi2 == pytest.approx(chi2, rel=1e-12)
    assert result.degrees_of_freedom == 1
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), rel=1e-12)
    assert result.p_value == pytest.approx(0.02909, abs=1e-5)
    assert result.total == 2100
    assert result.expected == {"control": 1050.0, "test": 1050.0}
    assert result.observed_shares == pytest.approx({"control": 1000 / 2100, "test": 1100 / 2100})
    assert result.expected_shares == {"control": 0.5, "test": 0.5}
    assert result.unexpected_variants == ()


def test_three_variants_match_the_closed_form_for_two_degrees_of_freedom() -> None:
    observed = {"control": 1000, "a": 1040, "b": 960}
    result = sample_ratio_mismatch(observed, {"control": 100 / 3, "a": 100 / 3, "b": 100 / 3})
    chi2 = (0**2 + 40**2 + 40**2) / 1000
    assert result.chi2 == pytest.approx(chi2, rel=1e-12)
    assert result.degrees_of_freedom == 2
    # The chi-square survival function with two degrees of freedom is exp(-x / 2).
    assert result.p_value == pytest.approx(math.exp(-chi2 / 2), rel=1e-12)


@pytest.mark.parametrize(
    ("observed", "allocation"),
    [
        ({"control": 5210, "test": 4790}, {"control": 50.0, "test": 50.0}),
        ({"control": 7020, "test": 2980}, {"control": 70.0, "test": 30.0}),
        ({"control": 2000, "a": 2100, "b": 5900}, {"control": 20, "a": 20, "b": 60}),
        ({"control": 1, "a": 2, "b": 3, "c": 4}, {"control": 10, "a": 20, "b": 30, "c": 40}),
        ({"control": 100_000, "test": 103_000}, {"control": 0.5, "test": 0.5}),
    ],
)
def test_agrees_with_scipy_chisquare(
    observed: dict[str, int], allocation: dict[str, float]
) -> None:
    result = sample_ratio_mismatch(observed, allocation)
    counts = np.array([observed[key] for key in allocation], dtype=float)
    weights = np.array(list(allocation.values()), dtype=float)
    reference = stats.chisquare(counts, counts.sum() * weights / weights.sum())
    assert result.chi2 == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
    assert result.degrees_of_freedom == len(allocation) - 1


def test_uneven_allocation_that_is_respected_is_no_mismatch() -> None:
    result = sample_ratio_mismatch({"control": 9000, "test": 1000}, {"control": 90, "test": 10})
    assert result.chi2 == 0.0
    assert result.p_value == pytest.approx(1.0)
    assert result.expected == pytest.approx({"control": 9000, "test": 1000})


def test_an_even_split_under_an_uneven_allocation_is_a_glaring_mismatch() -> None:
    result = sample_ratio_mismatch({"control": 5000, "test": 5000}, {"control": 90, "test": 10})
    assert result.p_value < 1e-100


def test_percentages_that_miss_100_by_rounding_are_normalised() -> None:
    allocation = {"control": 33.33, "a": 33.33, "b": 33.33}
    result = sample_ratio_mismatch({"control": 300, "a": 300, "b": 300}, allocation)
    assert sum(result.expected_shares.values()) == pytest.approx(1.0, rel=1e-15)
    assert result.expected == pytest.approx({"control": 300, "a": 300, "b": 300}, rel=1e-12)
    assert result.chi2 == pytest.approx(0.0, abs=1e-20)
    assert result.p_value == pytest.approx(1.0)


def test_fractions_and_percentages_give_the_same_result() -> None:
    observed = {"control": 480, "test": 520}
    assert sample_ratio_mismatch(observed, {"control": 0.5, "test": 0.5}) == sample_ratio_mismatch(
        observed, {"control": 50, "test": 50}
    )


def test_subjects_in_a_zero_percent_variant_are_a_certain_mismatch() -> None:
    result = sample_ratio_mismatch(
        {"control": 500, "test": 500, "holdout": 3},
        {"control": 50, "test": 50, "holdout": 0},
    )
    assert result.p_value == 0.0
    assert result.chi2 == math.inf
    assert result.unexpected_variants == ("holdout",)
    assert result.expected["holdout"] == 0.0
    assert result.degrees_of_freedom == 1


def test_an_empty_zero_percent_variant_takes_no_part_in_the_test() -> None:
    with_empty = sample_ratio_mismatch(
        {"control": 1000, "test": 1100, "holdout": 0},
        {"control": 50, "test": 50, "holdout": 0},
    )
    without = sample_ratio_mismatch({"control": 1000, "test": 1100}, {"control": 50, "test": 50})
    assert (with_empty.chi2, with_empty.p_value, with_empty.degrees_of_freedom) == (
        without.chi2,
        without.p_value,
        without.degrees_of_freedom,
    )
    assert with_empty.unexpected_variants == ()


def test_no_subjects_means_nothing_to_test() -> None:
    result = sample_ratio_mismatch({"control": 0, "test": 0}, {"control": 50, "test": 50})
    assert result == SrmResult(
        chi2=0.0,
        degrees_of_freedom=1,
        p_value=1.0,
        total=0,
        expected={"control": 0.0, "test": 0.0},
        observed_shares={"control": 0.0, "test": 0.0},
        expected_shares={"control": 0.5, "test": 0.5},
    )
    assert sample_ratio_mismatch({}, {"control": 50, "test": 50}).p_value == 1.0


def test_a_variant_nobody_reached_counts_as_zero_subjects() -> None:
    result = sample_ratio_mismatch({"control": 200}, {"control": 50, "test": 50})
    explicit = sample_ratio_mismatch({"control": 200, "test": 0}, {"control": 50, "test": 50})
    assert result == explicit
    assert result.chi2 == pytest.approx(200.0)
    assert result.p_value < 1e-40


def test_a_single_variant_with_traffic_has_nothing_to_compare() -> None:
    result = sample_ratio_mismatch({"control": 700, "test": 0}, {"control": 100, "test": 0})
    assert (result.chi2, result.degrees_of_freedom, result.p_value) == (0.0, 0, 1.0)


def test_numpy_and_whole_float_counts_are_accepted() -> None:
    result = sample_ratio_mismatch(
        {"control": np.int64(1000), "test": 1100.0}, {"control": np.float64(50), "test": 50}
    )
    assert result.total == 2100
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(2 * 50**2 / 1050 / 2)))


@pytest.mark.parametrize(
    ("observed", "allocation", "message"),
    [
        ({"control": -1, "test": 5}, {"control": 50, "test": 50}, "whole non-negative"),
        ({"control": 1.5, "test": 5}, {"control": 50, "test": 50}, "whole non-negative"),
        ({"control": math.nan, "test": 5}, {"control": 50, "test": 50}, "whole non-negative"),
        ({"control": True, "test": 5}, {"control": 50, "test": 50}, "must be a number"),
        ({"control": "10", "test": 5}, {"control": 50, "test": 50}, "must be a number"),
        ({"control": 1, "rogue": 5}, {"control": 50, "test": 50}, "missing from the allocation"),
        ({"control": 1}, {}, "at least one variant"),
        ({"control": 1, "test": 1}, {"control": 0, "test": 0}, "positive share"),
        ({"control": 1, "test": 1}, {"control": -10, "test": 110}, "non-negative"),
        ({"control": 1, "test": 1}, {"control": math.inf, "test": 50}, "finite"),
        ({"control": 1, "test": 1}, {"control": None, "test": 50}, "must be a number"),
    ],
)
def test_bad_input_is_a_one_line_value_error(
    observed: dict[str, object], allocation: dict[str, object], message: str
) -> None:
    with pytest.raises(SrmInputError, match=message):
        sample_ratio_mismatch(observed, allocation)  # type: ignore[arg-type]


def test_input_errors_are_value_errors_the_cli_prints() -> None:
    assert issubclass(SrmInputError, ValueError)
    assert issubclass(SrmInputError, ExpPipelineError)
