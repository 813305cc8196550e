"""Flag signals extracted at load: `$feature/<flag>` properties and `$feature_flag_called`.

Exposure and attribution read `flag_assignments` only, so each signal must give exactly
one row (event, flag), with the variant as text and the event's bot/DNT flags copied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from exp_pipeline.warehouse.connection import open_warehouse
from tests.warehouse.conftest import Warehouse

TS = datetime(2024, 5, 1, 10, tzinfo=UTC)


def ev(uid: str, name: str = "pageview", **props: Any) -> dict[str, Any]:
    return {
        "event": name,
        "distinct_id": uid,
        "timestamp": "2024-05-01T10:00:00Z",
        "properties": props,
    }


def called(uid: str, flag: Any, response: Any, **props: Any) -> dict[str, Any]:
    props = {"$feature_flag": flag, "$feature_flag_response": response, **props}
    return ev(uid, "$feature_flag_called", **props)


def assignments(wh: Warehouse) -> list[tuple[Any, ...]]:
    return wh.query(
        "SELECT distinct_id, flag_key, variant, source, event, is_bot, is_dnt "
        "FROM flag_assignments ORDER BY distinct_id, source, flag_key"
    )


def test_feature_properties_give_one_row_per_event_and_flag(wh: Warehouse) -> None:
    """Each `$feature/<flag>` property of any event is a 'property' signal for that flag."""
    result = wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [
                ev("u1", **{"$feature/checkout": "test", "$feature/banner": "control", "x": 1}),
                ev("u2", "purchase", **{"$feature/checkout": "control"}),
                ev("u3", **{"feature/checkout": "test", "$feature": "test", "$feature/": "z"}),
            ],
        )
    )

    assert assignments(wh) == [
        ("u1", "banner", "control", "property", "pageview", False, False),
        ("u1", "checkout", "test", "property", "pageview", False, False),
        ("u2", "checkout", "control", "property", "purchase", False, False),
    ]
    assert result.flag_assignments == 3
    assert wh.query(
        "SELECT count(*), bool_and(f.ts = e.ts), bool_and(f.ts = ?) "
        "FROM flag_assignments f JOIN events e USING (event_uid)",
        [TS],
    ) == [(3, True, True)]


def test_flag_called_events(wh: Warehouse) -> None:
    """`$feature_flag_called` with flag and response is a 'flag_called' signal.

    Without a response, or with the properties on another event, it is no signal; a
    `$feature/` property on the same event is a signal of its own.
    """
    result = wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [
                called("u1", "checkout", "test"),
                called("u2", "checkout", "control", **{"$feature/checkout": "control"}),
                ev("u3", "$feature_flag_called", **{"$feature_flag": "checkout"}),
                ev("u4", "$feature_flag_called", **{"$feature_flag_response": "test"}),
                called("u5", "checkout", None),
                ev("u6", **{"$feature_flag": "checkout", "$feature_flag_response": "test"}),
            ],
        )
    )

    flag_called = "$feature_flag_called"
    assert assignments(wh) == [
        ("u1", "checkout", "test", "flag_called", flag_called, False, False),
        ("u2", "checkout", "control", "flag_called", flag_called, False, False),
        ("u2", "checkout", "control", "property", flag_called, False, False),
    ]
    assert result.flag_assignments == 3


@pytest.mark.parametrize(
    ("value", "variant"),
    [
        ("test", "test"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        ("", None),
        ({"v": 1}, '{"v":1}'),
        (None, None),
    ],
)
def test_variant_values_that_are_not_strings(
    wh: Warehouse, value: Any, variant: str | None
) -> None:
    """Non-string variants are stored as their JSON text; null and "" are no signal at all.

    Booleans become 'true'/'false' (PostHog boolean flags); objects are kept as their
    text, which analysis then treats as variants outside the definition.
    """
    wh.load_one(
        wh.write_jsonl("day.jsonl", [ev("u1", **{"$feature/f": value}), called("u2", "f", value)])
    )

    expected = (
        [] if variant is None else [("u1", variant, "property"), ("u2", variant, "flag_called")]
    )
    assert (
        wh.query("SELECT distinct_id, variant, source FROM flag_assignments ORDER BY distinct_id")
        == expected
    )


def test_escaped_feature_keys_are_found(wh: Warehouse) -> None:
    """JSON escapes in a key (`\\/`, `\\u0024`) name the same flag as the plain key."""
    wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [
                '{"event": "pageview", "distinct_id": "u1", "timestamp": "2024-05-01", '
                '"properties": {"$feature\\/a": "x", "\\u0024feature/b": "y"}}'
            ],
        )
    )

    assert [(r[1], r[2]) for r in assignments(wh)] == [("a", "x"), ("b", "y")]


def test_flag_keys_with_path_characters_and_repeated_keys(wh: Warehouse) -> None:
    """Flag names may hold `/`, `~`, `.`, quotes; a key named twice gives a signal each time.

    The loader reads a flag's value by its key, so these characters must not be taken for
    path syntax; an object repeating a key (valid JSON) gives both values, as a subject
    seen in two variants, never just one of them.
    """
    result = wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [
                ev("u1", **{"$feature/a/b~c.d": "x", '$feature/q"t': "y", "$feature/e": "z"}),
                '{"event": "pageview", "distinct_id": "u2", "timestamp": "2024-05-01", '
                '"properties": {"$feature/f": "test", "$feature/f": "control", "k": 1}}',
            ],
        )
    )

    assert sorted((r[0], r[1], r[2]) for r in assignments(wh)) == [
        ("u1", "a/b~c.d", "x"),
        ("u1", "e", "z"),
        ("u1", 'q"t', "y"),
        ("u2", "f", "control"),
        ("u2", "f", "test"),
    ]
    assert result.flag_assignments == 5


def test_bot_and_dnt_flags_are_copied(wh: Warehouse) -> None:
    """A signal from a bot or Do-Not-Track event keeps that flag, so exposure can drop it."""
    wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [
                called("u1", "f", "test", **{"$user_agent": "Googlebot/2.1"}),
                ev("u2", **{"$feature/f": "control", "$dnt": 1}),
            ],
        )
    )

    assert [(r[0], r[5], r[6]) for r in assignments(wh)] == [
        ("u1", True, False),
        ("u2", False, True),
    ]


@pytest.mark.parametrize(
    ("marker", "forced"),
    [
        ({"$feature_flag_forced": True}, True),
        ({"$feature_flag_forced": "true"}, True),
        ({"$feature_flag_forced": 1}, True),
        ({"force_experiment": "exp-a"}, True),
        ({"force_experiment": ["exp-a"]}, True),
        ({"force_experiment": True}, True),
        ({"$feature_flag_forced": False}, False),
        ({"force_experiment": False}, False),
        ({"force_experiment": []}, False),
        ({"force_experiment": None}, False),
        ({}, False),
    ],
)
def test_qa_overrides_are_marked_forced(
    wh: Warehouse, marker: dict[str, Any], forced: bool
) -> None:
    """A forced (QA) signal is kept but marked, so exposure can exclude and count it."""
    wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [called("u1", "f", "test", **marker), ev("u2", **{"$feature/f": "a"}, **marker)],
        )
    )
    assert wh.query("SELECT distinct_id, forced FROM flag_assignments ORDER BY 1") == [
        ("u1", forced),
        ("u2", forced),
    ]


def test_a_warehouse_from_before_the_forced_column_gets_it(tmp_path: Path) -> None:
    """Opening an older warehouse adds the column (false) instead of failing to load."""
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE flag_assignments (event_uid VARCHAR NOT NULL, distinct_id VARCHAR "
            "NOT NULL, ts TIMESTAMPTZ NOT NULL, flag_key VARCHAR NOT NULL, variant VARCHAR NOT "
            "NULL, source VARCHAR NOT NULL, event VARCHAR NOT NULL, is_bot BOOLEAN NOT NULL, "
            "is_dnt BOOLEAN NOT NULL)"
        )
        con.execute(
            "INSERT INTO flag_assignments VALUES ('e', 'u', now(), 'f', 'a', 'property', "
            "'pageview', false, false)"
        )
    with open_warehouse(path) as con:
        assert con.execute("SELECT distinct_id, forced FROM flag_assignments").fetchall() == [
            ("u", False)
        ]


def test_duplicates_and_quarantined_records_give_no_signal(wh: Warehouse) -> None:
    """Only events actually inserted produce flag rows; a re-sent event adds none."""
    records = [
        ev("u1", **{"$feature/f": "test"}) | {"event_id": "E1"},
        ev("u1", **{"$feature/f": "control"}) | {"event_id": "E1"},
        ev("u2", **{"$feature/f": "test"}) | {"timestamp": "not a time"},
    ]
    first = wh.load_one(wh.write_jsonl("a.jsonl", records))
    second = wh.load_one(wh.write_jsonl("b.jsonl", records[:1]))

    assert (first.flag_assignments, second.flag_assignments) == (1, 0)
    assert second.duplicates == 1
    assert [(r[0], r[2]) for r in assignments(wh)] == [("u1", "test")]
