"""Loading landing files into the warehouse, following the event contract.

For each file, in one DuckDB transaction: stage its records, quarantine the bad ones
with a reason, type the good ones, quarantine exposure events whose variant contradicts the
decision id they carry, drop those already loaded (dedup on `event_id`, or on
a content hash where there is none), insert the rest into `events`, extract their flag
signals into `flag_assignments`, and record the file by its SHA-256. Re-loading the same
file is therefore a no-op, and a crash mid-file leaves nothing half-written.
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
from exp_pipeline.warehouse.readers import detect_format, stage_file

# Validation runs in this order: a record gets the first reason that applies.
_CHECK_SQL = """
CREATE OR REPLACE TEMP TABLE checked AS
SELECT *,
       CASE WHEN parse_error IS NOT NULL THEN parse_error
            WHEN nullif(trim(event), '') IS NULL THEN 'missing_event'
            WHEN nullif(trim(distinct_id), '') IS NULL THEN 'missing_distinct_id'
            WHEN nullif(trim(ts_text), '') IS NULL THEN 'missing_timestamp'
            -- The cast alone also takes DuckDB's special words ('epoch', 'infinity').
            WHEN try_cast(ts_text AS TIMESTAMPTZ) IS NULL
                 OR NOT regexp_matches(trim(ts_text), '^[0-9]{4}-[0-9]{2}-[0-9]{2}')
                 THEN 'invalid_timestamp'
            WHEN props IS NOT NULL AND NOT json_valid(props) THEN 'invalid_properties'
            WHEN props IS NOT NULL AND json_type(props::JSON) <> 'OBJECT'
                 THEN 'invalid_properties'
       END AS reason
FROM staged
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
FROM checked WHERE reason IS NOT NULL
"""

# Typed, keyed and deduplicated within the file; bots and Do-Not-Track flagged.
_FRESH_SQL = r"""
CREATE OR REPLACE TEMP TABLE fresh AS
WITH good AS (
    SELECT source_line, trim(event) AS event, trim(distinct_id) AS distinct_id,
           CAST(ts_text AS TIMESTAMPTZ) AS ts,
           json(coalesce(props, '{}')) AS properties,
           nullif(trim(event_id), '') AS event_id
    FROM checked WHERE reason IS NULL
), keyed AS (
    SELECT *,
           coalesce('id:' || event_id,
                    'h:' || md5(concat_ws(chr(31), event, distinct_id,
                                          strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'),
                                          properties::VARCHAR))) AS event_uid,
           coalesce(properties ->> '$."$user_agent"', properties ->> '$.user_agent')
               AS user_agent,
           coalesce(properties ->> '$."$session_id"', properties ->> '$.session_id')
               AS session_id,
           lower(coalesce(properties ->> '$."$dnt"', properties ->> '$.dnt', ''))
               IN ('1', 'true') AS is_dnt,
           -- A QA override: `$feature_flag_forced` true, or a `force_experiment` marker
           -- (true, or the name(s) of the experiments forced).
           lower(coalesce(properties ->> '$."$feature_flag_forced"', ''))
               IN ('1', 'true')
           OR lower(coalesce(properties ->> '$.force_experiment', ''))
               NOT IN ('', '0', 'false', '[]') AS is_forced
    FROM good
)
SELECT *, coalesce(regexp_matches(user_agent, ?, 'i'), false) AS is_bot
FROM keyed
QUALIFY row_number() OVER (PARTITION BY event_uid ORDER BY source_line) = 1
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
    SELECT source_line, distinct_id,
           properties ->> '$."$feature_flag"' AS flag,
           properties ->> '$."$feature_flag_response"' AS variant,
           properties ->> '$."$feature_flag_decision_id"' AS claimed
    FROM fresh
    WHERE event = '$feature_flag_called'
      AND nullif(properties ->> '$."$feature_flag_decision_id"', '') IS NOT NULL
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

