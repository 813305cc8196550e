"""Writing guardrail decisions to the control database: once, completely, or not at all.

A decision is one transaction (on SQLite `BEGIN IMMEDIATE`, so concurrent deciders queue
on the busy timeout instead of both reading `running`):

1. the kill switch and the experiment's status are read inside the transaction;
2. the lifecycle transition is a compare-and-set (`... WHERE status = 'running'`, the
   changed-row count checked), writing the decision log and, for a rollback, the outcome
   (`rollback`, winner `control`, the flag serving control to everyone);
3. the trigger row is inserted with a unique decision key.

Two deciders racing on the same look produce one decision: the loser either finds the
experiment no longer running or collides on the decision key, and its transaction rolls
back whole. A process killed between the steps leaves nothing, because nothing commits
until all three are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from exp_pipeline.control.db import ControlDatabase
from exp_pipeline.control.global_settings import get_setting
from exp_pipeline.control.lifecycle import transition
from exp_pipeline.control.models import Experiment, GuardrailTrigger
from exp_pipeline.errors import TransitionError
from exp_pipeline.guardrails.evaluate import Evaluation, Firing
from exp_pipeline.timeutil import iso_utc, to_utc_instant

GUARDRAIL_ACTOR = "guardrail"


@dataclass(frozen=True)
class Decision:
    """What writing one evaluation did."""

    experiment_key: str
    outcome: str  # paused | rolled_back | held | already_decided | not_running | disabled | none
    decision_key: str | None = None
    firing: Firing | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        firing = self.firing
        return {
            "experiment_key": self.experiment_key,
            "outcome": self.outcome,
            "decision_key": self.decision_key,
            "reason": self.reason,
            "metric_key": firing.metric_key if firing else None,
            "variant": firing.variant if firing else None,
            "value": firing.value if firing else None,
            "threshold": firing.threshold if firing else None,
            "action": firing.action if firing else None,
            "window": [firing.window_start, firing.window_end] if firing else None,
        }


def decision_key(experiment_id: int, firing: Firing, looked_at: datetime) -> str:
    """Identifies one decision: the same look at the same data always yields the same key."""
    return (
        f"guardrail:{experiment_id}:{firing.metric_key}:{firing.variant}:{firing.action}:"
        f"{iso_utc(looked_at)}"
    )


def _trigger(
    experiment: Experiment, key: str, firing: Firing | None, kind: str, reason: str
) -> GuardrailTrigger:
    return GuardrailTrigger(
        decision_key=key,
        experiment_id=experiment.id,
        experiment_key=experiment.key,
        kind=kind,
        action=firing.action if firing else "hold",
        metric_key=firing.metric_key if firing else None,
        variant=firing.variant if firing else None,
        value=firing.value if firing else None,
        threshold=firing.threshold if firing else None,
        observation_window_minutes=firing.observation_window_minutes if firing else None,
        window_start=to_utc_instant(firing.window_start, "UTC") if firing else None,
        window_end=to_utc_instant(firing.window_end, "UTC") if firing else None,
        reason=reason,
        details=firing.details if firing else {},
    )


def apply_evaluation(
    db: ControlDatabase,
    experiment_id: int,
    evaluation: Evaluation,
    looked_at: datetime,
    *,
    actor: str = GUARDRAIL_ACTOR,
) -> Decision:
    """Write `evaluation` of experiment `experiment_id` (made on data as of `looked_at`)."""
    key = evaluation.experiment_key
    firing = evaluation.decision
    if evaluation.hold_reason is None and firing is None:
        return Decision(key, "none", reason="; ".join(evaluation.notes))
    try:
        with db.session() as session:
            if not get_setting(session, "experiments_enabled"):
                return Decision(key, "disabled", reason="experiments_enabled is false")
            experiment = session.get(Experiment, experiment_id)
            if experiment is None or experiment.deleted or experiment.status != "running":
                status = (
                    "deleted" if experiment is None or experiment.deleted else experiment.status
                )
                return Decision(key, "not_running", reason=f"experiment is {status}")
            if evaluation.hold_reason is not None:
                hold_key = f"health:{experiment_id}:{iso_utc(looked_at)}"
                session.add(_trigger(experiment, hold_key, None, "warning", evaluation.hold_reason))
                session.flush()
                return Decision(key, "held", hold_key, reason=evaluation.hold_reason)
            assert firing is not None
            fired_key = decision_key(experiment_id, firing, looked_at)
            reason = (
                f"guardrail {firing.metric_key}: {firing.variant} at {firing.value:.4g} "
                f"breached {firing.threshold:g} over {firing.window_start} .. {firing.window_end}"
            )
            if firing.action == "rollback":
                transition(
                    session,
                    experiment,
                    "complete",
                    actor=actor,
                    reason=reason,
                    outcome="rollback",
                    winner="control",
                    decision_key=fired_key,
                    details={"guardrail": firing.metric_key, "variant": firing.variant},
                )
            else:
                transition(
                    session,
                    experiment,
                    "pause",
                    actor=actor,
                    reason=reason,
                    decision_key=fired_key,
                    details={"guardrail": firing.metric_key, "variant": firing.variant},
                )
            session.add(_trigger(experiment, fired_key, firing, "action", reason))
            session.flush()
    except IntegrityError:
        return Decision(key, "already_decided", reason="this look was already decided")
    except TransitionError as exc:
        return Decision(key, "not_running", reason=str(exc))
    outcome = "rolled_back" if firing.action == "rollback" else "paused"
    return Decision(key, outcome, fired_key, firing, reason)
