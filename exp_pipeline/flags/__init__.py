"""Flag decisions: the documented hashing, the flags snapshot and the pure `decide`.

The control database decides which experiments run; applications load a snapshot of it
and evaluate flags locally, so the answer a subject gets is the same in this library, the
CLI and any SDK that implements docs/flags.md.
"""

from exp_pipeline.flags.decide import REASONS, Decision, decide, is_do_not_track
from exp_pipeline.flags.hashing import bucket, decision_id
from exp_pipeline.flags.pseudonyms import pseudonym_key, pseudonymous_label
from exp_pipeline.flags.snapshot import (
    FORMAT,
    build_snapshot,
    parse_snapshot,
    validate_snapshot,
    write_snapshot,
)

__all__ = [
    "FORMAT",
    "REASONS",
    "Decision",
    "bucket",
    "build_snapshot",
    "decide",
    "decision_id",
    "is_do_not_track",
    "parse_snapshot",
    "pseudonym_key",
    "pseudonymous_label",
    "validate_snapshot",
    "write_snapshot",
]