_QUARANTINE_MISMATCHES_SQL = """
INSERT INTO quarantine
SELECT ?, ?, m.source_line, 'decision_mismatch',
       'variant ' || to_json(coalesce(m.variant, ''))::VARCHAR || ' contradicts decision id '
       || to_json(m.claimed)::VARCHAR || ' of experiment ' || to_json(m.experiment_key)::VARCHAR,
       c.raw, ?
FROM decision_mismatches m JOIN checked c USING (source_line)
"""

_INSERT_EVENTS_SQL = """
INSERT INTO events
SELECT f.event_uid, f.event_id, f.event, f.distinct_id, f.ts, CAST(f.ts AS DATE), f.properties,
       f.user_agent, f.session_id, f.is_bot, f.is_dnt, ?, f.source_line, ?
FROM new_events f
"""

# A flag signal is a `$feature/<flag>` property on any event, or a `$feature_flag_called`
# event naming the flag and the variant it returned. The LIKE prefilter keeps json_each
# off the events that carry no flag at all.
_INSERT_FLAGS_SQL = r"""
INSERT INTO flag_assignments
SELECT f.event_uid, f.distinct_id, f.ts, substr(j.key, 10), j.value ->> '$', 'property',
       f.event, f.is_bot, f.is_dnt, f.is_forced
FROM new_events f, json_each(f.properties) j
WHERE f.properties::VARCHAR LIKE '%"$feature/%'
  AND starts_with(j.key, '$feature/') AND length(j.key) > 9 AND j.type <> 'NULL'
  AND (j.value ->> '$') <> ''
UNION ALL
SELECT event_uid, distinct_id, ts, properties ->> '$."$feature_flag"',
       properties ->> '$."$feature_flag_response"', 'flag_called', event, is_bot, is_dnt,
       is_forced
FROM new_events
WHERE event = '$feature_flag_called'
  AND nullif(properties ->> '$."$feature_flag"', '') IS NOT NULL
  AND nullif(properties ->> '$."$feature_flag_response"', '') IS NOT NULL
"""


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
    con.execute(_CHECK_SQL)
    result.rows_read = _count(con, "SELECT count(*) FROM checked")
    con.execute(_QUARANTINE_SQL, [sha, str(path), now])
    result.quarantined = dict(
        con.execute(
            "SELECT split_part(reason, ':', 1) AS r, count(*) FROM checked "
            "WHERE reason IS NOT NULL GROUP BY r ORDER BY r"
        ).fetchall()
    )
    con.execute(_FRESH_SQL, [bot_pattern])
    mismatches = _quarantine_decision_mismatches(con, sha, path, now)
    if mismatches:
        result.quarantined = dict(
            sorted({**result.quarantined, "decision_mismatch": mismatches}.items())
        )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE new_events AS "
        "SELECT * FROM fresh ANTI JOIN events USING (event_uid)"
    )
    valid = result.rows_read - sum(result.quarantined.values())
    result.rows_loaded = _count(con, "SELECT count(*) FROM new_events")
    result.duplicates = valid - result.rows_loaded
    result.bots = _count(con, "SELECT count(*) FROM new_events WHERE is_bot")
    result.dnt = _count(con, "SELECT count(*) FROM new_events WHERE is_dnt")
    con.execute(_INSERT_EVENTS_SQL, [str(path), now])
    before = _count(con, "SELECT count(*) FROM flag_assignments")
    con.execute(_INSERT_FLAGS_SQL)
    result.flag_assignments = _count(con, "SELECT count(*) FROM flag_assignments") - before
    _record_file(con, path, fmt, sha, result, now)
    return result


def _quarantine_decision_mismatches(
    con: duckdb.DuckDBPyConnection, sha: str, path: Path, now: Any
) -> int:
    """Move events contradicting their decision id from `fresh` to quarantine; count them."""
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
            "DELETE FROM fresh WHERE source_line IN (SELECT source_line FROM decision_mismatches)"
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
    """Load files and folders (expanded, sorted) into the warehouse, file by file."""
    report = LoadReport()
    for path in discover(paths):
        report.files.append(load_file(con, path, bot_pattern=bot_pattern))
    return report
