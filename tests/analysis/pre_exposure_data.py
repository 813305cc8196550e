"""Seeded pre-exposure activity for the revenue experiment of `subject_data`.

Each subject's purchases and page views before its first exposure, some inside a 14-day
lookback and some outside it, plus bot purchases inside it (which analysis ignores), as
landing events and as the per-subject covariates numpy expects. A subject's in-experiment
revenue is tied to its earlier spending (`correlated_values`), so CUPED has something to
remove.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from tests.analysis.conftest import event
from tests.analysis.subject_data import Subjects

LOOKBACK_DAYS = 14
LOOKBACK_HOURS = LOOKBACK_DAYS * 24


def first_exposure(i: int) -> datetime:
    """When subject i's flag signals arrive in `subject_data.events_of`."""
    return datetime(2020, 1, 2, i % 24, i % 60, tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class PreExposure:
    """Per subject of one variant: purchases and page views as (hours before exposure, ...)."""

    purchases: list[list[tuple[int, float]]]
    pages: list[list[int]]

    def covariate(self, kind: str) -> np.ndarray:
        """x per subject within the lookback: spend, page views, or whether they bought."""
        inside = [[a for h, a in p if h <= LOOKBACK_HOURS] for p in self.purchases]
        if kind == "continuous":
            return np.array([sum(a) for a in inside])
        if kind == "funnel":
            return np.array([1.0 if a else 0.0 for a in inside])
        return np.array([sum(1 for h in p if h <= LOOKBACK_HOURS) for p in self.pages], float)


def pre_exposure(seed: int, subjects: int, variants: tuple[str, ...]) -> dict[str, PreExposure]:
    """Purchases and page views 48 to 480 hours before exposure (the lookback is 336), so
    before the window opens: in-experiment values stay those of `subject_data`."""
    rng = np.random.default_rng(seed)
    result = {}
    for variant in variants:
        purchases, pages = [], []
        for _ in range(subjects):
            hours = rng.integers(48, 481, rng.integers(0, 4))
            amounts = np.round(rng.lognormal(3.0, 0.8, hours.size), 2)
            purchases.append([(int(h), float(a)) for h, a in zip(hours, amounts, strict=True)])
            pages.append([int(h) for h in rng.integers(48, 481, rng.integers(0, 5))])
        result[variant] = PreExposure(purchases, pages)
    return result


def pre_exposure_events(values: dict[str, PreExposure]) -> list[dict[str, Any]]:
    """Landing events of the pre-exposure activity, and a bot purchase per subject."""
    events = []
    for variant, pre in values.items():
        for i, (purchases, pages) in enumerate(zip(pre.purchases, pre.pages, strict=True)):
            who = f"{variant}-{i}"
            start = first_exposure(i)
            for k, (hours, amount) in enumerate(purchases):
                when = _iso(start - timedelta(hours=hours))
                events.append(event("purchase", who, when, amount=amount, pre=k))
            for k, hours in enumerate(pages):
                events.append(event("page", who, _iso(start - timedelta(hours=hours)), pre=k))
            bot = {"$user_agent": "crawler-bot"}
            when = _iso(start - timedelta(hours=50))
            events.append(event("purchase", who, when, amount=1000.0, **bot))
    return events


def correlated_values(base: dict[str, Subjects], pre: dict[str, PreExposure]) -> None:
    """Give every subject who spent before a purchase of 0.8 × that spend in the window.

    Mutates `base` so the events written from it carry the correlation.
    """
    for variant, subjects in base.items():
        for amounts, spend in zip(
            subjects.amounts, pre[variant].covariate("continuous"), strict=True
        ):
            if spend > 0:
                amounts.append(round(0.8 * float(spend), 2))
