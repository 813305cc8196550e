"""Quarantine: every reason the loader gives, on the right source line, with the raw text.

The contract says nothing is silently dropped: each record read is loaded, skipped as a
duplicate, or quarantined with its reason; a file unreadable as a whole is kept as one
`unreadable_file` row. These tests pin the reasons, line numbers, details and raw text.
"""

from __future__ import annotations

import gzip
import hashlib

import pytest

from tests.warehouse.conftest import Warehouse, unaccounted

TS_DETAIL = 'timestamp "{}" is not an ISO 8601 date or datetime'
PROPS_DETAIL = "properties must be a JSON object"

# One JSONL file holding every record-level reason; blank lines still count as lines.
JSONL_LINES = [
    '{"event": "pageview", "distinct_id": "u1", "timestamp": "2024-05-01T10:00:00Z"}',
    "",
    '{"event": "pageview", "distinct_id": "u2"',
    "[1, 2]",
    '"pageview"',
    '{"distinct_id": "u3", "timestamp": "2024-05-01T10:00:00Z"}',
    '{"event": "  ", "distinct_id": "u4", "timestamp": "2024-05-01T10:00:00Z"}',
    '{"event": "pageview", "distinct_id": "", "timestamp": "2024-05-01"}',
    '{"event": "pageview", "distinct_id": "u6"}',
    '{"event": "pageview", "distinct_id": "u7", "timestamp": null}',
    '{"event": "pageview", "distinct_id": "u8", "timestamp": "yesterday"}',
    '{"event": "pageview", "distinct_id": "u9", "timestamp": "2024-05-01", "properties": [1]}',
    '{"event": "pageview", "distinct_id": "u10", "timestamp": "2024-05-01", "properties": "{}"}',
    "   ",
    '{"timestamp": "nope", "properties": 5}',
    '{"event": "pageview", "distinct_id": "u11", "timestamp": "2024-05-01", "properties": null}',
]


def line(n: int) -> str:
    return JSONL_LINES[n - 1]


def test_jsonl_every_record_reason_with_line_detail_and_raw(wh: Warehouse) -> None:
    """Each bad JSONL record is quarantined on its physical line, raw text kept verbatim."""
    result = wh.load_one(wh.write_jsonl("day.jsonl", JSONL_LINES))

    assert wh.quarantine() == [
        (3, "malformed_json", None, line(3)),
        (4, "not_an_object", None, line(4)),
        (5, "not_an_object", None, line(5)),
        (6, "missing_event", None, line(6)),
        (7, "missing_event", None, line(7)),
        (8, "missing_distinct_id", None, line(8)),
        (9, "missing_timestamp", None, line(9)),
        (10, "missing_timestamp", None, line(10)),
        (11, "invalid_timestamp", TS_DETAIL.format("yesterday"), line(11)),
        (12, "invalid_properties", PROPS_DETAIL, line(12)),
        (13, "invalid_properties", PROPS_DETAIL, line(13)),
        # Missing event, bad timestamp and bad properties at once: the first check wins.
        (15, "missing_event", None, line(15)),
    ]
    assert wh.event_lines() == [(1, "u1"), (16, "u11")]
    # Blank and whitespace-only lines (2 and 14) are not records.
    assert result.rows_read == 14
    assert result.rows_loaded == 2
    assert result.duplicates == 0
    assert result.quarantined == {
        "invalid_properties": 2,
        "invalid_timestamp": 1,
        "malformed_json": 1,
        "missing_distinct_id": 1,
        "missing_event": 3,
        "missing_timestamp": 2,
        "not_an_object": 2,
    }
    assert unaccounted(result) == 0


