"""Deduplication: on `event_id` (or `uuid`), else on a content hash; re-loads are no-ops.

Producers resend events and landing files get copied; the warehouse must hold each event
once, and `rows_read == loaded + duplicates + quarantined` must still add up.
"""

from __future__ import annotations

import hashlib
import shutil
from typing import Any

from tests.warehouse.conftest import Warehouse, unaccounted


def ev(uid: str, ts: str = "2024-05-01T10:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"event": "pageview", "distinct_id": uid, "timestamp": ts, **extra}


def test_event_id_dedup_within_a_file_keeps_the_first_line(wh: Warehouse) -> None:
    """Two records with one event_id are one event, the first line's, even if they differ."""
    result = wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [
                ev("u1", event_id="E1", properties={"v": 1}),
                ev("u2", event_id="E2"),
                ev("u1", event_id="E1", properties={"v": 2}),
                ev("u9", "2024-05-03", event_id="E1"),
            ],
        )
    )

    assert (result.rows_read, result.rows_loaded, result.duplicates) == (4, 2, 2)
    assert unaccounted(result) == 0
    assert wh.query(
        "SELECT event_uid, event_id, distinct_id, properties, source_line FROM events "
        "ORDER BY source_line"
    ) == [("id:E1", "E1", "u1", '{"v":1}', 1), ("id:E2", "E2", "u2", "{}", 2)]


def test_uuid_is_the_event_id_when_there_is_none(wh: Warehouse) -> None:
    """`uuid` keys the event when `event_id` is absent; `event_id` wins when both exist."""
    wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [
                ev("u1", uuid="U1"),
                ev("u2", uuid="U2", event_id="E2"),
                ev("u3", uuid="U1"),
                ev("u4", event_id="U2"),
            ],
        )
    )

    assert wh.query("SELECT event_uid, event_id, distinct_id FROM events ORDER BY 1") == [
        ("id:E2", "E2", "u2"),
        ("id:U1", "U1", "u1"),
        ("id:U2", "U2", "u4"),
    ]


def test_event_id_is_trimmed_and_blank_means_none(wh: Warehouse) -> None:
    """Padding around an id does not make a new event; a blank id falls back to the hash."""
    wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [
                ev("u1", event_id=" E1 "),
                ev("u2", event_id="E1"),
                ev("u3", event_id="  "),
                ev("u3"),
                ev("u4", event_id=7),
            ],
        )
    )

    rows = wh.query("SELECT event_uid, event_id, distinct_id FROM events ORDER BY source_line")
    assert [(r[1], r[2]) for r in rows] == [("E1", "u1"), (None, "u3"), ("7", "u4")]
    assert rows[0][0] == "id:E1"
    assert rows[1][0].startswith("h:")
    assert rows[2][0] == "id:7"


def test_content_hash_is_stable(wh: Warehouse) -> None:
    """The hash of an id-less event is fixed (md5 of the normalised fields, unit separator).

    Changing it would make every re-sent old event look new, so it is pinned here.
    """
    wh.load_one(wh.write_jsonl("day.jsonl", [ev("u1", properties={"k": 1})]))

    fields = ["pageview", "u1", "2024-05-01T10:00:00.000000Z", '{"k":1}']
    expected = "h:" + hashlib.md5("\x1f".join(fields).encode()).hexdigest()
    assert wh.scalar("SELECT event_uid FROM events") == expected


def test_content_hash_dedup_without_ids(wh: Warehouse) -> None:
    """Without ids, records equal in event, subject, instant and properties are one event.

    The instant is compared, not its text: `+02:00` and `Z` for the same moment match, and
    so do spacing differences in the JSON and absent versus null properties.
    """
    result = wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [
                ev("u1", properties={"k": 1}),
                ev("u1", properties={"k": 1}),
                ev("u1", "2024-05-01T12:00:00+02:00", properties={"k": 1}),
                '{"event":"pageview","distinct_id":"u1","timestamp":"2024-05-01 10:00:00",'
                '"properties":{ "k" : 1 }}',
                ev("u1", properties={"k": 2}),
                ev("u1", "2024-05-01T10:00:01Z", properties={"k": 1}),
                ev("u2", properties={"k": 1}),
                ev("u3"),
                ev("u3", properties=None),
                ev("u3", properties={}),
            ],
        )
    )

    assert (result.rows_read, result.rows_loaded, result.duplicates) == (10, 5, 5)
    assert wh.event_lines() == [(1, "u1"), (5, "u1"), (6, "u1"), (7, "u2"), (8, "u3")]


