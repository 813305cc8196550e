"""Format parity: JSONL, gzipped JSONL, CSV and Parquet give the same warehouse rows.

Validation, typing and dedup run once for all formats, on a uniform staging relation;
these tests check that each reader feeds it the same values (CSV `properties` is JSON
text, Parquet `properties` JSON text or a struct), so only the source columns differ.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from exp_pipeline.warehouse.connection import open_warehouse
from exp_pipeline.warehouse.loader import FileLoad
from exp_pipeline.warehouse.readers import detect_format
from tests.warehouse.conftest import Warehouse

RECORDS: list[dict[str, Any]] = [
    {
        "event": "pageview",
        "distinct_id": "u1",
        "timestamp": "2024-05-01T10:00:00Z",
        "properties": {
            "$feature/checkout": "test",
            "$session_id": "s1",
            "path": "/a",
            "n": 1.5,
            "tags": ["x", "y"],
            "nested": {"k": None},
        },
        "event_id": "E1",
    },
    {
        "event": "$feature_flag_called",
        "distinct_id": "u2",
        "timestamp": "2024-05-01T12:30:00+02:00",
        "properties": {"$feature_flag": "checkout", "$feature_flag_response": "control"},
    },
    {
        "event": "purchase",
        "distinct_id": "u3",
        "timestamp": "2024-05-01 23:59:59.5",
        "properties": {"$user_agent": "Googlebot/2.1", "amount": 10},
    },
    {
        "event": "pageview",
        "distinct_id": "u4",
        "timestamp": "2024-05-02",
        "properties": {"dnt": "1", "text": 'comma, "quote", tab\t, newline\n'},
    },
    {"event": "pageview", "distinct_id": "u5", "timestamp": "2024-05-02T00:00:00Z"},
    {
        "event": "pageview",
        "distinct_id": "u1",
        "timestamp": "2024-05-01T10:00:00Z",
        "properties": {"$feature/checkout": "control"},
        "event_id": "E1",
    },
    {"event": "pageview", "distinct_id": "u6", "timestamp": "not a time"},
    {
        "event": "pageview",
        "distinct_id": "u7",
        "timestamp": "2024-05-03T08:00:00",
        "properties": {"é": "ü — ✓"},
    },
]
FIELDS = ["event", "distinct_id", "timestamp", "properties", "event_id"]


def text_fields(record: dict[str, Any]) -> list[str | None]:
    """The record as text columns: properties as JSON text, absent fields as None."""
    props = record.get("properties")
    return [
        record["event"],
        record["distinct_id"],
        record["timestamp"],
        None if props is None else json.dumps(props, ensure_ascii=False),
        record.get("event_id"),
    ]


def write_csv(wh: Warehouse) -> Path:
    return wh.write_csv("day.csv", FIELDS, [text_fields(r) for r in RECORDS])


def write_parquet(wh: Warehouse) -> Path:
    rows = [text_fields(r) for r in RECORDS]
    return wh.write_parquet("day.parquet", {f: [r[i] for r in rows] for i, f in enumerate(FIELDS)})


WRITERS: dict[str, Callable[[Warehouse], Path]] = {
    "jsonl": lambda wh: wh.write_jsonl("day.jsonl", RECORDS),
    "jsonl.gz": lambda wh: wh.write_jsonl_gz("day.jsonl.gz", RECORDS),
    "ndjson": lambda wh: wh.write_jsonl("day.ndjson", RECORDS),
    "csv": write_csv,
    "parquet": write_parquet,
}
EVENT_COLUMNS = (
    "event_uid, event_id, event, distinct_id, ts, event_date, properties::VARCHAR, "
    "user_agent, session_id, is_bot, is_dnt"
)


def load_as(tmp_path: Path, fmt: str) -> dict[str, Any]:
    """Load RECORDS written in `fmt` into a warehouse of its own; return what it holds."""
    with open_warehouse(tmp_path / f"{fmt}.duckdb") as con:
        wh = Warehouse(con, tmp_path / fmt)
        result = wh.load_one(WRITERS[fmt](wh))
        return {
            "result": result,
            "events": wh.query(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY event_uid"),
            "lines": wh.event_lines(),
            "flags": wh.query("SELECT * FROM flag_assignments ORDER BY ALL"),
            "quarantine": [r[:3] for r in wh.quarantine()],
        }


def figures(result: FileLoad) -> tuple[Any, ...]:
    return (
        result.status,
        result.rows_read,
        result.rows_loaded,
        result.duplicates,
        result.quarantined,
        result.bots,
        result.dnt,
        result.flag_assignments,
    )


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every format loaded once per module: the parity tests only compare the results."""
    tmp_path = tmp_path_factory.mktemp("formats")
    return {fmt: load_as(tmp_path, fmt) for fmt in WRITERS}


