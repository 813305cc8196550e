"""`decide` on hand-built snapshots: every reason, the precedence between them, golden
answers, Do-Not-Track parsing and the traffic-increase stability property."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exp_pipeline.errors import FlagError
from exp_pipeline.flags import REASONS, Decision, decide, decision_id, is_do_not_track

from .conftest import FLAG, snapshot

GOLDEN_SNAPSHOT = snapshot(
    experiment_key="golden-exp",
    seed="golden-seed",
    traffic=0.6,
    variants=[
        {"key": "control", "weight": 0.25},
        {"key": "blue", "weight": 0.25},
        {"key": "green", "weight": 0.5},
    ],
)

# subject -> (variant, reason, decision id), computed once and checked by `reference_decide`.
GOLDEN_DECISIONS = {
    "user-1": ("green", "experiment_assigned", "8c2633036de815f22a4a341bf7a34a94"),
    "user-2": ("control", "not_in_traffic", "74660a8e2e1cdfb631c3a96b11e3ea2a"),
    "user-6": ("blue", "experiment_assigned", "23e7aa92eb49ab4f5a68e69b8f575f93"),
    "user-8": ("control", "experiment_assigned", "eb0974519992a2037300358fba5bf8b2"),
}


def reference_decide(entry: dict[str, Any], subject: str) -> tuple[str, str, str]:
    """Traffic and variant choice of a running flag, from docs/flags.md alone."""

    def position(salt: str) -> float:
        digest = hashlib.sha256(f"{entry['seed']}.{salt}.{subject}".encode()).digest()
        return (struct.unpack(">Q", digest[:8])[0] >> 11) / float(1 << 53)

    variant, reason = entry["default_variant"], "not_in_traffic"
    if position("traffic") < entry["traffic"]:
        reason, cumulative = "experiment_assigned", 0.0
        for v in entry["variants"]:
            cumulative += v["weight"]
            if position("variant") < cumulative:
                variant = v["key"]
                break
    text = f"{entry['experiment_key']}.{subject}.{variant}.{entry['assignment_version']}"
    return variant, reason, hashlib.sha256(text.encode()).hexdigest()[:32]


@pytest.mark.parametrize(("subject", "expected"), GOLDEN_DECISIONS.items())
def test_golden_decisions_match_an_independent_implementation(
    subject: str, expected: tuple[str, str, str]
) -> None:
    decision = decide(GOLDEN_SNAPSHOT, FLAG, subject)
    assert (decision.variant, decision.reason, decision.decision_id) == expected
    assert reference_decide(GOLDEN_SNAPSHOT["flags"][FLAG], subject) == expected
    assert decision.in_experiment == (expected[1] == "experiment_assigned")


def test_the_same_subject_gets_the_same_answer_every_time() -> None:
    answers = {decide(GOLDEN_SNAPSHOT, FLAG, f"user-{i}") for i in range(200) for _ in range(3)}
    assert len(answers) == 200


def test_a_decision_is_the_documented_json_object() -> None:
    assert decide(GOLDEN_SNAPSHOT, FLAG, "user-1").as_dict() == {
        "flag": FLAG,
        "variant": "green",
        "reason": "experiment_assigned",
        "decision_id": "8c2633036de815f22a4a341bf7a34a94",
        "in_experiment": True,
    }


# One snapshot per reason, each reachable on its own; `user-1` is in traffic at 100%.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any] | None, Decision]] = {
    "unknown_flag": (
        snapshot(),
        None,
        Decision("no-such-flag", None, "unknown_flag", None, in_experiment=False),
    ),
    "experiments_disabled": (
        snapshot(experiments_enabled=False),
        None,
        Decision(FLAG, "control", "experiments_disabled", "?", in_experiment=False),
    ),
    "do_not_track": (
        snapshot(),
        {"$dnt": True},
        Decision(FLAG, "control", "do_not_track", None, in_experiment=False),
    ),
    "forced": (
        snapshot(forced={"user-1": "test"}),
        None,
        Decision(FLAG, "test", "forced", "?", in_experiment=False),
    ),
    "rolled_back": (
        snapshot(status="completed", served_variant="control", outcome="rollback"),
        None,
        Decision(FLAG, "control", "rolled_back", "?", in_experiment=False),
    ),
    "completed": (
        snapshot(status="completed", served_variant="test", outcome="shipped"),
        None,
        Decision(FLAG, "test", "completed", "?", in_experiment=False),
    ),
    "not_running": (
        snapshot(status="paused"),
        None,
        Decision(FLAG, "control", "not_running", "?", in_experiment=False),
    ),
    "not_in_traffic": (
        snapshot(traffic=0.0),
        None,
        Decision(FLAG, "control", "not_in_traffic", "?", in_experiment=False),
    ),
    "experiment_assigned": (
        snapshot(),
        None,
        Decision(FLAG, "control", "experiment_assigned", "?", in_experiment=True),
    ),
}


@pytest.mark.parametrize("reason", REASONS)
def test_every_reason(reason: str) -> None:
    document, attributes, expected = CASES[reason]
    decision = decide(document, expected.flag, "user-1", attributes)
    if expected.decision_id == "?":
        # Every answer tied to a tracked subject carries the id of what was served.
        expected = Decision(
            expected.flag,
            expected.variant,
            expected.reason,
            decision_id("exp-a", "user-1", expected.variant or "", 1),
            expected.in_experiment,
        )
    assert decision == expected


@pytest.mark.parametrize("status", ["draft", "in_review", "approved", "paused", "completed"])
def test_every_status_but_running_without_a_served_variant_is_not_running(status: str) -> None:
    document = snapshot(status=status, outcome="inconclusive" if status == "completed" else None)
    decision = decide(document, FLAG, "user-1")
    assert (decision.variant, decision.reason, decision.in_experiment) == (
        "control",
        "not_running",
        False,
    )


# Every rule's trigger, applied to one snapshot: the reason that wins when all hold.
TRIGGERS: dict[str, dict[str, Any]] = {
    "experiments_disabled": {"experiments_enabled": False},
    "do_not_track": {},
    "forced": {"forced": {"user-1": "test"}},
    "rolled_back": {"served_variant": "control", "outcome": "rollback", "status": "completed"},
    "not_running": {"status": "paused"},
    "not_in_traffic": {"traffic": 0.0},
}
PRECEDENCE = list(TRIGGERS)


@pytest.mark.parametrize("winner", range(len(PRECEDENCE)))
def test_precedence_the_first_rule_that_applies_wins(winner: int) -> None:
    """With the triggers of rule `winner` and of every later rule all present, the answer
    is rule `winner`: later rules never override an earlier one."""
    active = PRECEDENCE[winner:]
    fields: dict[str, Any] = {}
    for reason in active:
        fields.update(TRIGGERS[reason])
    attributes = {"dnt": 1} if "do_not_track" in active else None
    assert decide(snapshot(**fields), FLAG, "user-1", attributes).reason == PRECEDENCE[winner]
    assert decide(snapshot(**fields), "no-such-flag", "user-1", attributes).reason == (
        "unknown_flag"
    )


def test_forced_applies_only_to_the_listed_subject() -> None:
    document = snapshot(forced={"qa-1": "test"})
    assert decide(document, FLAG, "qa-1").reason == "forced"
    assert decide(document, FLAG, "user-1").reason == "experiment_assigned"


@pytest.mark.parametrize(
    ("attributes", "dnt"),
    [
        ({"$dnt": True}, True),
        ({"dnt": 1}, True),
        ({"dnt": "1"}, True),
        ({"$dnt": "TRUE"}, True),
        ({"$dnt": False}, False),
        ({"dnt": 0}, False),
        ({"dnt": 1.0}, False),  # the loader reads JSON 1.0 as the text '1.0': not DNT
        ({"$dnt": False, "dnt": 1}, False),  # `$dnt` wins where both are set, as at load
        ({"$dnt": None, "dnt": True}, True),
        ({}, False),
        (None, False),
    ],
)
def test_do_not_track_reads_attributes_as_the_event_loader_does(
    attributes: dict[str, Any] | None, dnt: bool
) -> None:
    assert is_do_not_track(attributes) is dnt
    assert (decide(snapshot(), FLAG, "user-1", attributes).reason == "do_not_track") is dnt


def test_refuses_an_empty_subject_and_an_unknown_format() -> None:
    with pytest.raises(FlagError, match="non-empty string"):
        decide(snapshot(), FLAG, "")
    with pytest.raises(FlagError, match="expected format 1, got 2"):
        decide({**snapshot(), "format": 2}, FLAG, "user-1")


@settings(max_examples=300, derandomize=True, database=None)
@given(
    subject=st.text(min_size=1, max_size=40),
    seed=st.text(min_size=1, max_size=20),
    traffic=st.tuples(st.floats(0, 1), st.floats(0, 1)).map(sorted),
    first_weight=st.floats(0.01, 0.99),
)
def test_raising_traffic_keeps_every_included_subject_in_its_variant(
    subject: str, seed: str, traffic: list[float], first_weight: float
) -> None:
    """Raising traffic (say 10% -> 50%) only adds subjects: everyone already in the
    experiment keeps the same variant and the same decision id."""
    low, high = traffic
    variants = [
        {"key": "control", "weight": first_weight},
        {"key": "test", "weight": 1 - first_weight},
    ]
    before = decide(snapshot(seed=seed, traffic=low, variants=variants), FLAG, subject)
    after = decide(snapshot(seed=seed, traffic=high, variants=variants), FLAG, subject)
    if before.in_experiment:
        assert after == before


def test_raising_traffic_from_10_to_50_percent_over_10_000_ids() -> None:
    subjects = [f"user-{i}" for i in range(10_000)]
    at_10 = {s: decide(snapshot(traffic=0.1), FLAG, s) for s in subjects}
    at_50 = {s: decide(snapshot(traffic=0.5), FLAG, s) for s in subjects}
    included_10 = {s for s, d in at_10.items() if d.in_experiment}
    included_50 = {s for s, d in at_50.items() if d.in_experiment}
    assert included_10 < included_50
    assert 900 < len(included_10) < 1100 and 4800 < len(included_50) < 5200
    assert all(at_10[s] == at_50[s] for s in included_10)
