"""`decide`: which variant a subject gets for a flag, from a flags snapshot alone.

A pure function of (snapshot, flag, subject, attributes): no clock, no database, no
randomness, so the CLI, the pipeline and any SDK implementing docs/flags.md answer the
same for the same snapshot. The first rule that applies wins, in this order:

1. `unknown_flag`: the flag is not in the snapshot (variant null).
2. `experiments_disabled`: the kill switch is off; the default variant for everyone.
3. `do_not_track`: the subject asked not to be tracked (`$dnt` / `dnt` true or 1, as the
   event loader reads it); the default variant, never enrolled, no decision id.
4. `forced`: the subject is in the flag's forced map (a QA override); that variant, outside
   the experiment's random sample.
5. `rolled_back` / `completed`: the experiment ended and serves one variant to everyone;
   `rolled_back` after a rollback outcome, `completed` after any other.
6. `not_running`: any status but running (draft, in review, approved, paused), or completed
   without a served variant; the default variant.
7. `not_in_traffic`: the subject's traffic bucket is outside the traffic fraction.
8. `experiment_assigned`: the variant from the subject's variant bucket.

Only `experiment_assigned` puts the subject in the experiment (`in_experiment`), so the
analysis counts randomly assigned subjects only. Every answer tied to an experiment, except
`do_not_track`, carries a decision id so an exposure event can be checked against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from exp_pipeline.errors import FlagError
from exp_pipeline.flags.hashing import choose_variant, decision_id, in_traffic
from exp_pipeline.flags.snapshot import FORMAT

UNKNOWN_FLAG = "unknown_flag"
EXPERIMENTS_DISABLED = "experiments_disabled"
DO_NOT_TRACK = "do_not_track"
FORCED = "forced"
ROLLED_BACK = "rolled_back"
COMPLETED = "completed"
NOT_RUNNING = "not_running"
NOT_IN_TRAFFIC = "not_in_traffic"
EXPERIMENT_ASSIGNED = "experiment_assigned"

# Every reason, in the order `decide` applies its rules (rolled_back and completed share 5).
REASONS = (
    UNKNOWN_FLAG,
    EXPERIMENTS_DISABLED,
    DO_NOT_TRACK,
    FORCED,
    ROLLED_BACK,
    COMPLETED,
    NOT_RUNNING,
    NOT_IN_TRAFFIC,
    EXPERIMENT_ASSIGNED,
)

DEFAULT_SUBJECT_TYPE = "user"
_DNT_KEYS = ("$dnt", "dnt")
_DNT_WORDS = ("1", "true")


@dataclass(frozen=True)
class Decision:
    """One answer: the variant to serve, why, and whether the subject is in the experiment."""

    flag: str
    variant: str | None
    reason: str
    decision_id: str | None
    in_experiment: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_do_not_track(attributes: Mapping[str, Any] | None) -> bool:
    """Whether the subject's attributes ask not to be tracked.

    Mirrors the event loader, `lower(coalesce($dnt, dnt) as JSON text) IN ('1', 'true')`,
    so a subject whose events the loader would exclude is never enrolled in the first place.
    """
    values = [(attributes or {}).get(key) for key in _DNT_KEYS]
    value = next((v for v in values if v is not None), None)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return isinstance(value, str) and value.lower() in _DNT_WORDS


def decide(
    snapshot: Mapping[str, Any],
    flag: str,
    subject: str,
    attributes: Mapping[str, Any] | None = None,
    subject_type: str = DEFAULT_SUBJECT_TYPE,
) -> Decision:
    """The decision for `subject` on `flag` under `snapshot` (validated when it was loaded).

    `subject_type` says what kind of id `subject` is (`user`, `cookie`, `device`, or a group
    type such as `organization`). A flag assigns one kind only: hashing a cookie id for an
    experiment randomised by user would split one person across variants as they switch
    devices, so a mismatch is refused rather than answered.
    """
    if snapshot.get("format") != FORMAT:
        raise FlagError(f"flags snapshot: expected format {FORMAT}, got {snapshot.get('format')!r}")
    if not isinstance(subject, str) or not subject:
        raise FlagError("the subject id must be a non-empty string")
    entry = snapshot["flags"].get(flag)
    if entry is None:
        return Decision(flag, None, UNKNOWN_FLAG, None, in_experiment=False)
    if subject_type != entry["subject_type"]:
        raise FlagError(
            f"flag {flag!r} assigns by {entry['subject_type']} id, but {subject!r} was given "
            f"as a {subject_type} id (pass --subject-type {entry['subject_type']} with the "
            f"subject's {entry['subject_type']} id)"
        )

    def answer(variant: str, reason: str, *, in_experiment: bool = False) -> Decision:
        key = decision_id(entry["experiment_key"], subject, variant, entry["assignment_version"])
        return Decision(flag, variant, reason, key, in_experiment)

    default = entry["default_variant"]
    if not snapshot["experiments_enabled"]:
        return answer(default, EXPERIMENTS_DISABLED)
    if is_do_not_track(attributes):
        return Decision(flag, default, DO_NOT_TRACK, None, in_experiment=False)
    if subject in entry["forced"]:
        return answer(entry["forced"][subject], FORCED)
    if entry["served_variant"] is not None:
        reason = ROLLED_BACK if entry["outcome"] == "rollback" else COMPLETED
        return answer(entry["served_variant"], reason)
    if entry["status"] != "running":
        return answer(default, NOT_RUNNING)
    if not in_traffic(entry["seed"], subject, entry["traffic"]):
        return answer(default, NOT_IN_TRAFFIC)
    weights = [(v["key"], v["weight"]) for v in entry["variants"]]
    return answer(
        choose_variant(entry["seed"], subject, weights), EXPERIMENT_ASSIGNED, in_experiment=True
    )
