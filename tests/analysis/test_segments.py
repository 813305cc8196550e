"""The results' segment breakdown, end to end, against computations written out here.

A seeded experiment whose subjects carry a country and a platform (`$set` before their
exposure) goes through the real loader, exposures, context, conversions and metrics. The
document's segment figures are recomputed from the per-subject values the events encode:
exposures and sample-ratio tests (`scipy.stats.chisquare`), the two-proportion z-test by
its formula, Welch's test by `scipy.stats.ttest_ind`, and e-BH over every comparison by its
rule written out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pytest
from scipy import stats

from exp_pipeline.analysis import segment_aggregates
from exp_pipeline.analysis.context import build_subject_context
from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.funnels import build_funnel_metrics
from exp_pipeline.analysis.results import build_experiment_results
from exp_pipeline.analysis.segments import (
    MIN_POOLING_SUBJECTS,
    TREND_REASON,
    _pooling_counts,
)
from exp_pipeline.analysis.trends import build_trend_metrics
from exp_pipeline.stats.sampling import ConvergenceError, SamplingSettings
from tests.analysis.conftest import Analysed, event
from tests.analysis.test_results import NOW

FLAG = "seg"
BUYING = {"key": "buying", "kind": "funnel", "steps": ["page", "purchase"]}
REVENUE = {"key": "revenue", "kind": "continuous", "event": "purchase", "property": "amount"}
PAGES = {"key": "pages", "kind": "trend", "event": "page"}
# Conversion rate per country and variant: the test lifts DE and NL, not FR.
RATES = {
    "DE": {"control": 0.20, "test": 0.30},
    "NL": {"control": 0.25, "test": 0.30},
    "FR": {"control": 0.20, "test": 0.20},
    "BE": {"control": 0.10, "test": 0.90},  # tiny and extreme
    None: {"control": 0.20, "test": 0.25},
}
COUNTRY_SHARES = {"DE": 0.35, "NL": 0.3, "FR": 0.25, "BE": 0.02, None: 0.08}
PLATFORMS = ("ios", "android", "web")


@dataclass(frozen=True)
class Subject:
    id: str
    variant: str
    country: str | None
    platform: str
    converted: bool
    amount: float


def subjects(n: int, seed: int = 5) -> list[Subject]:
    rng = np.random.default_rng(seed)
    countries = list(COUNTRY_SHARES)
    out = []
    for i in range(n):
        variant = "control" if rng.random() < 0.5 else "test"
        country = countries[rng.choice(len(countries), p=list(COUNTRY_SHARES.values()))]
        converted = bool(rng.random() < RATES[country][variant])
        amount = float(np.round(rng.lognormal(3, 0.5), 2)) if converted else 0.0
        platform = PLATFORMS[int(rng.integers(0, 3))]
        out.append(Subject(f"u{i}", variant, country, platform, converted, amount))
    return out


def events_of(population: list[Subject]) -> list[dict[str, Any]]:
    events = []
    for s in population:
        context: dict[str, Any] = {"device": {"platform": s.platform}}
        if s.country is not None:
            context["country"] = s.country
        events.append(event("$identify", s.id, "2020-01-01T12:00:00Z", **{"$set": context}))
        events.append(event("page", s.id, "2020-01-02T00:00:00Z", flag=FLAG, variant=s.variant))
        if s.converted:
            events.append(event("purchase", s.id, "2020-01-02T00:05:00Z", amount=s.amount))
        # After exposure: must not move the subject to another segment.
        events.append(
            event("$identify", s.id, "2020-01-03T00:00:00Z", **{"$set": {"country": "XX"}})
        )
    return events


def catalog(pooling: bool) -> dict[str, Any]:
    return {
        "experiments": [
            {
                "key": "seg",
                "name": "Segments",
                "feature_flag_key": FLAG,
                "start_date": "2020-01-01T00:00:00Z",
                "end_date": "2020-01-06T00:00:00Z",
                "metrics": [BUYING, REVENUE, PAGES],
                "segments": [
                    {"attribute": "country", "pooling": pooling},
                    {"attribute": "device.platform"},
                ],
            }
        ]
    }


def document(
    analysed: Analysed,
    warehouse: duckdb.DuckDBPyConnection,
    population: list[Subject],
    pooling: bool = False,
    sampling: SamplingSettings | None = None,
) -> dict[str, Any]:
    experiment = analysed(catalog(pooling), events_of(population))
    build_exposures(warehouse, experiment)
    build_subject_context(warehouse, experiment)
    build_conversions(warehouse, experiment)
    build_funnel_metrics(warehouse, experiment)
    build_trend_metrics(warehouse, experiment)
    return build_experiment_results(warehouse, experiment, NOW, sampling or SamplingSettings())


def label(s: Subject, attribute: str) -> str:
    value = s.country if attribute == "country" else s.platform
    return "(none)" if value is None else value


def members(population: list[Subject], attribute: str, segment: str) -> list[Subject]:
    return [s for s in population if label(s, attribute) == segment]


def segment_entries(doc: dict[str, Any], attribute: str) -> dict[str, dict[str, Any]]:
    (entry,) = [a for a in doc["segments"]["attributes"] if a["attribute"] == attribute]
    return {s["segment"]: s for s in entry["segments"]}


def metric(entry: dict[str, Any], key: str) -> dict[str, Any]:
    return next(m for m in entry["metrics"] if m["metric_key"] == key)


@pytest.fixture
def population() -> list[Subject]:
    return subjects(700)


def test_segments_recompute_from_the_subjects(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection, population: list[Subject]
) -> None:
    doc = document(analysed, warehouse, population)
    for attribute in ("country", "device.platform"):
        entries = segment_entries(doc, attribute)
        assert set(entries) == {label(s, attribute) for s in population}
        sizes = [sum(e["exposures"].values()) for e in entries.values()]
        assert sizes == sorted(sizes, reverse=True)  # largest segment first
        for segment, entry in entries.items():
            group = members(population, attribute, segment)
            exposed = {v: sum(s.variant == v for s in group) for v in ("control", "test")}
            assert entry["exposures"] == exposed
            srm = entry["sample_ratio_mismatch"]
            chi2, p = stats.chisquare([exposed["control"], exposed["test"]])
            assert srm["chi2"] == pytest.approx(chi2, rel=1e-9)
            assert srm["p_value"] == pytest.approx(p, rel=1e-9)

            # Funnel: the two-proportion z-test by its formula.
            buying = metric(entry, "buying")
            n = {v: exposed[v] for v in exposed}
            x = {v: sum(s.converted for s in group if s.variant == v) for v in exposed}
            assert [(v["first_step"], v["converted"]) for v in buying["variants"]] == [
                (n["control"], x["control"]),
                (n["test"], x["test"]),
            ]
            block = buying["frequentist"]["test"]
            pooled = (x["control"] + x["test"]) / (n["control"] + n["test"])
            if 0 < pooled < 1 and min(n.values()) > 0:
                se = math.sqrt(pooled * (1 - pooled) * (1 / n["control"] + 1 / n["test"]))
                z = (x["test"] / n["test"] - x["control"] / n["control"]) / se
                assert block["statistic"] == pytest.approx(z, rel=1e-9)
                assert block["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)

            # Continuous: Welch's t-test on the per-subject revenue, zeros included.
            revenue = metric(entry, "revenue")
            values = {v: [s.amount for s in group if s.variant == v] for v in exposed}
            if min(len(v) for v in values.values()) >= 2:
                welch = stats.ttest_ind(values["test"], values["control"], equal_var=False)
                assert revenue["frequentist"]["test"]["p_value"] == pytest.approx(
                    welch.pvalue, rel=1e-6
                )
            assert [v["subjects"] for v in revenue["variants"]] == [len(v) for v in values.values()]

            # Trends are not broken down, and say why.
            assert metric(entry, "pages")["reason"] == TREND_REASON


def test_one_e_bh_family_over_every_comparison(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection, population: list[Subject]
) -> None:
    doc = document(analysed, warehouse, population)
    blocks = [b for m in doc["metrics"] for b in m.get("frequentist", {}).values()]
    for attribute in doc["segments"]["attributes"]:
        for entry in attribute["segments"]:
            for m in entry["metrics"]:
                blocks += m.get("frequentist", {}).values()
    tested = [b for b in blocks if "sequential" in b and b["sequential"]["e_value"] is not None]
    m = len(tested)
    assert doc["segments"]["e_bh_family_size"] == m
    assert m > 2 * len(doc["metrics"])
    # e-BH written out: q_i = min(1, min over k >= rank(i) of m / (k e_(k))).
    ordered = sorted((b["sequential"]["e_value"] for b in tested), reverse=True)
    for b in tested:
        rank = ordered.index(b["sequential"]["e_value"]) + 1
        q = min(1.0, min(m / (k * ordered[k - 1]) for k in range(rank, m + 1)))
        assert b["sequential"]["e_bh_adjusted"] == pytest.approx(q, rel=1e-9)


def test_segments_make_the_overall_adjustment_stricter(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection, population: list[Subject]
) -> None:
    with_segments = document(analysed, warehouse, population)
    alone = dict(catalog(False))
    alone["experiments"] = [{**alone["experiments"][0], "segments": []}]
    experiment = analysed(alone, [])
    unsegmented = build_experiment_results(warehouse, experiment, NOW)
    assert unsegmented["segments"] == {
        "max_values": segment_aggregates.MAX_SEGMENT_VALUES,
        "e_bh_family_size": 2,
        "attributes": [],
    }
    for with_, without in zip(with_segments["metrics"], unsegmented["metrics"], strict=True):
        if "sequential" not in with_["frequentist"].get("test", {}):
            continue
        strict = with_["frequentist"]["test"]["sequential"]["e_bh_adjusted"]
        loose = without["frequentist"]["test"]["sequential"]["e_bh_adjusted"]
        assert strict >= loose


def test_rare_values_are_grouped_as_other(
    analysed: Analysed,
    warehouse: duckdb.DuckDBPyConnection,
    population: list[Subject],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(segment_aggregates, "MAX_SEGMENT_VALUES", 2)
    entries = segment_entries(document(analysed, warehouse, population), "country")
    assert list(entries)[:2] == ["DE", "NL"]
    assert set(entries) == {"DE", "NL", "(other)", "(none)"}
    other = [s for s in population if s.country in ("FR", "BE")]
    assert sum(entries["(other)"]["exposures"].values()) == len(other)


def test_small_segments_are_merged_before_pooling() -> None:
    counts = {
        "DE": {"control": [500, 50], "test": [480, 60]},
        "NL": {"control": [300, 30], "test": [320, 40]},
        "BE": {"control": [60, 6], "test": [50, 45]},
        "LU": {"control": [50, 5], "test": [55, 6]},
        "(other)": {"control": [10, 1], "test": [12, 1]},
    }
    kept, merged, left_out = _pooling_counts(counts)
    assert merged == ["BE", "LU", "(other)"] and left_out == []
    assert kept["(other)"] == {"control": [120, 12], "test": [117, 52]}
    assert min(c[0] for c in kept["(other)"].values()) >= MIN_POOLING_SUBJECTS
    kept, merged, left_out = _pooling_counts({k: counts[k] for k in ("DE", "NL", "LU")})
    assert list(kept) == ["DE", "NL"] and merged == [] and left_out == ["LU"]


def test_pooling_reports_shrunken_lifts_with_diagnostics(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """Small sampling settings: this test is about the wiring, the sampler has its own."""
    population = subjects(1500)
    sampling = SamplingSettings(draws=600, tune=400, chains=2)
    doc = document(analysed, warehouse, population, pooling=True, sampling=sampling)
    (country,) = [a for a in doc["segments"]["attributes"] if a["attribute"] == "country"]
    pooled = country["pooled"]
    assert pooled["metric_key"] == "buying"
    # BE is tiny and extreme, (none) small: together still under the minimum, so they are
    # left out of the model, and reported.
    assert pooled["merged_into_other"] == [] and pooled["left_out"] == ["(none)", "BE"]
    assert {s["segment"] for s in pooled["segments"]} == {"DE", "NL", "FR"}
    for s in pooled["segments"]:
        group = [p for p in population if p.country == s["segment"]]
        for side, variant in (("control", "control"), ("treatment", "test")):
            assert s[side]["exposed"] == sum(p.variant == variant for p in group)
            assert s[side]["converted"] == sum(p.converted and p.variant == variant for p in group)
        assert s["shrunken_lift"]["r_hat"] <= 1.01
        assert s["shrunken_lift"]["ess_bulk"] > 100
    assert pooled["diagnostics"]["max_r_hat"] <= 1.01
    assert pooled["sampling"] == sampling.to_dict()
    assert pooled["pooled"][0]["heterogeneity"]["name"] == "tau[test]"
    # The platform attribute does not pool.
    (platform,) = [a for a in doc["segments"]["attributes"] if a["attribute"] == "device.platform"]
    assert "pooled" not in platform


def test_a_run_that_does_not_converge_fails_loudly(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    too_short = SamplingSettings(draws=10, tune=0, chains=2)
    with pytest.raises(ConvergenceError, match="r_hat"):
        document(analysed, warehouse, subjects(1500), pooling=True, sampling=too_short)
