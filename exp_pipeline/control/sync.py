"""Syncing the experiment catalog into the control database.

The catalog is declarative: sync makes the control database match it, in one
transaction, and reports exactly what changed. What may change is limited by the
lifecycle: once an experiment has started, its variants, feature flag key and subject type
are frozen (the applications already assign subjects with them); other fields, traffic and
forced (QA) assignments included, can still change. A change that could move a subject to
another variant bumps the experiment's `assignment_version`, so decision ids issued before
and after it never collide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exp_pipeline.catalog import Catalog
from exp_pipeline.catalog import Experiment as ExperimentSpec
from exp_pipeline.control.global_settings import get_setting
from exp_pipeline.control.lifecycle import log_decision, soft_delete, transition
from exp_pipeline.control.models import (
    Experiment,
    FeatureFlag,
    ForcedAssignment,
    Guardrail,
    Metric,
    Variant,
)
from exp_pipeline.control.review import reopen_review
from exp_pipeline.errors import CatalogError

CATALOG_ACTOR = "catalog"
# Fields whose change can give a subject another variant: reviewed again, new assignment version.
ASSIGNMENT_FIELDS = frozenset({"feature_flag_key", "variants", "subject_type"})


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Has a start_date but its launch review is not complete: not started.
    awaiting_approval: list[str] = field(default_factory=list)
    # A reviewed definition changed (variants, allocation, flag): reviewed again.
    returned_to_review: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.started or self.deleted)

    def lines(self) -> list[str]:
        """Human-readable, one line per change, in a stable order."""
        out = [f"created {key}" for key in self.created]
        out += [f"updated {key}: {', '.join(fields)}" for key, fields in self.updated.items()]
        out += [f"started {key}" for key in self.started]
        out += [f"deleted {key}" for key in self.deleted]
        out += [f"back to review {key}" for key in self.returned_to_review]
        out += [f"awaiting approval {key}" for key in self.awaiting_approval]
        out.append(
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.started)} started, {len(self.deleted)} deleted, "
            f"{len(self.unchanged)} unchanged"
        )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "started": self.started,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "awaiting_approval": self.awaiting_approval,
            "returned_to_review": self.returned_to_review,
        }


def variant_rows(variants: list[Any]) -> list[dict[str, Any]]:
    """Catalog or stored variants in one comparable shape."""
    return [
        {"key": v.key, "name": v.name, "rollout_percentage": v.rollout_percentage} for v in variants
    ]


def _desired_fields(spec: ExperimentSpec, default_timezone: str) -> dict[str, Any]:
    start, end = spec.window(default_timezone)
    return {
        "name": spec.name,
        "description": spec.description,
        "start_date": start,
        "end_date": end,
        "timezone": spec.effective_timezone(default_timezone),
        "subject_type": spec.subject_type,
        "traffic_percentage": spec.traffic_percentage,
        "segments": [s.model_dump(mode="json") for s in spec.segments],
        **({"owner": spec.owner} if spec.owner is not None else {}),
    }


def _check_flag_key_free(session: Session, spec: ExperimentSpec, own_flag_id: int | None) -> None:
    flag = session.scalars(
        select(FeatureFlag).where(
            FeatureFlag.key == spec.feature_flag_key, FeatureFlag.deleted.is_(False)
        )
    ).one_or_none()
    if flag is not None and flag.id != own_flag_id:
        owner = session.scalars(
            select(Experiment.key).where(Experiment.feature_flag_id == flag.id)
        ).first()
        raise CatalogError(
            f"experiment {spec.key!r}: feature_flag_key {spec.feature_flag_key!r} is already "
            f"used by experiment {owner!r}"
        )


def _check_name_free(session: Session, spec: ExperimentSpec, own_id: int | None) -> None:
    other = session.scalars(
        select(Experiment.key).where(
            Experiment.name == spec.name, Experiment.deleted.is_(False), Experiment.id != own_id
        )
    ).first()
    if other is not None:
        raise CatalogError(
            f"experiment {spec.key!r}: name {spec.name!r} is already used by experiment {other!r}"
        )


def _build_variants(spec: ExperimentSpec) -> list[Variant]:
    return [
        Variant(key=v.key, name=v.name, rollout_percentage=v.rollout_percentage, position=i)
        for i, v in enumerate(spec.variants)
    ]


def _build_forced(spec: ExperimentSpec) -> list[ForcedAssignment]:
    return [
        ForcedAssignment(subject_id=subject, variant_key=variant)
        for subject, variant in sorted(spec.forced.items())
    ]


def _delete_children(session: Session, children: list[Any]) -> None:
    """Delete a child collection's rows now, before their replacements are inserted.

    The unit of work inserts before it deletes, so a replacement with the same
    (experiment_id, key) as an old row would otherwise violate the unique constraint.
    """
    children.clear()
    session.flush()


def _replace_metrics_and_guardrails(experiment: Experiment, spec: ExperimentSpec) -> None:
    experiment.metrics = [
        Metric(key=m.key, kind=m.kind, position=i, definition=m.model_dump(mode="json"))
        for i, m in enumerate(spec.metrics)
    ]
    experiment.guardrails = [
        Guardrail(
            metric_key=g.metric,
            threshold=g.threshold,
            observation_window_minutes=g.observation_window_minutes,
            action=g.action,
            position=i,
            definition=g.model_dump(mode="json"),
        )
        for i, g in enumerate(spec.guardrails)
    ]


def _create(session: Session, spec: ExperimentSpec, default_timezone: str) -> Experiment:
    _check_flag_key_free(session, spec, None)
    _check_name_free(session, spec, None)
    flag = FeatureFlag(key=spec.feature_flag_key, active=False)
    experiment = Experiment(
        key=spec.key, feature_flag=flag, status="draft", **_desired_fields(spec, default_timezone)
    )
    experiment.variants = _build_variants(spec)
    experiment.forced = _build_forced(spec)
    _replace_metrics_and_guardrails(experiment, spec)
    session.add(experiment)
    session.flush()
    log_decision(session, experiment, "create", actor=CATALOG_ACTOR, to_status="draft")
    return experiment


def _update(
    session: Session, experiment: Experiment, spec: ExperimentSpec, default_timezone: str
) -> list[str]:
    """Bring `experiment` in line with `spec`; return the names of the fields that changed."""
    changed: list[str] = []
    started = experiment.status in ("running", "paused", "completed")
    if experiment.feature_flag.key != spec.feature_flag_key:
        if started:
            raise CatalogError(
                f"experiment {spec.key!r}: Can't update feature_flag_key on Experiment "
                f"{spec.key!r}: it has started (status {experiment.status})"
            )
        _check_flag_key_free(session, spec, experiment.feature_flag_id)
        experiment.feature_flag.key = spec.feature_flag_key
        changed.append("feature_flag_key")
    if variant_rows(experiment.variants) != variant_rows(spec.variants):
        if started:
            raise CatalogError(
                f"experiment {spec.key!r}: Can't update feature_flag_variants on Experiment "
                f"{spec.key!r}: it has started (status {experiment.status})"
            )
        _delete_children(session, experiment.variants)
        experiment.variants = _build_variants(spec)
        changed.append("variants")
    desired = _desired_fields(spec, default_timezone)
    if started and desired["subject_type"] != experiment.subject_type:
        raise CatalogError(
            f"experiment {spec.key!r}: Can't update subject_type on Experiment {spec.key!r}: "
            f"it has started (status {experiment.status})"
        )
    if started and desired["start_date"] is None:
        raise CatalogError(
            f"experiment {spec.key!r}: start_date can't be removed: it has started "
            f"(status {experiment.status})"
        )
    if desired["name"] != experiment.name:
        _check_name_free(session, spec, experiment.id)
    for name, value in desired.items():
        if getattr(experiment, name) != value:
            setattr(experiment, name, value)
            changed.append(name)
    if {f.subject_id: f.variant_key for f in experiment.forced} != spec.forced:
        _delete_children(session, experiment.forced)
        experiment.forced = _build_forced(spec)
        changed.append("forced")
    if ASSIGNMENT_FIELDS & set(changed):
        experiment.assignment_version += 1
    stored_metrics = [m.definition for m in experiment.metrics]
    stored_guardrails = [g.definition for g in experiment.guardrails]
    spec_metrics = [m.model_dump(mode="json") for m in spec.metrics]
    spec_guardrails = [g.model_dump(mode="json") for g in spec.guardrails]
    if stored_metrics != spec_metrics or stored_guardrails != spec_guardrails:
        _delete_children(session, experiment.metrics)
        _delete_children(session, experiment.guardrails)
        _replace_metrics_and_guardrails(experiment, spec)
        if stored_metrics != spec_metrics:
            changed.append("metrics")
        if stored_guardrails != spec_guardrails:
            changed.append("guardrails")
    if changed:
        session.flush()
        log_decision(
            session,
            experiment,
            "update",
            actor=CATALOG_ACTOR,
            from_status=experiment.status,
            to_status=experiment.status,
            details={"fields": changed},
        )
    return changed


def sync_catalog(session: Session, catalog: Catalog, *, prune: bool = False) -> SyncReport:
    """Upsert every catalog experiment; with `prune`, soft-delete those no longer in it.

    Runs inside the caller's transaction: on any CatalogError nothing is written.
    """
    report = SyncReport()
    live = {
        e.key: e for e in session.scalars(select(Experiment).where(Experiment.deleted.is_(False)))
    }
    if prune:
        # Deleting first frees flag keys and names that the catalog may now reuse.
        for key in sorted(set(live) - {spec.key for spec in catalog.experiments}):
            soft_delete(session, live.pop(key), actor=CATALOG_ACTOR, reason="not in the catalog")
            report.deleted.append(key)
        session.flush()
    for spec in catalog.experiments:
        experiment = live.get(spec.key)
        if experiment is None:
            experiment = _create(session, spec, catalog.timezone)
            report.created.append(spec.key)
        else:
            fields = _update(session, experiment, spec, catalog.timezone)
            if fields:
                report.updated[spec.key] = fields
            else:
                report.unchanged.append(spec.key)
        reviewed = ASSIGNMENT_FIELDS & set(report.updated.get(spec.key, []))
        if experiment.status in ("in_review", "approved") and reviewed:
            reopen_review(
                session,
                experiment,
                actor=CATALOG_ACTOR,
                reason=f"changed after review: {', '.join(sorted(reviewed))}",
            )
            report.returned_to_review.append(spec.key)
        if experiment.start_date is None:
            continue
        ready = experiment.status == "approved" or (
            experiment.status == "draft" and get_setting(session, "min_approvals") == 0
        )
        if ready:
            transition(
                session, experiment, "start", actor=CATALOG_ACTOR, reason="start_date is set"
            )
            report.started.append(spec.key)
        elif experiment.status in ("draft", "in_review"):
            report.awaiting_approval.append(spec.key)
    session.flush()
    return report
