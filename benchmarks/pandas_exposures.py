"""The exposure build in pandas: the baseline the SQL build is measured against.

The same rules as `exp_pipeline.analysis.exposures` (ARCHITECTURE "Experiment windows
and attribution"), written the way an analyst would in pandas: fetch the flag signals
and the analysable events into data frames, then group and filter per experiment. It
reads the same typed tables the SQL build reads, so the comparison is of the engines, and
its output is checked row for row against the SQL build's, so a fast wrong baseline
cannot pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.exposures import EXCLUSION_REASONS


@dataclass(frozen=True)
class PandasExposures:
    exposed: pd.DataFrame  # distinct_id, variant, first_ts, source
    excluded: dict[str, int]


def fetch(
    con: duckdb.DuckDBPyConnection, experiments: list[ExperimentDefinition]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The experiments' flag signals, and (subject, time) of every analysable event."""
    signals = con.execute(
        "SELECT flag_key, distinct_id, variant, ts, source, is_bot, is_dnt, forced "
        "FROM flag_assignments WHERE flag_key IN (SELECT unnest($flags))",
        {"flags": [e.flag_key for e in experiments]},
    ).df()
    events = con.execute("SELECT distinct_id, ts FROM analysis_events").df()
    return signals, events


def classify(
    signals: pd.DataFrame, events: pd.DataFrame, experiment: ExperimentDefinition
) -> PandasExposures:
    """Exposed subjects (first touch) and the exclusion counts of one experiment."""
    start, end = pd.Timestamp(experiment.start_utc), pd.Timestamp(experiment.end_utc)
    sig = signals[signals["flag_key"] == experiment.flag_key]
    in_window = sig["ts"].between(start, end)
    counted = sig[in_window & ~sig["is_bot"] & ~sig["is_dnt"]]
    bounds = counted.groupby("distinct_id").agg(
        min=("variant", "min"), max=("variant", "max"), forced=("forced", "any")
    )
    forced = bounds["forced"]
    mixed = ~forced & (bounds["min"] != bounds["max"])
    unknown = ~forced & ~mixed & ~bounds["min"].isin(experiment.variants)
    first = (
        counted.sort_values(["distinct_id", "ts", "source", "variant"])
        .drop_duplicates("distinct_id")
        .set_index("distinct_id")
    )
    keep = bounds.index[~forced & ~mixed & ~unknown]
    exposed = pd.DataFrame(
        {
            "distinct_id": keep,
            "variant": bounds.loc[keep, "min"].to_numpy(),
            "first_ts": first.loc[keep, "ts"].to_numpy(),
            "source": first.loc[keep, "source"].to_numpy(),
        }
    )

    rest = sig[~sig["distinct_id"].isin(bounds.index)]
    rest_in_window = in_window[rest.index]
    flags = (
        pd.DataFrame(
            {
                "distinct_id": rest["distinct_id"],
                "bot": rest_in_window & rest["is_bot"],
                "dnt": rest_in_window & rest["is_dnt"],
            }
        )
        .groupby("distinct_id")[["bot", "dnt"]]
        .any()
    )
    reasons = np.where(flags["bot"], "bot", np.where(flags["dnt"], "dnt", "out_of_window"))
    active = events[events["ts"].between(start, end)]
    no_flag = active.loc[~active["distinct_id"].isin(sig["distinct_id"]), "distinct_id"].nunique()

    counts = {
        "forced": int(forced.sum()),
        "multiple_variants": int(mixed.sum()),
        "unknown_variant": int(unknown.sum()),
        "no_flag": int(no_flag),
        **{r: int((reasons == r).sum()) for r in ("bot", "dnt", "out_of_window")},
    }
    return PandasExposures(exposed, {r: counts[r] for r in EXCLUSION_REASONS})


def agrees(
    con: duckdb.DuckDBPyConnection, built: PandasExposures, experiment: ExperimentDefinition
) -> bool:
    """Whether pandas found exactly the SQL build's exposures (every row) and exclusions."""
    sql = con.execute(
        "SELECT distinct_id, variant, first_exposure_utc AS first_ts, exposure_source AS source "
        "FROM exposures WHERE experiment_key = ?",
        [experiment.key],
    ).df()
    excluded = dict(
        con.execute(
            "SELECT reason, subjects FROM exposure_exclusions WHERE experiment_key = ?",
            [experiment.key],
        ).fetchall()
    )
    columns = ["distinct_id", "variant", "first_ts", "source"]
    ours = built.exposed[columns].sort_values("distinct_id").reset_index(drop=True)
    theirs = sql[columns].sort_values("distinct_id").reset_index(drop=True)
    same_rows = len(ours) == len(theirs) and all(
        (ours[c].astype(str).to_numpy() == theirs[c].astype(str).to_numpy()).all() for c in columns
    )
    return same_rows and built.excluded == {r: int(excluded.get(r, 0)) for r in EXCLUSION_REASONS}
