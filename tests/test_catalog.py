"""Every catalog validation rule, each failing with a message naming experiment and field."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from exp_pipeline.catalog import load_catalog, parse_catalog
from exp_pipeline.errors import CatalogError

from .conftest import PROJECT_ROOT

BASE: dict[str, Any] = {
    "timezone": "UTC",
    "experiments": [
        {
            "key": "a-b-test",
            "name": "Test Experiment",
            "feature_flag_key": "a-b-test",
            "start_date": "2020-01-01T00:00",
            "end_date": "2020-01-06T00:00",
            "metrics": [
                {"key": "conversion", "kind": "funnel", "steps": ["$pageview", "$pageleave"]}
            ],
        }
    ],
}


def _with(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    for field, value in changes.items():
        if value is None:
            raw["experiments"][0].pop(field, None)
        else:
            raw["experiments"][0][field] = value
    return raw


def _error(raw: dict[str, Any]) -> str:
    with pytest.raises(CatalogError) as info:
        parse_catalog(raw, "cat.yaml")
    return str(info.value)


def test_the_shipped_catalog_is_valid() -> None:
    catalog = load_catalog(PROJECT_ROOT / "config" / "experiments.yaml")
    assert [e.key for e in catalog.experiments] == [
        "checkout-funnel",
        "homepage-banner",
        "new-search",
    ]
    assert catalog.get("new-search").guardrails[0].action == "pause"


def test_defaults_are_control_and_test_at_fifty_percent() -> None:
    experiment = parse_catalog(BASE).experiments[0]
    assert [(v.key, v.rollout_percentage) for v in experiment.variants] == [
        ("control", 50),
        ("test", 50),
    ]
    assert experiment.primary_metric.key == "conversion"
    assert experiment.guardrails == []


def test_the_issue_example_with_every_metric_kind_parses() -> None:
    raw = _with(
        timezone="Europe/Amsterdam",
        metrics=[
            {"key": "conversion", "kind": "funnel", "steps": ["$pageview", "$pageleave"]},
            {"key": "pageviews", "kind": "trend", "event": "$pageview", "math": "total"},
            {
                "key": "error_rate",
                "kind": "ratio",
                "numerator": "app_error",
                "denominator": "app_exposure",
                "direction": "lower_is_better",
            },
            {"key": "revenue", "kind": "continuous", "event": "purchase", "property": "amount"},
        ],
        guardrails=[
            {
                "metric": "error_rate",
                "threshold": 0.10,
                "observation_window_minutes": 60,
                "action": "pause",
            }
        ],
    )
    experiment = parse_catalog(raw).experiments[0]
    assert [m.kind for m in experiment.metrics] == ["funnel", "trend", "ratio", "continuous"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"name": None}, "experiment 'a-b-test': name: is required"),
        ({"name": ""}, "experiment 'a-b-test': name: String should have at least 1 character"),
        ({"name": "x" * 256}, "experiment 'a-b-test': name: String should have at most 255"),
        ({"metrics": []}, "experiment 'a-b-test': metrics: List should have at least 1 item"),
        ({"metrics": None}, "experiment 'a-b-test': metrics: is required"),
        (
            {
                "variants": [
                    {"key": "a", "rollout_percentage": 50},
                    {"key": "b", "rollout_percentage": 50},
                ]
            },
            "experiment 'a-b-test': variants: must contain a variant with key 'control'",
        ),
        (
            {
                "variants": [
                    {"key": "control", "rollout_percentage": 50},
                    {"key": "control", "rollout_percentage": 50},
                ]
            },
            "experiment 'a-b-test': variants: 'control' appears more than once",
        ),
        (
            {
                "variants": [
                    {"key": "control", "rollout_percentage": 50},
                    {"key": "test", "rollout_percentage": 40},
                ]
            },
            "experiment 'a-b-test': variants: rollout_percentage must sum to 100, not 90",
        ),
        (
            {"start_date": "2020-01-06T00:00", "end_date": "2020-01-01T00:00"},
            "experiment 'a-b-test': start_date must be before end_date",
        ),
        (
            {"start_date": "2020-01-06T00:00", "end_date": "2020-01-06T00:00"},
            "experiment 'a-b-test': start_date must be before end_date",
        ),
        (
            {"start_date": None, "end_date": "2020-01-06"},
            "experiment 'a-b-test': end_date is set but start_date is not",
        ),
        (
            {"start_date": "2020-02-30"},
            "experiment 'a-b-test': start_date: '2020-02-30' is not an ISO 8601 date or datetime",
        ),
        ({"timezone": "Mars/Olympus"}, "'Mars/Olympus' is not a valid IANA timezone name"),
        (
            {"guardrails": [{"metric": "nope", "threshold": 0.1, "action": "pause"}]},
            "experiment 'a-b-test': guardrails: metric 'nope' is not a metric of this experiment",
        ),
        (
            {"guardrails": [{"metric": "conversion", "threshold": 0.1, "action": "explode"}]},
            "experiment 'a-b-test': guardrails.0.action: Input should be 'pause' or 'rollback'",
        ),
        ({"key": "Bad Key"}, "key: String should match pattern"),
        ({"colour": "blue"}, "experiment 'a-b-test': colour: is not a known field"),
        (
            {"metrics": [{"key": "m", "kind": "trend"}]},
            "experiment 'a-b-test': metrics.0.event: is required",
        ),
        (
            {"metrics": [{"key": "m", "kind": "histogram"}]},
            "experiment 'a-b-test': metrics.0: Input tag 'histogram' found using 'kind'",
        ),
    ],
)
def test_each_validation_rule_names_experiment_and_field(
    changes: dict[str, Any], expected: str
) -> None:
    message = _error(_with(**changes))
    assert message.startswith("cat.yaml: ")
    assert expected in message


def _two(second: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    other = copy.deepcopy(raw["experiments"][0]) | second
    raw["experiments"].append(other)
    return raw


def test_duplicate_keys_names_and_flag_keys_are_refused() -> None:
    assert "experiments: key: 'a-b-test' appears more than once" in _error(
        _two({"name": "Other", "feature_flag_key": "other"})
    )
    assert "experiments: name: 'Test Experiment' appears more than once" in _error(
        _two({"key": "other", "feature_flag_key": "other"})
    )
    assert "experiments: feature_flag_key: 'a-b-test' appears more than once" in _error(
        _two({"key": "other", "name": "Other"})
    )


def test_invalid_project_timezone_is_refused() -> None:
    raw = copy.deepcopy(BASE) | {"timezone": "Nowhere/Special"}
    assert "'Nowhere/Special' is not a valid IANA timezone name" in _error(raw)


def test_windows_follow_the_datetime_rules() -> None:
    raw = _with(
        timezone="Europe/Amsterdam",
        start_date="2020-01-01",  # a date alone: midnight in the experiment's timezone
        end_date="2020-01-06T00:00",  # naive: UTC
    )
    start, end = parse_catalog(raw).experiments[0].window("UTC")
    assert start == datetime(2019, 12, 31, 23, 0, tzinfo=UTC)
    assert end == datetime(2020, 1, 6, 0, 0, tzinfo=UTC)
    raw = _with(start_date="2020-01-01T00:00:00+02:00", end_date="2020-01-06 00:00Z")
    start, end = parse_catalog(raw).experiments[0].window("UTC")
    assert start == datetime(2019, 12, 31, 22, 0, tzinfo=UTC)
    assert end == datetime(2020, 1, 6, 0, 0, tzinfo=UTC)


def test_yaml_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "experiments.yaml"
    path.write_text("experiments:\n  - key: a\n    name: [unclosed\n")
    with pytest.raises(CatalogError, match=r"experiments.yaml line \d+: invalid YAML"):
        load_catalog(path)


def test_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read the catalog"):
        load_catalog(tmp_path / "absent.yaml")


def test_empty_catalog_has_no_experiments(tmp_path: Path) -> None:
    path = tmp_path / "experiments.yaml"
    path.write_text("")
    assert load_catalog(path).experiments == []


FUNNEL = {"key": "conversion", "kind": "funnel", "steps": ["$pageview", "$pageleave"]}
RATIO = {"key": "errors", "kind": "ratio", "numerator": "error", "denominator": "page"}


def test_optional_analysis_settings_are_stored_only_when_stated() -> None:
    prior = {"mean": 0.1, "weight": 200}
    raw = _with(metrics=[{**FUNNEL, "prior": prior}, {**RATIO, "winsorize_percentile": 99}])
    funnel, ratio = parse_catalog(raw).experiments[0].metrics
    assert funnel.model_dump(mode="json")["prior"] == {"mean": 0.1, "weight": 200.0}
    assert ratio.model_dump(mode="json")["winsorize_percentile"] == 99.0
    # Unstated, they are left out, so definitions stored before they existed still match.
    funnel, ratio = parse_catalog(_with(metrics=[FUNNEL, RATIO])).experiments[0].metrics
    assert "prior" not in funnel.model_dump(mode="json")
    assert "winsorize_percentile" not in ratio.model_dump(mode="json")


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            {**FUNNEL, "prior": {"mean": 1.5, "weight": 10}},
            "metrics.0: prior.mean: a funnel's prior mean is a conversion rate strictly between",
        ),
        (
            {"key": "t", "kind": "trend", "event": "e", "prior": {"mean": 0, "weight": 10}},
            "metrics.0: prior.mean: a trend's prior mean is events per subject and must be",
        ),
        ({**FUNNEL, "prior": {"mean": 0.1, "weight": 0}}, "metrics.0.prior.weight: Input should"),
        ({**FUNNEL, "prior": {"mean": 0.1}}, "metrics.0.prior.weight: is required"),
        ({**RATIO, "winsorize_percentile": 30}, "metrics.0.winsorize_percentile: Input should be"),
    ],
)
def test_analysis_settings_errors_name_the_field(metric: dict[str, Any], expected: str) -> None:
    assert f"experiment 'a-b-test': {expected}" in _error(_with(metrics=[metric]))
