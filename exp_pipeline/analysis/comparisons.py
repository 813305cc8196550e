"""The frequentist block of a results document: every treatment against control, corrected.

For each metric and treatment variant the document carries the fixed-horizon test of the
metric's kind (absolute and relative lift with confidence intervals, p-value) and the
always-valid sequential test of the same comparison (p-value, e-value, confidence
sequence), then two corrections over the experiment's comparisons:

* Holm across the secondary metrics (every metric after the first, each treatment
  variant a comparison): the family-wise error rate of a fixed-horizon reading. The
  primary metric is the experiment's one pre-registered question and is not adjusted.
* e-BH across every comparison, primary included (variants × metrics), on the
  always-valid e-values: the false discovery rate holds across comparisons and across
  the daily looks at once.

Comparisons that cannot be tested (no subjects, no variation at all) say why, and take
no part in either family: dropping them is what the corrections' refusal of NaN asks
the caller to decide, and an untestable comparison can make no discovery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from exp_pipeline.stats.always_valid import AlwaysValidResult, always_valid_test
from exp_pipeline.stats.frequentist import FrequentistResult
from exp_pipeline.stats.multiple_testing import e_bh_adjust, holm_adjust

# Per metric key (primary first) and treatment variant: a result, or why there is none.
Comparisons = Mapping[str, Mapping[str, FrequentistResult | str]]


def json_number(value: float | None) -> float | None:
    """`value` to 12 significant digits for JSON, None where it is undefined (NaN, ±inf)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.12g}")


def _pair(low: float, high: float) -> list[float | None]:
    return [json_number(low), json_number(high)]


def fixed_horizon_block(result: FrequentistResult) -> dict[str, Any]:
    """The fixed-horizon test of one comparison: lifts with their intervals, p-value."""
    return {
        "method": result.method,
        "control_value": json_number(result.control_value),
        "treatment_value": json_number(result.treatment_value),
        "effect": json_number(result.effect),
        "ci": _pair(result.ci_low, result.ci_high),
        "relative_effect": json_number(result.relative_effect),
        "relative_ci": _pair(result.relative_ci_low, result.relative_ci_high),
        "relative_method": result.relative_method,
        "statistic": json_number(result.statistic),
        "df": json_number(result.df),
        "p_value": json_number(result.p_value),
        "level": result.level,
    }


def _block(result: FrequentistResult, sequential: AlwaysValidResult) -> dict[str, Any]:
    return {
        **fixed_horizon_block(result),
        "holm_p_value": None,
        "sequential": {
            "tau": json_number(sequential.tau),
            "e_value": json_number(sequential.e_value),
            "p_value": json_number(sequential.p_value),
            "confidence_sequence": _pair(*sequential.confidence_sequence),
            "e_bh_adjusted": None,
            "alpha": sequential.alpha,
        },
    }


def frequentist_blocks(comparisons: Comparisons) -> dict[str, dict[str, dict[str, Any]]]:
    """Per metric and treatment variant, the document's frequentist block."""
    blocks: dict[str, dict[str, dict[str, Any]]] = {}
    holm: list[tuple[str, str, float]] = []
    e_values: list[tuple[str, str, float]] = []
    for index, (metric, by_variant) in enumerate(comparisons.items()):
        blocks[metric] = {}
        for variant, result in by_variant.items():
            if isinstance(result, str):
                blocks[metric][variant] = {"reason": result}
                continue
            sequential = always_valid_test(result)
            blocks[metric][variant] = _block(result, sequential)
            if index > 0 and not math.isnan(result.p_value):
                holm.append((metric, variant, result.p_value))
            if not math.isnan(sequential.e_value):
                e_values.append((metric, variant, sequential.e_value))
    for (metric, variant, _), adjusted in zip(holm, holm_adjust(p for *_, p in holm), strict=True):
        blocks[metric][variant]["holm_p_value"] = json_number(adjusted)
    for (metric, variant, _), adjusted in zip(
        e_values, e_bh_adjust(e for *_, e in e_values), strict=True
    ):
        blocks[metric][variant]["sequential"]["e_bh_adjusted"] = json_number(adjusted)
    return blocks
