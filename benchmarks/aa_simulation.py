"""Benchmark: false-positive rates of the frequentist and sequential tests in A/A experiments.

Simulates many synthetic experiments in which treatment and control are drawn from the
same distribution (no effect) and counts how often each test declares a difference at
alpha. A test that is honest about its error rate shows about alpha for the
fixed-horizon tests, and at most alpha for the always-valid sequential test however
often it is looked at. It is a benchmark rather than a test because it is slow by design
(tens of thousands of experiments), and its figures belong in the record of each run:

- `two_proportion_z`: binary conversion, one look at the planned horizon;
- `welch_t`: heavy-tailed revenue per subject (mostly zeros, log-normal order values),
  raw and winsorised at the pooled 99th percentile;
- `delta_method_ratio_z`: clicks per session with correlated, heterogeneous subjects;
- `two_proportion_z_daily_peeking`: the same z-test applied every day, stopping at the
  first p < alpha (what the sequential test is for: it is expected to be well above alpha);
- `msprt_harm_daily`: the guardrail's always-valid mSPRT (`exp_pipeline.stats.sequential`,
  default tau) at every daily look, firing whenever its running p-value ≤ alpha;
- `holm_family_of_5`: family-wise error over five A/A metrics with and without Holm.
- `always_valid_daily`: the results' two-sided always-valid mSPRT
  (`exp_pipeline.stats.always_valid`, tau = 10% of the variants' mean) on a funnel at every
  daily look, firing when its running-minimum p-value <= alpha; and the same over a family
  of five A/A metrics with Holm on the always-valid p-values, so the error rate holds
  across looks and comparisons at once.

Each rate is reported with its Monte Carlo standard error and a 95% Wilson interval.
Writes benchmarks/results/aa_simulation.json.

    python benchmarks/aa_simulation.py [--experiments 20000] [--seed 7] [--alpha 0.05]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from exp_pipeline.stats.always_valid import (
    DEFAULT_RELATIVE_TAU,
    always_valid_p_value,
    relative_tau_scale,
)
from exp_pipeline.stats.means import MeanSummary, welch_t_test
from exp_pipeline.stats.multiple_testing import holm_adjust
from exp_pipeline.stats.proportions import two_proportion_z_test
from exp_pipeline.stats.ratios import RatioSummary, ratio_z_test
from exp_pipeline.stats.sequential import default_tau, rate_difference, update_harm_p_value
from exp_pipeline.stats.winsorisation import cap_values, winsorise

RESULTS = Path(__file__).resolve().parent / "results"
CHUNK = 500  # experiments generated at once: bounds memory for per-subject arrays
FloatArray = npt.NDArray[np.float64]


def _rate(hits: int, trials: int, target: float, at_most: bool = False) -> dict[str, object]:
    """A false-positive rate with its Monte Carlo error, Wilson interval and verdict.

    A fixed-horizon test should be at its target (alpha): it meets it when the Wilson
    interval contains the target. Tests that promise only "at most" the target (the
    sequential test, Holm's family-wise rate) meet it when the interval starts below it.
    """
    rate = hits / trials
    z = 1.959963984540054
    centre = (rate + z**2 / (2 * trials)) / (1 + z**2 / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z**2 / (4 * trials**2)) / (1 + z**2 / trials)
    low, high = centre - half, centre + half
    return {
        "experiments": trials,
        "false_positives": hits,
        "false_positive_rate": round(rate, 5),
        "monte_carlo_se": round(math.sqrt(rate * (1 - rate) / trials), 5),
        "wilson_95": [round(low, 5), round(high, 5)],
        "target": ("<= " if at_most else "= ") + str(round(target, 5)),
        "meets_target": bool(low <= target) if at_most else bool(low <= target <= high),
    }


def _chunks(total: int) -> Iterator[int]:
    for start in range(0, total, CHUNK):
        yield min(CHUNK, total - start)


def _summaries(values: FloatArray) -> list[MeanSummary]:
    means, variances = values.mean(axis=1), values.var(axis=1, ddof=1)
    return [MeanSummary(values.shape[1], m, v) for m, v in zip(means, variances, strict=True)]


def _ratio_summaries(x: FloatArray, y: FloatArray) -> list[RatioSummary]:
    sums = [x.sum(1), y.sum(1), (x * x).sum(1), (y * y).sum(1), (x * y).sum(1)]
    return [RatioSummary(x.shape[1], *map(float, row)) for row in zip(*sums, strict=True)]


def _revenue(rng: np.random.Generator, shape: tuple[int, int]) -> FloatArray:
    """Per-subject revenue: 8% buy, order values log-normal (median 20, heavy tail)."""
    buys = rng.random(shape) < 0.08
    return np.where(buys, rng.lognormal(math.log(20), 1.2, shape), 0.0)


def _sessions_and_clicks(
    rng: np.random.Generator, shape: tuple[int, int]
) -> tuple[FloatArray, FloatArray]:
    activity = rng.gamma(2.0, 1.5, shape)
    sessions = 1 + rng.poisson(activity)
    clicks = rng.binomial(sessions, np.clip(0.1 + 0.05 * activity, 0, 0.9))
    return clicks.astype(np.float64), sessions.astype(np.float64)


def proportions(rng: np.random.Generator, experiments: int, alpha: float) -> dict[str, object]:
    n_c, n_t, rate = 5000, 5000, 0.05
    x_c, x_t = rng.binomial(n_c, rate, experiments), rng.binomial(n_t, rate, experiments)
    results = [two_proportion_z_test(c, n_c, t, n_t) for c, t in zip(x_c, x_t, strict=True)]
    covered = sum(r.ci_low <= 0 <= r.ci_high for r in results)
    relative_covered = sum(r.relative_ci_low <= 0 <= r.relative_ci_high for r in results)
    return {
        "setup": {"subjects_per_variant": n_c, "conversion_rate": rate},
        **_rate(sum(r.p_value < alpha for r in results), experiments, alpha),
        "ci_coverage_of_0": round(covered / experiments, 5),
        "relative_ci_coverage_of_0": round(relative_covered / experiments, 5),
    }


def welch(rng: np.random.Generator, experiments: int, alpha: float) -> dict[str, object]:
    n = 2000
    raw_hits = capped_hits = covered = 0
    for size in _chunks(experiments):
        control, treatment = _revenue(rng, (size, n)), _revenue(rng, (size, n))
        for c, t in zip(_summaries(control), _summaries(treatment), strict=True):
            result = welch_t_test(c, t)
            raw_hits += result.p_value < alpha
            covered += result.ci_low <= 0 <= result.ci_high
        for c, t in zip(control, treatment, strict=True):
            cap = winsorise(np.concatenate([c, t]), 99.0).cap
            result = welch_t_test(
                MeanSummary.from_values(cap_values(c, cap)),
                MeanSummary.from_values(cap_values(t, cap)),
            )
            capped_hits += result.p_value < alpha
    return {
        "setup": {
            "subjects_per_variant": n,
            "revenue": "8% purchase × lognormal(log 20, 1.2), else 0",
        },
        **_rate(int(raw_hits), experiments, alpha),
        "ci_coverage_of_0": round(covered / experiments, 5),
        "winsorised_p99": _rate(int(capped_hits), experiments, alpha),
    }


def ratios(rng: np.random.Generator, experiments: int, alpha: float) -> dict[str, object]:
    n = 1000
    hits = covered = 0
    for size in _chunks(experiments):
        controls = _ratio_summaries(*_sessions_and_clicks(rng, (size, n)))
        treatments = _ratio_summaries(*_sessions_and_clicks(rng, (size, n)))
        for c, t in zip(controls, treatments, strict=True):
            result = ratio_z_test(c, t)
            hits += result.p_value < alpha
            covered += result.ci_low <= 0 <= result.ci_high
    return {
        "setup": {
            "subjects_per_variant": n,
            "metric": "clicks / sessions, gamma-heterogeneous subjects",
        },
        **_rate(int(hits), experiments, alpha),
        "ci_coverage_of_0": round(covered / experiments, 5),
    }


def daily_peeking(
    rng: np.random.Generator, experiments: int, alpha: float, looks: int
) -> dict[str, object]:
    """The fixed-horizon z-test applied at every daily look of a growing experiment."""
    daily, rate = 500, 0.05
    x = rng.binomial(daily, rate, (experiments, looks, 2)).cumsum(axis=1)
    ever = final = 0
    for experiment in x:
        p_values = [
            two_proportion_z_test(c, daily * (d + 1), t, daily * (d + 1)).p_value
            for d, (c, t) in enumerate(experiment)
        ]
        ever += min(p_values) < alpha
        final += p_values[-1] < alpha
    return {
        "setup": {"subjects_per_variant_per_day": daily, "conversion_rate": rate, "looks": looks},
        **_rate(int(ever), experiments, alpha),
        "last_look_only": _rate(int(final), experiments, alpha),
    }


def msprt(
    rng: np.random.Generator, experiments: int, alpha: float, looks: int
) -> dict[str, object]:
    """The guardrail mSPRT (one-sided harm, default tau) at every daily look, vectorised."""
    daily_exposures, error_rate = 2000, 0.02
    daily = rng.poisson(daily_exposures, (experiments, looks, 2))
    numerators = rng.binomial(daily, error_rate).cumsum(axis=1)
    denominators = daily.cumsum(axis=1)
    p_value = np.ones(experiments)
    naive_ever = np.zeros(experiments, dtype=bool)
    for d in range(looks):
        counts = (numerators[:, d, 0], denominators[:, d, 0], numerators[:, d, 1])
        counts = (*counts, denominators[:, d, 1])
        effect, variance = rate_difference(*counts)
        tau = default_tau(*counts)
        p_value = update_harm_p_value(
            effect, variance, tau, direction="lower_is_better", previous_p_value=p_value
        )
        # One-sided fixed-horizon z for harm, peeked at daily, for comparison.
        naive_ever |= effect / np.sqrt(variance) > 1.6448536269514722
    return {
        "setup": {
            "method": "mSPRT, normal mixture, tau = 0.2 × pooled rate (module default)",
            "side": "one-sided (harm: treatment rate higher)",
            "daily_exposures_per_variant": daily_exposures,
            "rate": error_rate,
            "looks": looks,
        },
        **_rate(int((p_value <= alpha).sum()), experiments, alpha, at_most=True),
        "one_sided_z_daily_peeking": _rate(int(naive_ever.sum()), experiments, alpha),
    }


def _running_always_valid_p(
    rng: np.random.Generator, shape: tuple[int, ...], looks: int, daily: int, rate: float
) -> FloatArray:
    """Running-minimum two-sided always-valid p-values of A/A funnels after `looks` days."""
    conversions = rng.binomial(daily, rate, (*shape, looks, 2)).cumsum(axis=-2)
    subjects = daily * np.arange(1, looks + 1)[:, None]
    p_rate = conversions / subjects
    control, treatment = p_rate[..., 0], p_rate[..., 1]
    n = subjects[:, 0]
    variance = control * (1 - control) / n + treatment * (1 - treatment) / n
    tau = relative_tau_scale(control, treatment, DEFAULT_RELATIVE_TAU)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = always_valid_p_value(treatment - control, variance, tau)
    return np.nan_to_num(p_value, nan=1.0).min(axis=-1)


def _holm_any(p_values: FloatArray, alpha: float) -> npt.NDArray[np.bool_]:
    """Whether Holm rejects any hypothesis, per row (step-down: the first test decides)."""
    return np.sort(p_values, axis=1)[:, 0] * p_values.shape[1] <= alpha


def always_valid_daily(
    rng: np.random.Generator, experiments: int, alpha: float, looks: int
) -> dict[str, object]:
    """The results' two-sided always-valid test peeked at daily, alone and over a family."""
    daily, rate, family = 500, 0.05, 5
    single = _running_always_valid_p(rng, (experiments,), looks, daily, rate)
    several = _running_always_valid_p(rng, (experiments, family), looks, daily, rate)
    return {
        "setup": {
            "method": "two-sided mSPRT, normal mixture, tau = 0.1 x mean of the variants' rates",
            "subjects_per_variant_per_day": daily,
            "conversion_rate": rate,
            "looks": looks,
            "family": family,
        },
        **_rate(int((single <= alpha).sum()), experiments, alpha, at_most=True),
        "family_of_5_holm": _rate(
            int(_holm_any(several, alpha).sum()), experiments, alpha, at_most=True
        ),
        "family_of_5_unadjusted": _rate(
            int((several <= alpha).any(axis=1).sum()), experiments, alpha, at_most=True
        ),
    }


def holm_family(
    rng: np.random.Generator, families: int, alpha: float, size: int = 5
) -> dict[str, object]:
    """Family-wise error over `families` experiments of `size` independent A/A metrics.

    Each metric is a two-proportion z-test at its own conversion rate, so the p-values are
    the real (slightly discrete) ones the pipeline would adjust.
    """
    n, rates = 5000, np.linspace(0.02, 0.2, size)
    x = rng.binomial(n, rates, (families, 2, size))
    unadjusted = adjusted = 0
    for experiment in x:
        p_values = [
            two_proportion_z_test(c, n, t, n).p_value
            for c, t in zip(experiment[0], experiment[1], strict=True)
        ]
        unadjusted += min(p_values) < alpha
        adjusted += min(holm_adjust(p_values)) < alpha
    return {
        "setup": {
            "metrics_per_family": size,
            "metric": f"two_proportion_z, {n} subjects per variant, rates {rates.tolist()}",
        },
        "unadjusted": _rate(int(unadjusted), families, 1 - (1 - alpha) ** size),
        "holm": _rate(int(adjusted), families, alpha, at_most=True),
    }


def _timed(function: Callable[[], dict[str, object]]) -> dict[str, object]:
    started = time.perf_counter()
    figures = function()
    figures["seconds"] = round(time.perf_counter() - started, 2)
    return figures


def run(experiments: int, seed: int, alpha: float, looks: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    return {
        "benchmark": "aa_simulation",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "parameters": {"experiments": experiments, "seed": seed, "alpha": alpha, "looks": looks},
        "two_proportion_z": _timed(lambda: proportions(rng, experiments, alpha)),
        "welch_t": _timed(lambda: welch(rng, experiments, alpha)),
        "delta_method_ratio_z": _timed(lambda: ratios(rng, experiments, alpha)),
        "two_proportion_z_daily_peeking": _timed(
            lambda: daily_peeking(rng, experiments, alpha, looks)
        ),
        "msprt_harm_daily": _timed(lambda: msprt(rng, experiments, alpha, looks)),
        "holm_family_of_5": _timed(lambda: holm_family(rng, experiments, alpha)),
        "always_valid_daily": _timed(lambda: always_valid_daily(rng, experiments, alpha, looks)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--looks", type=int, default=14, help="daily looks for the peeking runs")
    args = parser.parse_args()
    figures = run(args.experiments, args.seed, args.alpha, args.looks)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "aa_simulation.json"
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
