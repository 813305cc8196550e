"""The loader as a whole: bots and Do-Not-Track, atomicity, reports, and file discovery."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from exp_pipeline.errors import LoadError
from exp_pipeline.warehouse import loader
from exp_pipeline.warehouse.loader import discover, landing_files_for_day
from tests.warehouse.conftest import TABLES, Warehouse, unaccounted


def ev(uid: str, ts: str = "2024-05-01T10:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"event": "pageview", "distinct_id": uid, "timestamp": ts, **extra}


# Bots and Do-Not-Track -----------------------------------------------------------------

BOT_AND_DNT_CASES: list[tuple[dict[str, Any], bool, bool]] = [
    ({"$user_agent": "Googlebot/2.1"}, True, False),
    ({"user_agent": "SomeCRAWLER/1.0"}, True, False),
    ({"$user_agent": "Mozilla/5.0 (compatible; BaiduSpider)"}, True, False),
    ({"$user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0"}, False, False),
    # `$user_agent` is read first; the plain key only when it is absent or null.
    ({"$user_agent": "Mozilla/5.0", "user_agent": "bot"}, False, False),
    ({"$user_agent": None, "user_agent": "bot"}, True, False),
    ({"$dnt": 1}, False, True),
    ({"$dnt": True}, False, True),
    ({"dnt": "1"}, False, True),
    ({"dnt": "TRUE"}, False, True),
    ({"$dnt": 0}, False, False),
    ({"$dnt": False}, False, False),
    ({"dnt": "yes"}, False, False),
    ({"$dnt": "0", "dnt": 1}, False, False),
    ({"$user_agent": "Googlebot", "$dnt": 1}, True, True),
    ({}, False, False),
]


def test_bot_and_dnt_flags(wh: Warehouse) -> None:
    """Bot user agents (case-insensitive) and `$dnt`/`dnt` = 1 or true are flagged, not dropped."""
    records = [ev(f"u{i:02}", properties=props) for i, (props, *_) in enumerate(BOT_AND_DNT_CASES)]
    result = wh.load_one(wh.write_jsonl("day.jsonl", records))

    flags = wh.query("SELECT is_bot, is_dnt FROM events ORDER BY distinct_id")
    assert flags == [(bot, dnt) for _, bot, dnt in BOT_AND_DNT_CASES]
    assert (result.rows_loaded, result.bots, result.dnt) == (16, 5, 5)


def test_bots_and_dnt_are_kept_counted_and_excluded_from_analysis(wh: Warehouse) -> None:
    """Flagged events stay in `events`, are counted per file, and `analysis_events` drops them."""
    result = wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [
                ev("human", properties={"$user_agent": "Mozilla/5.0", "$session_id": "s1"}),
                ev("bot", properties={"user_agent": "AhrefsBot"}),
                ev("dnt", properties={"$dnt": 1}),
                ev("both", properties={"$user_agent": "spider", "dnt": True}),
            ],
        )
    )

    assert (result.bots, result.dnt) == (2, 2)
    assert wh.query("SELECT count(*) FROM events") == [(4,)]
    assert wh.query("SELECT distinct_id, user_agent, session_id FROM analysis_events") == [
        ("human", "Mozilla/5.0", "s1")
    ]
    assert [r[6:] for r in wh.loaded_files()] == [(2, 2)]


def test_bot_pattern_is_the_setting(wh: Warehouse) -> None:
    """The pattern is a regular expression from settings, not a fixed list."""
    wh.load_one(
        wh.write_jsonl(
            "day.jsonl",
            [
                ev("u1", properties={"$user_agent": "curl/8.0"}),
                ev("u2", properties={"$user_agent": "Googlebot"}),
            ],
        ),
        bot_pattern="^curl/",
    )

    assert wh.query("SELECT distinct_id, is_bot FROM events ORDER BY 1") == [
        ("u1", True),
        ("u2", False),
    ]


# Atomicity --------------------------------------------------------------------------------


def snapshot(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    return {t: wh.query(f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}


FILE_B: list[dict[str, Any] | str] = [
    ev("u2", properties={"$feature/f": "test"}),
    ev("u3", event_id="E3"),
    "{bad",
]


def test_failure_mid_file_leaves_nothing_and_a_retry_loads_it(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after events and flags were inserted rolls the whole file back."""
    wh.load_one(wh.write_jsonl("a.jsonl", [ev("u1", properties={"$feature/f": "control"})]))
    before = snapshot(wh)
    seen_inside: list[int] = []

    def crash(con: Any, *args: Any) -> None:
        # Proof that the crash comes after the inserts, inside the transaction.
        seen_inside.append(con.execute("SELECT count(*) FROM events").fetchone()[0])
        raise RuntimeError("disk full")

    monkeypatch.setattr(loader, "_record_file", crash)
    path = wh.write_jsonl("b.jsonl", FILE_B)
    with pytest.raises(RuntimeError, match="disk full"):
        wh.load_one(path)

    assert seen_inside == [3]
    assert snapshot(wh) == before
    monkeypatch.undo()
    result = wh.load_one(path)
    assert (result.status, result.rows_loaded, result.flag_assignments) == ("loaded", 2, 1)
    assert wh.counts() == {"events": 3, "flag_assignments": 2, "quarantine": 1, "loaded_files": 2}


