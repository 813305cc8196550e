"""DDL of the per-experiment analysis tables.

Every table carries `experiment_key`: each experiment's rows are replaced together, in one
transaction, when its partition is materialised, so re-running an experiment is
idempotent and never touches the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

TABLES: dict[str, str] = {
    "exposures": """
        experiment_key       VARCHAR NOT NULL,
        distinct_id          VARCHAR NOT NULL,
        variant              VARCHAR NOT NULL,
        first_exposure_utc   TIMESTAMPTZ NOT NULL,
        first_exposure_local TIMESTAMP NOT NULL,  -- wall-clock time in the experiment's zone
        exposure_source      VARCHAR NOT NULL     -- 'property' | 'flag_called'
    """,
    "exposure_exclusions": """
        experiment_key VARCHAR NOT NULL,
        reason         VARCHAR NOT NULL,
        subjects       BIGINT NOT NULL
    """,
    # Groups exposed per group type a metric aggregates by (docs/groups.md).
    "group_exposures": """
        experiment_key       VARCHAR NOT NULL,
        group_type           VARCHAR NOT NULL,    -- a metric's `aggregation`, e.g. organization
        group_key            VARCHAR NOT NULL,    -- the group's key in `$groups`
        variant              VARCHAR NOT NULL,
        first_exposure_utc   TIMESTAMPTZ NOT NULL, -- the earliest member exposure
        first_exposure_local TIMESTAMP NOT NULL,  -- wall-clock time in the experiment's zone
        members              BIGINT NOT NULL      -- exposed subjects whose exposure names it
    """,
    "group_exposure_exclusions": """
        experiment_key VARCHAR NOT NULL,
        group_type     VARCHAR NOT NULL,
        reason         VARCHAR NOT NULL,          -- multiple_variants | no_group
        units          BIGINT NOT NULL            -- groups; no_group: exposed subjects
    """,
    "conversions": """
        experiment_key       VARCHAR NOT NULL,
        metric_key           VARCHAR NOT NULL,
        distinct_id          VARCHAR NOT NULL,    -- the unit: a group key when grouped
        variant              VARCHAR NOT NULL,
        first_conversion_utc TIMESTAMPTZ,          -- first qualifying event (last funnel step)
        event_count          BIGINT NOT NULL,     -- metric events (funnel: 0)
        value_sum            DOUBLE,              -- continuous: sum of the property
        denominator_count    BIGINT,              -- ratio: denominator events
        funnel_step          INTEGER              -- funnel: steps reached, 0..n
    """,
    "funnel_metrics": """
        experiment_key VARCHAR NOT NULL,
        metric_key     VARCHAR NOT NULL,
        variant        VARCHAR NOT NULL,
        step           INTEGER NOT NULL,          -- 1-based
        step_event     VARCHAR NOT NULL,
        subjects       BIGINT NOT NULL
    """,
    "trend_metrics": """
        experiment_key VARCHAR NOT NULL,
        metric_key     VARCHAR NOT NULL,
        variant        VARCHAR NOT NULL,
        day            DATE NOT NULL,             -- calendar day in the experiment's zone
        event_count    BIGINT NOT NULL,
        actors         BIGINT NOT NULL,           -- distinct subjects with a metric event
        value          DOUBLE NOT NULL            -- per `math`: total or avg_count_per_actor
    """,
    "trend_exposures": """
        experiment_key VARCHAR NOT NULL,
        variant        VARCHAR NOT NULL,
        subjects       BIGINT NOT NULL            -- distinct $feature_flag_called subjects
    """,
    "subject_context": """
        experiment_key VARCHAR NOT NULL,
        distinct_id    VARCHAR NOT NULL,
        path           VARCHAR NOT NULL,          -- JSON path of a leaf, e.g. $.device.platform
        value          JSON NOT NULL,             -- its merged value (a scalar or an array)
        set_at         TIMESTAMPTZ NOT NULL       -- the event that set it (<= first exposure)
    """,
    "experiment_results": """
    experiment_key    VARCHAR NOT NULL,
    metric_key        VARCHAR NOT NULL,
    kind              VARCHAR NOT NULL,
    is_primary        BOOLEAN NOT NULL,
    variant           VARCHAR NOT NULL,
    exposures         BIGINT NOT NULL,     -- exposed subjects (trend: flag_called subjects)
    value             DOUBLE NOT NULL,     -- conversions, event count, value sum or numerator
    rate              DOUBLE,              -- conversion rate, mean or ratio; NULL for trends
    ci_low            DOUBLE NOT NULL,     -- 95% credible interval of the posterior
    ci_high           DOUBLE NOT NULL,
    probability_best  DOUBLE NOT NULL,
    lift_low          DOUBLE,              -- 95% interval of the lift over control
    lift_high         DOUBLE,
    expected_loss     DOUBLE NOT NULL,     -- of the metric's best variant
    significance_code VARCHAR NOT NULL,
    significant       BOOLEAN NOT NULL,
    computed_at       TIMESTAMPTZ NOT NULL
    """,
    "experiment_result_documents": """
        experiment_key VARCHAR NOT NULL,
        document       JSON NOT NULL,             -- what `exp-pipeline analyze` writes
        computed_at    TIMESTAMPTZ NOT NULL
    """,
}


def create_analysis_tables(con: duckdb.DuckDBPyConnection) -> None:
    for name, columns in TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")


@contextmanager
def replacing(
    con: duckdb.DuckDBPyConnection, experiment_key: str, *tables: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A transaction that first deletes `experiment_key`'s rows from `tables`."""
    create_analysis_tables(con)
    con.execute("BEGIN TRANSACTION")
    try:
        for table in tables:
            if table not in TABLES:
                raise ValueError(f"unknown analysis table {table!r}")
            con.execute(f"DELETE FROM {table} WHERE experiment_key = ?", [experiment_key])
        yield con
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
