"""How PyMC's sampler runs, kept apart from `sampling` so settings load without PyMC.

The pipeline settings (`sampling:` in config/pipeline.yaml) validate into this class;
importing PyMC takes seconds, which every CLI command would otherwise pay.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from exp_pipeline.errors import SettingsError


@dataclass(frozen=True)
class SamplingSettings:
    """How PyMC's NUTS sampler runs.

    The defaults (4 chains of 500 tuning and 1000 kept draws, one process) give 4000
    draws: effective sample sizes over a thousand for every reported quantity of these
    small models, so r_hat can be held to 1.01 without false alarms (with 2000 draws the
    revenue model's r_hat already came within 0.002 of it), in under 40 seconds of CPU
    per model (benchmarks/pymc_models.py). Four chains, not two, because r_hat compares
    chains: two can agree by chance. One process because the machine is shared and
    starting worker processes costs seconds. `target_accept` 0.95 (PyMC's default is
    0.8) takes smaller steps: the pooling model's spread across segments has a long upper
    tail where steps sized for the bulk diverge. A divergent transition means part of the
    posterior was not explored, so by default none is tolerated (`max_divergences`).
    """

    draws: int = 1000
    tune: int = 500
    chains: int = 4
    cores: int = 1
    target_accept: float = 0.95
    random_seed: int = 20240601
    max_divergences: int = 0

    def __post_init__(self) -> None:
        minimums = {
            "draws": 10,
            "tune": 0,
            "chains": 2,
            "cores": 1,
            "random_seed": 0,
            "max_divergences": 0,
        }
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise SettingsError(
                    f"sampling setting {name} must be an integer >= {minimum}, got {value!r}"
                )
        accept = self.target_accept
        if isinstance(accept, bool) or not isinstance(accept, int | float) or not 0 < accept < 1:
            raise SettingsError(
                f"sampling setting target_accept must be strictly between 0 and 1, got {accept!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