def test_jsonl_reference_rows(loaded: dict[str, dict[str, Any]]) -> None:
    """The reference load itself is right, so parity compares against a known state."""
    ref = loaded["jsonl"]
    assert figures(ref["result"]) == ("loaded", 8, 6, 1, {"invalid_timestamp": 1}, 1, 1, 2)
    assert ref["lines"] == [(1, "u1"), (2, "u2"), (3, "u3"), (4, "u4"), (5, "u5"), (8, "u7")]
    by_subject = {row[3]: row for row in ref["events"]}
    assert by_subject["u1"][6] == json.dumps(RECORDS[0]["properties"], separators=(",", ":"))
    assert by_subject["u2"][4:6] == (datetime(2024, 5, 1, 10, 30, tzinfo=UTC), date(2024, 5, 1))
    assert by_subject["u3"][4] == datetime(2024, 5, 1, 23, 59, 59, 500000, tzinfo=UTC)
    assert by_subject["u4"][6] == ('{"dnt":"1","text":"comma, \\"quote\\", tab\\t, newline\\n"}')
    assert by_subject["u5"][6] == "{}"
    assert by_subject["u7"][6] == '{"é":"ü — ✓"}'
    # user_agent, session_id, is_bot, is_dnt
    assert by_subject["u1"][7:] == (None, "s1", False, False)
    assert by_subject["u3"][7:] == ("Googlebot/2.1", None, True, False)
    assert by_subject["u4"][7:] == (None, None, False, True)


@pytest.mark.parametrize("fmt", ["jsonl.gz", "ndjson", "csv", "parquet"])
def test_formats_give_identical_rows(loaded: dict[str, dict[str, Any]], fmt: str) -> None:
    """Events, flag rows, figures and quarantine reasons match the JSONL load exactly."""
    ref, other = loaded["jsonl"], loaded[fmt]

    assert other["events"] == ref["events"]
    assert other["flags"] == ref["flags"]
    assert figures(other["result"]) == figures(ref["result"])
    assert [r[1:] for r in other["quarantine"]] == [r[1:] for r in ref["quarantine"]]


@pytest.mark.parametrize(
    ("fmt", "first_line"), [("jsonl", 1), ("jsonl.gz", 1), ("csv", 2), ("parquet", 1)]
)
def test_source_lines_per_format(
    loaded: dict[str, dict[str, Any]], fmt: str, first_line: int
) -> None:
    """Text files number physical lines (CSV has its header on line 1); Parquet numbers rows."""
    offset = first_line - 1
    expected = [(n + offset, uid) for n, uid in loaded["jsonl"]["lines"]]
    assert loaded[fmt]["lines"] == expected
    assert loaded[fmt]["quarantine"][0][0] == 7 + offset


def test_csv_columns_by_name_in_any_case_and_order(wh: Warehouse) -> None:
    """CSV columns are found by header name, case-insensitively; extra columns are ignored."""
    wh.write_csv(
        "day.csv",
        ["Timestamp", "extra", "UUID", "Properties", "Distinct_ID", "EVENT"],
        [
            ["2024-05-01T10:00:00Z", "x", "U1", '{"$feature/f": "test"}', "u1", "pageview"],
            ["2024-05-01", "y", None, None, "u2", "purchase"],
        ],
    )
    result = wh.load()

    assert result.rows_loaded == 2
    assert wh.query(
        "SELECT event_uid LIKE 'id:%', event_id, event, distinct_id, properties::VARCHAR "
        "FROM events ORDER BY source_line"
    ) == [
        (True, "U1", "pageview", "u1", '{"$feature/f":"test"}'),
        (False, None, "purchase", "u2", "{}"),
    ]
    assert wh.scalar("SELECT variant FROM flag_assignments") == "test"


def test_csv_without_optional_columns(wh: Warehouse) -> None:
    """`properties` and `event_id` are optional in CSV: events get `{}` and a content hash."""
    wh.write_csv(
        "day.csv", ["event", "distinct_id", "timestamp"], [["pageview", "u1", "2024-05-01"]]
    )
    wh.load()

    assert wh.query("SELECT event_id, properties::VARCHAR, source_line FROM events") == [
        (None, "{}", 2)
    ]


