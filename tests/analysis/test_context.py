"""Subject context: the set-based SQL merge against a sequential Python merge of `$set`s."""

from __future__ import annotations

import json
import random
from typing import Any

import duckdb
import pytest

from exp_pipeline.analysis.context import build_subject_context, context_path
from exp_pipeline.analysis.exposures import build_exposures
from tests.analysis.conftest import Analysed, event

FLAG = "ctx"
CATALOG = {
    "experiments": [
        {
            "key": "ctx",
            "name": "Context",
            "feature_flag_key": FLAG,
            "start_date": "2020-01-01T00:00:00Z",
            "end_date": "2020-01-06T00:00:00Z",
            "metrics": [{"key": "views", "kind": "trend", "event": "$pageview"}],
        }
    ],
}
EXPOSED_AT = "2020-01-03T00:00:00Z"


def _is_empty(value: Any) -> bool:
    return (
        value is None
        or value == ""
        or (isinstance(value, dict) and all(_is_empty(v) for v in value.values()))
    )


def reference_merge(updates: list[dict[str, Any]]) -> dict[str, Any]:
    """The documented merge, one update after the other, on a Python dict."""

    def apply(context: dict[str, Any], update: dict[str, Any]) -> None:
        for key, value in update.items():
            if _is_empty(value):
                continue
            if isinstance(value, dict):
                if not isinstance(context.get(key), dict):
                    context[key] = {}
                apply(context[key], value)
            else:
                context[key] = value

    context: dict[str, Any] = {}
    for update in updates:
        apply(context, update)
    return context