def test_quarantine_rows_name_their_file(wh: Warehouse) -> None:
    """Quarantined rows carry the file's SHA-256 and path, stamped with the load time."""
    path = wh.write_jsonl("day.jsonl", [line(1), line(3)])
    wh.load_one(path)

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert wh.query("SELECT file_sha256, source_file, source_line FROM quarantine") == [
        (sha, str(path), 2)
    ]
    assert (
        wh.scalar(
            "SELECT count(*) FROM quarantine q JOIN loaded_files f USING (file_sha256) "
            "WHERE q.quarantined_at = f.loaded_at"
        )
        == 1
    )


def test_loaded_files_row_matches_the_file_load(wh: Warehouse) -> None:
    """The loaded_files record holds the same figures as the returned FileLoad."""
    result = wh.load_one(wh.write_jsonl("day.jsonl", JSONL_LINES))

    quarantined = sum(result.quarantined.values())
    assert wh.loaded_files() == [
        ("day.jsonl", "loaded", result.rows_read, result.rows_loaded, 0, quarantined, 0, 0)
    ]
    assert wh.loaded_files()[0][2:6] == (14, 2, 0, 12)


CSV_HEADER = "event,distinct_id,timestamp,properties,event_id"
CSV_ROWS = [
    'pageview,u1,2024-05-01T10:00:00Z,"{""plan"": ""pro""}",e1',
    "pageview,u2",
    "pageview,u3,2024-05-01,,e3,extra",
    'pageview,"u4"x,2024-05-01,,',
    ",u5,2024-05-01,,",
    "pageview,u6,2024-05-01,notjson,",
    "pageview,u7,2024-05-01,,e7",
]


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_csv_malformed_rows_and_field_reasons(wh: Warehouse, newline: str) -> None:
    """Bad CSV rows (column count, quoting) are quarantined alone, on their line.

    A badly quoted row used to make DuckDB's sniffer fail and reject the whole file.
    """
    text = newline.join([CSV_HEADER, *CSV_ROWS]) + newline
    result = wh.load_one(wh.write_bytes("day.csv", text.encode()))

    assert result.status == "loaded"
    assert wh.quarantine() == [
        (3, "malformed_csv_row", "missing columns", "pageview,u2"),
        (4, "malformed_csv_row", "too many columns", "pageview,u3,2024-05-01,,e3,extra"),
        (5, "malformed_csv_row", "unquoted value", 'pageview,"u4"x,2024-05-01,,'),
        (
            6,
            "missing_event",
            None,
            '{"event":null,"distinct_id":"u5","timestamp":"2024-05-01",'
            '"properties":null,"event_id":null}',
        ),
        (
            7,
            "invalid_properties",
            PROPS_DETAIL,
            '{"event":"pageview","distinct_id":"u6","timestamp":"2024-05-01",'
            '"properties":"notjson","event_id":null}',
        ),
    ]
    assert wh.event_lines() == [(2, "u1"), (8, "u7")]
    assert result.quarantined == {
        "invalid_properties": 1,
        "malformed_csv_row": 3,
        "missing_event": 1,
    }
    assert (result.rows_read, result.rows_loaded) == (7, 2)
    assert unaccounted(result) == 0


