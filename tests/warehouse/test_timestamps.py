"""Timestamps: every accepted notation lands as the right UTC instant and UTC day.

Contract: an offset or `Z` is absolute, a naive datetime is UTC, a date alone is midnight
UTC, and `T` or a space may separate date and time. Anything else is quarantined as
`invalid_timestamp` (or `missing_timestamp`), never guessed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from exp_pipeline.warehouse.connection import open_warehouse
from exp_pipeline.warehouse.loader import load_file
from tests.warehouse.conftest import BOT_PATTERN, Warehouse

TS_DETAIL = 'timestamp "{}" is not an ISO 8601 date or datetime'


def record(ts: Any) -> dict[str, Any]:
    return {"event": "pageview", "distinct_id": "u1", "timestamp": ts}


@pytest.mark.parametrize(
    ("text", "instant", "day"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC), date(2024, 5, 1)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC), date(2024, 5, 1)),
        # The offset moves the instant across midnight: event_date is the UTC day.
        ("2024-05-01T23:30:00-02:00", datetime(2024, 5, 2, 1, 30, tzinfo=UTC), date(2024, 5, 2)),
        ("2024-05-02T01:00:00+05:00", datetime(2024, 5, 1, 20, tzinfo=UTC), date(2024, 5, 1)),
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC), date(2024, 5, 1)),
        ("2024-05-01 10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC), date(2024, 5, 1)),
        ("2024-05-01T10:00", datetime(2024, 5, 1, 10, tzinfo=UTC), date(2024, 5, 1)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC), date(2024, 5, 1)),
        (
            "2024-05-01T10:00:00.123456Z",
            datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC),
            date(2024, 5, 1),
        ),
        (
            "2024-05-01T10:00:00.5",
            datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC),
            date(2024, 5, 1),
        ),
        (
            "2024-05-01T23:59:59.999999Z",
            datetime(2024, 5, 1, 23, 59, 59, 999999, tzinfo=UTC),
            date(2024, 5, 1),
        ),
    ],
)
def test_accepted_notations_land_as_utc(
    wh: Warehouse, text: str, instant: datetime, day: date
) -> None:
    """Each notation of the contract gives the same absolute instant and its UTC day."""
    result = wh.load_one(wh.write_jsonl("day.jsonl", [record(text)]))

    assert result.rows_loaded == 1
    assert wh.query("SELECT ts, event_date FROM events") == [(instant, day)]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1714557600, "1714557600"),  # epoch seconds are not part of the contract
        ("1714557600", "1714557600"),
        ("epoch", "epoch"),  # DuckDB casts these words; they are not ISO 8601
        ("infinity", "infinity"),
        ("-infinity", "-infinity"),
        ("yesterday", "yesterday"),
        ("2024-13-01", "2024-13-01"),
        ("2024-02-30", "2024-02-30"),
        ("05/01/2024", "05/01/2024"),
        ("2024-05-01T10:00:00 +02:00", "2024-05-01T10:00:00 +02:00"),
        (True, "true"),
    ],
)
def test_invalid_timestamps_are_quarantined(wh: Warehouse, value: Any, shown: str) -> None:
    """What is not an ISO date or datetime is quarantined with the text it had."""
    result = wh.load_one(wh.write_jsonl("day.jsonl", [record(value)]))

    assert result.quarantined == {"invalid_timestamp": 1}
    assert [(r[0], r[1], r[2]) for r in wh.quarantine()] == [
        (1, "invalid_timestamp", TS_DETAIL.format(shown))
    ]
    assert wh.counts()["events"] == 0


@pytest.mark.parametrize("value", ["", "   ", None])
def test_empty_timestamp_is_missing(wh: Warehouse, value: str | None) -> None:
    """An empty or null timestamp is `missing_timestamp`, not `invalid_timestamp`."""
    result = wh.load_one(wh.write_jsonl("day.jsonl", [record(value)]))

    assert result.quarantined == {"missing_timestamp": 1}


@pytest.fixture
def tokyo_machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process zone set to Asia/Tokyo (DuckDB takes its default zone from it)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("tokyo_machine")
def test_naive_timestamps_are_utc_whatever_the_machine_zone(tmp_path: Path) -> None:
    """The warehouse session is UTC, so a naive timestamp never takes the machine's zone."""
    landing = tmp_path / "day.jsonl"
    landing.write_text('{"event": "a", "distinct_id": "u1", "timestamp": "2024-05-01 23:00"}\n')
    with open_warehouse(tmp_path / "w.duckdb") as con:
        load_file(con, landing, bot_pattern=BOT_PATTERN)
        row = con.execute("SELECT epoch(ts), event_date FROM events").fetchone()

    assert row == (datetime(2024, 5, 1, 23, tzinfo=UTC).timestamp(), date(2024, 5, 1))
