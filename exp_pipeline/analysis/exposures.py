"""Exposures: which subjects are in an experiment, in which variant, since when.

Rules (ARCHITECTURE "Experiment windows and attribution"): a subject's flag signals are
the `flag_assignments` rows of the experiment's flag (a `$feature/<flag>` property on any
event, or a `$feature_flag_called` event). Only signals inside the window `[start, end]`
from events that are neither bots nor Do-Not-Track count. A subject whose counted signals
name two or more variants is excluded (`multiple_variants`, found with min <> max so any
engine gives the same answer); one naming a variant the experiment does not define is
excluded (`unknown_variant`); otherwise the subject is exposed to that variant from its
first counted signal (first touch). Every other subject is counted once under the first
reason that applies: `bot`, `dnt` (signals in the window only from such events),
`out_of_window` (signals only outside it), `no_flag` (events in the window, no signal).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.schema import replacing

EXCLUSION_REASONS = (
    "unknown_variant",
    "multiple_variants",
    "out_of_window",
    "bot",
    "dnt",
    "no_flag",
)

# Parameters: $key, $flag, $start, $end.
_CLASSIFY_SQL = """
CREATE OR REPLACE TEMP TABLE exposure_classes AS
WITH signals AS (
    SELECT distinct_id, variant, ts, source, is_bot, is_dnt,
           ts >= $start AND ts <= $end AS in_window
    FROM flag_assignments
    WHERE flag_key = $flag
), counted AS (
    SELECT * FROM signals WHERE in_window AND NOT is_bot AND NOT is_dnt
), first_touch AS (
    SELECT distinct_id, ts, source
    FROM (
        SELECT distinct_id, ts, source,
               row_number() OVER (PARTITION BY distinct_id ORDER BY ts, source, variant) AS rn
        FROM counted
    ) ranked
    WHERE rn = 1
), per_subject AS (
    SELECT distinct_id, min(variant) AS min_variant, max(variant) AS max_variant
    FROM counted GROUP BY distinct_id
), classified AS (
    SELECT p.distinct_id,
           CASE WHEN p.min_variant <> p.max_variant THEN 'multiple_variants'
                WHEN p.min_variant NOT IN (
                    SELECT variant_key FROM experiment_variants WHERE experiment_key = $key
                ) THEN 'unknown_variant'
           END AS reason,
           p.min_variant AS variant, f.ts AS first_ts, f.source
    FROM per_subject p JOIN first_touch f USING (distinct_id)
), uncounted AS (
    SELECT distinct_id,
           CASE WHEN bool_or(in_window AND is_bot) THEN 'bot'
                WHEN bool_or(in_window AND is_dnt) THEN 'dnt'
                ELSE 'out_of_window'
           END AS reason
    FROM signals
    WHERE distinct_id NOT IN (SELECT distinct_id FROM per_subject)
    GROUP BY distinct_id
), no_flag AS (
    SELECT DISTINCT distinct_id, 'no_flag' AS reason
    FROM analysis_events
    WHERE ts >= $start AND ts <= $end
      AND distinct_id NOT IN (SELECT distinct_id FROM signals)
)
SELECT distinct_id, reason, variant, first_ts, source FROM classified
UNION ALL SELECT distinct_id, reason, NULL, NULL, NULL FROM uncounted
UNION ALL SELECT distinct_id, reason, NULL, NULL, NULL FROM no_flag
"""

_INSERT_EXPOSURES_SQL = """
INSERT INTO exposures
SELECT $key, distinct_id, variant, first_ts, timezone($timezone, first_ts), source
FROM exposure_classes WHERE reason IS NULL
"""

_INSERT_EXCLUSIONS_SQL = """
INSERT INTO exposure_exclusions
SELECT $key, reason, count(*) FROM exposure_classes WHERE reason IS NOT NULL GROUP BY reason
"""


@dataclass(frozen=True)
class ExposureSummary:
    """Exposed subjects per variant (every defined variant, zeros included) and exclusions."""

    experiment_key: str
    exposures: dict[str, int]
    excluded: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.exposures.values())

    @property
    def flagged(self) -> int:
        """Subjects with a counted flag signal: exposed, or in several or unknown variants."""
        return self.total + self.excluded["multiple_variants"] + self.excluded["unknown_variant"]


def build_exposures(
    con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition
) -> ExposureSummary:
    """Replace `experiment`'s rows of `exposures` and `exposure_exclusions`; summarise them."""
    params = {
        "flag": experiment.flag_key,
        "start": experiment.start_utc,
        "end": experiment.end_utc,
        "key": experiment.key,
    }
    with replacing(con, experiment.key, "exposures", "exposure_exclusions"):
        con.execute(_CLASSIFY_SQL, params)
        con.execute(_INSERT_EXPOSURES_SQL, {"key": experiment.key, "timezone": experiment.timezone})
        con.execute(_INSERT_EXCLUSIONS_SQL, {"key": experiment.key})
        con.execute("DROP TABLE exposure_classes")
    return read_exposure_summary(con, experiment)


def read_exposure_summary(
    con: duckdb.DuckDBPyConnection, experiment: ExperimentDefinition
) -> ExposureSummary:
    counts = dict(
        con.execute(
            "SELECT variant, count(*) FROM exposures WHERE experiment_key = ? GROUP BY variant",
            [experiment.key],
        ).fetchall()
    )
    excluded = dict(
        con.execute(
            "SELECT reason, subjects FROM exposure_exclusions WHERE experiment_key = ?",
            [experiment.key],
        ).fetchall()
    )
    return ExposureSummary(
        experiment_key=experiment.key,
        exposures={v: int(counts.get(v, 0)) for v in experiment.variants},
        excluded={r: int(excluded.get(r, 0)) for r in EXCLUSION_REASONS},
    )
