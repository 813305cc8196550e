"""Loading landing files into the warehouse, following the event contract.

For each file, in one DuckDB transaction: stage its records, quarantine the bad ones
with a reason, type the good ones, quarantine exposure events whose variant contradicts the
decision id they carry, drop those already loaded (dedup on `event_id`, or on
a content hash where there is none), insert the rest into `events`, extract their flag
signals into `flag_assignments`, and record the file by its SHA-256. Re-loading the same
file is therefore a no-op, and a crash mid-file leaves nothing half-written.

A file's rows are materialised once after staging: one statement validates, types and keys
every record (parsing its properties once), and the inserts read that `typed` table,
restricted to the lines to load, directly (benchmarks/README.md has the measurements).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from exp_pipeline.errors import LoadError
from exp_pipeline.warehouse.readers import RAW_TEXT, detect_format, stage_file

# Properties the loader reads, extracted in one parse of the JSON text (one
# `json_extract_string` with a list of paths) instead of one parse per `->>`.
_PROPERTY_PATHS = (
    '$."$user_agent"',
    "$.user_agent",
    '$."$session_id"',
    "$.session_id",
    '$."$dnt"',
    "$.dnt",
    '$."$feature_flag_forced"',
    "$.force_experiment",
    '$."$feature_flag"',
    '$."$feature_flag_response"',
    '$."$feature_flag_decision_id"',
)

# One pass from `staged` to typed, keyed rows: validation (a record gets the first reason
# that applies, in this order), typing, the event key, bots and Do-Not-Track. Properties
# are parsed once: `try(json(..))` is NULL for invalid JSON, and its minified text starts
# with '{' exactly when it is an object. Quarantined records keep their raw text and
# timestamp text for the quarantine row; loaded ones do not need them.
_TYPED_SQL = rf"""
CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT *, try_cast(ts_text AS TIMESTAMPTZ) AS ts_value,
           CASE WHEN props IS NULL THEN '{{}}'::JSON ELSE try(json(props)) END AS properties
    FROM staged
), checked AS (
    SELECT *,
           CASE WHEN parse_error IS NOT NULL THEN parse_error
                WHEN nullif(trim(event), '') IS NULL THEN 'missing_event'
                WHEN nullif(trim(distinct_id), '') IS NULL THEN 'missing_distinct_id'
                WHEN nullif(trim(ts_text), '') IS NULL THEN 'missing_timestamp'
                -- The cast alone also takes DuckDB's special words ('epoch', 'infinity').
                WHEN ts_value IS NULL
                     OR NOT regexp_matches(trim(ts_text), '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')
                     THEN 'invalid_timestamp'
                WHEN properties IS NULL OR NOT starts_with(properties, '{{')
                     THEN 'invalid_properties'
           END AS reason,
           json_extract_string(properties, [{", ".join(f"'{p}'" for p in _PROPERTY_PATHS)}])
               AS p
    FROM parsed
), keyed AS (
    SELECT source_line, reason,
           CASE WHEN reason IS NOT NULL THEN {RAW_TEXT} END AS raw,
           CASE WHEN reason IS NOT NULL THEN ts_text END AS ts_text,
           trim(event) AS event, trim(distinct_id) AS distinct_id, ts_value AS ts,
           properties, nullif(trim(event_id), '') AS event_id,
           coalesce(p[1], p[2]) AS user_agent,
           coalesce(p[3], p[4]) AS session_id,
           lower(coalesce(p[5], p[6], '')) IN ('1', 'true') AS is_dnt,
           -- A QA override: `$feature_flag_forced` true, or a `force_experiment` marker
           -- (true, or the name(s) of the experiments forced).
           lower(coalesce(p[7], '')) IN ('1', 'true')
           OR lower(coalesce(p[8], '')) NOT IN ('', '0', 'false', '[]') AS is_forced,
           -- What a `$feature_flag_called` event says: flag, variant, decision id.
           CASE WHEN event = '$feature_flag_called' THEN p[9] END AS called_flag,
           CASE WHEN event = '$feature_flag_called' THEN p[10] END AS called_variant,
           CASE WHEN event = '$feature_flag_called' THEN p[11] END AS decision_id
    FROM checked
)
SELECT *,
       -- The content hash is computed only where there is no id (coalesce is lazy).
       coalesce('id:' || event_id,
                'h:' || md5(concat_ws(chr(31), event, distinct_id,
                                      strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'),
                                      properties::VARCHAR))) AS event_uid,
       coalesce(regexp_matches(user_agent, $bot_pattern, 'i'), false) AS is_bot
