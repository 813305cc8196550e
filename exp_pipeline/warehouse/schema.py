"""DDL of the warehouse tables written at ingestion.

Properties are parsed once, here: the well-known ones become typed columns and flag
signals become a long `flag_assignments` table (one row per event and flag), so every
later transform is plain relational work that Spark could run unchanged. The raw JSON is
kept for metrics that read a property by name.
"""

from __future__ import annotations

import duckdb

# The events table's columns, each documented once: the Dagster asset reads its column
# schema from these comments.
EVENTS_COLUMNS = """
        event_uid    VARCHAR NOT NULL,   -- 'id:' || event_id, or 'h:' || a content hash
        event_id     VARCHAR,            -- event_id (or uuid) from the landing file
        event        VARCHAR NOT NULL,   -- event name
        distinct_id  VARCHAR NOT NULL,   -- the subject
        ts           TIMESTAMPTZ NOT NULL, -- absolute instant; naive landing times are UTC
        event_date   DATE NOT NULL,      -- UTC calendar day of ts
        properties   JSON NOT NULL,      -- event properties, parsed and normalised once
        user_agent   VARCHAR,            -- $user_agent / user_agent
        session_id   VARCHAR,            -- $session_id / session_id
        is_bot       BOOLEAN NOT NULL,   -- user agent matched the bot pattern: not analysed
        is_dnt       BOOLEAN NOT NULL,   -- $dnt / dnt = 1 or true: not analysed
        source_file  VARCHAR NOT NULL,   -- landing file the event came from
        source_line  BIGINT,             -- line in a text file, 1-based row in Parquet
        loaded_at    TIMESTAMPTZ NOT NULL -- when it was loaded
"""

DDL = [
    f"CREATE TABLE IF NOT EXISTS events ({EVENTS_COLUMNS})",
    """
    CREATE TABLE IF NOT EXISTS flag_assignments (
        event_uid    VARCHAR NOT NULL,
        distinct_id  VARCHAR NOT NULL,
        ts           TIMESTAMPTZ NOT NULL,
        flag_key     VARCHAR NOT NULL,
        variant      VARCHAR NOT NULL,
        source       VARCHAR NOT NULL,   -- 'property' ($feature/<flag>) | 'flag_called'
        event        VARCHAR NOT NULL,
        is_bot       BOOLEAN NOT NULL,
        is_dnt       BOOLEAN NOT NULL,
        -- a QA override ($feature_flag_forced / force_experiment): never analysed
        forced       BOOLEAN NOT NULL DEFAULT false
    )
    """,
    # Warehouses created before the column existed get it, false for their rows.
    "ALTER TABLE flag_assignments ADD COLUMN IF NOT EXISTS forced BOOLEAN DEFAULT false",
    """
    CREATE TABLE IF NOT EXISTS quarantine (
        file_sha256    VARCHAR NOT NULL,
        source_file    VARCHAR NOT NULL,
        source_line    BIGINT,
        reason         VARCHAR NOT NULL,
        detail         VARCHAR,
        raw            VARCHAR,
        quarantined_at TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS loaded_files (
        file_sha256   VARCHAR PRIMARY KEY,
        path          VARCHAR NOT NULL,
        format        VARCHAR NOT NULL,
        size_bytes    BIGINT NOT NULL,
        status        VARCHAR NOT NULL,  -- 'loaded' | 'rejected' (unreadable as a whole)
        rows_read     BIGINT NOT NULL,
        rows_loaded   BIGINT NOT NULL,
        duplicates    BIGINT NOT NULL,
        quarantined   BIGINT NOT NULL,
        bots          BIGINT NOT NULL,
        dnt           BIGINT NOT NULL,
        loaded_at     TIMESTAMPTZ NOT NULL
    )
    """,
    # What analysis reads: bots and Do-Not-Track events are excluded here, once.
    """
    CREATE VIEW IF NOT EXISTS analysis_events AS
    SELECT * FROM events WHERE NOT is_bot AND NOT is_dnt
    """,
]


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)
