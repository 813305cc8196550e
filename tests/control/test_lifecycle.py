"""Lifecycle transitions: legal paths, refusals that change nothing, flag state and audit."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from exp_pipeline.control.lifecycle import get_live_experiment, soft_delete, transition
from exp_pipeline.control.models import Experiment
from exp_pipeline.errors import TransitionError

from .conftest import EXPERIMENT_A, Control, catalog

# How to reach each status from a fresh draft.
PATHS: dict[str, list[str]] = {
    "draft": [],
    "running": ["start"],
    "paused": ["start", "pause"],
    "completed": ["start", "complete"],
}
TARGET = {"start": "running", "pause": "paused", "resume": "running", "complete": "completed"}
ALLOWED = {
    "start": "approved, draft",
    "pause": "running",
    "resume": "paused",
    "complete": "paused, running",
}
ILLEGAL = {
    "draft": ["pause", "resume", "complete"],
    "running": ["start", "resume"],
    "paused": ["start", "pause"],
    "completed": ["start", "pause", "resume", "complete"],
}


@pytest.fixture
def draft(control: Control) -> Control:
    """exp-a synced as a draft (no start_date)."""
    control.sync(catalog(EXPERIMENT_A))
    return control


def act(
    control: Control,
    action: str,
    *,
    actor: str = "alice",
    reason: str = "",
    outcome: str | None = None,
    winner: str | None = None,
) -> None:
    """Apply one transition to exp-a in its own transaction, as the CLI or sensor would."""
    with control.db.session() as session:
        experiment = get_live_experiment(session, "exp-a")
        transition(
            session, experiment, action, actor=actor, reason=reason, outcome=outcome, winner=winner
        )


def status_and_flag(control: Control) -> tuple[str, bool, str | None]:
    state = control.state("exp-a")
    active, served = state["flag"][1], state["flag"][2]
    return state["status"], active, served


def test_the_full_lifecycle_keeps_the_flag_in_step_and_logs_every_change(draft: Control) -> None:
    """draft -> running -> paused -> running -> completed: the flag assigns only while
    running, each step appends exactly one log row, and completion records the outcome."""
    seen = [status_and_flag(draft)]
    act(draft, "start", reason="launch")
    seen.append(status_and_flag(draft))
    act(draft, "pause", actor="guardrail-sensor", reason="error rate above 0.2")
    seen.append(status_and_flag(draft))
    act(draft, "resume", reason="fixed")
    seen.append(status_and_flag(draft))
    act(draft, "complete", reason="clear winner", outcome="shipped", winner="test")
    seen.append(status_and_flag(draft))

    assert seen == [
        ("draft", False, None),
        ("running", True, None),
        ("paused", False, None),
        ("running", True, None),
        ("completed", False, "test"),
    ]
    assert draft.log() == [
        ("exp-a", "create", None, "draft", "catalog", "", {}),
        ("exp-a", "start", "draft", "running", "alice", "launch", {}),
        ("exp-a", "pause", "running", "paused", "guardrail-sensor", "error rate above 0.2", {}),
        ("exp-a", "resume", "paused", "running", "alice", "fixed", {}),
        (
            "exp-a",
            "complete",
            "running",
            "completed",
            "alice",
            "clear winner",
            {"outcome": "shipped", "winner": "test"},
        ),
    ]
    outcomes = draft.snapshot()["outcomes"]
    assert [(row[2], row[3], row[4]) for row in outcomes] == [("shipped", "test", "alice")]


def test_the_decision_log_is_append_only(draft: Control) -> None:
    """Earlier rows are never rewritten: each step only adds one row after them."""
    previous = draft.snapshot()["decision_log"]
    for action in ("start", "pause", "resume"):
        act(draft, action)
        rows = draft.snapshot()["decision_log"]
        assert rows[: len(previous)] == previous
        assert len(rows) == len(previous) + 1
        previous = rows


def test_complete_from_paused_with_rollback_serves_control(draft: Control) -> None:
    """The guardrail rollback: completed, outcome rollback, control served to everyone."""
    act(draft, "start")
    act(draft, "pause")
    act(draft, "complete", actor="guardrail-sensor", outcome="rollback", winner="control")
    assert status_and_flag(draft) == ("completed", False, "control")
    assert draft.log()[-1][1:4] == ("complete", "paused", "completed")
    assert [(r[2], r[3], r[4]) for r in draft.snapshot()["outcomes"]] == [
        ("rollback", "control", "guardrail-sensor")
    ]


def test_an_inconclusive_completion_serves_no_variant(draft: Control) -> None:
    """Without a winner nothing is served; the outcome is still logged."""
    act(draft, "start")
    act(draft, "complete", outcome="inconclusive")
    assert status_and_flag(draft) == ("completed", False, None)
    assert draft.log()[-1][6] == {"outcome": "inconclusive", "winner": None}


@pytest.mark.parametrize("status", list(ILLEGAL))
def test_illegal_transitions_name_the_states_and_change_nothing(
    draft: Control, status: str
) -> None:
    """Every action not allowed from `status` is refused with a message naming the
    current and target statuses, and writes neither a status, a flag nor a log row."""
    for action in PATHS[status]:
        act(draft, action, outcome="shipped" if action == "complete" else None)
    before = draft.snapshot()

    for action in ILLEGAL[status]:
        with pytest.raises(TransitionError) as excinfo:
            act(draft, action, outcome="shipped" if action == "complete" else None)
        assert str(excinfo.value) == (
            f"can't {action} experiment 'exp-a' from {status} to {TARGET[action]} "
            f"(allowed from: {ALLOWED[action]})"
        )
        assert draft.snapshot() == before


@pytest.mark.parametrize(
    ("outcome", "winner", "message"),
    [
        (None, None, "outcome must be one of shipped, rollback, inconclusive, not None"),
        ("won", "test", "outcome must be one of shipped, rollback, inconclusive, not 'won'"),
        ("shipped", "blue", "winner 'blue' is not a variant of 'exp-a' (control, test)"),
    ],
)
def test_completion_needs_a_known_outcome_and_winner(
    draft: Control, outcome: str | None, winner: str | None, message: str
) -> None:
    """An outcome row must be meaningful; a bad one is refused before any write."""
    act(draft, "start")
    before = draft.snapshot()
    with pytest.raises(TransitionError) as excinfo:
        act(draft, "complete", outcome=outcome, winner=winner)
    assert str(excinfo.value) == message
    assert draft.snapshot() == before


def test_a_stale_status_is_refused_by_compare_and_set(draft: Control) -> None:
    """Another writer changed the status after we read it: our update matches no row,
    so the transition is refused instead of overwriting, and nothing is written."""
    before = draft.snapshot()
    with pytest.raises(TransitionError) as excinfo, draft.db.session() as session:
        experiment = get_live_experiment(session, "exp-a")
        assert experiment.status == "draft"
        # The concurrent writer: the row changes, our loaded object still says draft.
        session.execute(
            update(Experiment)
            .where(Experiment.id == experiment.id)
            .values(status="running")
            .execution_options(synchronize_session=False)
        )
        transition(session, experiment, "start", actor="alice")
    assert str(excinfo.value) == "experiment 'exp-a' changed status concurrently; nothing was done"
    assert draft.snapshot() == before


def test_a_stale_object_from_an_earlier_transaction_is_refused(draft: Control) -> None:
    """The same race across transactions: an object read before a committed change."""
    with draft.db.session() as session:
        stale = get_live_experiment(session, "exp-a")
    act(draft, "start")
    before = draft.snapshot()
    with pytest.raises(TransitionError) as excinfo, draft.db.session() as session:
        session.add(stale)  # still says draft: expire_on_commit is off
        assert stale.status == "draft"
        transition(session, stale, "start", actor="bob")
    assert str(excinfo.value) == "experiment 'exp-a' changed status concurrently; nothing was done"
    assert draft.snapshot() == before


def test_deleted_experiments_cannot_transition(draft: Control) -> None:
    """A deleted experiment is history: neither a held object nor a lookup revives it."""
    with draft.db.session() as session:
        experiment = get_live_experiment(session, "exp-a")
        soft_delete(session, experiment, actor="alice")
    with pytest.raises(TransitionError) as excinfo, draft.db.session() as session:
        transition(session, experiment, "start", actor="alice")
    assert str(excinfo.value) == "experiment 'exp-a' is deleted"
    with pytest.raises(TransitionError) as excinfo, draft.db.session() as session:
        get_live_experiment(session, "exp-a")
    assert str(excinfo.value) == "experiment 'exp-a' does not exist"


def test_soft_delete_turns_the_flag_off_and_logs(draft: Control) -> None:
    """A deleted running experiment stops assigning at once; its rows stay for history."""
    act(draft, "start")
    with draft.db.session() as session:
        soft_delete(session, get_live_experiment(session, "exp-a"), actor="alice", reason="bad")
    assert draft.experiments() == [("exp-a", "Experiment A", "flag-a", True, True, False)]
    assert draft.log()[-1] == ("exp-a", "delete", "running", None, "alice", "bad", {})


def test_an_unknown_action_is_a_transition_error_naming_the_known_ones() -> None:
    """A typo in an action must be refused like any other illegal transition."""
    with pytest.raises(
        TransitionError,
        match=r"unknown lifecycle action 'explode' \(known: approve, complete, pause",
    ):
        transition(None, Experiment(key="x", status="running"), "explode", actor="t")  # type: ignore[arg-type]
