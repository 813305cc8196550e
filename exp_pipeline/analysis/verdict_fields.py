"""How a Bayesian result is written into a results document: numbers, posteriors, verdicts.

Shared by every block that states a verdict (a metric's own, its CUPED-adjusted one), so
a posterior, an interval or a significance code reads the same wherever it appears.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from exp_pipeline.analysis.comparisons import json_number
from exp_pipeline.analysis.health import SRM_P_VALUE
from exp_pipeline.stats import BayesianResult, BetaPosterior, GammaPosterior
from exp_pipeline.stats.significance import NOT_ENOUGH_EXPOSURE_LOSS, SignificanceCode
from exp_pipeline.stats.srm import sample_ratio_mismatch


def round_number(value: float) -> float:
    """Results are exact to ~1e-9; 12 significant digits keep the JSON stable and readable."""
    return float(f"{value:.12g}")


def interval(bounds: tuple[float, float]) -> list[float]:
    return [round_number(bounds[0]), round_number(bounds[1])]


def verdict(result: BayesianResult) -> dict[str, Any]:
    return {
        "probability": {k: round_number(p) for k, p in result.probabilities.items()},
        "best_variant": result.best_variant,
        "expected_loss": round_number(result.expected_loss),
        "significance_code": str(result.code),
        "significant": result.significant,
    }


def posterior(result: BayesianResult, key: str) -> dict[str, Any]:
    """A variant's posterior by name and parameters, e.g. {"distribution": "beta", ...}."""
    found = result.posteriors[key]
    if isinstance(found, BetaPosterior):
        name = "beta"
    elif isinstance(found, GammaPosterior):
        name = "gamma"
    else:
        name = "normal"
    return {
        "distribution": name,
        **{k: round_number(v) for k, v in asdict(found).items()},
        "mean": round_number(found.mean),
    }


def intervals(result: BayesianResult | None, key: str) -> dict[str, Any]:
    """A variant's posterior and credible interval; unless control, its lift interval (None
    where the ratio to control is unbounded) and probability of beating control."""
    if result is None:
        return {}
    fields: dict[str, Any] = {
        "posterior": posterior(result, key),
        "credible_interval": interval(result.credible_intervals[key]),
    }
    if key in result.lift_intervals:
        fields["lift_interval"] = [json_number(b) for b in result.lift_intervals[key]]
        fields["probability_beats_control"] = round_number(result.beats_control[key])
    return fields


def no_verdict(reason: str) -> dict[str, Any]:
    """The verdict fields of a metric the data cannot describe yet, and why."""
    return {
        "probability": {},
        "best_variant": None,
        "expected_loss": NOT_ENOUGH_EXPOSURE_LOSS,
        "significance_code": str(SignificanceCode.NOT_ENOUGH_EXPOSURE),
        "significant": False,
        "reason": reason,
    }


def sample_ratio_block(exposures: dict[str, int], allocation: dict[str, float]) -> dict[str, Any]:
    """The chi-square test of an exposed split against the allocation (an experiment's, a
    segment's, or a group-randomised metric's units)."""
    srm = sample_ratio_mismatch(exposures, allocation)
    return {
        "chi2": json_number(srm.chi2),
        "df": srm.degrees_of_freedom,
        "p_value": round_number(srm.p_value),
        "expected": {k: round_number(v) for k, v in srm.expected.items()},
        "mismatch": srm.p_value < SRM_P_VALUE,
    }
