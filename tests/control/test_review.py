"""Launch review: submit, approve by someone else, start; and what sends it back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from exp_pipeline.control.global_settings import set_setting
from exp_pipeline.control.lifecycle import get_live_experiment, transition
from exp_pipeline.control.models import DecisionLog
from exp_pipeline.control.review import approvals_in_round, approve, submit
from exp_pipeline.errors import TransitionError

from .conftest import EXPERIMENT_A, Control, catalog, experiment


def settings(control: Control, **values: object) -> None:
    with control.db.session() as session:
        for key, value in values.items():
            set_setting(session, key, value)


def status(control: Control, key: str = "exp-a") -> str:
    with control.db.session() as session:
        return get_live_experiment(session, key).status


def act(control: Control, func, key: str = "exp-a", **kwargs):  # type: ignore[no-untyped-def]
    with control.db.session() as session:
        return func(session, get_live_experiment(session, key), **kwargs)


def test_reference_review_submit_approve_by_another_and_start(control: Control) -> None:
    """min_approvals 1: submitted by alice, approved by bob, then started."""
    settings(control, min_approvals=1, approvers="bob,carol")
    control.sync(catalog(EXPERIMENT_A))

    act(control, submit, actor="alice")
    assert status(control) == "in_review"
    with pytest.raises(TransitionError, match="'alice' owns experiment 'exp-a'"):
        act(control, approve, approver="alice")
    with pytest.raises(TransitionError, match="'mallory' is not an approver"):
        act(control, approve, approver="mallory")
    assert act(control, approve, approver="bob") is True
    assert status(control) == "approved"
    act(control, transition, action="start", actor="alice")
    assert status(control) == "running"
    with control.db.session() as session:
        log = [
            (r.action, r.actor, r.from_status, r.to_status)
            for r in session.scalars(
                select(DecisionLog)
                .where(DecisionLog.experiment_key == "exp-a")
                .order_by(DecisionLog.id)
            )
        ]
    assert log[1:] == [
        ("submit", "alice", "draft", "in_review"),
        ("approve", "bob", "in_review", "approved"),
        ("start", "alice", "approved", "running"),
    ]


def test_starting_a_draft_needs_the_review_when_approvals_are_required(control: Control) -> None:
    settings(control, min_approvals=1)
    control.sync(catalog(EXPERIMENT_A))
    with pytest.raises(TransitionError, match="needs 1 approval\\(s\\) before it starts"):
        act(control, transition, action="start", actor="alice")
    assert status(control) == "draft"


def test_two_approvals_need_two_distinct_people(control: Control) -> None:
    settings(control, min_approvals=2, allow_any_approver=True)
    control.sync(catalog(EXPERIMENT_A))
    act(control, submit, actor="alice")
    assert act(control, approve, approver="bob") is False
    assert status(control) == "in_review"
    with pytest.raises(TransitionError, match="'bob' already approved"):
        act(control, approve, approver="bob")
    assert act(control, approve, approver="carol") is True
    assert status(control) == "approved"


def test_a_catalog_start_date_waits_for_the_review(control: Control) -> None:
    settings(control, min_approvals=1, allow_any_approver=True)
    dated = experiment(EXPERIMENT_A, start_date="2026-11-01T00:00:00Z")

    report = control.sync(catalog(dated))
    assert report.awaiting_approval == ["exp-a"]
    assert report.started == []
    assert "awaiting approval exp-a" in report.lines()
    act(control, submit, actor="alice")
    assert control.sync(catalog(dated)).awaiting_approval == ["exp-a"]
    act(control, approve, approver="bob")

    assert control.sync(catalog(dated)).started == ["exp-a"]
    assert status(control) == "running"


def test_changing_variants_after_approval_sends_it_back_to_review(control: Control) -> None:
    settings(control, min_approvals=1, allow_any_approver=True)
    control.sync(catalog(EXPERIMENT_A))
    act(control, submit, actor="alice")
    act(control, approve, approver="bob")
    resplit = experiment(
        EXPERIMENT_A,
        variants=[
            {"key": "control", "name": "Control", "rollout_percentage": 60},
            {"key": "test", "name": "Test", "rollout_percentage": 40},
        ],
    )

    report = control.sync(catalog(resplit))

    assert report.returned_to_review == ["exp-a"]
    assert status(control) == "in_review"
    with control.db.session() as session:
        assert approvals_in_round(session, get_live_experiment(session, "exp-a")) == []
    assert act(control, approve, approver="bob") is True  # a new round: bob may approve again


def test_without_review_settings_a_dated_draft_starts_directly(control: Control) -> None:
    report = control.sync(catalog(experiment(EXPERIMENT_A, start_date="2026-11-01")))
    assert report.started == ["exp-a"]


def test_the_catalog_owner_cannot_approve(control: Control) -> None:
    settings(control, min_approvals=1, allow_any_approver=True)
    control.sync(catalog(experiment(EXPERIMENT_A, owner="dana")))
    act(control, submit, actor="alice")
    with pytest.raises(TransitionError, match="'dana' owns experiment 'exp-a'"):
        act(control, approve, approver="dana")
