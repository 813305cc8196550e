"""Whole-metric results: PostHog's reference numbers, the result object, speed, determinism."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.posteriors import BetaPosterior, GammaPosterior
from exp_pipeline.stats.results import BayesianResult, analyse_funnel, analyse_trend
from exp_pipeline.stats.significance import MetricKind, SignificanceCode

FOUR_FUNNELS = {
    "control": [1000, 600, 100],
    "test": [1000, 610, 120],
    "b": [1000, 580, 90],
    "c": [1000, 640, 130],
}
FOUR_TRENDS = (
    {"control": 1000, "test": 1100, "b": 900, "c": 1200},
    {"control": 500, "test": 510, "b": 490, "c": 500},
)


def test_reference_funnel_matches_posthog() -> None:
    result = analyse_funnel({"control": [2, 2], "test": [3, 1]})
    assert result.probabilities["test"] == pytest.approx(0.114, abs=1e-3)
    assert result.probabilities["control"] == pytest.approx(0.886, abs=1e-3)
    assert result.code == SignificanceCode.NOT_ENOUGH_EXPOSURE
    assert result.expected_loss == 1.0
    assert result.significant is False


def test_reference_trend_matches_posthog() -> None:
    result = analyse_trend({"control": 4, "test": 5}, {"control": 2, "test": 1})
    assert result.posteriors == {"control": GammaPosterior(5, 1), "test": GammaPosterior(6, 0.5)}
    assert result.probabilities["test"] == pytest.approx(0.923, abs=1e-3)
    assert result.significant is False
    assert result.code == SignificanceCode.NOT_ENOUGH_EXPOSURE


def test_result_holds_every_piece_keyed_by_variant_with_control_first() -> None:
    result = analyse_funnel({"test": [990, 160], "control": [1000, 130]}, level=0.9)
    assert result.kind == MetricKind.FUNNEL and result.control == "control"
    assert list(result.probabilities) == ["control", "test"]
    assert result.posteriors == {
        "control": BetaPosterior(131, 871),
        "test": BetaPosterior(161, 831),
    }
    assert list(result.credible_intervals) == ["control", "test"]
    low, high = result.credible_intervals["test"]
    assert low < 160 / 990 < high
    assert list(result.lift_intervals) == ["test"]
    assert result.best_variant == "test"
    assert 0 < result.expected_loss < 0.01
    assert all(type(p) is float for p in result.probabilities.values())


def test_result_is_frozen_and_significant_follows_the_code() -> None:
    result = analyse_funnel({"control": [5000, 500], "test": [5000, 650]})
    assert result.code == SignificanceCode.SIGNIFICANT and result.significant is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.code = SignificanceCode.HIGH_LOSS
    with pytest.raises(TypeError):  # derived, so it cannot be passed in
        BayesianResult(
            significant=False,
            **{f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.init},
        )
    assert dataclasses.replace(result, code=SignificanceCode.HIGH_LOSS).significant is False


@pytest.mark.parametrize(
    ("steps", "code"),
    [
        ({"control": [5000, 500], "test": [5000, 650]}, SignificanceCode.SIGNIFICANT),
        ({"control": [5000, 500], "test": [5000, 510]}, SignificanceCode.LOW_WIN_PROBABILITY),
        ({"control": [99, 20], "test": [5000, 4000]}, SignificanceCode.NOT_ENOUGH_EXPOSURE),
    ],
)
def test_funnel_codes(steps: dict[str, list[int]], code: SignificanceCode) -> None:
    result = analyse_funnel(steps)
    assert result.code == code
    if code != SignificanceCode.NOT_ENOUGH_EXPOSURE:
        assert result.expected_loss < 1.0


def test_trend_codes_and_missing_exposures() -> None:
    result = analyse_trend(*FOUR_TRENDS)
    assert result.code == SignificanceCode.SIGNIFICANT and result.best_variant == "c"
    # The loss is in events per control-sized audience and has no threshold for trends.
    assert 0 < result.expected_loss < 1
    unknown = analyse_trend({"control": 4000, "test": 5000})
    assert {p.rate for p in unknown.posteriors.values()} == {1.0}
    assert unknown.code == SignificanceCode.NOT_ENOUGH_EXPOSURE and unknown.expected_loss == 1.0


def test_a_custom_control_key_is_honoured() -> None:
    result = analyse_trend({"a": 10, "base": 12}, {"a": 100, "base": 100}, control="base")
    assert result.control == "base" and list(result.lift_intervals) == ["a"]
    assert list(result.probabilities) == ["base", "a"]


def test_input_problems_surface_as_value_errors() -> None:
    with pytest.raises(ValueError, match="control variant 'control' is missing"):
        analyse_funnel({"a": [10, 1], "b": [10, 2]})
    with pytest.raises(StatsInputError, match="step 2 has 11 subjects"):
        analyse_funnel({"control": [10, 1], "b": [10, 11]})


def test_results_are_bit_identical_between_calls_and_interpreters() -> None:
    first = analyse_funnel(FOUR_FUNNELS)
    assert analyse_funnel(FOUR_FUNNELS) == first
    code = (
        "from exp_pipeline.stats.results import analyse_funnel\n"
        f"print(repr(analyse_funnel({FOUR_FUNNELS!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == repr(first)
