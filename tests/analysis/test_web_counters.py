"""The classic web counters, checked against the same counts taken by hand in Python."""

from __future__ import annotations

from typing import Any

import duckdb

from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.web_counters import read_web_counters

from .conftest import Analysed, event

FLAG = "landing-page"
CATALOG = {
    "experiments": [
        {
            "key": "landing",
            "name": "Landing page",
            "feature_flag_key": FLAG,
            "start_date": "2026-11-01T00:00:00Z",
            "end_date": "2026-11-10T00:00:00Z",
            "metrics": [
                {"key": "conversion", "kind": "funnel", "steps": ["impression", "conversion"]}
            ],
        }
    ]
}
IN = "2026-11-02T10:00:00Z"


def visit(who: str, variant: str, session: str, *names: str, **props: Any) -> list[dict[str, Any]]:
    return [
        event(name, who, IN, flag=FLAG, variant=variant, session_id=session, **props)
        for name in names
    ]


def test_counters_per_variant(analysed: Analysed, warehouse: duckdb.DuckDBPyConnection) -> None:
    events = [
        *visit("c1", "control", "s1", "impression", "cta_click", "form_start"),
        *visit("c1", "control", "s2", "impression", "form_submit"),
        *visit("c1", "control", "s2", "conversion", value=20.5),
        *visit("c2", "control", "s3", "impression"),
        *visit("t1", "test", "s4", "impression", "cta_click"),
        # Same content at another time: a second click, not a duplicate.
        event(
            "cta_click", "t1", "2026-11-02T10:05:00Z", flag=FLAG, variant="test", session_id="s4"
        ),
        *visit("t1", "test", "s4", "conversion", value="not a number"),
        *visit("t2", "test", "s5", "conversion", value=10),
        # Outside the window, a bot, and an unexposed subject: none of them count.
        event("impression", "t1", "2026-11-20T00:00:00Z", flag=FLAG, variant="test"),
        event("impression", "b1", IN, flag=FLAG, variant="test", **{"$user_agent": "bot"}),
        event("impression", "nobody", IN),
    ]
    experiment = analysed(CATALOG, events)
    build_exposures(warehouse, experiment)
    counters = {k: v.as_dict() for k, v in read_web_counters(warehouse, experiment).items()}
    assert counters == {
        "control": {
            "variant": "control",
            "exposed": 2,
            "impressions": 3,
            "cta_clicks": 1,
            "form_starts": 1,
            "form_submits": 1,
            "conversions": 1,
            "unique_sessions": 3,
            "conversion_value_total": 20.5,
            "conversion_rate": 1 / 3,
        },
        "test": {
            "variant": "test",
            "exposed": 2,
            "impressions": 1,
            "cta_clicks": 2,
            "form_starts": 0,
            "form_submits": 0,
            "conversions": 2,
            "unique_sessions": 2,
            "conversion_value_total": 10.0,
            "conversion_rate": 2.0,
        },
    }


def test_experiments_without_the_counter_events_have_none(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [event("$pageview", "c1", IN, flag=FLAG, variant="control", session_id="s")]
    experiment = analysed(CATALOG, events)
    build_exposures(warehouse, experiment)
    assert read_web_counters(warehouse, experiment) == {}
