"""Group aggregation: group exposures, exclusions, conversions and sums per organisation.

A small seeded warehouse of people in organisations is built by hand (events naming their
organisation in `$groups`, some naming another one, some none; a member in two variants,
a bot, events outside the window and from people never exposed). The expected group
exposures, exclusions, conversions, funnel counts, trend series and per-variant sums are
computed here in plain Python from the event list, independently of the SQL.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
from scipy import stats

from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.funnels import build_funnel_metrics
from exp_pipeline.analysis.group_exposures import read_group_exposure_summaries
from exp_pipeline.analysis.metric_sums import read_metric_sums
from exp_pipeline.analysis.results import experiment_document
from exp_pipeline.analysis.trends import build_trend_metrics
from exp_pipeline.analysis.units import group_path
from exp_pipeline.catalog import parse_catalog
from exp_pipeline.errors import CatalogError
from exp_pipeline.report.render import render_report
from tests.analysis.conftest import Analysed, event

FLAG = "org-test"
START = datetime(2020, 1, 1, tzinfo=UTC)
END = datetime(2020, 1, 6, tzinfo=UTC)
STEPS = ["$pageview", "checkout", "purchase"]
GROUPED = {"aggregation": "organization"}
METRICS = [
    {"key": "org_funnel", "kind": "funnel", "steps": STEPS, **GROUPED},
    {"key": "org_revenue", "kind": "continuous", "event": "purchase", "property": "amount",
     **GROUPED},
    {"key": "org_errors", "kind": "ratio", "numerator": "error", "denominator": "$pageview",
     **GROUPED},
    {"key": "org_views", "kind": "trend", "event": "$pageview", **GROUPED},
    {"key": "person_funnel", "kind": "funnel", "steps": STEPS},
]  # fmt: skip


def catalog(subject_type: str = "user") -> dict[str, Any]:
    experiment = {
        "key": "org-test",
        "name": "Organisations",
        "feature_flag_key": FLAG,
        "start_date": START.isoformat(),
        "end_date": END.isoformat(),
        "subject_type": subject_type,
        "metrics": METRICS,
    }
    return {"timezone": "UTC", "experiments": [experiment]}


@dataclass
class Row:
    """One landing event as the reference sees it."""

    name: str
    who: str
    ts: datetime
    variant: str | None = None  # the $feature/<flag> it carries
    org: str | None = None  # its $groups.organization
    amount: float | None = None
    bot: bool = False

    def landing(self) -> dict[str, Any]:
        props: dict[str, Any] = {}
        if self.org is not None:
            props["$groups"] = {"organization": self.org, "project": "p-1"}
        if self.amount is not None:
            props["amount"] = self.amount
        if self.bot:
            props["$user_agent"] = "bot"
        iso = self.ts.isoformat().replace("+00:00", "Z")
        return event(self.name, self.who, iso, flag=FLAG if self.variant else None,
                     variant=self.variant, **props)  # fmt: skip


def world(seed: int) -> list[Row]:
    """People in organisations, randomised per person, with their journeys."""
    rng = random.Random(seed)
    minutes = iter(rng.sample(range(1, 5 * 24 * 60), 2000))  # distinct instants, no ties

    def when() -> datetime:
        return START + timedelta(minutes=next(minutes))

    orgs = [f"org-{i}" for i in range(16)]
    rows: list[Row] = []
    for p in range(40):
        who, variant = f"p{p}", rng.choice(["control", "test"])
        home = None if p % 7 == 0 else rng.choice(orgs)
        flagged = sorted(when() for _ in range(rng.randint(1, 3)))
        for ts in flagged:
            rows.append(Row("$pageview", who, ts, variant=variant, org=home or ""))
        for name in rng.choices([*STEPS, "error"], k=rng.randint(0, 8)):
            # Most events name the home organisation, some another one, some none.
            org = rng.choices([home, rng.choice(orgs), None], weights=[6, 2, 1])[0]
            amount = round(rng.uniform(1, 100), 2) if name == "purchase" else None
            rows.append(Row(name, who, when(), org=org, amount=amount))
    # Two variants: excluded as a person, so it exposes no group.
    rows.append(Row("$pageview", "both", when(), variant="control", org="org-0"))
    rows.append(Row("$pageview", "both", when(), variant="test", org="org-0"))
    # Never exposed, but its events name an organisation: they count for it.
    rows += [Row(n, "visitor", when(), org="org-1") for n in STEPS]
    # A bot's events never count; nor do events outside the window.
    rows.append(Row("purchase", "crawler", when(), org="org-1", amount=1000.0, bot=True))
    rows.append(Row("purchase", "p1", END + timedelta(hours=1), org="org-1", amount=500.0))
    return rows


def reference(rows: list[Row]) -> dict[str, Any]:
    """Group exposures, exclusions and per-group measures, computed from the rows."""
    counted = [r for r in rows if START <= r.ts <= END and not r.bot]
    signals: dict[str, list[Row]] = defaultdict(list)
    for r in counted:
        if r.variant is not None:
            signals[r.who].append(r)
    members: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    no_group = 0
    for rs in signals.values():
        if len({r.variant for r in rs}) > 1:
            continue
        first = min(rs, key=lambda r: r.ts)
        if first.org:
            members[first.org].append((first.variant, first.ts))
        else:
            no_group += 1
    exposed = {
        g: (ms[0][0], min(ts for _, ts in ms), len(ms))
        for g, ms in members.items()
        if len({v for v, _ in ms}) == 1
    }
    events: dict[str, list[Row]] = defaultdict(list)
    for r in sorted(counted, key=lambda r: r.ts):
        if r.org in exposed:
            events[r.org].append(r)
    return {
        "exposed": exposed,
        "excluded": {"multiple_variants": len(members) - len(exposed), "no_group": no_group},
        "events": events,
    }


def funnel(events: list[Row]) -> tuple[int, datetime | None]:
    """Steps reached in order from the earliest first step, and when the last was done."""
    reached, at = 0, None
    for r in events:
        if reached < len(STEPS) and r.name == STEPS[reached]:
            reached, at = reached + 1, r.ts
    return reached, at if reached == len(STEPS) else None


def build(warehouse: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition) -> None:
    """Every aggregate the results read, as the asset graph builds them."""
    build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    build_funnel_metrics(warehouse, experiment)
    build_trend_metrics(warehouse, experiment)


@pytest.fixture
def built(analysed: Analysed, warehouse: duckdb.DuckDBPyConnection) -> tuple[Any, dict]:
    rows = world(seed=11)
    experiment = analysed(catalog(), [r.landing() for r in rows])
    build(warehouse, experiment)
    return experiment, reference(rows)


def test_group_exposures_and_exclusions_match_the_reference(
    built: tuple[Any, dict], warehouse: duckdb.DuckDBPyConnection
) -> None:
    experiment, ref = built
    rows = warehouse.execute(
        "SELECT group_key, variant, first_exposure_utc, members FROM group_exposures "
        "WHERE experiment_key = ? AND group_type = 'organization'",
        [experiment.key],
    ).fetchall()
    assert {g: (v, ts.astimezone(UTC), n) for g, v, ts, n in rows} == ref["exposed"]
    assert ref["exposed"] and all(ref["excluded"].values())  # the data exercise every rule
    summary = read_group_exposure_summaries(warehouse, experiment)["organization"]
    assert summary.excluded == ref["excluded"]
    expected = {v: 0 for v in experiment.variants}
    for variant, _, _ in ref["exposed"].values():
        expected[variant] += 1
    assert summary.exposures == expected


def test_group_conversions_count_the_events_naming_the_group(
    built: tuple[Any, dict], warehouse: duckdb.DuckDBPyConnection
) -> None:
    experiment, ref = built
    got: dict[str, dict[str, tuple]] = defaultdict(dict)
    for metric, unit, *values in warehouse.execute(
        "SELECT metric_key, distinct_id, variant, first_conversion_utc, event_count, "
        "value_sum, denominator_count, funnel_step FROM conversions WHERE experiment_key = ?",
        [experiment.key],
    ).fetchall():
        got[metric][unit] = tuple(values)
    want: dict[str, dict[str, tuple]] = defaultdict(dict)
    for group, (variant, _, _) in ref["exposed"].items():
        evs = ref["events"][group]
        steps = [r for r in evs if r.name in STEPS]
        reached, done = funnel(steps)
        want["org_funnel"][group] = (variant, done, len(steps), None, None, reached)
        for key, name, value in (("org_revenue", "purchase", "amount"),
                                 ("org_errors", "error", None),
                                 ("org_views", "$pageview", None)):  # fmt: skip
            hits = [r for r in evs if r.name == name]
            pageviews = sum(r.name == "$pageview" for r in evs)
            if key == "org_errors" and (hits or pageviews):
                first = min((r.ts for r in hits), default=None)
                want[key][group] = (variant, first, len(hits), None, pageviews, None)
            elif key != "org_errors" and hits:
                total = round(sum(r.amount for r in hits), 9) if value else None
                want[key][group] = (variant, hits[0].ts, len(hits), total, None, None)
    for key in ("org_funnel", "org_revenue", "org_errors", "org_views"):
        normalised = {
            unit: (v, ts and ts.astimezone(UTC), n, s and round(s, 9), d, step)
            for unit, (v, ts, n, s, d, step) in got[key].items()
        }
        assert normalised == want[key], key
    # The person funnel is untouched: one row per exposed subject, keyed by distinct_id.
    people = warehouse.execute(
        "SELECT count(*) FROM conversions WHERE metric_key = 'person_funnel'"
    ).fetchone()[0]
    assert people == warehouse.execute("SELECT count(*) FROM exposures").fetchone()[0]


def test_grouped_aggregates_are_per_group(
    built: tuple[Any, dict], warehouse: duckdb.DuckDBPyConnection
) -> None:
    experiment, ref = built
    by_variant: dict[str, list[str]] = defaultdict(list)
    for group, (variant, _, _) in ref["exposed"].items():
        by_variant[variant].append(group)
    steps = dict(
        (v, c)
        for m, v, _, c in warehouse.execute(
            "SELECT metric_key, variant, step, subjects FROM funnel_metrics "
            "WHERE metric_key = 'org_funnel' AND step = 1"
        ).fetchall()
    )
    revenue = read_metric_sums(warehouse, experiment, experiment.metric("org_revenue"))
    errors = read_metric_sums(warehouse, experiment, experiment.metric("org_errors"))
    trend = dict(
        warehouse.execute(
            "SELECT variant, sum(event_count) FROM trend_metrics "
            "WHERE metric_key = 'org_views' GROUP BY variant"
        ).fetchall()
    )
    for variant in experiment.variants:
        groups = by_variant[variant]
        evs = [ref["events"][g] for g in groups]
        reached = [funnel([r for r in e if r.name in STEPS])[0] for e in evs]
        assert steps[variant] == sum(1 for n in reached if n >= 1)
        values = [sum(r.amount for r in e if r.name == "purchase") for e in evs]
        assert revenue.variants[variant].n == len(groups)
        assert revenue.variants[variant].sum_x == pytest.approx(sum(values))
        assert revenue.variants[variant].sum_x2 == pytest.approx(sum(x * x for x in values))
        numerators = [sum(r.name == "error" for r in e) for e in evs]
        denominators = [sum(r.name == "$pageview" for r in e) for e in evs]
        assert errors.variants[variant].sum_x == sum(numerators)
        assert errors.variants[variant].sum_y == sum(denominators)
        assert errors.variants[variant].sum_xy == sum(
            x * y for x, y in zip(numerators, denominators, strict=True)
        )
        assert trend[variant] == sum(denominators)


def test_the_document_reports_groups_and_withholds_a_person_randomised_srm(
    built: tuple[Any, dict], warehouse: duckdb.DuckDBPyConnection
) -> None:
    experiment, ref = built
    document = experiment_document(warehouse, experiment)
    metrics = {m["metric_key"]: m for m in document["metrics"]}
    summary = read_group_exposure_summaries(warehouse, experiment)["organization"]
    funnel_doc = metrics["org_funnel"]
    assert funnel_doc["aggregation"] == "organization"
    assert funnel_doc["units"]["exposures"] == summary.exposures
    assert funnel_doc["units"]["excluded"] == ref["excluded"]
    assert "per user" in funnel_doc["units"]["sample_ratio_mismatch"]["reason"]
    assert [v["exposures"] for v in funnel_doc["variants"]] == list(summary.exposures.values())
    trend_doc = metrics["org_views"]
    assert [v["exposure"] for v in trend_doc["variants"]] == list(summary.exposures.values())
    assert metrics["person_funnel"]["aggregation"] == "person"
    assert "units" not in metrics["person_funnel"]
    exposed = ", ".join(f"{k} {n}" for k, n in summary.exposures.items())
    report = render_report(document, "md")
    assert f"per organization: exposed {exposed}; {ref['excluded']['multiple_variants']} " in report


def test_group_randomised_experiments_get_a_group_srm(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """Assigned per organisation, every member of a group shares its variant: the group
    split is tested against the allocation (scipy's chi-square as the reference)."""
    rows = []
    for g in range(30):
        variant = "control" if g % 3 else "test"  # 20 control groups, 10 test groups
        for m in range(2):
            ts = START + timedelta(hours=g, minutes=m)
            rows.append(Row("$pageview", f"g{g}m{m}", ts, variant=variant, org=f"o{g}"))
    experiment = analysed(catalog("organization"), [r.landing() for r in rows])
    build(warehouse, experiment)
    document = experiment_document(warehouse, experiment)
    srm = document["metrics"][0]["units"]["sample_ratio_mismatch"]
    chi2, p = stats.chisquare([20, 10], [15, 15])
    assert srm["chi2"] == pytest.approx(chi2)
    assert srm["p_value"] == pytest.approx(p)
    assert document["metrics"][0]["units"]["exposures"] == {"control": 20, "test": 10}


def test_group_paths_read_the_groups_member_literally() -> None:
    assert group_path("organization", "duckdb") == '$."$groups"."organization"'
    assert group_path("organization", "spark") == "$['$groups']['organization']"
    with duckdb.connect() as con:
        value = con.execute(
            """SELECT '{"$groups": {"organization": "o-1"}}'::JSON ->> $p""",
            {"p": group_path("organization", "duckdb")},
        ).fetchone()[0]
    assert value == "o-1"


@pytest.mark.parametrize("name", ["Organization", "org-name", "1org", ""])
def test_aggregation_names_must_be_identifiers(name: str) -> None:
    raw = catalog()
    raw["experiments"][0]["metrics"] = [{**METRICS[0], "aggregation": name}]
    with pytest.raises(CatalogError, match=r"metrics\.0\.aggregation"):
        parse_catalog(raw)


def test_any_identifier_is_a_group_type() -> None:
    raw = catalog()
    raw["experiments"][0]["metrics"] = [{**METRICS[0], "aggregation": "workspace_team"}]
    assert parse_catalog(raw).experiments[0].metrics[0].aggregation == "workspace_team"
