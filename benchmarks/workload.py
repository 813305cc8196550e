"""The benchmark workload: 20 analysed experiments, 480 more running ones, one fixed clock.

The generator writes events for the 20 analysed experiments only; the guardrail stage
watches all 500 running experiments, so 480 of them have no flagged events and cost the
guardrail check one look each (the stage reports the two kinds of look apart). The
experiments are as varied as the catalog allows, so every branch of the transforms is
paid for: 2 to 10 variants with uneven allocations, closed and open-ended windows,
date-only starts in four time zones, funnels with and without a conversion window, both
trend `math`s, continuous metrics with and without winsorisation (a cap from an
approximate quantile), ratio metrics, threshold and sequential guardrails.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

FIRST_DAY = date(2026, 11, 1)
DAYS = 14
# Open-ended windows are analysed up to this instant, and the guardrails look at this time:
# the end of the last generated day, so every run of every size sees the same window.
AS_OF = datetime(2026, 11, 15, tzinfo=UTC)
ANALYSED = 20
RUNNING = 500
TIMEZONES = ("UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata")
# Variants per analysed experiment (cycled); the last experiment has ten.
VARIANT_COUNTS = (2, 3, 2, 4, 2)
TEN_VARIANTS = 10


def experiment_key(index: int) -> str:
    return f"bench-{index:02d}"


def flag_key(index: int) -> str:
    return f"bench-flag-{index:02d}"


def variant_keys(index: int) -> list[str]:
    """Variant keys of analysed experiment `index`, control first."""
    count = TEN_VARIANTS if index == ANALYSED - 1 else VARIANT_COUNTS[index % len(VARIANT_COUNTS)]
    return ["control", *(f"v{j}" for j in range(1, count))]


def allocation(index: int) -> list[float]:
    """Rollout percentages summing to exactly 100, control a little larger when uneven."""
    count = len(variant_keys(index))
    share = 100 // count
    return [float(100 - share * (count - 1)), *([float(share)] * (count - 1))]


def _error_rate_metric() -> dict[str, Any]:
    return {
        "key": "error_rate",
        "kind": "ratio",
        "numerator": "app_error",
        "denominator": "app_exposure",
        "direction": "lower_is_better",
    }


def _analysed_experiment(index: int) -> dict[str, Any]:
    timezone = TIMEZONES[index % len(TIMEZONES)]
    start_day = FIRST_DAY.replace(day=FIRST_DAY.day + index % 3)
    # Every other experiment starts at midnight of its own zone (a date alone).
    start = start_day.isoformat() if index % 2 else f"{start_day.isoformat()}T00:00:00Z"
    end = None if index % 5 == 4 else f"2026-11-{14 - index % 2:02d}T23:59:59Z"
    funnel: dict[str, Any] = {
        "key": "signup_funnel",
        "kind": "funnel",
        "steps": ["$pageview", "signup", "purchase"],
    }
    revenue: dict[str, Any] = {
        "key": "revenue",
        "kind": "continuous",
        "event": "purchase",
        "property": "amount",
    }
    if index % 2:
        funnel["conversion_window_hours"] = 24
        revenue["winsorize_percentile"] = 99
    guardrail: dict[str, Any] = {
        "metric": "error_rate",
        "threshold": 0.05,
        "observation_window_minutes": 60,
        "action": "pause",
    }
    if index % 4 == 0:
        guardrail.update(method="sequential", min_sample=100, observation_window_minutes=None)
    return {
        "key": experiment_key(index),
        "name": f"Benchmark experiment {index:02d}",
        "feature_flag_key": flag_key(index),
        "start_date": start,
        "end_date": end,
        "timezone": timezone,
        "variants": [
            {"key": key, "rollout_percentage": share}
            for key, share in zip(variant_keys(index), allocation(index), strict=True)
        ],
        "metrics": [
            funnel,
            {"key": "pageviews", "kind": "trend", "event": "$pageview", "math": "total"},
            {
                "key": "clicks_per_user",
                "kind": "trend",
                "event": "click",
                "math": "avg_count_per_actor",
            },
            revenue,
            _error_rate_metric(),
        ],
        "guardrails": [guardrail],
    }


def _guarded_only_experiment(index: int) -> dict[str, Any]:
    return {
        "key": f"guarded-{index:03d}",
        "name": f"Guarded experiment {index:03d}",
        "feature_flag_key": f"guarded-flag-{index:03d}",
        "start_date": "2026-11-01T00:00:00Z",
        "metrics": [_error_rate_metric()],
        "guardrails": [
            {
                "metric": "error_rate",
                "threshold": 0.05,
                "observation_window_minutes": 60,
                "action": "pause",
            }
        ],
    }


def catalog_document() -> dict[str, Any]:
    """The catalog of all 500 running experiments, as `parse_catalog` takes it."""
    return {
        "timezone": "UTC",
        "experiments": [_analysed_experiment(i) for i in range(ANALYSED)]
        + [_guarded_only_experiment(i) for i in range(RUNNING - ANALYSED)],
    }


def analysed_keys() -> list[str]:
    return [experiment_key(i) for i in range(ANALYSED)]