FROM keyed
"""

_QUARANTINE_SQL = """
INSERT INTO quarantine
SELECT ?, ?, source_line, split_part(reason, ':', 1),
       CASE reason
           WHEN 'invalid_timestamp' THEN 'timestamp ' || to_json(ts_text)::VARCHAR
                                         || ' is not an ISO 8601 date or datetime'
           WHEN 'invalid_properties' THEN 'properties must be a JSON object'
           ELSE nullif(trim(split_part(reason, ':', 2)), '')
       END,
       raw, ?
FROM typed WHERE reason IS NOT NULL
"""

# The first line of each event key in the file (deduplication within the file, on the
# narrow key rather than over whole rows).
_FIRSTS_SQL = """
CREATE OR REPLACE TEMP TABLE firsts AS
SELECT event_uid, min(source_line) AS source_line
FROM typed WHERE reason IS NULL GROUP BY event_uid
"""

# A `$feature_flag_called` event may carry the decision id `decide` gave the application
# (`$feature_flag_decision_id`). The id hashes (experiment, subject, variant, assignment
# version), so an event naming another variant than the one decided contradicts it: a
# client bug or a tampered event, quarantined rather than counted. Any assignment version
# up to the current one is accepted, so events decided before a re-randomisation still
# match. Flags of experiments the warehouse does not know (yet) are not checked.
_DECISION_MISMATCH_SQL = """
CREATE OR REPLACE TEMP TABLE decision_mismatches AS
WITH claims AS (
    SELECT source_line, distinct_id, called_flag AS flag, called_variant AS variant,
           decision_id AS claimed
    FROM typed
    WHERE reason IS NULL AND nullif(decision_id, '') IS NOT NULL
      AND source_line IN (SELECT source_line FROM firsts)
), versions AS (
    SELECT experiment_key, feature_flag_key,
           unnest(range(1, assignment_version + 1)) AS version
    FROM experiment_definitions
)
SELECT c.source_line, any_value(v.experiment_key) AS experiment_key, c.variant, c.claimed
FROM claims c JOIN versions v ON v.feature_flag_key = c.flag
GROUP BY c.source_line, c.variant, c.claimed
HAVING NOT bool_or(
    left(sha256(concat_ws('.', v.experiment_key, c.distinct_id, c.variant,
                          CAST(v.version AS VARCHAR))), 32) = c.claimed
)
"""

_QUARANTINE_MISMATCHES_SQL = f"""
INSERT INTO quarantine
SELECT ?, ?, m.source_line, 'decision_mismatch',
       'variant ' || to_json(coalesce(m.variant, ''))::VARCHAR || ' contradicts decision id '
       || to_json(m.claimed)::VARCHAR || ' of experiment ' || to_json(m.experiment_key)::VARCHAR,
       s.raw_text, ?
FROM decision_mismatches m
JOIN (SELECT source_line, {RAW_TEXT} AS raw_text FROM staged) s USING (source_line)
"""

# Lines to load: first lines of keys the warehouse does not hold yet. The keys already
# loaded are found first (a semi join: `firsts` is the hash table, `events` is only
# probed), so the anti join that follows is against those few.
_NEW_LINES_SQL = """
CREATE OR REPLACE TEMP TABLE new_lines AS
WITH loaded AS (
    SELECT event_uid FROM events WHERE event_uid IN (SELECT event_uid FROM firsts)
)
SELECT source_line FROM firsts
WHERE event_uid NOT IN (SELECT event_uid FROM loaded)
"""

_NEW_EVENTS = "(SELECT * FROM typed SEMI JOIN new_lines USING (source_line))"

_NEW_COUNTS_SQL = f"""
SELECT count(*), count(*) FILTER (WHERE is_bot), count(*) FILTER (WHERE is_dnt)
FROM {_NEW_EVENTS}
"""

_INSERT_EVENTS_SQL = f"""
INSERT INTO events
SELECT event_uid, event_id, event, distinct_id, ts, CAST(ts AS DATE), properties,
       user_agent, session_id, is_bot, is_dnt, ?, source_line, ?
