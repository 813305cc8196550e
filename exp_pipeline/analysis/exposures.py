"""Exposures: which subjects are in an experiment, in which variant, since when.

Rules (ARCHITECTURE "Experiment windows and attribution"): a subject's flag signals are
the `flag_assignments` rows of the experiment's flag (a `$feature/<flag>` property on any
event, or a `$feature_flag_called` event). Only signals inside the window `[start, end]`
from events that are neither bots nor Do-Not-Track count. A subject with a counted signal
marked as a QA override (`$feature_flag_forced` / `force_experiment`, flagged at load) is
excluded (`forced`): it was not randomly assigned. A subject whose counted signals
name two or more variants is excluded (`multiple_variants`, found with min <> max so any
engine gives the same answer); one naming a variant the experiment does not define is
excluded (`unknown_variant`); otherwise the subject is exposed to that variant from its
first counted signal (first touch). Every other subject is counted once under the first
reason that applies: `bot`, `dnt` (signals in the window only from such events),
`out_of_window` (signals only outside it), `no_flag` (events in the window, no signal).

The SQL is `engines/sql/exposure_classes.sql` (staged once), `exposures.sql` and
`exposure_exclusions.sql`, in DuckDB's dialect; it runs unchanged on any `Engine`.
"""

from __future__ import annotations

from dataclasses import dataclass

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.group_exposures import build_group_exposures
from exp_pipeline.engines.base import Warehouse, as_engine
from exp_pipeline.engines.sql import statement

EXCLUSION_REASONS = (
    "forced",
    "unknown_variant",
    "multiple_variants",
    "out_of_window",
    "bot",
    "dnt",
    "no_flag",
)


@dataclass(frozen=True)
class ExposureSummary:
    """Exposed subjects per variant (every defined variant, zeros included) and exclusions."""

    experiment_key: str
    exposures: dict[str, int]
    excluded: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.exposures.values())

    @property
    def flagged(self) -> int:
        """Subjects with a counted flag signal: exposed, forced, or in several or unknown
        variants."""
        excluded = ("forced", "multiple_variants", "unknown_variant")
        return self.total + sum(self.excluded[reason] for reason in excluded)


def build_exposures(warehouse: Warehouse, experiment: ExperimentDefinition) -> ExposureSummary:
    """Replace `experiment`'s rows of `exposures` and `exposure_exclusions`; summarise them.

    The classification is staged once and read by both inserts (sql/exposure_classes.sql).
    The group exposures of grouped metrics are rebuilt from the new rows (group_exposures).
    """
    engine = as_engine(warehouse)
    params = {
        "flag": experiment.flag_key,
        "start": experiment.start_utc,
        "end": experiment.end_utc,
        "key": experiment.key,
        "timezone": experiment.timezone,
    }
    with (
        engine.replacing(experiment.key, "exposures", "exposure_exclusions"),
        engine.staged("exposure_classes", statement("exposure_classes"), params),
    ):
        engine.insert("exposures", statement("exposures"), params)
        engine.insert("exposure_exclusions", statement("exposure_exclusions"), params)
    build_group_exposures(engine, experiment)  # the groups of grouped metrics, from these
    return read_exposure_summary(engine, experiment)


def read_exposure_summary(
    warehouse: Warehouse, experiment: ExperimentDefinition
) -> ExposureSummary:
    engine = as_engine(warehouse)
    key = {"key": experiment.key}
    counts = dict(engine.fetch(statement("exposure_counts"), key))
    excluded = dict(engine.fetch(statement("exclusion_counts"), key))
    return ExposureSummary(
        experiment_key=experiment.key,
        exposures={v: int(counts.get(v, 0)) for v in experiment.variants},
        excluded={r: int(excluded.get(r, 0)) for r in EXCLUSION_REASONS},
    )