def test_csv_unterminated_quote_keeps_the_rest_of_the_file_in_quarantine(wh: Warehouse) -> None:
    """An unterminated quote runs to the end of the file: those rows are kept as one record."""
    rows = ["pageview,u1,2024-05-01,,", 'pageview,"u2,2024-05-01,,', "pageview,u3,2024-05-01,,"]
    text = "\n".join([CSV_HEADER, *rows]) + "\n"
    result = wh.load_one(wh.write_text("day.csv", text))

    assert wh.quarantine() == [
        (
            3,
            "malformed_csv_row",
            "unquoted value",
            'pageview,"u2,2024-05-01,,\npageview,u3,2024-05-01,,',
        )
    ]
    assert wh.event_lines() == [(2, "u1")]
    assert unaccounted(result) == 0


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("bad.jsonl.gz", b"not gzip at all", "cannot be read as jsonl: IO Error: Input is not a"),
        (
            "cut.jsonl.gz",
            gzip.compress(("\n".join(JSONL_LINES[:1] * 50)).encode())[:40],
            "cannot be read as jsonl: IO Error: ",
        ),
        ("junk.parquet", b"PAR1 not parquet", "cannot be read as parquet: "),
        (
            "short.csv",
            b"event,distinct_id\npageview,u1\n",
            "missing required column(s) timestamp (found: event, distinct_id)",
        ),
        (
            "empty.csv",
            b"",
            "missing required column(s) event, distinct_id, timestamp (found: none)",
        ),
        (
            "semicolons.csv",
            b"event;distinct_id;timestamp\npageview;u1;2024-05-01\n",
            "missing required column(s) event, distinct_id, timestamp "
            "(found: event;distinct_id;timestamp)",
        ),
    ],
)
def test_unreadable_file_is_one_quarantine_row(
    wh: Warehouse, name: str, data: bytes, error: str
) -> None:
    """A file that cannot be read at all is rejected whole, recorded, and kept with the reason."""
    path = wh.write_bytes(name, data)
    result = wh.load_one(path)

    assert result.status == "rejected"
    assert result.error is not None
    assert result.error.startswith(f"{path}: {error}")
    assert result.quarantined == {"unreadable_file": 1}
    assert (result.rows_read, result.rows_loaded, result.duplicates) == (0, 0, 0)
    assert wh.quarantine() == [(None, "unreadable_file", result.error, None)]
    assert wh.loaded_files() == [(name, "rejected", 0, 0, 0, 1, 0, 0)]
    assert wh.counts()["events"] == 0


def test_parquet_missing_columns_is_rejected(wh: Warehouse) -> None:
    """A Parquet file without the required columns is unreadable as events."""
    path = wh.write_parquet("day.parquet", {"event": ["pageview"], "user": ["u1"]})
    result = wh.load_one(path)

    assert result.status == "rejected"
    assert result.error == (
        f"{path}: missing required column(s) distinct_id, timestamp (found: event, user)"
    )


def test_rejected_file_is_not_retried(wh: Warehouse) -> None:
    """A rejected file is recorded by its SHA-256, so loading it again changes nothing."""
    path = wh.write_bytes("bad.jsonl.gz", b"not gzip")
    wh.load_one(path)
    before = wh.counts()

    again = wh.load_one(path)

    assert again.status == "already_loaded"
    assert again.quarantined == {}
    assert (
        wh.counts()
        == before
        == {
            "events": 0,
            "flag_assignments": 0,
            "quarantine": 1,
            "loaded_files": 1,
        }
    )


def test_invalid_utf8_line_rejects_the_whole_jsonl_file(wh: Warehouse) -> None:
    """A line that is not UTF-8 makes the file unreadable: nothing loaded, reason kept.

    Per-line quarantine would be kinder (see the report); this pins that nothing is lost
    silently and nothing of the file is half-loaded.
    """
    data = (line(1) + "\n").encode() + b'{"event": "caf\xe9"}\n'
    path = wh.write_bytes("day.jsonl", data)
    result = wh.load_one(path)

    assert result.status == "rejected"
    assert result.error is not None
    assert result.error.startswith(f"{path}: cannot be read as jsonl: ")
    assert wh.counts() == {"events": 0, "flag_assignments": 0, "quarantine": 1, "loaded_files": 1}


def test_skipped_file_is_not_recorded(wh: Warehouse) -> None:
    """A file of no landing format is skipped with an error and leaves no trace in tables."""
    path = wh.write_text("notes.txt", line(1) + "\n")
    result = wh.load_one(path)

    assert (result.status, result.format) == ("skipped", "unknown")
    assert result.error is not None
    assert result.error.startswith(f"{path}: not a landing file")
    assert wh.counts() == {"events": 0, "flag_assignments": 0, "quarantine": 0, "loaded_files": 0}
