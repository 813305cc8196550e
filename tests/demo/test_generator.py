"""The demo generator: deterministic files, every planted anomaly present and counted
exactly, and the true effects visible in the raw files (read back with DuckDB)."""

import csv
import hashlib
from pathlib import Path

import duckdb
import pytest

from exp_pipeline.catalog import Catalog, parse_catalog
from exp_pipeline.demo import TRUE_EFFECTS, DemoSummary, generate_demo_data
from exp_pipeline.demo.generator import STALE_VARIANT
from exp_pipeline.flags import decide
from exp_pipeline.flags.snapshot import preview_snapshot
from tests.demo.demo_data import N_EVENTS

WINDOW_DAYS = tuple(f"2026-11-{day:02d}" for day in range(1, 15))
# The 14 days before the window hold the revenue metric's CUPED history (lookback 14 days).
HISTORY_DAYS = tuple(f"2026-10-{day:02d}" for day in range(18, 32))
DAYS = HISTORY_DAYS + WINDOW_DAYS

# Every data row of every landing file, parsed as far as it goes: `json_ok` is false for
# an invalid JSON line, `valid` marks rows the loader must accept. Rows keep their folder.
LANDING_SQL = """
CREATE VIEW jsonl_lines AS
SELECT parse_filename(filename) AS file, regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})')
        AS folder, line
FROM (SELECT filename, unnest(string_split(content, chr(10))) AS line
      FROM read_text('{root}/*/*.jsonl'))
WHERE line <> '';

CREATE VIEW landing_raw AS
SELECT folder, file, json_valid(line) AS json_ok,
    CASE WHEN json_valid(line) THEN line ->> 'event' END AS event,
    CASE WHEN json_valid(line) THEN line ->> 'distinct_id' END AS distinct_id,
    CASE WHEN json_valid(line) THEN line ->> 'timestamp' END AS timestamp,
    CASE WHEN json_valid(line) THEN json_extract(line, '$.properties')::VARCHAR END
        AS properties,
    CASE WHEN json_valid(line) THEN line ->> 'event_id' END AS event_id
FROM jsonl_lines
UNION ALL
SELECT regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})'), 'events.csv', true,
    event, distinct_id, timestamp, properties, event_id
FROM read_csv('{root}/*/*.csv', header = true, ignore_errors = true, filename = true,
    columns = {{'event': 'VARCHAR', 'distinct_id': 'VARCHAR', 'timestamp': 'VARCHAR',
               'properties': 'VARCHAR', 'event_id': 'VARCHAR'}})
UNION ALL
SELECT regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})'), 'events.parquet', true,
    event, distinct_id, timestamp, properties, event_id
FROM read_parquet('{root}/*/*.parquet', filename = true);

CREATE VIEW landing AS
SELECT *,
    json_ok AND distinct_id IS NOT NULL AND try_cast(timestamp AS TIMESTAMPTZ) IS NOT NULL
        AND json_valid(properties) AND json_type(properties::JSON) = 'OBJECT' AS valid,
    try_cast(timestamp AS TIMESTAMPTZ) AS instant
FROM landing_raw;

-- The distinct well-formed events, with the properties the analysis needs.
CREATE VIEW events AS
SELECT DISTINCT event_id, folder, event, distinct_id, timestamp, instant,
    properties::JSON ->> '$."$user_agent"' AS user_agent,
    properties::JSON ->> '$."$dnt"' AS dnt,
    properties::JSON ->> '$."$feature/one-page-checkout"' AS checkout_variant,
    properties::JSON ->> '$."$feature/homepage-banner"' AS banner_variant,
    properties::JSON ->> '$."$feature/new-search"' AS search_variant,
    properties::JSON ->> '$."$feature_flag"' AS flag_called,
    properties::JSON ->> '$."$feature_flag_response"' AS flag_response
FROM landing
WHERE valid;

CREATE VIEW humans AS
SELECT * FROM events
WHERE user_agent NOT LIKE '%Googlebot/2.1%' AND user_agent NOT LIKE '%python-requests/2.31%'
    AND dnt IS NULL;
"""


