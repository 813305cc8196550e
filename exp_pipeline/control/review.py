"""Launch review: submit an experiment, collect approvals, and only then start it.

With the global setting `min_approvals` at 0 (the default) there is no review: a draft
starts directly. Above 0, a draft must be submitted (draft -> in_review), approved by
that many distinct people (-> approved), and only then starts. An owner never approves
their own experiment; unless `allow_any_approver` is true, approvers must be listed in
the `approvers` setting. Every step writes the decision log; a reviewed definition that
changes goes back to review with a new round, so earlier approvals no longer count.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exp_pipeline.control.global_settings import get_setting
from exp_pipeline.control.lifecycle import log_decision, transition
from exp_pipeline.control.models import Approval, Experiment
from exp_pipeline.errors import TransitionError


def submit(session: Session, experiment: Experiment, *, actor: str, reason: str = "") -> None:
    """Send a draft to review; the submitter owns it unless the catalog names an owner."""
    transition(session, experiment, "submit", actor=actor, reason=reason)
    if experiment.owner is None:
        experiment.owner = actor


def approvals_in_round(session: Session, experiment: Experiment) -> list[str]:
    return list(
        session.scalars(
            select(Approval.approver)
            .where(
                Approval.experiment_id == experiment.id,
                Approval.review_round == experiment.review_round,
            )
            .order_by(Approval.approver)
        )
    )


def _check_approver(session: Session, experiment: Experiment, approver: str) -> None:
    if experiment.status != "in_review":
        raise TransitionError(
            f"can't approve experiment {experiment.key!r}: it is {experiment.status}, not in_review"
        )
    if approver == experiment.owner:
        raise TransitionError(
            f"{approver!r} owns experiment {experiment.key!r}: an owner never approves "
            "their own experiment"
        )
    if not get_setting(session, "allow_any_approver"):
        allowed = [a for a in get_setting(session, "approvers").split(",") if a]
        if approver not in allowed:
            listed = ", ".join(allowed) or "none configured"
            raise TransitionError(
                f"{approver!r} is not an approver (approvers: {listed}; set `approvers` or "
                "`allow_any_approver`)"
            )
    if approver in approvals_in_round(session, experiment):
        raise TransitionError(
            f"{approver!r} already approved experiment {experiment.key!r} in this review round"
        )


def approve(session: Session, experiment: Experiment, *, approver: str, reason: str = "") -> bool:
    """Record `approver`'s approval; return True when it completes the review."""
    _check_approver(session, experiment, approver)
    session.add(
        Approval(
            experiment_id=experiment.id, review_round=experiment.review_round, approver=approver
        )
    )
    session.flush()
    count = session.scalar(
        select(func.count())
        .select_from(Approval)
        .where(
            Approval.experiment_id == experiment.id,
            Approval.review_round == experiment.review_round,
        )
    )
    if count >= max(1, get_setting(session, "min_approvals")):
        transition(session, experiment, "approve", actor=approver, reason=reason)
        return True
    log_decision(
        session,
        experiment,
        "approve",
        actor=approver,
        reason=reason,
        from_status="in_review",
        to_status="in_review",
        details={"approvals": count, "review_round": experiment.review_round},
    )
    return False


def reopen_review(session: Session, experiment: Experiment, *, actor: str, reason: str) -> None:
    """A reviewed definition changed: start a new review round."""
    transition(session, experiment, "reopen", actor=actor, reason=reason)
    experiment.review_round += 1