def test_duplicates_across_files(wh: Warehouse) -> None:
    """A later file adds only the events the warehouse does not hold yet."""
    first = wh.load_one(wh.write_jsonl("a.jsonl", [ev("u1", event_id="E1"), ev("u2")]))
    second = wh.load_one(
        wh.write_jsonl("b.jsonl", [ev("u2"), ev("u1", event_id="E1"), ev("u3", event_id="E3")])
    )

    assert (first.rows_loaded, first.duplicates) == (2, 0)
    assert (second.rows_read, second.rows_loaded, second.duplicates) == (3, 1, 2)
    assert wh.query("SELECT distinct_id, source_file LIKE '%b.jsonl' FROM events ORDER BY 1") == [
        ("u1", False),
        ("u2", False),
        ("u3", True),
    ]
    assert [r[:5] for r in wh.loaded_files()] == [
        ("a.jsonl", "loaded", 2, 2, 0),
        ("b.jsonl", "loaded", 3, 1, 2),
    ]


def test_reloading_the_same_file_is_a_noop(wh: Warehouse) -> None:
    """The second load of a file is `already_loaded`: no rows, no counts, one record."""
    path = wh.write_jsonl("day.jsonl", [ev("u1", properties={"$feature/f": "a"}), "{bad"])
    wh.load_one(path)
    before = wh.counts()

    again = wh.load_one(path)
    report = wh.load(path)

    assert before == {"events": 1, "flag_assignments": 1, "quarantine": 1, "loaded_files": 1}
    assert wh.counts() == before
    for result in (again, report.files[0]):
        assert result.status == "already_loaded"
        assert (result.rows_read, result.rows_loaded, result.duplicates) == (0, 0, 0)
        assert (result.quarantined, result.flag_assignments) == ({}, 0)


def test_renamed_copy_adds_nothing(wh: Warehouse) -> None:
    """The same bytes under another name are recognised by SHA-256 and not loaded again."""
    path = wh.write_jsonl("day.jsonl", [ev("u1"), ev("u2", event_id="E2"), "{bad"])
    wh.load_one(path)
    before = wh.counts()
    copy = path.with_name("day-copy.jsonl")
    shutil.copyfile(path, copy)

    result = wh.load_one(copy)

    assert result.status == "already_loaded"
    assert wh.counts() == before
    assert [r[0] for r in wh.loaded_files()] == ["day.jsonl"]


def test_same_records_in_a_different_file_are_all_duplicates(wh: Warehouse) -> None:
    """Another file (gzipped, blank line added) with the same records is loaded as duplicates.

    Its bytes differ, so it is recorded; its records, ids or hashes, are already held.
    Its bad lines are quarantined again, under the new file.
    """
    records: list[dict[str, Any] | str] = [ev("u1"), ev("u2", event_id="E2"), "{bad"]
    wh.load_one(wh.write_jsonl("day.jsonl", records))

    result = wh.load_one(wh.write_jsonl_gz("resent.jsonl.gz", ["", *records]))

    assert result.status == "loaded"
    assert (result.rows_read, result.rows_loaded, result.duplicates) == (3, 0, 2)
    assert result.quarantined == {"malformed_json": 1}
    assert wh.counts() == {"events": 2, "flag_assignments": 0, "quarantine": 2, "loaded_files": 2}
    assert wh.query("SELECT source_line FROM quarantine ORDER BY source_file") == [(3,), (4,)]


def test_bad_records_do_not_count_as_duplicates(wh: Warehouse) -> None:
    """A quarantined record is never compared for dedup, so it is not a duplicate."""
    result = wh.load_one(
        wh.write_jsonl("day.jsonl", [ev("u1", event_id="E1"), ev("", event_id="E1")])
    )

    assert (result.rows_loaded, result.duplicates) == (1, 0)
    assert result.quarantined == {"missing_distinct_id": 1}
