"""The flags snapshot: the control database's flag state as one versioned JSON document.

Applications never query the control database per request: they load this document and
evaluate it locally with `decide` (or an SDK implementing docs/flags.md), so the snapshot
carries everything a decision needs and nothing else.

Versioning: `version` is the number of rows in the append-only decision log. Every change
of status or definition appends a row, and rows are never deleted, so a later snapshot
never has a smaller version. The count is used rather than the largest id because ids can
commit out of order on PostgreSQL (a transaction holding id 5 may commit after one holding
id 6 was read), which would leave the largest id unchanged across a real change; the count
always grows. The version is read before the flags, so a snapshot's content is at least as
new as its version claims. Changing a global setting (the kill switch) appends a log row
too, so flipping `experiments_enabled` gives a new version like any other decision.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from exp_pipeline.catalog import Catalog
from exp_pipeline.control.global_settings import get_setting
from exp_pipeline.control.models import STATUSES, DecisionLog, Experiment, FeatureFlag
from exp_pipeline.errors import FlagError
from exp_pipeline.timeutil import iso_utc

FORMAT = 1
DEFAULT_VARIANT = "control"

FLAG_FIELDS = (
    "experiment_key",
    "status",
    "seed",
    "traffic",
    "variants",
    "default_variant",
    "served_variant",
    "outcome",
    "forced",
    "subject_type",
    "assignment_version",
)
_WEIGHT_TOLERANCE = 1e-9


def _entry(
    key: str,
    status: str,
    traffic_percentage: float,
    variants: list[tuple[str, float]],
    forced: dict[str, str],
    subject_type: str,
    assignment_version: int,
    served_variant: str | None = None,
    outcome: str | None = None,
) -> dict[str, Any]:
    """One flag's entry, in the field order of FLAG_FIELDS; percentages become fractions."""
    return {
        "experiment_key": key,
        "status": status,
        "seed": key,
        "traffic": traffic_percentage / 100,
        "variants": [{"key": k, "weight": percentage / 100} for k, percentage in variants],
        "default_variant": DEFAULT_VARIANT,
        "served_variant": served_variant,
        "outcome": outcome,
        "forced": forced,
        "subject_type": subject_type,
        "assignment_version": assignment_version,
    }


def flag_entry(experiment: Experiment) -> dict[str, Any]:
    """One flag's entry: what `decide` needs to answer for the experiment behind it."""
    return _entry(
        experiment.key,
        experiment.status,
        experiment.traffic_percentage,
        [(v.key, v.rollout_percentage) for v in experiment.variants],
        {f.subject_id: f.variant_key for f in experiment.forced},
        experiment.subject_type,
        experiment.assignment_version,
        served_variant=experiment.feature_flag.served_variant,
        outcome=None if experiment.outcome is None else experiment.outcome.outcome,
    )


def preview_snapshot(catalog: Catalog) -> dict[str, Any]:
    """The snapshot the catalog's experiments would give once all of them run, with no
    database: what a simulation (the demo generator) assigns its synthetic subjects with."""
    return {
        "format": FORMAT,
        "version": 0,
        "generated_at": None,
        "decided_at": None,
        "experiments_enabled": True,
        "flags": {
            e.feature_flag_key: _entry(
                e.key,
                "running",
                e.traffic_percentage,
                [(v.key, v.rollout_percentage) for v in e.variants],
                dict(e.forced),
                e.subject_type,
                1,
            )
            for e in catalog.experiments
        },
    }


def snapshot_state(session: Session) -> tuple[int, bool]:
    """(version, experiments_enabled): what a new snapshot would differ by."""
    version = session.scalar(select(func.count(DecisionLog.id)))
    return int(version or 0), bool(get_setting(session, "experiments_enabled"))


def build_snapshot(
    session: Session, version: int | None = None, generated_at: datetime | None = None
) -> dict[str, Any]:
    """The snapshot of every live flag, read from the control database in `session`.

    Drafts and paused experiments are included with their status so that `decide` answers
    `not_running` for them instead of `unknown_flag`. `version` defaults to the decision-log
    count (see the module docstring) and `generated_at` to now; pass them to pin a document.
    """
    log_count, enabled = snapshot_state(session)
    newest = session.scalar(select(func.max(DecisionLog.at)))
    experiments = session.scalars(
        select(Experiment)
        .join(FeatureFlag, Experiment.feature_flag_id == FeatureFlag.id)
        .where(Experiment.deleted.is_(False), FeatureFlag.deleted.is_(False))
        .options(
            selectinload(Experiment.variants),
            selectinload(Experiment.outcome),
            selectinload(Experiment.forced),
        )
        .order_by(FeatureFlag.key)
    )
    return {
        "format": FORMAT,
        "version": log_count if version is None else version,
        "generated_at": iso_utc(generated_at or datetime.now(UTC)),
        "decided_at": iso_utc(newest),
        "experiments_enabled": enabled,
        "flags": {e.feature_flag.key: flag_entry(e) for e in experiments},
    }


