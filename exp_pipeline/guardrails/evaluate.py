"""The guardrail decision rule, as a pure function of a snapshot's aggregates.

Data health comes first: with a sample-ratio mismatch (chi-square p < 0.001 against the
configured allocation) or more than 1% of subjects in two or more variants, the data is
broken and no guardrail acts on it; the evaluation holds and says why.

Otherwise a treatment variant (never control) fires a guardrail when its value
(numerator / denominator) is on the wrong side of the threshold: above it for
`lower_is_better`, below it for `higher_is_better`. A value equal to the threshold does
not fire; neither does a zero denominator, a NaN, or a denominator under `min_sample`.
With `method: sequential` the treatment must also be worse than control by the mixture
sequential probability ratio test on the counts since the experiment started (always
valid under repeated looks: false-alarm rate at most alpha = 0.05 however often the
sensor looks); its running p-value is carried between looks in `sequential_state`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from exp_pipeline.analysis.health import multiple_variant_check, srm_check
from exp_pipeline.guardrails.targets import GuardrailSpec, GuardrailTarget
from exp_pipeline.stats.sequential import sequential_harm_test

SEQUENTIAL_ALPHA = 0.05
# The more severe action wins when several guardrails fire at once.
SEVERITY = {"rollback": 2, "pause": 1}


@dataclass(frozen=True)
class Firing:
    """A guardrail breached by one treatment variant."""

    metric_key: str
    variant: str
    value: float
    threshold: float
    action: str
    observation_window_minutes: int | None
    window_start: str
    window_end: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """What one look at an experiment found: firings, or a hold, and why."""

    experiment_key: str
    firings: tuple[Firing, ...] = ()
    hold_reason: str | None = None
    notes: tuple[str, ...] = ()
    sequential_state: dict[str, float] = field(default_factory=dict)

    @property
    def decision(self) -> Firing | None:
        """The firing to act on: the most severe action, then the worst breach."""
        if self.hold_reason or not self.firings:
            return None
        return max(
            self.firings,
            key=lambda f: (SEVERITY[f.action], abs(f.value - f.threshold)),
        )


def _breaches(value: float, threshold: float, direction: str) -> bool:
    return value < threshold if direction == "higher_is_better" else value > threshold


def health_problem(payload: dict[str, Any]) -> str | None:
    """Why the experiment's data is too broken to act on, or None when it is healthy.

    The same measures and thresholds as the analysts' asset checks (analysis.health).
    """
    health = payload.get("health")
    if not health or not health["subjects"]:
        return None
    mixed = multiple_variant_check(health["multiple_variant_subjects"], health["subjects"])
    if not mixed.passed:
        return mixed.description
    srm = srm_check(health["exposed"], payload["allocation"])
    if not srm.passed:
        return f"sample ratio mismatch: {srm.description}"
    return None


def _evaluate_guardrail(
    guardrail: GuardrailSpec,
    aggregates: dict[str, Any],
    control: str,
    state: dict[str, float],
    new_state: dict[str, float],
    notes: list[str],
) -> list[Firing]:
    firings = []
    variants = aggregates["variants"]
    cumulative = aggregates.get("cumulative", variants)
    base = cumulative.get(control, {"numerator": 0.0, "denominator": 0.0})
    for variant, counts in variants.items():
        if variant == control:
            continue
        numerator, denominator = counts["numerator"], counts["denominator"]
        label = f"{guardrail.metric_key}/{variant}"
        if not denominator or not math.isfinite(numerator) or not math.isfinite(denominator):
            notes.append(f"{label}: no denominator in the window; nothing to judge")
            continue
        if guardrail.min_sample is not None and denominator < guardrail.min_sample:
            notes.append(
                f"{label}: denominator {denominator:g} < min_sample {guardrail.min_sample}"
            )
            continue
        value = numerator / denominator
        if not math.isfinite(value) or not _breaches(
            value, guardrail.threshold, guardrail.direction
        ):
            continue
        details: dict[str, Any] = {"numerator": numerator, "denominator": denominator}
        if guardrail.method == "sequential":
            test = sequential_harm_test(
                base["numerator"],
                base["denominator"],
                cumulative[variant]["numerator"],
                cumulative[variant]["denominator"],
                direction=guardrail.direction,
                alpha=SEQUENTIAL_ALPHA,
                previous_p_value=state.get(label, 1.0),
            )
            new_state[label] = test.always_valid_p_value
            details["always_valid_p_value"] = test.always_valid_p_value
            if not test.harmful:
                notes.append(
                    f"{label}: {value:.4g} breaches {guardrail.threshold:g} but is not yet "
                    f"worse than control (always-valid p = {test.always_valid_p_value:.3g})"
                )
                continue
        firings.append(
            Firing(
                metric_key=guardrail.metric_key,
                variant=variant,
                value=value,
                threshold=guardrail.threshold,
                action=guardrail.action,
                observation_window_minutes=guardrail.observation_window_minutes,
                window_start=aggregates["window_start"],
                window_end=aggregates["window_end"],
                details=details,
            )
        )
    return firings


def evaluate(
    target: GuardrailTarget, payload: dict[str, Any], state: dict[str, float] | None = None
) -> Evaluation:
    """Evaluate every guardrail of `target` on its snapshot `payload`."""
    if payload.get("health") is None:
        return Evaluation(target.key, notes=("no flagged events yet",))
    problem = health_problem(payload)
    if problem:
        return Evaluation(target.key, hold_reason=problem)
    control = next(iter(target.allocation))
    state = state or {}
    new_state = dict(state)
    notes: list[str] = []
    if [a["metric_key"] for a in payload["guardrails"]] != [
        g.metric_key for g in target.guardrails
    ]:
        return Evaluation(
            target.key, notes=("the guardrails changed since the snapshot; waiting for a new one",)
        )
    firings = [
        firing
        for guardrail, aggregates in zip(target.guardrails, payload["guardrails"], strict=True)
        for firing in _evaluate_guardrail(guardrail, aggregates, control, state, new_state, notes)
    ]
    return Evaluation(
        target.key, firings=tuple(firings), notes=tuple(notes), sequential_state=new_state
    )