def test_failure_in_a_folder_load_keeps_the_files_before_it(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files are committed one by one: a crash on the second keeps the first."""
    record_file = loader._record_file

    def crash_on_b(con: Any, path: Path, *args: Any) -> None:
        if path.name == "b.jsonl":
            raise RuntimeError("disk full")
        record_file(con, path, *args)

    monkeypatch.setattr(loader, "_record_file", crash_on_b)
    wh.write_jsonl("a.jsonl", [ev("u1")])
    wh.write_jsonl("b.jsonl", FILE_B)
    with pytest.raises(RuntimeError):
        wh.load()

    assert wh.event_lines() == [(1, "u1")]
    assert [r[:2] for r in wh.loaded_files()] == [("a.jsonl", "loaded")]


def test_load_error_mid_file_rejects_it_without_partial_rows(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A LoadError after inserts undoes them; only the rejection itself is recorded."""
    record_file = loader._record_file
    calls: list[str] = []

    def fail_once(con: Any, path: Path, fmt: str, sha: str, result: Any, now: Any) -> None:
        calls.append(result.status)
        if len(calls) == 1:
            raise LoadError(f"{path}: went away")
        record_file(con, path, fmt, sha, result, now)

    monkeypatch.setattr(loader, "_record_file", fail_once)
    path = wh.write_jsonl("b.jsonl", FILE_B)
    result = wh.load_one(path)

    assert calls == ["loaded", "rejected"]
    assert (result.status, result.error) == ("rejected", f"{path}: went away")
    assert wh.counts() == {"events": 0, "flag_assignments": 0, "quarantine": 1, "loaded_files": 1}
    assert wh.quarantine() == [(None, "unreadable_file", f"{path}: went away", None)]


# Reports ----------------------------------------------------------------------------------


def test_report_and_summary_of_a_mixed_load(wh: Warehouse) -> None:
    """Every file gets a FileLoad, and summary() adds them up, per status and per reason."""
    day = "2024-05-01"
    earlier = wh.write_jsonl(f"{day}/d.jsonl", [ev("u9")])
    wh.load_one(earlier)
    wh.write_jsonl(
        f"{day}/a.jsonl",
        [
            ev("u1", event_id="E1", properties={"$feature/f": "test"}),
            ev("u2", properties={"$user_agent": "Googlebot"}),
            ev("u3", properties={"$dnt": 1}),
            ev("u1", event_id="E1"),
            "{bad",
        ],
    )
    wh.write_csv(
        f"{day}/b.csv",
        ["event", "distinct_id", "timestamp", "event_id"],
        [["pageview", "u1", "2024-05-01", "E1"], ["pageview", "u4", "2024-05-01", None]],
    )
    wh.write_text(f"{day}/b.csv", wh.path(f"{day}/b.csv").read_text() + "pageview,u5\n")
    wh.write_bytes(f"{day}/c.jsonl.gz", b"not gzip")
    wh.write_text(f"{day}/notes.txt", "hello\n")

    report = wh.load(wh.landing / day)

    by_name = {Path(f.path).name: f for f in report.files}
    assert list(by_name) == ["a.jsonl", "b.csv", "c.jsonl.gz", "d.jsonl", "notes.txt"]
    a, b, c, d, notes = by_name.values()
    assert (a.format, a.status, a.rows_read, a.rows_loaded, a.duplicates) == (
        "jsonl",
        "loaded",
        5,
        3,
        1,
    )
    assert (a.quarantined, a.bots, a.dnt, a.flag_assignments) == ({"malformed_json": 1}, 1, 1, 1)
    assert (b.format, b.status, b.rows_read, b.rows_loaded, b.duplicates) == (
        "csv",
        "loaded",
        3,
        1,
        1,
    )
    assert b.quarantined == {"malformed_csv_row": 1}
    assert (c.status, c.quarantined, c.rows_read) == ("rejected", {"unreadable_file": 1}, 0)
    assert (d.status, d.rows_read, d.error) == ("already_loaded", 0, None)
    assert (notes.format, notes.status) == ("unknown", "skipped")
    assert all(unaccounted(f) == 0 for f in (a, b, d))
    assert report.rows_loaded == 4
    assert report.summary() == {
        "files_loaded": 2,
        "files_already_loaded": 1,
        "files_rejected": 1,
        "files_skipped": 1,
        "rows_read": 8,
        "rows_loaded": 4,
        "duplicates_skipped": 2,
        "quarantined": {"malformed_csv_row": 1, "malformed_json": 1, "unreadable_file": 1},
        "quarantined_total": 3,
        "bot_events": 1,
        "dnt_events": 1,
        "flag_assignments": 1,
        "errors": [c.error, notes.error],
    }
    assert wh.counts() == {"events": 5, "flag_assignments": 1, "quarantine": 3, "loaded_files": 4}


def test_empty_report() -> None:
    """A load of nothing sums to zeros, not to an error."""
    summary = loader.LoadReport().summary()
    assert summary["files_loaded"] == summary["rows_read"] == summary["quarantined_total"] == 0
    assert (summary["quarantined"], summary["errors"]) == ({}, [])


# Discovery --------------------------------------------------------------------------------


@pytest.fixture
def day_folder(wh: Warehouse) -> Path:
    for name in ["b.jsonl", "a/z.jsonl", ".hidden.jsonl", ".partial/x.jsonl", "notes.txt"]:
        wh.write_jsonl(f"2024-05-01/{name}", [ev(name)])
    wh.write_text("2024-05-01/A.csv", "event,distinct_id,timestamp\npageview,A.csv,2024-05-01\n")
    (wh.landing / "2024-05-01" / "empty").mkdir()
    wh.write_jsonl("2024-05-02/other.jsonl", [ev("other")])
    return wh.landing / "2024-05-01"


def names(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_discover_expands_folders_sorted_without_hidden_files(day_folder: Path) -> None:
    """Folders expand to the files below them, sorted by path; hidden ones are left out."""
    assert names(discover([day_folder]), day_folder) == [
        "A.csv",
        "a/z.jsonl",
        "b.jsonl",
        "notes.txt",
    ]


def test_discover_keeps_explicit_files_in_the_given_order(day_folder: Path) -> None:
    """Files named explicitly are taken as given, after any folder before them."""
    b, z = day_folder / "b.jsonl", day_folder / "a" / "z.jsonl"
    assert discover([b, str(z)]) == [b, z]
    assert names(discover([day_folder / "a", b]), day_folder) == ["a/z.jsonl", "b.jsonl"]


def test_discover_rejects_a_missing_path(tmp_path: Path) -> None:
    """A path that does not exist is a user error naming the path."""
    missing = tmp_path / "nope"
    with pytest.raises(LoadError, match="nope: no such file or folder"):
        discover([missing])


def test_landing_files_for_day(wh: Warehouse, day_folder: Path) -> None:
    """A day's files are those under `<landing>/<YYYY-MM-DD>/`; a day without a folder has none."""
    expected = discover([day_folder])
    assert landing_files_for_day(wh.landing, date(2024, 5, 1)) == expected
    assert landing_files_for_day(wh.landing, "2024-05-01") == expected
    assert names(landing_files_for_day(wh.landing, date(2024, 5, 2)), wh.landing) == [
        "2024-05-02/other.jsonl"
    ]
    assert landing_files_for_day(wh.landing, date(2024, 5, 3)) == []
    wh.write_text("2024-05-04", "a file, not a folder")
    assert landing_files_for_day(wh.landing, "2024-05-04") == []


def test_loading_a_day_folder_skips_non_landing_files(wh: Warehouse, day_folder: Path) -> None:
    """Unknown extensions are skipped in the report; hidden files are not landing files."""
    report = wh.load(day_folder)

    assert [(names([Path(f.path)], day_folder)[0], f.status) for f in report.files] == [
        ("A.csv", "loaded"),
        ("a/z.jsonl", "loaded"),
        ("b.jsonl", "loaded"),
        ("notes.txt", "skipped"),
    ]
    assert wh.query("SELECT distinct_id FROM events ORDER BY source_file") == [
        ("A.csv",),
        ("a/z.jsonl",),
        ("b.jsonl",),
    ]


def test_files_are_known_by_content_not_name_or_format(wh: Warehouse) -> None:
    """Identical bytes are one file to the loader, even under another format's extension."""
    first = wh.load_one(wh.write_text("a.jsonl", ""))
    second = wh.load_one(wh.write_text("b.csv", ""))

    assert (first.status, second.status) == ("loaded", "already_loaded")


def test_a_hidden_file_named_explicitly_is_loaded(day_folder: Path) -> None:
    """Only folder expansion skips hidden files: naming one is a deliberate choice."""
    hidden = day_folder / ".hidden.jsonl"
    assert discover([hidden]) == [hidden]