def _check_entry(flag: str, entry: Any) -> None:
    where = f"flags snapshot: flag {flag!r}"
    if not isinstance(entry, dict):
        raise FlagError(f"{where}: must be an object")
    missing = [name for name in FLAG_FIELDS if name not in entry]
    if missing:
        raise FlagError(f"{where}: missing {', '.join(missing)}")
    if entry["status"] not in STATUSES:
        raise FlagError(f"{where}: status must be one of {', '.join(STATUSES)}")
    traffic = entry["traffic"]
    if isinstance(traffic, bool) or not isinstance(traffic, int | float) or not 0 <= traffic <= 1:
        raise FlagError(f"{where}: traffic must be a number from 0 to 1, not {traffic!r}")
    variants = entry["variants"]
    if not isinstance(variants, list) or not variants:
        raise FlagError(f"{where}: variants must be a non-empty list")
    if not all(isinstance(v, dict) and isinstance(v.get("key"), str) for v in variants):
        raise FlagError(f"{where}: every variant needs a string key")
    weights = [v.get("weight") for v in variants]
    if any(isinstance(w, bool) or not isinstance(w, int | float) or w < 0 for w in weights):
        raise FlagError(f"{where}: every variant needs a weight of 0 or more")
    if not math.isclose(sum(weights), 1.0, abs_tol=_WEIGHT_TOLERANCE):
        raise FlagError(f"{where}: variant weights must sum to 1, not {sum(weights)!r}")
    forced = entry["forced"]
    if not isinstance(forced, dict) or not all(isinstance(k, str) for k in forced):
        raise FlagError(f"{where}: forced must map subject ids to variant keys")
    keys = {v["key"] for v in variants}
    if entry["default_variant"] not in keys:
        raise FlagError(f"{where}: default_variant must be one of its variants")
    chosen = [entry["default_variant"], entry["served_variant"], *forced.values()]
    unknown = sorted({k for k in chosen if k is not None and k not in keys})
    if unknown:
        raise FlagError(f"{where}: {', '.join(map(repr, unknown))} is not one of its variants")
    subject_type = entry["subject_type"]
    if not isinstance(subject_type, str) or not subject_type:
        raise FlagError(f"{where}: subject_type must be a non-empty string")
    version = entry["assignment_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FlagError(f"{where}: assignment_version must be an integer of 1 or more")


def validate_snapshot(document: Any) -> dict[str, Any]:
    """Return `document` if it is a flags snapshot `decide` can evaluate, else FlagError.

    Applications call this once when they load a snapshot, so `decide` itself can stay a
    cheap lookup and never meet a half-formed entry per request.
    """
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise FlagError(f"flags snapshot: expected an object with format {FORMAT}")
    if isinstance(document.get("version"), bool) or not isinstance(document.get("version"), int):
        raise FlagError("flags snapshot: version must be an integer")
    if not isinstance(document.get("experiments_enabled"), bool):
        raise FlagError("flags snapshot: experiments_enabled must be true or false")
    if not isinstance(document.get("flags"), dict):
        raise FlagError("flags snapshot: flags must be an object")
    for flag, entry in document["flags"].items():
        _check_entry(flag, entry)
    return document


def parse_snapshot(text: str) -> dict[str, Any]:
    """Parse and validate a snapshot's JSON text, as an application loading it would."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlagError(f"flags snapshot: invalid JSON: {exc}") from None
    return validate_snapshot(document)


def write_snapshot(document: dict[str, Any], path: str | Path) -> Path:
    """Write `document` to `path` atomically: a reader sees the old file or the new one,
    never half of one, even while it polls the path for updates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(document, indent=2) + "\n")
        # mkstemp creates the file private; applications run as other users and must read it.
        os.chmod(scratch, 0o644)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return path
