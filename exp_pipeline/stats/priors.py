"""Informative priors, stated on one scale for every metric kind: a mean and a weight.

Why one scale: an analyst who knows "checkout converts about 10%, and I trust that as much
as 200 subjects' worth of data" should write the same two numbers whatever the metric's
family, and see what they mean without knowing Beta or Gamma parameters. A `Prior` is
`weight` pseudo-subjects whose metric averages `mean` (per exposed subject):

* funnel (conversion rate p): Beta(mean·weight, (1 − mean)·weight), i.e. `weight`
  subjects of whom a share `mean` converted. Needs 0 < mean < 1.
* trend (events per subject λ): Gamma(shape = mean·weight, rate = weight) on λ, i.e.
  `mean·weight` events seen over `weight` subjects. Needs mean > 0.
* continuous and ratio (a mean or ratio with sampling variance σ²/n): Normal(mean,
  σ²/weight), i.e. `weight` subjects with the data's own per-subject spread σ². Any sign.

Without a prior the flat defaults of `posteriors` apply (Beta(1, 1); Gamma(1, 0), flat
in the rate; a flat Normal), and every result is what it was before priors existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

from exp_pipeline.stats.inputs import StatsInputError


@dataclass(frozen=True)
class Prior:
    """`weight` pseudo-subjects (> 0) whose metric averages `mean` per subject."""

    mean: float
    weight: float

    def __post_init__(self) -> None:
        for name in ("mean", "weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise StatsInputError(f"prior {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise StatsInputError(f"prior {name} must be finite, got {value!r}")
        if self.weight <= 0:
            raise StatsInputError(f"prior weight must be positive, got {self.weight!r}")

    def beta(self) -> tuple[float, float]:
        """(alpha, beta) of the Beta prior of a conversion rate."""
        if not 0 < self.mean < 1:
            raise StatsInputError(
                f"prior mean of a conversion rate must be between 0 and 1, got {self.mean!r}"
            )
        return self.mean * self.weight, (1 - self.mean) * self.weight

    def gamma(self) -> tuple[float, float]:
        """(shape, rate) of the Gamma prior of events per exposed subject."""
        if self.mean <= 0:
            raise StatsInputError(
                f"prior mean of an event rate must be positive, got {self.mean!r}"
            )
        return self.mean * self.weight, self.weight