def test_parquet_typed_columns(wh: Warehouse) -> None:
    """Parquet timestamps typed as naive (UTC), zoned or date, and struct properties, load."""
    wh.write_parquet(
        "typed.parquet",
        {
            "event": ["pageview", "pageview"],
            "distinct_id": ["u1", "u2"],
            "timestamp": pa.array(
                [datetime(2024, 5, 1, 10), datetime(2024, 5, 1, 23, 30)], pa.timestamp("us")
            ),
            "properties": [{"$feature/f": "test", "n": 1}, {"$feature/f": "control", "n": 2}],
        },
    )
    wh.write_parquet(
        "zoned.parquet",
        {
            "event": ["pageview"],
            "distinct_id": ["u3"],
            "timestamp": pa.array(
                [datetime(2024, 5, 1, 22, tzinfo=UTC)], pa.timestamp("us", tz="Europe/Paris")
            ),
            "event_id": [42],
        },
    )
    wh.write_parquet(
        "dated.parquet",
        {"event": ["pageview"], "distinct_id": ["u4"], "timestamp": [date(2024, 5, 1)]},
    )
    report = wh.load()

    assert [f.status for f in report.files] == ["loaded", "loaded", "loaded"]
    assert wh.query(
        "SELECT distinct_id, ts, event_date, event_id, properties::VARCHAR FROM events ORDER BY 1"
    ) == [
        (
            "u1",
            datetime(2024, 5, 1, 10, tzinfo=UTC),
            date(2024, 5, 1),
            None,
            '{"$feature/f":"test","n":1}',
        ),
        (
            "u2",
            datetime(2024, 5, 1, 23, 30, tzinfo=UTC),
            date(2024, 5, 1),
            None,
            '{"$feature/f":"control","n":2}',
        ),
        ("u3", datetime(2024, 5, 1, 22, tzinfo=UTC), date(2024, 5, 1), "42", "{}"),
        ("u4", datetime(2024, 5, 1, tzinfo=UTC), date(2024, 5, 1), None, "{}"),
    ]
    assert wh.query("SELECT distinct_id, variant FROM flag_assignments ORDER BY 1") == [
        ("u1", "test"),
        ("u2", "control"),
    ]


def test_parquet_written_by_duckdb_copy(wh: Warehouse) -> None:
    """A Parquet file from DuckDB COPY with a NULL field is quarantined on its 1-based row."""
    path = wh.path("copy.parquet")
    wh.con.execute(
        "COPY (SELECT * FROM (VALUES ('pageview', 'u1', '2024-05-01', '{\"k\": 1}'), "
        "('pageview', NULL, '2024-05-01', NULL)) t(event, distinct_id, timestamp, properties)) "
        f"TO '{path}' (FORMAT parquet)"
    )
    result = wh.load_one(path)

    assert result.quarantined == {"missing_distinct_id": 1}
    assert wh.quarantine() == [
        (
            2,
            "missing_distinct_id",
            None,
            '{"event":"pageview","distinct_id":null,"timestamp":"2024-05-01",'
            '"properties":null,"event_id":null}',
        )
    ]
    assert wh.query("SELECT source_line, properties::VARCHAR FROM events") == [(1, '{"k":1}')]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", "jsonl"),
        ("A.JSONL", "jsonl"),
        ("a.jsonl.gz", "jsonl"),
        ("a.json.GZ", "jsonl"),
        ("a.csv", "csv"),
        ("a.csv.gz", "csv"),
        ("a.parquet", "parquet"),
        ("events.2024-05-01.jsonl", "jsonl"),
        ("a.parquet.gz", None),
        ("a.gz", None),
        ("a.txt", None),
        ("a.jsonl.tmp", None),
        ("README", None),
        (".DS_Store", None),
    ],
)
def test_detect_format(name: str, fmt: str | None) -> None:
    """The format comes from the extension; `.gz` only wraps text formats."""
    assert detect_format(Path("landing") / name) == fmt


def test_csv_repeated_header_names(wh: Warehouse) -> None:
    """A header naming a column twice still loads (the repeat is renamed, not a bad row)."""
    wh.write_text("day.csv", "event,distinct_id,timestamp,x,X\npageview,u1,2024-05-01,1,2\n")
    result = wh.load()

    assert (result.rows_loaded, result.quarantined) == (1, {})


def test_csv_blank_lines_before_the_header(wh: Warehouse) -> None:
    """Blank lines before the header are skipped, and later rows keep their physical lines."""
    wh.write_text(
        "day.csv",
        "\n  \nevent,distinct_id,timestamp\npageview,u1,2024-05-01\npageview,u2\n"
        "pageview,u3,2024-05-01\n",
    )
    result = wh.load()

    assert (result.rows_loaded, result.quarantined) == (2, {"malformed_csv_row": 1})
    assert wh.event_lines() == [(4, "u1"), (6, "u3")]
    assert [r[:2] for r in wh.quarantine()] == [(5, "malformed_csv_row")]


@pytest.mark.xfail(strict=True, reason="known limitation: CSV blank lines are not counted")
def test_csv_blank_line_keeps_later_line_numbers(wh: Warehouse) -> None:
    """Rows after a blank CSV line should keep their physical line numbers (JSONL does)."""
    wh.write_text(
        "day.csv", "event,distinct_id,timestamp\npageview,u1,2024-05-01\n\npageview,u2,2024-05-01\n"
    )
    wh.load()

    assert wh.event_lines() == [(2, "u1"), (4, "u2")]
