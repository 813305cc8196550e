"""The documented, language-neutral hashing behind every flag decision.

Any SDK that implements these three functions from this text (or docs/flags.md) gives a
subject exactly the variant and decision id this library gives it, on any machine:

- `bucket(seed, salt, subject_id)`: SHA-256 over the UTF-8 bytes of
  `f"{seed}.{salt}.{subject_id}"`; the first 8 bytes of the digest read as a big-endian
  unsigned 64-bit integer `h`; the bucket is `(h >> 11) / 2**53`, i.e. the top 53 bits as
  a fraction. That is exactly representable as an IEEE-754 double and always in [0, 1);
  dividing all 64 bits by 2**64 instead would round the top few buckets up to 1.0.
- Traffic inclusion uses salt `"traffic"` and the variant choice salt `"variant"`. The two
  hashes are independent, so raising an experiment's traffic from 10% to 50% only adds
  subjects: everyone already included keeps the variant they had.
- `decision_id`: the first 32 hex characters of SHA-256 over the UTF-8 bytes of
  `f"{experiment_key}.{subject_id}.{variant}.{assignment_version}"`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

TRAFFIC_SALT = "traffic"
VARIANT_SALT = "variant"

_MANTISSA_BITS = 53
_DECISION_ID_HEX_CHARS = 32


def bucket(seed: str, salt: str, subject_id: str) -> float:
    """The subject's position in [0, 1) for this seed and salt, identical in every language."""
    digest = hashlib.sha256(f"{seed}.{salt}.{subject_id}".encode()).digest()
    h = int.from_bytes(digest[:8], "big")
    return (h >> (64 - _MANTISSA_BITS)) / 2**_MANTISSA_BITS


def in_traffic(seed: str, subject_id: str, traffic: float) -> bool:
    """Whether the subject falls inside the experiment's traffic fraction (0..1)."""
    return bucket(seed, TRAFFIC_SALT, subject_id) < traffic


def choose_variant(seed: str, subject_id: str, variants: Sequence[tuple[str, float]]) -> str:
    """The variant whose cumulative-weight interval holds the subject's variant bucket.

    `variants` are (key, weight) pairs in their defined order, weights summing to 1. The
    running sum is plain float64 addition in that order, so every language gets the same
    boundaries; should rounding leave the total a hair below 1, the last variant with a
    positive weight takes the remainder rather than nobody (or a variant weighted 0).
    """
    position = bucket(seed, VARIANT_SALT, subject_id)
    cumulative = 0.0
    for key, weight in variants:
        cumulative += weight
        if position < cumulative:
            return key
    return [key for key, weight in variants if weight > 0][-1]


def decision_id(experiment_key: str, subject_id: str, variant: str, assignment_version: int) -> str:
    """A stable id of one assignment, so an exposure event can be checked against it later."""
    text = f"{experiment_key}.{subject_id}.{variant}.{assignment_version}"
    return hashlib.sha256(text.encode()).hexdigest()[:_DECISION_ID_HEX_CHARS]
