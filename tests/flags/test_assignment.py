"""Assignment settings from the catalog to the flag decision: traffic, forced (QA) overrides,
subject type and the assignment version, through the real catalog, sync and snapshot."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from exp_pipeline.catalog import parse_catalog
from exp_pipeline.control.models import DecisionLog
from exp_pipeline.errors import CatalogError, FlagError
from exp_pipeline.flags import build_snapshot, decide, decision_id

from .conftest import FLAG, Control, running_catalog

SUBJECTS = [f"user-{i}" for i in range(5_000)]


def current(control: Control) -> dict[str, Any]:
    with control.db.session() as session:
        return build_snapshot(session)


def entry(control: Control) -> dict[str, Any]:
    return current(control)["flags"][FLAG]


def log(control: Control) -> list[tuple[str, dict[str, Any]]]:
    with control.db.session() as session:
        rows = session.scalars(
            select(DecisionLog)
            .where(DecisionLog.experiment_key == "exp-a")
            .order_by(DecisionLog.id)
        )
        return [(r.action, r.details) for r in rows]


def test_catalog_settings_reach_the_snapshot(control: Control) -> None:
    control.sync(
        running_catalog(
            traffic_percentage=25, subject_type="organization", forced={"qa-org": "test"}
        )
    )
    flag = entry(control)
    assert (flag["traffic"], flag["subject_type"], flag["forced"]) == (
        0.25,
        "organization",
        {"qa-org": "test"},
    )
    assert flag["assignment_version"] == 1


def test_traffic_share_and_the_ramp_up_keeps_every_included_subject(control: Control) -> None:
    """Raising traffic while running is allowed, logged, and keeps the version (and so every
    decision id) of the subjects already in; about traffic_percentage of ids are included."""
    control.sync(running_catalog(traffic_percentage=10))
    low = current(control)
    before = {s: decide(low, FLAG, s) for s in SUBJECTS}
    included = {s: d for s, d in before.items() if d.in_experiment}
    # 5,000 ids at p = 0.1: sd = 21; 6 sd either side.
    assert abs(len(included) - 500) < 130
    assert {d.reason for s, d in before.items() if s not in included} == {"not_in_traffic"}

    control.sync(running_catalog(traffic_percentage=50))
    high = current(control)
    assert high["version"] == low["version"] + 1
    assert high["flags"][FLAG]["assignment_version"] == 1
    after = {s: decide(high, FLAG, s) for s in included}
    assert after == included
    assert log(control)[-1] == ("update", {"fields": ["traffic_percentage"]})


def test_forced_subjects_get_their_variant_outside_the_sample(control: Control) -> None:
    control.sync(running_catalog(forced={"qa-alice": "test", "qa-bob": "control"}))
    document = current(control)
    alice = decide(document, FLAG, "qa-alice")
    assert (alice.variant, alice.reason, alice.in_experiment) == ("test", "forced", False)
    assert alice.decision_id == decision_id("exp-a", "qa-alice", "test", 1)
    assert decide(document, FLAG, "qa-bob").variant == "control"

    control.sync(running_catalog(forced={"qa-alice": "control"}))
    document = current(control)
    assert decide(document, FLAG, "qa-alice").variant == "control"
    assert decide(document, FLAG, "qa-bob").reason == "experiment_assigned"
    assert log(control)[-1] == ("update", {"fields": ["forced"]})


def test_a_forced_variant_must_be_one_of_the_variants() -> None:
    raw = running_catalog(forced={"qa-alice": "treatment"})
    with pytest.raises(CatalogError, match=r"forced: 'qa-alice' is forced into 'treatment'"):
        parse_catalog(raw, "experiments.yaml")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"traffic_percentage": 0}, "traffic_percentage: Input should be greater than 0"),
        ({"traffic_percentage": 101}, "traffic_percentage: Input should be less than or equal"),
        ({"subject_type": "Org Id"}, "subject_type: String should match pattern"),
    ],
)
def test_invalid_assignment_settings_name_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=f"experiment 'exp-a': {message}"):
        parse_catalog(running_catalog(**changes), "experiments.yaml")


def test_a_subject_of_the_wrong_type_is_refused(control: Control) -> None:
    control.sync(running_catalog(subject_type="cookie"))
    document = current(control)
    with pytest.raises(FlagError, match="flag 'flag-a' assigns by cookie id, but 'user-1' was"):
        decide(document, FLAG, "user-1")
    answer = decide(document, FLAG, "c-123", subject_type="cookie")
    assert answer.reason == "experiment_assigned"


def test_subject_type_is_frozen_once_started(control: Control) -> None:
    control.sync(running_catalog())
    with pytest.raises(CatalogError, match="Can't update subject_type on Experiment 'exp-a'"):
        control.sync(running_catalog(subject_type="device"))
    assert entry(control)["subject_type"] == "user"


def test_a_change_that_can_move_subjects_bumps_the_assignment_version(control: Control) -> None:
    """Before launch, variants or subject type may change: each such change gives a new
    assignment version, so a decision id issued under the old definition never matches
    the new one; a change of name does not."""
    draft = {"start_date": None}
    control.sync(running_catalog(**draft))
    assert entry(control)["assignment_version"] == 1
    control.sync(running_catalog(**draft, name="Renamed"))
    assert entry(control)["assignment_version"] == 1
    skewed = [
        {"key": "control", "rollout_percentage": 40},
        {"key": "test", "rollout_percentage": 60},
    ]
    control.sync(running_catalog(**draft, name="Renamed", variants=skewed))
    assert entry(control)["assignment_version"] == 2
    control.sync(running_catalog(**draft, name="Renamed", variants=skewed, subject_type="device"))
    flag = entry(control)
    assert (flag["assignment_version"], flag["subject_type"]) == (3, "device")
    answer = decide(current(control), FLAG, "d-1", subject_type="device")
    assert answer.decision_id == decision_id("exp-a", "d-1", answer.variant, 3)
