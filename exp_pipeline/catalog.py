"""The experiment catalog (`config/experiments.yaml`): schema, validation and loading.

The catalog is experiments as code. Its schema is a set of pydantic models with
`extra="forbid"`, so a misspelt field is an error rather than silently ignored, and every
failure is reported as one line naming the file, the experiment and the field.
"""

from __future__ import annotations

import contextlib
import math
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from exp_pipeline.errors import CatalogError
from exp_pipeline.timeutil import to_utc_instant, zone

KEY_PATTERN = r"^[a-z0-9_-]+$"
# Which id a flag decision hashes: a person (`user`), an anonymous `cookie` or `device`,
# or a group type such as `organization` (PostHog's group analytics naming).
SUBJECT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*$"
FLAG_KEY_PATTERN = r"^[A-Za-z0-9_.-]+$"
EventName = Annotated[str, Field(min_length=1, max_length=400)]
Key = Annotated[str, Field(min_length=1, max_length=255, pattern=KEY_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Variant(_Model):
    key: Key
    name: str | None = Field(default=None, max_length=255)
    rollout_percentage: float = Field(ge=0, le=100)


class MetricPrior(_Model):
    """An informative prior: `weight` pseudo-subjects whose metric averages `mean` per
    subject (a conversion rate, events per subject, or the metric's mean or ratio)."""

    mean: float = Field(allow_inf_nan=False)
    weight: float = Field(gt=0, allow_inf_nan=False)


def _unset(value: object) -> bool:
    """Optional analysis settings left out are not stored, so older definitions match."""
    return value is None


class Cuped(_Model):
    """CUPED: adjust the metric by each subject's value of it over the `lookback_days`
    before its first exposure (exp_pipeline.analysis.cuped_sums)."""

    lookback_days: float = Field(default=14, gt=0, le=365, allow_inf_nan=False)


class _MetricBase(_Model):
    key: Key
    # Which unit a metric counts: `person` (distinct_id), or a group type named in the events'
    # `$groups` (free-form, an identifier like subject types); docs/groups.md.
    aggregation: str = Field(default="person", max_length=100, pattern=SUBJECT_TYPE_PATTERN)
    # Flat when unset (the reference results); see exp_pipeline.stats.priors.
    prior: MetricPrior | None = Field(default=None, exclude_if=_unset)
    # A second, variance-reduced verdict beside the unadjusted one.
    cuped: Cuped | None = Field(default=None, exclude_if=_unset)

    @model_validator(mode="after")
    def _check_cuped(self) -> _MetricBase:
        if getattr(self, "kind", None) == "ratio" and self.cuped is not None:
            raise ValueError(
                "cuped: not available for ratio metrics (their covariate would be a "
                "pre-exposure numerator and denominator pair); use it on funnel, trend or "
                "continuous metrics"
            )
        if self.cuped is not None and self.aggregation != "person":
            raise ValueError(
                f"cuped: available for per-person metrics only, not aggregation "
                f"{self.aggregation!r} (a group's pre-exposure value is not defined)"
            )
        return self

    @model_validator(mode="after")
    def _check_prior(self) -> _MetricBase:
        kind = getattr(self, "kind", None)
        if self.prior is None:
            return self
        if kind == "funnel" and not 0 < self.prior.mean < 1:
            raise ValueError(
                f"prior.mean: a funnel's prior mean is a conversion rate strictly between "
                f"0 and 1, not {self.prior.mean:g}"
            )
        if kind == "trend" and self.prior.mean <= 0:
            raise ValueError(
                f"prior.mean: a trend's prior mean is events per subject and must be "
                f"positive, not {self.prior.mean:g}"
            )
        return self


class FunnelMetric(_MetricBase):
    kind: Literal["funnel"]
    steps: list[EventName] = Field(min_length=1)
    conversion_window_hours: float | None = Field(default=None, gt=0)


class TrendMetric(_MetricBase):
    kind: Literal["trend"]
    event: EventName
    math: Literal["total", "avg_count_per_actor"] = "total"


class RatioMetric(_MetricBase):
    kind: Literal["ratio"]
    numerator: EventName
    denominator: EventName
    direction: Literal["lower_is_better", "higher_is_better"] = "higher_is_better"
    # Caps each subject's numerator count at this percentile of all subjects' counts.
    winsorize_percentile: float | None = Field(default=None, gt=50, lt=100, exclude_if=_unset)


class ContinuousMetric(_MetricBase):
    kind: Literal["continuous"]
    event: EventName
    property: str = Field(min_length=1, max_length=400)
    winsorize_percentile: float | None = Field(default=None, gt=50, lt=100)
    direction: Literal["lower_is_better", "higher_is_better"] = "higher_is_better"
    # `hurdle`: also model the value as conversion times a log-normal order value
    # (exp_pipeline.stats.revenue_hurdle), for heavy-tailed revenue.
    model: Literal["hurdle"] | None = Field(default=None, exclude_if=_unset)


Metric = Annotated[
    FunnelMetric | TrendMetric | RatioMetric | ContinuousMetric, Field(discriminator="kind")
]


class Guardrail(_Model):
    metric: Key
    threshold: float
    observation_window_minutes: int | None = Field(default=None, gt=0)
    action: Literal["pause", "rollback"]
    min_sample: int | None = Field(default=None, ge=0)
    method: Literal["threshold", "sequential"] = "threshold"


# A context attribute: keys separated by dots (`country`, `device.platform`); docs/segments.md.
SEGMENT_PATH_PATTERN = r"^[^.\s]+(\.[^.\s]+)*$"


class Segment(_Model):
    """A context attribute the results are broken down by; `pooling` adds the partial
    pooling of the primary funnel's lift across its values (exp_pipeline.stats.segment_pooling)."""

    attribute: str = Field(min_length=1, max_length=400, pattern=SEGMENT_PATH_PATTERN)
    pooling: bool = False


def _default_variants() -> list[Variant]:
    return [
        Variant(key="control", name="Control", rollout_percentage=50),
        Variant(key="test", name="Test", rollout_percentage=50),
    ]


class Experiment(_Model):
    key: Key
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    feature_flag_key: str = Field(min_length=1, max_length=255, pattern=FLAG_KEY_PATTERN)
    start_date: str | datetime | None = None
    end_date: str | datetime | None = None
    timezone: str | None = None
    owner: str | None = Field(default=None, min_length=1, max_length=255)
    # Which id assignment hashes; frozen once the experiment has started.
    subject_type: str = Field(default="user", max_length=100, pattern=SUBJECT_TYPE_PATTERN)
    # Share of subjects in the experiment; raising it keeps everyone already included in
    # the same variant (independent traffic and variant hashes, docs/flags.md).
    traffic_percentage: float = Field(default=100, gt=0, le=100)
    # QA overrides: subject id -> variant, served before the random assignment and never
    # counted as randomly assigned.
    forced: dict[Annotated[str, Field(min_length=1, max_length=255)], Key] = Field(
        default_factory=dict
    )
    variants: list[Variant] = Field(default_factory=_default_variants)
    metrics: list[Metric] = Field(min_length=1)
    guardrails: list[Guardrail] = Field(default_factory=list)
    # Breakdowns of the results by context attribute (docs/segments.md).
    segments: list[Segment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Experiment:
        keys = [v.key for v in self.variants]
        if "control" not in keys:
            raise ValueError("variants: must contain a variant with key 'control'")
        _require_unique("variants", keys)
        for subject, variant in self.forced.items():
            if variant not in keys:
                raise ValueError(
                    f"forced: {subject!r} is forced into {variant!r}, which is not a variant "
                    f"(variants: {', '.join(keys)})"
                )
        total = sum(v.rollout_percentage for v in self.variants)
        if not math.isclose(total, 100.0, abs_tol=1e-9):
            raise ValueError(f"variants: rollout_percentage must sum to 100, not {total:g}")
        if self.timezone is not None:
            zone(self.timezone)
        metric_keys = [m.key for m in self.metrics]
        _require_unique("metrics", metric_keys)
        for guardrail in self.guardrails:
            if guardrail.metric not in metric_keys:
                raise ValueError(
                    f"guardrails: metric {guardrail.metric!r} is not a metric of this "
                    f"experiment (metrics: {', '.join(metric_keys)})"
                )
        _require_unique("segments: attribute", [s.attribute for s in self.segments])
        if any(s.pooling for s in self.segments) and self.metrics[0].kind != "funnel":
            raise ValueError(
                "segments: pooling models a conversion rate: the primary metric "
                f"{self.metrics[0].key!r} must be a funnel, not {self.metrics[0].kind}"
            )
        return self

    @property
    def primary_metric(self) -> Metric:
        return self.metrics[0]

    def effective_timezone(self, default: str) -> str:
        return self.timezone or default

    def window(self, default_timezone: str) -> tuple[datetime | None, datetime | None]:
        """The experiment window as UTC instants (None where the bound is unset)."""
        tz = self.effective_timezone(default_timezone)
        start = None if self.start_date is None else to_utc_instant(self.start_date, tz)
        end = None if self.end_date is None else to_utc_instant(self.end_date, tz)
        return start, end


class Catalog(_Model):
    timezone: str = "UTC"
    experiments: list[Experiment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Catalog:
        zone(self.timezone)
        _require_unique("experiments: key", [e.key for e in self.experiments])
        _require_unique("experiments: name", [e.name for e in self.experiments])
        _require_unique(
            "experiments: feature_flag_key", [e.feature_flag_key for e in self.experiments]
        )
        return self

    def get(self, key: str) -> Experiment:
        for experiment in self.experiments:
            if experiment.key == key:
                return experiment
        raise KeyError(key)


def _require_unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what}: {value!r} appears more than once")
        seen.add(value)


def _check_windows(catalog: Catalog, source: str) -> None:
    """Window checks need the catalog's default timezone, so they run after parsing."""
    for experiment in catalog.experiments:
        tz = experiment.effective_timezone(catalog.timezone)
        for name in ("start_date", "end_date"):
            value = getattr(experiment, name)
            try:
                if value is not None:
                    to_utc_instant(value, tz)
            except ValueError as exc:
                raise CatalogError(
                    f"{source}: experiment {experiment.key!r}: {name}: {exc}"
                ) from None
        start, end = experiment.window(catalog.timezone)
        if start is not None and end is not None and not start < end:
            raise CatalogError(
                f"{source}: experiment {experiment.key!r}: start_date must be before end_date"
            )
        if start is None and end is not None:
            raise CatalogError(
                f"{source}: experiment {experiment.key!r}: end_date is set but start_date is not"
            )


def _describe(error: dict[str, Any], raw: Any) -> str:
    """One readable clause for one pydantic error: which experiment, which field, what."""
    loc = list(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    prefix = ""
    if len(loc) >= 2 and loc[0] == "experiments" and isinstance(loc[1], int):
        index = loc[1]
        key = None
        with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
            key = raw["experiments"][index].get("key")
        prefix = f"experiment {key!r}: " if key else f"experiment #{index + 1}: "
        loc = loc[2:]
    # Discriminated unions put the tag ('funnel') into the location; it is noise to a user.
    loc = [p for p in loc if p not in ("funnel", "trend", "ratio", "continuous")]
    field = ".".join(str(p) for p in loc)
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] == "extra_forbidden":
        message = "is not a known field"
    if field and not message.startswith(f"{field}:"):
        return f"{prefix}{field}: {message}"
    return f"{prefix}{message}"


def parse_catalog(raw: Any, source: str = "<catalog>") -> Catalog:
    """Validate an already-parsed YAML document; raise CatalogError naming what is wrong."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CatalogError(f"{source}: the catalog must be a mapping with 'experiments'")
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        clauses = [_describe(err, raw) for err in exc.errors()]
        raise CatalogError(f"{source}: " + "; ".join(clauses)) from None
    _check_windows(catalog, source)
    return catalog


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate the catalog file at `path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError(f"{path}{where}: invalid YAML: {problem}") from None
    return parse_catalog(raw, str(path))


def project_timezone(path: str | Path) -> str:
    """The catalog's project timezone for schedules, or UTC when the catalog is unreadable.

    Schedules are built when Dagster loads the code location; a broken catalog must fail
    the `experiment_catalog` asset with its message, not stop the code location loading.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        name = raw.get("timezone", "UTC") if isinstance(raw, dict) else "UTC"
        return zone(name).key
    except (OSError, yaml.YAMLError, ValueError, TypeError):
        return "UTC"
