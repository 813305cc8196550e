"""Data-health measures behind the asset checks: is an experiment's data trustworthy?

Each returns the figure and whether it passes, so the Dagster layer only words and files
the result. Thresholds are the architecture's: sample-ratio mismatch below p = 0.001,
more than 1% of subjects in two or more variants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.stats.srm import sample_ratio_mismatch

SRM_P_VALUE = 0.001
MAX_MULTIPLE_VARIANT_SHARE = 0.01
MAX_QUARANTINE_SHARE = 0.01
MAX_EXPOSURE_AGE = timedelta(hours=48)


@dataclass(frozen=True)
class HealthCheck:
    """One measure: the value, whether it passes, and a sentence an analyst can read."""

    passed: bool
    value: float | None
    description: str


def srm_check(exposed: Mapping[str, int], allocation: Mapping[str, float]) -> HealthCheck:
    """Exposed subjects per variant against the configured rollout percentages."""
    srm = sample_ratio_mismatch(exposed, allocation)
    observed = ", ".join(f"{k} {n}" for k, n in exposed.items())
    expected = ", ".join(f"{k} {p:g}%" for k, p in allocation.items())
    return HealthCheck(
        passed=srm.p_value >= SRM_P_VALUE,
        value=srm.p_value,
        description=(
            f"exposed {observed} against the allocation {expected}: chi-square "
            f"p = {srm.p_value:.3g} (fails below {SRM_P_VALUE})"
        ),
    )


def multiple_variant_check(multiple: int, seen: int) -> HealthCheck:
    """`multiple` of the `seen` subjects with a flag signal were in two or more variants."""
    share = multiple / seen if seen else 0.0
    return HealthCheck(
        passed=share <= MAX_MULTIPLE_VARIANT_SHARE,
        value=share,
        description=(
            f"{multiple} of {seen} subjects with a flag signal ({share:.2%}) were seen in two "
            f"or more variants (limit {MAX_MULTIPLE_VARIANT_SHARE:.0%})"
        ),
    )


def exposure_freshness_check(
    con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition, as_of: datetime
) -> HealthCheck:
    """Is the newest exposure recent? Only a running experiment should still expose."""
    newest = con.execute(
        "SELECT max(first_exposure_utc) FROM exposures WHERE experiment_key = ?",
        [experiment.key],
    ).fetchone()[0]
    if experiment.status != "running" or (not experiment.open_ended and experiment.end_utc < as_of):
        state = "has ended" if experiment.status == "running" else f"is {experiment.status}"
        return HealthCheck(True, None, f"the experiment {state}: no new exposures expected")
    if newest is None:
        return HealthCheck(False, None, "no exposure at all yet")
    hours = (as_of - newest).total_seconds() / 3600
    return HealthCheck(
        passed=hours <= MAX_EXPOSURE_AGE.total_seconds() / 3600,
        value=hours,
        description=(
            f"newest first exposure {hours:.1f} h ago "
            f"(limit {MAX_EXPOSURE_AGE.total_seconds() / 3600:.0f} h)"
        ),
    )


def quarantine_check(rows_read: int, quarantined: int) -> HealthCheck:
    share = quarantined / rows_read if rows_read else 0.0
    return HealthCheck(
        passed=share <= MAX_QUARANTINE_SHARE,
        value=share,
        description=(
            f"{quarantined} of {rows_read} rows read ({share:.2%}) were quarantined "
            f"(limit {MAX_QUARANTINE_SHARE:.0%})"
        ),
    )