def _hashes(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _connect(root: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Naive landing timestamps mean UTC; pin the session zone so casts do not use local time.
    con.execute("SET TimeZone = 'UTC'")
    con.execute(LANDING_SQL.format(root=root.as_posix()))
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="module")
def con(demo: DemoSummary) -> duckdb.DuckDBPyConnection:
    return _connect(demo.out_dir)


def test_same_seed_writes_byte_identical_files(tmp_path: Path, catalog: Catalog) -> None:
    first = generate_demo_data(tmp_path / "a", catalog, n_events=N_EVENTS, seed=11)
    second = generate_demo_data(tmp_path / "b", catalog, n_events=N_EVENTS, seed=11)
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    assert first.anomalies == second.anomalies
    assert first.events_written == second.events_written


def test_different_seed_writes_different_files(
    tmp_path: Path, catalog: Catalog, demo: DemoSummary
) -> None:
    generate_demo_data(tmp_path, catalog, n_events=N_EVENTS, seed=8)
    ours, theirs = _hashes(demo.out_dir), _hashes(tmp_path)
    assert ours.keys() == theirs.keys()
    assert all(ours[name] != theirs[name] for name in ours)


def test_layout_one_folder_per_utc_day_in_three_formats(demo: DemoSummary) -> None:
    root = demo.out_dir
    assert demo.days == DAYS
    assert sorted(p.name for p in root.iterdir()) == list(DAYS)
    assert demo.files_written == {"jsonl": 12 + 14 + 14, "csv": 1, "parquet": 1}
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*")) == sorted(demo.files)
    for day in HISTORY_DAYS:
        assert [p.name for p in (root / day).iterdir()] == ["history.jsonl"]
    for day in WINDOW_DAYS:
        names = sorted(p.name for p in (root / day).iterdir())
        assert len(names) == 2 and names[1] == "replay.jsonl"
        assert names[0] in ("events.jsonl", "events.csv", "events.parquet")
    header = (root / "2026-11-05" / "events.csv").read_text().splitlines()[0]
    assert header == "event,distinct_id,timestamp,properties,event_id"


def test_event_count_within_tolerance(demo: DemoSummary, con: duckdb.DuckDBPyConnection) -> None:
    assert abs(demo.events_written - N_EVENTS) <= 0.1 * N_EVENTS
    assert sum(demo.events_per_experiment.values()) == demo.events_written
    assert _one(con, "SELECT count(*) FROM events") == demo.events_written
    with (demo.out_dir / "2026-11-05" / "events.csv").open(newline="") as f:
        csv_rows = sum(1 for _ in csv.reader(f)) - 1
    files_rows = _one(con, "SELECT count(*) FROM landing WHERE file <> 'events.csv'")
    assert files_rows + csv_rows == demo.rows_written


def test_every_anomaly_is_in_the_files_and_counted_exactly(
    demo: DemoSummary, con: duckdb.DuckDBPyConnection
) -> None:
    anomalies = demo.anomalies
    assert all(count > 0 for count in anomalies.values()), anomalies
    assert anomalies["csv_extra_columns"] == 1
    with (demo.out_dir / "2026-11-05" / "events.csv").open(newline="") as f:
        assert sum(len(row) > 5 for row in csv.reader(f)) == 1

    counted = {
        "invalid_json_lines": "SELECT count(*) FROM landing WHERE NOT json_ok",
        "missing_distinct_id": "SELECT count(*) FROM landing WHERE json_ok AND distinct_id IS NULL",
        "bad_timestamp": "SELECT count(*) FROM landing WHERE timestamp IN ('not-a-time', "
        "'2026-13-45')",
        "properties_not_object": "SELECT count(*) FROM landing WHERE json_ok AND "
        "json_type(properties::JSON) IN ('ARRAY', 'VARCHAR')",
        "bot_subjects": "SELECT count(DISTINCT distinct_id) FROM events "
        "WHERE user_agent LIKE '%Googlebot/2.1%' OR user_agent LIKE '%python-requests/2.31%'",
        "bot_events": "SELECT count(*) FROM events "
        "WHERE user_agent LIKE '%Googlebot/2.1%' OR user_agent LIKE '%python-requests/2.31%'",
        "dnt_subjects": "SELECT count(DISTINCT distinct_id) FROM events WHERE dnt = '1'",
        "dnt_events": "SELECT count(*) FROM events WHERE dnt = '1'",
        "multi_variant_subjects": "SELECT count(*) FROM (SELECT distinct_id FROM events "
        "WHERE checkout_variant IS NOT NULL GROUP BY ALL "
        "HAVING min(checkout_variant) <> max(checkout_variant))",
        "unknown_variant_subjects": "SELECT count(DISTINCT distinct_id) FROM events "
        "WHERE checkout_variant = 'test-old'",
        "unknown_variant_events": "SELECT count(*) FROM events WHERE checkout_variant = 'test-old'",
        "duplicate_events": "SELECT count(*) - count(DISTINCT event_id) FROM landing WHERE valid",
    }
    found = {name: _one(con, sql) for name, sql in counted.items()}
    assert found == {name: anomalies[name] for name in counted}
    # Each invalid row is exactly one of the planted kinds, and nothing else is invalid.
    invalid = _one(con, "SELECT count(*) FROM landing WHERE NOT valid")
    assert invalid == sum(found[k] for k in list(counted)[:4])


def test_duplicates_are_replays_with_identical_content(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        """
        SELECT event_id, count(DISTINCT (event, distinct_id, timestamp, json(properties))),
            bool_or(file = 'replay.jsonl'), bool_and(file = 'replay.jsonl')
        FROM landing WHERE valid GROUP BY event_id HAVING count(*) > 1
        """
    ).fetchall()
    assert rows
    assert all(
        versions == 1 and in_replay and not only_replay
        for _, versions, in_replay, only_replay in rows
    )


def test_timestamp_forms_all_present_and_counted(
    demo: DemoSummary, con: duckdb.DuckDBPyConnection
) -> None:
    found = dict(
        con.execute(
            r"""
            SELECT CASE
                WHEN regexp_matches(timestamp, '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$') THEN 'z'
                WHEN regexp_matches(timestamp, '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$')
                    THEN 'offset'
                WHEN regexp_matches(timestamp, '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$') THEN 'naive_t'
                WHEN regexp_matches(timestamp, '^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$')
                    THEN 'naive_space'
                END, count(*)
            FROM events GROUP BY ALL
            """
        ).fetchall()
    )
    assert found == demo.timestamp_forms
    assert all(count > 0 for count in found.values())


def test_every_instant_lands_in_the_folder_of_its_utc_day(con: duckdb.DuckDBPyConnection) -> None:
    assert (
        _one(con, "SELECT count(*) FROM events WHERE strftime(instant, '%Y-%m-%d') <> folder") == 0
    )
    # Offsets really move the local date off the UTC day for some rows, and those rows
    # still sit in the folder of their UTC day.
    crossing = _one(
        con,
        """
        SELECT count(*) FROM events
        WHERE regexp_matches(timestamp, '[+-]\\d\\d:\\d\\d$') AND left(timestamp, 10) <> folder
        """,
    )
    assert crossing > 0


def test_checkout_funnel_lift_is_visible(con: duckdb.DuckDBPyConnection) -> None:
    share = dict(
        con.execute(
            """
            WITH subjects AS (
                SELECT distinct_id, min(checkout_variant) AS variant,
                    bool_or(event = 'purchase') AS bought
                FROM humans WHERE checkout_variant IS NOT NULL GROUP BY ALL
                HAVING min(checkout_variant) = max(checkout_variant)
            )
            SELECT variant, avg(bought::INT) FROM subjects GROUP BY ALL
            """
        ).fetchall()
    )
    assert set(share) == {"control", "test", "test-old"}
    assert share["control"] == pytest.approx(0.10, abs=0.02)
    assert share["test"] == pytest.approx(0.13, abs=0.02)
    assert share["test"] - share["control"] > 0.015
    amounts = _one(
        con,
        "SELECT count(*) FROM landing WHERE valid AND event = 'purchase' "
        "AND (properties::JSON ->> 'amount')::DOUBLE > 0",
    )
    assert amounts == _one(con, "SELECT count(*) FROM landing WHERE valid AND event = 'purchase'")


def test_homepage_banner_has_no_effect(con: duckdb.DuckDBPyConnection) -> None:
    rate = dict(
        con.execute(
            """
            WITH exposed AS (
                SELECT flag_response AS variant, count(DISTINCT distinct_id) AS subjects
                FROM humans WHERE flag_called = 'homepage-banner' GROUP BY ALL
            ), clicks AS (
                SELECT banner_variant AS variant, count(*) AS clicks
                FROM humans WHERE event = 'banner_click' GROUP BY ALL
            )
            SELECT variant, clicks / subjects FROM exposed JOIN clicks USING (variant)
            """
        ).fetchall()
    )
    expected = TRUE_EFFECTS["homepage-banner"]["control"]["banner_click"]
    assert set(rate) == {"control", "banner"}
    assert rate["control"] == pytest.approx(expected, rel=0.15)
    assert rate["banner"] == pytest.approx(rate["control"], rel=0.15)


def test_new_search_error_rate_breaches_guardrail_up_to_the_last_hours(
    con: duckdb.DuckDBPyConnection,
) -> None:
    query = """
        SELECT search_variant,
            count(*) FILTER (event = 'app_error') / count(*) FILTER (event = 'app_exposure'),
            count(*) FILTER (event = 'search')
        FROM humans WHERE search_variant IS NOT NULL {where} GROUP BY ALL
    """
    overall = {
        v: (rate, searches) for v, rate, searches in con.execute(query.format(where="")).fetchall()
    }
    assert overall["control"][0] == pytest.approx(0.02, abs=0.01)
    assert overall["test"][0] > 0.10
    assert overall["control"][1] > 0 and overall["test"][1] > 0
    # At this test's 20k events new-search has ~15 events an hour, from a handful of
    # subjects that one hour may all hash into one variant; the last four hours cannot.
    last_hours = con.execute(
        query.format(where="AND instant >= TIMESTAMPTZ '2026-11-14 20:00:00+00'")
    ).fetchall()
    assert {variant for variant, _, _ in last_hours} == {"control", "test"}


def test_windows_come_from_the_catalog(tmp_path: Path) -> None:
    raw = {
        "experiments": [
            {
                "key": "new-search",
                "name": "New search",
                "feature_flag_key": "new-search",
                "start_date": "2026-12-01",
                "end_date": None,
                "metrics": [{"key": "searches", "kind": "trend", "event": "search"}],
            },
            {
                "key": "checkout-funnel",
                "name": "Checkout",
                "feature_flag_key": "one-page-checkout",
                "start_date": "2026-12-10T06:00:00Z",
                "end_date": "2026-12-12T12:00:00+01:00",
                "metrics": [{"key": "p", "kind": "trend", "event": "purchase"}],
            },
        ]
    }
    summary = generate_demo_data(tmp_path, parse_catalog(raw), n_events=3_000)
    assert summary.days == tuple(f"2026-12-{day:02d}" for day in range(1, 15))
    con = _connect(tmp_path)
    first, last = con.execute(
        "SELECT min(instant), max(instant) FROM events WHERE checkout_variant IS NOT NULL"
    ).fetchone()
    assert first.isoformat() >= "2026-12-10T06:00:00+00:00"
    assert last.isoformat() < "2026-12-12T11:00:00+00:00"


def test_a_catalog_without_demo_experiments_is_refused(tmp_path: Path) -> None:
    raw = {
        "experiments": [
            {
                "key": "other",
                "name": "Other",
                "feature_flag_key": "other",
                "metrics": [{"key": "m", "kind": "trend", "event": "x"}],
            }
        ]
    }
    with pytest.raises(ValueError, match="none of the demo experiments"):
        generate_demo_data(tmp_path, parse_catalog(raw))


def test_subjects_are_assigned_by_decide(
    catalog: Catalog, demo: DemoSummary, con: duckdb.DuckDBPyConnection
) -> None:
    """Every subject's first flag signal is the variant `decide` gives it under the catalog's
    snapshot (the deliberately mixed and stale subjects aside), so sample-ratio checks on
    the demo see the documented hashing, not a random draw."""
    snapshot = preview_snapshot(catalog)
    signals = con.execute(
        """
        SELECT distinct_id,
               arg_min(coalesce(checkout_variant, banner_variant, search_variant, flag_response),
                       instant) AS variant,
               CASE WHEN any_value(checkout_variant) IS NOT NULL
                         OR any_value(flag_called) = 'one-page-checkout' THEN 'one-page-checkout'
                    WHEN any_value(banner_variant) IS NOT NULL
                         OR any_value(flag_called) = 'homepage-banner' THEN 'homepage-banner'
                    ELSE 'new-search' END AS flag
        FROM events
        WHERE coalesce(checkout_variant, banner_variant, search_variant, flag_response) IS NOT NULL
        GROUP BY distinct_id
        """
    ).fetchall()
    assert len(signals) > 1_000
    disagree = [
        (subject, flag, variant)
        for subject, variant, flag in signals
        if decide(snapshot, flag, subject).variant != variant
    ]
    # Only the planted stale-variant subjects (a mixed subject's first signal is its own).
    assert {(flag, variant) for _, flag, variant in disagree} == {
        ("one-page-checkout", STALE_VARIANT)
    }
    assert len(disagree) == demo.anomalies["unknown_variant_subjects"]