FROM {_NEW_EVENTS}
"""

# A flag signal is a `$feature/<flag>` property on any event, or a `$feature_flag_called`
# event naming the flag and the variant it returned. The LIKE prefilter skips events that
# carry no flag at all. On the others, an object's keys and its values (`$.*`) are listed in
# the same order, one parse each, and zipped by unnest: every occurrence of a key, as
# json_each would give, without json_each's row per property with its type and path.
# A JSON null value reads as NULL, so `<> ''` drops it along with the empty string.
# Rows are inserted sorted by flag, so each row group holds few flags and a query for one
# flag (exposures, guardrails) skips the others' row groups by their min/max.
_INSERT_FLAGS_SQL = rf"""
INSERT INTO flag_assignments
WITH new_events AS NOT MATERIALIZED {_NEW_EVENTS}, properties AS (
    SELECT event_uid, distinct_id, ts, event, is_bot, is_dnt, is_forced,
           unnest(json_keys(properties)) AS name,
           unnest(json_extract_string(properties, '$.*')) AS value
    FROM new_events
    WHERE properties::VARCHAR LIKE '%"$feature/%'
)
SELECT event_uid, distinct_id, ts, substr(name, 10), value, 'property', event, is_bot, is_dnt,
       is_forced
FROM properties
WHERE starts_with(name, '$feature/') AND length(name) > 9 AND value <> ''
UNION ALL
SELECT event_uid, distinct_id, ts, called_flag, called_variant, 'flag_called', event,
       is_bot, is_dnt, is_forced
