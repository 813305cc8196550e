"""Subject context: the attributes a subject's events attach, merged, for segment breakdowns.

Events carry attributes the PostHog way, as a `$set` object property (`{"$set": {"country":
"DE", "device": {"platform": "ios"}}}`). A subject's context is the merge of its `$set`
objects in event order (time, then `event_uid` for ties):

* later values win;
* nested objects merge key by key (`{"device": {"os": "ios"}}` then `{"device": {"model":
  "x"}}` keeps both keys), while a scalar replaces an object at the same key and an object
  replaces a scalar;
* empty updates keep what was there: null, "" and objects with nothing else in them
  (`{}`, `{"a": null}`) change nothing; arrays are values like scalars, never merged.

Only events up to and including the subject's first exposure count (pre-treatment): a
variant cannot change which segment a subject is in, so a segment compares like with like
and its sample-ratio test stays meaningful. Bots and Do-Not-Track events are left out, as
everywhere in the analysis (`analysis_events`).

Set-based, in SQL: each `$set` object is flattened into its leaves (JSON path, value) with
DuckDB's `json_tree`; a leaf survives when no later event wrote the same path, one of its
ancestors (a scalar that replaced the object) or one of its descendants (an object that
replaced the scalar). That is exactly the sequential merge above, because a `$set` write
always applies: whether a leaf survives depends only on which writes come after it. The
result is a long table, `subject_context` (one row per subject and leaf path), replaced
per experiment. `json_tree` has no Spark equivalent, so this transform is DuckDB's.
"""

from __future__ import annotations

import json

import duckdb

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.schema import replacing

# The leaves of every exposed subject's `$set` objects up to its first exposure, the last
# write of each path kept, then those no later write at an ancestor or descendant path
# replaced. A leaf is a scalar or an array (type not OBJECT) that is not inside an array
# (no `[` in its path outside quoted keys); null and "" are empty updates.
_SUBJECT_CONTEXT_SQL = r"""
WITH updates AS (
    SELECT x.distinct_id, e.ts, e.event_uid, json_extract(e.properties, '$."$set"') AS obj
    FROM exposures x
    JOIN analysis_events e ON e.distinct_id = x.distinct_id AND e.ts <= x.first_exposure_utc
    WHERE x.experiment_key = $key AND json_type(e.properties, '$."$set"') = 'OBJECT'
), leaves AS (
    SELECT u.distinct_id, u.ts, u.event_uid, t.fullkey AS path, t.value
    FROM updates u, json_tree(u.obj) t
    WHERE t.type NOT IN ('OBJECT', 'NULL')
      AND NOT (t.type = 'VARCHAR' AND t.value = '""')
      AND regexp_replace(t.fullkey, '"([^"\\]|\\.)*"', '', 'g') NOT LIKE '%[%'
), latest AS (
    SELECT * FROM leaves
    QUALIFY row_number() OVER (
        PARTITION BY distinct_id, path ORDER BY ts DESC, event_uid DESC) = 1
)
SELECT $key, l.distinct_id, l.path, l.value, l.ts
FROM latest l
WHERE NOT EXISTS (
    SELECT 1 FROM latest m
    WHERE m.distinct_id = l.distinct_id
      AND (m.ts > l.ts OR (m.ts = l.ts AND m.event_uid > l.event_uid))
      AND (starts_with(l.path, m.path || '.') OR starts_with(m.path, l.path || '.'))
)
"""


def build_subject_context(con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition) -> int:
    """Replace `experiment`'s rows of `subject_context`; return the subjects with a context."""
    with replacing(con, experiment.key, "subject_context"):
        con.execute(f"INSERT INTO subject_context {_SUBJECT_CONTEXT_SQL}", {"key": experiment.key})
    row = con.execute(
        "SELECT count(DISTINCT distinct_id) FROM subject_context WHERE experiment_key = ?",
        [experiment.key],
    ).fetchone()
    return int(row[0]) if row else 0


def context_path(con: duckdb.DuckDBPyConnection, attribute: str) -> str:
    """The JSON path `subject_context` stores for catalog attribute `attribute`.

    `device.platform` is `$.device.platform`, but DuckDB quotes some keys (`$."$os"`,
    `$."_x"`); asking `json_tree` for the path of a probe object gives its exact spelling.
    """
    probe: object = 0
    for key in reversed(attribute.split(".")):
        probe = {key: probe}
    row = con.execute(
        "SELECT fullkey FROM json_tree(?) WHERE atom IS NOT NULL", [json.dumps(probe)]
    ).fetchone()
    if row is None:
        raise ValueError(f"segment attribute {attribute!r} has no JSON path")
    return str(row[0])