def leaves(context: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for key, value in context.items():
        if isinstance(value, dict):
            out.update(leaves(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def stored(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    context: dict[str, dict[str, Any]] = {}
    for subject, path, value in con.execute(
        "SELECT distinct_id, path, value FROM subject_context WHERE experiment_key = 'ctx'"
    ).fetchall():
        context.setdefault(subject, {})[path] = json.loads(value)
    return context


def expected(
    con: duckdb.DuckDBPyConnection, updates: dict[str, list[dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """The reference merge of each subject's updates, as stored leaf paths."""
    out = {}
    for subject, subject_updates in updates.items():
        merged = leaves(reference_merge(subject_updates))
        if merged:
            out[subject] = {context_path(con, ".".join(k)): v for k, v in merged.items()}
    return out


def exposure(who: str, when: str = EXPOSED_AT, **properties: Any) -> dict[str, Any]:
    return event("$pageview", who, when, flag=FLAG, variant="control", **properties)


def with_id(record: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {**record, "event_id": event_id}


def run(analysed: Analysed, warehouse: duckdb.DuckDBPyConnection, events: list) -> int:
    experiment = analysed(CATALOG, events)
    build_exposures(warehouse, experiment)
    return build_subject_context(warehouse, experiment)


def test_the_merge_rules_case_by_case(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    t = "2020-01-02T00:00:0{}Z".format
    cases: dict[str, list[dict[str, Any]]] = {
        # Nested objects merge key by key; later values win.
        "nested": [
            {"device": {"os": "ios", "model": "x"}, "country": "NL"},
            {"device": {"model": "y"}, "country": "DE"},
        ],
        # null, "", {} and objects of empties keep what was there.
        "empty": [
            {"country": "NL", "device": {"os": "ios"}, "plan": [1, 2]},
            {"country": None, "device": {}, "plan": ""},
            {"country": "", "device": {"os": None}},
        ],
        # A scalar replaces an object, an object replaces a scalar.
        "to_scalar": [{"device": {"os": "ios", "model": "x"}}, {"device": "desktop"}],
        "to_object": [{"device": "desktop"}, {"device": {"os": "android"}}],
        # Arrays are values, never merged; quoted keys keep their spelling.
        "arrays": [{"tags": [1, {"a": 2}], "$os": "Mac"}, {"tags": ["b"], "$os": True}],
    }
    events = []
    for subject, updates in cases.items():
        for i, update in enumerate(updates):
            events.append(event("$identify", subject, t(i), **{"$set": update}))
        events.append(exposure(subject))
    run(analysed, warehouse, events)

    assert stored(warehouse) == expected(warehouse, cases)
    assert stored(warehouse)["to_scalar"] == {"$.device": "desktop"}
    assert stored(warehouse)["arrays"] == {"$.tags": ["b"], '$."$os"': True}


def test_ties_go_by_event_uid_and_only_pre_exposure_events_count(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    same = "2020-01-02T00:00:00Z"
    events = [
        # Same instant: event_uid order decides ('id:b' after 'id:a').
        with_id(event("$identify", "tie", same, **{"$set": {"country": "DE"}}), "b"),
        with_id(event("$identify", "tie", same, **{"$set": {"country": "NL"}}), "a"),
        exposure("tie"),
        # The exposure's own $set counts, a later one (after treatment) does not.
        exposure("pre", **{"$set": {"country": "FR"}}),
        event("$identify", "pre", "2020-01-04T00:00:00Z", **{"$set": {"country": "BE"}}),
        # Bot events are not analysed, so they set nothing.
        event("$identify", "bot", same, **{"$set": {"country": "XX"}}, **{"$user_agent": "bot"}),
        exposure("bot"),
        exposure("none"),
    ]
    assert run(analysed, warehouse, events) == 2
    assert stored(warehouse) == {"tie": {"$.country": "DE"}, "pre": {"$.country": "FR"}}


def _random_value(rng: random.Random, depth: int) -> Any:
    choice = rng.random()
    if depth < 2 and choice < 0.35:
        return {k: _random_value(rng, depth + 1) for k in rng.sample(KEYS, rng.randint(0, 3))}
    return rng.choice([None, "", "NL", "DE", 1, 2.5, True, False, [1], []])


KEYS = ["country", "device", "os", "$os", "plan"]


def test_random_updates_match_the_sequential_merge(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """A seeded mix of nested, empty, tied and type-changing updates over 60 subjects."""
    rng = random.Random(11)
    events, updates = [], {}
    for s in range(60):
        subject = f"s{s}"
        times = sorted(rng.randint(0, 5) for _ in range(rng.randint(0, 7)))
        ordered = []
        for i, second in enumerate(times):
            update = {k: _random_value(rng, 1) for k in rng.sample(KEYS, rng.randint(1, 3))}
            event_id = f"{subject}-{rng.random():.6f}-{i}"
            ordered.append((f"2020-01-02T00:00:0{second}Z", f"id:{event_id}", update))
            record = event("$identify", subject, f"2020-01-02T00:00:0{second}Z", **{"$set": update})
            events.append(with_id(record, event_id))
        updates[subject] = [u for _, _, u in sorted(ordered, key=lambda o: (o[0], o[1]))]
        events.append(exposure(subject))
        late = {"country": "late", "device": {"os": "late"}}
        events.append(event("$identify", subject, "2020-01-05T00:00:00Z", **{"$set": late}))
    run(analysed, warehouse, events)
    want = expected(warehouse, updates)
    assert len(want) > 30  # the seed exercises non-trivial contexts
    assert stored(warehouse) == want


def test_replacing_is_idempotent(analysed: Analysed, warehouse: duckdb.DuckDBPyConnection) -> None:
    events = [exposure("a", **{"$set": {"country": "NL"}})]
    experiment = analysed(CATALOG, events)
    build_exposures(warehouse, experiment)
    assert build_subject_context(warehouse, experiment) == 1
    assert build_subject_context(warehouse, experiment) == 1
    assert warehouse.execute("SELECT count(*) FROM subject_context").fetchone() == (1,)


@pytest.mark.parametrize(
    ("attribute", "path"),
    [("country", "$.country"), ("device.platform", "$.device.platform"), ("$os", '$."$os"')],
)
def test_catalog_attributes_become_stored_paths(
    warehouse: duckdb.DuckDBPyConnection, attribute: str, path: str
) -> None:
    assert context_path(warehouse, attribute) == path
