"""Seeded per-subject data of a revenue experiment, and the landing events that encode it.

The tests of per-variant sums and of results documents compute their expected figures
with numpy from these per-subject values, independently of the SQL that reads the
events back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.analysis.conftest import event, flag_called

FLAG = "revenue-test"
WINDOW = {"start_date": "2020-01-01T00:00:00Z", "end_date": "2020-01-06T00:00:00Z"}


@dataclass(frozen=True)
class Subjects:
    """One variant's subjects: purchase amounts, pages viewed and errors met, per subject."""

    amounts: list[list[float]]
    pages: np.ndarray
    errors: np.ndarray

    @property
    def revenue(self) -> np.ndarray:
        return np.array([sum(a) for a in self.amounts])

    @property
    def buyers(self) -> int:
        return sum(1 for a in self.amounts if a)


def subject_values(
    seed: int, subjects: int, buy_rates: tuple[float, float] = (0.3, 0.3)
) -> dict[str, Subjects]:
    """Per variant (control, test): a share of buyers spending log-normally, 1-5 pages."""
    rng = np.random.default_rng(seed)
    values = {}
    for variant, buy_rate in zip(("control", "test"), buy_rates, strict=True):
        buys = rng.random(subjects) < buy_rate
        values[variant] = Subjects(
            amounts=[
                [round(float(a), 2) for a in rng.lognormal(3.0, 1.0, rng.integers(1, 3))]
                if buy
                else []
                for buy in buys
            ],
            pages=rng.integers(1, 6, subjects).astype(np.float64),
            errors=rng.poisson(0.4, subjects).astype(np.float64),
        )
    return values


def events_of(values: dict[str, Subjects]) -> list[dict[str, Any]]:
    """Landing events: every subject is flagged, views pages, maybe errs and buys."""
    events = []
    for variant, s in values.items():
        for i in range(len(s.amounts)):
            who = f"{variant}-{i}"
            when = f"2020-01-02T{i % 24:02d}:{i % 60:02d}:00Z"
            events.append(flag_called(who, when, FLAG, variant))
            for k in range(int(s.pages[i])):
                events.append(event("page", who, when, flag=FLAG, variant=variant, n=k))
            for k in range(int(s.errors[i])):
                events.append(event("error", who, when, flag=FLAG, variant=variant, n=k))
            for k, amount in enumerate(s.amounts[i]):
                events.append(
                    event("purchase", who, when, flag=FLAG, variant=variant, amount=amount, n=k)
                )
    return events


def experiment_catalog(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """A one-experiment catalog over the window of the events above."""
    experiment = {"key": FLAG, "name": "Revenue", "feature_flag_key": FLAG, **WINDOW}
    return {"experiments": [{**experiment, "metrics": metrics}]}
