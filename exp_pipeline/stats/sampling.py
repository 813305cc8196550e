"""Running PyMC models: per-parameter diagnostics and the convergence gate.

PyMC serves the models with no closed form (partial pooling across segments, the revenue
hurdle). A Markov chain sample is only a posterior once the chains agree, so every sampled
result carries its diagnostics, per reported quantity: the rank-normalised split r_hat and
the bulk and tail effective sample sizes (Vehtari et al., "Rank-normalization, folding, and
localization", 2021, as ArviZ computes them). A run whose r_hat exceeds 1.01 anywhere, or
with more divergent transitions than allowed, raises `ConvergenceError` instead of
returning numbers that look as confident as any other.

Sampling is deterministic for a fixed `random_seed`, so re-running the same aggregates
gives the same document; the default seed is fixed for that reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from exp_pipeline.errors import ExpPipelineError
from exp_pipeline.stats.inputs import StatsInputError, check_count
from exp_pipeline.stats.intervals import CREDIBLE_LEVEL
from exp_pipeline.stats.sampling_settings import SamplingSettings

MAX_R_HAT = 1.01
_SAMPLE_DIMS = ("chain", "draw")


class ConvergenceError(ExpPipelineError):
    """A sampled model whose chains did not converge: its numbers must not be published.

    `problems` lists each failed check (the parameter and its r_hat, or the divergences),
    and the message names the model and all of them on one line.
    """

    def __init__(self, model: str, problems: Sequence[str]) -> None:
        self.model = model
        self.problems = tuple(problems)
        super().__init__(
            f"model {model!r} did not converge: {'; '.join(self.problems)} "
            "(sample longer, raise target_accept, or check the aggregates)"
        )


@dataclass(frozen=True)
class ParameterSummary:
    """One scalar of the posterior: mean, median, sd, equal-tailed interval, diagnostics.

    `name` labels the element by its coordinates, e.g. `lift[DE, test]`. The median is
    there for heavy-tailed quantities, whose mean the draws estimate poorly.
    """

    name: str
    mean: float
    median: float
    sd: float
    interval: tuple[float, float]
    r_hat: float
    ess_bulk: float
    ess_tail: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mean": self.mean,
            "median": self.median,
            "sd": self.sd,
            "interval": list(self.interval),
            "r_hat": self.r_hat,
            "ess_bulk": self.ess_bulk,
            "ess_tail": self.ess_tail,
        }


@dataclass(frozen=True)
class SamplingDiagnostics:
    """The convergence evidence of one sampled model, over every summarised parameter."""

    model: str
    chains: int
    draws: int
    divergences: int
    parameters: tuple[ParameterSummary, ...]

    @property
    def max_r_hat(self) -> float:
        return max(p.r_hat for p in self.parameters)

    @property
    def min_ess_bulk(self) -> float:
        return min(p.ess_bulk for p in self.parameters)

    @property
    def min_ess_tail(self) -> float:
        return min(p.ess_tail for p in self.parameters)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "chains": self.chains,
            "draws": self.draws,
            "divergences": self.divergences,
            "max_r_hat": self.max_r_hat,
            "min_ess_bulk": self.min_ess_bulk,
            "min_ess_tail": self.min_ess_tail,
            "parameters": {
                p.name: {"r_hat": p.r_hat, "ess_bulk": p.ess_bulk, "ess_tail": p.ess_tail}
                for p in self.parameters
            },
        }


@dataclass(frozen=True)
class SampledResult:
    """What every sampled model's result carries: its control variant, the settings it
    was sampled with, and the evidence that it converged. Subclasses add their parts."""

    control: str
    settings: SamplingSettings
    diagnostics: SamplingDiagnostics

    def parts(self) -> dict[str, Any]:
        """The model's own results, as JSON-ready values."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.diagnostics.model,
            "control": self.control,
            **self.parts(),
            "sampling": self.settings.to_dict(),
            "diagnostics": self.diagnostics.to_dict(),
        }


@dataclass(frozen=True)
class SampledPosterior:
    """Posterior draws (dimensions chain, draw, then the model's) and their diagnostics."""

    posterior: xr.Dataset
    diagnostics: SamplingDiagnostics

    def summary(self, name: str) -> ParameterSummary:
        """The summary of one element, by its label (`lift[DE, test]`)."""
        for parameter in self.diagnostics.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(f"no parameter {name!r} in model {self.diagnostics.model!r}")


