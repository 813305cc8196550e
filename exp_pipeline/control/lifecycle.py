"""Experiment lifecycle: draft [-> in_review -> approved] -> running -> paused / completed.

Each transition is a compare-and-set on the status inside the caller's transaction, writes
one decision-log row, and keeps the feature flag consistent with the status: the flag
assigns variants only while the experiment is running.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from exp_pipeline.control.global_settings import get_setting
from exp_pipeline.control.models import DecisionLog, Experiment, FeatureFlag, Outcome, utcnow
from exp_pipeline.errors import TransitionError

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "submit": (frozenset({"draft"}), "in_review"),
    "approve": (frozenset({"in_review"}), "approved"),
    # A reviewed definition changed: review again (approvals of old rounds do not count).
    "reopen": (frozenset({"in_review", "approved"}), "in_review"),
    "start": (frozenset({"draft", "approved"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "complete": (frozenset({"running", "paused"}), "completed"),
}
OUTCOMES = ("shipped", "rollback", "inconclusive")


def get_live_experiment(session: Session, key: str) -> Experiment:
    """The experiment `key` that is not deleted, or a one-line error."""
    experiment = session.scalars(
        select(Experiment).where(Experiment.key == key, Experiment.deleted.is_(False))
    ).one_or_none()
    if experiment is None:
        raise TransitionError(f"experiment {key!r} does not exist")
    return experiment


def log_decision(
    session: Session,
    experiment: Experiment,
    action: str,
    *,
    actor: str,
    reason: str = "",
    from_status: str | None = None,
    to_status: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        DecisionLog(
            experiment_id=experiment.id,
            experiment_key=experiment.key,
            action=action,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            reason=reason,
            details=details or {},
        )
    )


def transition(
    session: Session,
    experiment: Experiment,
    action: str,
    *,
    actor: str,
    reason: str = "",
    outcome: str | None = None,
    winner: str | None = None,
    decision_key: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Apply lifecycle `action` to `experiment`, or raise TransitionError and change nothing.

    The status update is conditional on the status read, and the changed-row count is
    checked, so a concurrent change between read and write is refused, not overwritten.
    """
    if action not in TRANSITIONS:
        raise TransitionError(
            f"unknown lifecycle action {action!r} (known: {', '.join(sorted(TRANSITIONS))})"
        )
    allowed_from, to_status = TRANSITIONS[action]
    from_status = experiment.status
    if experiment.deleted:
        raise TransitionError(f"experiment {experiment.key!r} is deleted")
    if from_status not in allowed_from:
        raise TransitionError(
            f"can't {action} experiment {experiment.key!r} from {from_status} to {to_status} "
            f"(allowed from: {', '.join(sorted(allowed_from))})"
        )
    if action == "start" and from_status == "draft":
        required = get_setting(session, "min_approvals")
        if required > 0:
            raise TransitionError(
                f"experiment {experiment.key!r} needs {required} approval(s) before it starts: "
                "submit it for review"
            )
    variant_keys = [v.key for v in experiment.variants]
    if action == "complete":
        if outcome not in OUTCOMES:
            raise TransitionError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        if winner is not None and winner not in variant_keys:
            raise TransitionError(
                f"winner {winner!r} is not a variant of {experiment.key!r} "
                f"({', '.join(variant_keys)})"
            )
    changed = session.execute(
        update(Experiment)
        .where(Experiment.id == experiment.id, Experiment.status == from_status)
        .values(status=to_status, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise TransitionError(
            f"experiment {experiment.key!r} changed status concurrently; nothing was done"
        )
    session.refresh(experiment)
    flag = session.get(FeatureFlag, experiment.feature_flag_id)
    assert flag is not None
    flag.active = to_status == "running"
    if action == "complete":
        flag.served_variant = winner
        session.add(
            Outcome(
                experiment_id=experiment.id,
                outcome=outcome,
                winner=winner,
                decided_by=actor,
                decision_key=decision_key or f"{action}:{experiment.id}:{uuid.uuid4().hex}",
            )
        )
    log_decision(
        session,
        experiment,
        action,
        actor=actor,
        reason=reason,
        from_status=from_status,
        to_status=to_status,
        details={
            **({"outcome": outcome, "winner": winner} if action == "complete" else {}),
            **({"decision_key": decision_key} if decision_key else {}),
            **(details or {}),
        },
    )


def soft_delete(session: Session, experiment: Experiment, *, actor: str, reason: str = "") -> None:
    """Delete an experiment and its flag softly: history stays, the flag key becomes free."""
    experiment.deleted = True
    flag = session.get(FeatureFlag, experiment.feature_flag_id)
    assert flag is not None
    flag.deleted = True
    flag.active = False
    log_decision(
        session, experiment, "delete", actor=actor, reason=reason, from_status=experiment.status
    )
