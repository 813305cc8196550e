"""The data-health measures behind the asset checks, at and around their thresholds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from scipy.stats import chisquare

from exp_pipeline.analysis.exposures import EXCLUSION_REASONS, ExposureSummary, build_exposures
from exp_pipeline.analysis.health import (
    exposure_freshness_check,
    multiple_variant_check,
    quarantine_check,
    srm_check,
)
from tests.analysis.conftest import Analysed, event

CATALOG = {
    "timezone": "UTC",
    "experiments": [
        {
            "key": "a-b-test",
            "name": "Test Experiment",
            "feature_flag_key": "a-b-test",
            "start_date": "2020-01-01T00:00:00Z",
            "metrics": [{"key": "views", "kind": "trend", "event": "$pageview"}],
        }
    ],
}


def summary(exposures: dict[str, int], multiple: int = 0, unknown: int = 0) -> ExposureSummary:
    excluded = dict.fromkeys(EXCLUSION_REASONS, 0)
    excluded.update(multiple_variants=multiple, unknown_variant=unknown)
    return ExposureSummary("a-b-test", exposures, excluded)


def test_srm_matches_scipy_and_fails_below_one_in_a_thousand(analysed: Analysed) -> None:
    experiment = analysed(CATALOG, [])
    fine = srm_check({"control": 1000, "test": 1100}, experiment.allocation)
    assert fine.passed
    assert fine.value == pytest.approx(chisquare([1000, 1100]).pvalue, rel=1e-9)
    broken = srm_check({"control": 1000, "test": 1200}, experiment.allocation)
    assert broken.value == pytest.approx(chisquare([1000, 1200]).pvalue, rel=1e-9)
    assert broken.value < 0.001
    assert not broken.passed
    assert "fails below 0.001" in broken.description


def test_multiple_variant_share_limit_is_inclusive() -> None:
    passing = summary({"control": 50, "test": 49}, multiple=1)
    assert multiple_variant_check(passing.excluded["multiple_variants"], passing.flagged).passed
    failing = summary({"control": 50, "test": 48}, multiple=2)
    over = multiple_variant_check(failing.excluded["multiple_variants"], failing.flagged)
    assert not over.passed
    assert over.value == pytest.approx(0.02)


def test_quarantine_share() -> None:
    assert quarantine_check(1000, 10).passed
    assert not quarantine_check(1000, 11).passed
    assert quarantine_check(0, 0).passed  # an empty load is not unhealthy


def test_exposure_freshness_for_running_open_experiments(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [event("$pageview", "u", "2020-01-02T00:00:00Z", flag="a-b-test", variant="test")]
    experiment = analysed(CATALOG, events)
    build_exposures(warehouse, experiment)
    fresh_as_of = datetime(2020, 1, 3, tzinfo=UTC)
    fresh = exposure_freshness_check(warehouse, experiment, fresh_as_of)
    assert fresh.passed
    assert fresh.value == pytest.approx(24.0)
    stale = exposure_freshness_check(warehouse, experiment, fresh_as_of + timedelta(days=2))
    assert not stale.passed
    ended = replace(experiment, open_ended=False, end_utc=datetime(2020, 1, 4, tzinfo=UTC))
    assert exposure_freshness_check(warehouse, ended, datetime(2020, 2, 1, tzinfo=UTC)).passed