def binomial_count(value: object, what: str) -> int:
    """`value` as an int if it is a whole non-negative count, else `StatsInputError`.

    The models observe subjects through Binomial likelihoods, which only count whole
    subjects; a fractional count means the aggregates were computed wrongly upstream.
    """
    number = check_count(value, what)
    if not number.is_integer():
        raise StatsInputError(f"{what} must be a whole number of subjects, got {value!r}")
    return int(number)


def _label(variable: str, coordinates: Sequence[object]) -> str:
    if not coordinates:
        return variable
    return f"{variable}[{', '.join(str(c) for c in coordinates)}]"


def _finite_or_nan(value: float) -> float:
    """Diagnostics of a constant chain are NaN in ArviZ; keep them NaN, never raise here."""
    return float(value) if math.isfinite(value) else math.nan


def summarise(
    posterior: xr.Dataset, var_names: Sequence[str], level: float = CREDIBLE_LEVEL
) -> tuple[ParameterSummary, ...]:
    """Per-element summaries of `var_names`, in their order, elements in row-major order.

    r_hat is ArviZ's rank-normalised split r_hat; the ESS are its bulk and tail estimates.
    """
    selected = posterior[list(var_names)]
    r_hat = az.rhat(selected)
    ess_bulk = az.ess(selected, method="bulk")
    ess_tail = az.ess(selected, method="tail")
    tail = (1 - level) / 2
    summaries = []
    for variable in var_names:
        draws = selected[variable]
        other_dims = [d for d in draws.dims if d not in _SAMPLE_DIMS]
        flat = draws.stack(sample=_SAMPLE_DIMS).transpose(*other_dims, "sample").values
        shape = flat.shape[:-1]
        for index in np.ndindex(shape):
            values = flat[index]
            coordinates = [draws[d].values[i] for d, i in zip(other_dims, index, strict=True)]
            lower, median, upper = np.quantile(values, [tail, 0.5, 1 - tail])
            summaries.append(
                ParameterSummary(
                    name=_label(variable, coordinates),
                    mean=float(values.mean()),
                    median=float(median),
                    sd=float(values.std(ddof=1)),
                    interval=(float(lower), float(upper)),
                    r_hat=_finite_or_nan(r_hat[variable].values[index]),
                    ess_bulk=_finite_or_nan(ess_bulk[variable].values[index]),
                    ess_tail=_finite_or_nan(ess_tail[variable].values[index]),
                )
            )
    return tuple(summaries)


def diagnose(
    idata: az.InferenceData, model: str, var_names: Sequence[str], level: float = CREDIBLE_LEVEL
) -> SamplingDiagnostics:
    """Diagnostics of a trace: summaries of `var_names` and the divergent transitions.

    A trace without sampler statistics (one built by hand) has no divergences to count.
    """
    posterior = idata.posterior
    stats = getattr(idata, "sample_stats", None)
    divergences = int(stats["diverging"].sum()) if stats is not None else 0
    return SamplingDiagnostics(
        model=model,
        chains=posterior.sizes["chain"],
        draws=posterior.sizes["draw"],
        divergences=divergences,
        parameters=summarise(posterior, var_names, level),
    )


def check_convergence(diagnostics: SamplingDiagnostics, max_divergences: int = 0) -> None:
    """Raise `ConvergenceError` when any r_hat exceeds 1.01 (or is NaN) or divergences do.

    A NaN r_hat comes from chains that never moved, which is no more converged than a
    large one.
    """
    problems = [
        f"r_hat of {p.name} is {p.r_hat:.4f} > {MAX_R_HAT}"
        for p in diagnostics.parameters
        if not p.r_hat <= MAX_R_HAT
    ]
    if diagnostics.divergences > max_divergences:
        problems.append(
            f"{diagnostics.divergences} divergent transitions > {max_divergences} allowed"
        )
    if problems:
        raise ConvergenceError(diagnostics.model, problems)


def sample_posterior(
    model: pm.Model,
    model_name: str,
    var_names: Sequence[str],
    settings: SamplingSettings,
    level: float = CREDIBLE_LEVEL,
) -> SampledPosterior:
    """Sample `model` with NUTS, summarise `var_names`, and fail unless the chains converged.

    Only `var_names` are kept in the trace; PyMC's own convergence warnings are skipped
    because `check_convergence` applies a stricter, explicit rule.
    """
    with model:
        idata = pm.sample(
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=settings.cores,
            target_accept=settings.target_accept,
            random_seed=settings.random_seed,
            var_names=list(var_names),
            progressbar=False,
            quiet=True,
            compute_convergence_checks=False,
        )
    diagnostics = diagnose(idata, model_name, var_names, level)
    check_convergence(diagnostics, settings.max_divergences)
    return SampledPosterior(posterior=idata.posterior, diagnostics=diagnostics)
