"""Results documents for the report tests, built from the real statistics.

The probabilities, intervals and posteriors come from `exp_pipeline.stats`, shaped as the
README's results document, so the report is tested on numbers the pipeline can produce
without running the asset graph (the CLI test does that end to end).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from exp_pipeline.stats import BayesianResult, BetaPosterior, analyse_funnel, analyse_trend

START = date(2026, 11, 1)


def _posterior(result: BayesianResult, key: str) -> dict[str, Any]:
    p = result.posteriors[key]
    if isinstance(p, BetaPosterior):
        return {"distribution": "beta", "alpha": p.alpha, "beta": p.beta}
    return {"distribution": "gamma", "shape": p.shape, "rate": p.rate}


def _intervals(result: BayesianResult, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "posterior": _posterior(result, key),
        "credible_interval": list(result.credible_intervals[key]),
    }
    if key in result.lift_intervals:
        out["lift_interval"] = list(result.lift_intervals[key])
    return out


def _verdict(result: BayesianResult) -> dict[str, Any]:
    return {
        "probability": dict(result.probabilities),
        "best_variant": result.best_variant,
        "expected_loss": result.expected_loss,
        "significance_code": str(result.code),
        "significant": result.significant,
    }


def funnel_metric(key: str, steps: list[str], counts: dict[str, list[int]]) -> dict[str, Any]:
    """A funnel metric of subjects per step and variant (the first count is the exposures)."""
    result = analyse_funnel(counts)
    variants = [
        {
            "variant_key": variant,
            "exposures": c[0],
            "step_counts": c,
            "conversion_rate": c[-1] / c[0],
            **_intervals(result, variant),
        }
        for variant, c in counts.items()
    ]
    return {
        "metric_key": key,
        "kind": "funnel",
        "steps": steps,
        "variants": variants,
        **_verdict(result),
    }


def trend_metric(
    key: str, event: str, daily: dict[str, list[int]], exposures: dict[str, int]
) -> dict[str, Any]:
    """A trend metric from each variant's daily event counts and exposed subjects."""
    result = analyse_trend({v: sum(d) for v, d in daily.items()}, exposures)
    variants = [
        {
            "variant_key": variant,
            "count": sum(d),
            "exposure": exposures.get(variant, 0),
            "days": [(START + timedelta(days=i)).isoformat() for i in range(len(d))],
            "data": d,
            **_intervals(result, variant),
        }
        for variant, d in daily.items()
    ]
    return {
        "metric_key": key,
        "kind": "trend",
        "math": "total",
        "event": event,
        "variants": variants,
        **_verdict(result),
    }


def experiment(
    key: str, metrics: list[dict[str, Any]], exposures: dict[str, int]
) -> dict[str, Any]:
    """A results document of one experiment holding `metrics`."""
    return {
        "experiment_key": key,
        "status": "running",
        "timezone": "Europe/Paris",
        "window": {
            "start": "2026-11-01T00:00:00Z",
            "end": "2026-11-07T00:00:00Z",
            "open_ended": False,
        },
        "exposures": exposures,
        "excluded": {
            "unknown_variant": 0,
            "multiple_variants": 4,
            "out_of_window": 0,
            "bot": 7,
            "dnt": 0,
            "no_flag": 2,
        },
        "metrics": metrics,
    }


@pytest.fixture
def funnel() -> dict[str, Any]:
    """A significant funnel: test converts 12%, control 10% and slow 9% of 10 000 each."""
    return funnel_metric(
        "purchase",
        ["$pageview", "checkout", "purchase"],
        {
            "control": [10_000, 3_000, 1_000],
            "test": [10_000, 3_400, 1_200],
            "slow": [10_000, 2_900, 900],
        },
    )


@pytest.fixture
def trend() -> dict[str, Any]:
    """A three-variant trend with a week of daily counts and unequal exposures."""
    return trend_metric(
        "searches",
        "search",
        {
            "control": [30, 41, 38, 52, 47, 44, 50],
            "test": [35, 40, 44, 58, 51, 49, 57],
            "slow": [0, 22, 25, 30, 28, 26, 31],
        },
        {"control": 400, "test": 410, "slow": 390},
    )


@pytest.fixture
def document(funnel: dict[str, Any], trend: dict[str, Any]) -> dict[str, Any]:
    """Both metrics in one experiment, as the pipeline stores it."""
    return experiment(
        "checkout-test", [funnel, trend], {"control": 10_000, "test": 10_000, "slow": 10_000}
    )