FROM new_events
WHERE nullif(called_flag, '') IS NOT NULL AND nullif(called_variant, '') IS NOT NULL
ORDER BY 4
"""

# WAL size at which a multi-file load checkpoints (see `load_files`).
_LOAD_CHECKPOINT_THRESHOLD = "1GiB"

# Temp tables of one file's load, dropped when it is done so their memory is freed.
_TEMP_TABLES = ("staged", "typed", "firsts", "new_lines", "csv_rows")


@dataclass
class FileLoad:
    """What loading one file did."""

    path: str
    format: str
    status: str  # loaded | already_loaded | rejected | skipped
    rows_read: int = 0
    rows_loaded: int = 0
    duplicates: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    bots: int = 0
    dnt: int = 0
    flag_assignments: int = 0
    error: str | None = None


@dataclass
class LoadReport:
    """What a load of several files did, summed, with the per-file detail."""

    files: list[FileLoad] = field(default_factory=list)

    def _sum(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return self._sum("rows_loaded")

    @property
    def quarantined(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.quarantined)
        return dict(sorted(total.items()))

    def summary(self) -> dict[str, Any]:
        statuses = Counter(f.status for f in self.files)
        return {
            "files_loaded": statuses["loaded"],
            "files_already_loaded": statuses["already_loaded"],
            "files_rejected": statuses["rejected"],
            "files_skipped": statuses["skipped"],
            "rows_read": self._sum("rows_read"),
            "rows_loaded": self.rows_loaded,
            "duplicates_skipped": self._sum("duplicates"),
            "quarantined": self.quarantined,
            "quarantined_total": sum(self.quarantined.values()),
            "bot_events": self._sum("bots"),
            "dnt_events": self._sum("dnt"),
            "flag_assignments": self._sum("flag_assignments"),
            "errors": [f.error for f in self.files if f.error],
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders into the files below them, sorted, so loads are reproducible.

    Hidden files and folders (a leading dot, such as macOS `._x.jsonl` resource forks or
    an upload tool's `.partial` files) inside a folder are not landing files and are left
    out; a file named explicitly is always taken.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise LoadError(f"{path}: no such file or folder")
    return found


def landing_files_for_day(landing_dir: Path, day: date | str) -> list[Path]:
    """Landing files of one day: everything under `<landing_dir>/<YYYY-MM-DD>/`."""
    folder = landing_dir / (day if isinstance(day, str) else day.isoformat())
    return discover([folder]) if folder.is_dir() else []


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    row = con.execute(sql, params or []).fetchone()
    return int(row[0]) if row else 0


def _load_one(
    con: duckdb.DuckDBPyConnection, path: Path, fmt: str, sha: str, bot_pattern: str
) -> FileLoad:
    result = FileLoad(path=str(path), format=fmt, status="loaded")
    now = con.execute("SELECT now()").fetchone()[0]
    stage_file(con, path, fmt)
    con.execute(_TYPED_SQL, {"bot_pattern": bot_pattern})
    result.rows_read = _count(con, "SELECT count(*) FROM typed")
    con.execute(_QUARANTINE_SQL, [sha, str(path), now])
    result.quarantined = dict(
        con.execute(
            "SELECT split_part(reason, ':', 1) AS r, count(*) FROM typed "
            "WHERE reason IS NOT NULL GROUP BY r ORDER BY r"
        ).fetchall()
    )
    con.execute(_FIRSTS_SQL)
    mismatches = _quarantine_decision_mismatches(con, sha, path, now)
    if mismatches:
        result.quarantined = dict(
            sorted({**result.quarantined, "decision_mismatch": mismatches}.items())
        )
    con.execute(_NEW_LINES_SQL)
    valid = result.rows_read - sum(result.quarantined.values())
    result.rows_loaded, result.bots, result.dnt = con.execute(_NEW_COUNTS_SQL).fetchone()
    result.duplicates = valid - result.rows_loaded
    con.execute(_INSERT_EVENTS_SQL, [str(path), now])
    result.flag_assignments = _count(con, _INSERT_FLAGS_SQL)
    _record_file(con, path, fmt, sha, result, now)
    for table in _TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS temp.{table}")
    return result


def _quarantine_decision_mismatches(
    con: duckdb.DuckDBPyConnection, sha: str, path: Path, now: Any
) -> int:
    """Quarantine first lines contradicting their decision id, dropped from `firsts`."""
    known = _count(
        con,
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'experiment_definitions' "
        "AND NOT temporary",
    )
    if not known:
        return 0
    con.execute(_DECISION_MISMATCH_SQL)
    mismatches = _count(con, "SELECT count(*) FROM decision_mismatches")
    if mismatches:
        con.execute(_QUARANTINE_MISMATCHES_SQL, [sha, str(path), now])
        con.execute(
            "DELETE FROM firsts WHERE source_line IN (SELECT source_line FROM decision_mismatches)"
        )
    con.execute("DROP TABLE decision_mismatches")
    return mismatches


def _record_file(
    con: duckdb.DuckDBPyConnection, path: Path, fmt: str, sha: str, result: FileLoad, now: Any
) -> None:
    con.execute(
        "INSERT INTO loaded_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            sha,
            str(path),
            fmt,
            path.stat().st_size,
            result.status,
            result.rows_read,
            result.rows_loaded,
            result.duplicates,
            sum(result.quarantined.values()),
            result.bots,
            result.dnt,
            now,
        ],
    )


def _reject_file(
    con: duckdb.DuckDBPyConnection, path: Path, fmt: str, sha: str, error: str
) -> FileLoad:
    """A file unreadable as a whole is kept in quarantine as one row, with the reason."""
    result = FileLoad(path=str(path), format=fmt, status="rejected", error=error)
    result.quarantined = {"unreadable_file": 1}
    now = con.execute("SELECT now()").fetchone()[0]
    con.execute(
        "INSERT INTO quarantine VALUES (?, ?, NULL, 'unreadable_file', ?, NULL, ?)",
        [sha, str(path), error, now],
    )
    _record_file(con, path, fmt, sha, result, now)
    return result


def load_file(con: duckdb.DuckDBPyConnection, path: Path, *, bot_pattern: str) -> FileLoad:
    """Load one landing file atomically; a file seen before (same SHA-256) is a no-op."""
    fmt = detect_format(path)
    if fmt is None:
        return FileLoad(
            path=str(path),
            format="unknown",
            status="skipped",
            error=f"{path}: not a landing file (expected .jsonl, .ndjson, .json, .csv, "
            ".parquet, or .gz of a text format)",
        )
    sha = file_sha256(path)
    if _count(con, "SELECT count(*) FROM loaded_files WHERE file_sha256 = ?", [sha]):
        return FileLoad(path=str(path), format=fmt, status="already_loaded")
    con.execute("BEGIN TRANSACTION")
    try:
        try:
            result = _load_one(con, path, fmt, sha, bot_pattern)
        except LoadError as exc:
            con.execute("ROLLBACK")
            con.execute("BEGIN TRANSACTION")
            result = _reject_file(con, path, fmt, sha, str(exc))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result


def load_files(
    con: duckdb.DuckDBPyConnection, paths: Iterable[str | Path], *, bot_pattern: str
) -> LoadReport:
    """Load files and folders (expanded, sorted) into the warehouse, file by file.

    Each file is still its own transaction, but DuckDB checkpoints only when the WAL
    outgrows `checkpoint_threshold`: at the default (16 MiB) every landing file of a
    realistic size would be compressed into the database file at its commit, re-analysing
    the tables' last row groups each time. A load raises the threshold, so its files are
    checkpointed together (when the WAL reaches `_LOAD_CHECKPOINT_THRESHOLD`, and at the
    end), then restores it; a crash in between loses nothing committed (the WAL replays).
    """
    report = LoadReport()
    files = discover(paths)
    threshold = con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
    con.execute(f"SET checkpoint_threshold = '{_LOAD_CHECKPOINT_THRESHOLD}'")
    try:
        for path in files:
            report.files.append(load_file(con, path, bot_pattern=bot_pattern))
    finally:
        con.execute("SET checkpoint_threshold = ?", [threshold])
    con.execute("CHECKPOINT")
    return report
