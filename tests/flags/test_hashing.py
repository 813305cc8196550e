"""The documented hashing: fixed golden values, allocation proportions, independent salts.

The golden values were computed once and are hard-coded: a change to them changes which
variant real subjects get, so it must fail here. `reference_bucket` re-derives them from
the documented text with hashlib and struct only, as another language would. The
traffic-increase property is tested through `decide`, in test_decide.py.
"""

from __future__ import annotations

import hashlib
import struct
from collections import Counter

import pytest
from scipy.stats import chisquare

from exp_pipeline.flags.hashing import bucket, choose_variant, decision_id, in_traffic

# (seed, salt, subject id) -> (first 8 digest bytes as an integer, bucket)
GOLDEN_BUCKETS = [
    (("exp-a", "traffic", "user-1"), 0x4238D0B263A43683, 0.25867943148809114),
    (("exp-a", "variant", "user-1"), 0x01C811F433ED45DC, 0.006959077949365344),
    (("exp-a", "traffic", "user-2"), 0xB8555EF3805E4177, 0.720052656601518),
    (("exp-a", "variant", "user-2"), 0x699E1D1079CA3F92, 0.41256887104263107),
    (("checkout-funnel", "variant", "42"), 0xE04DC6C3CF19CAEC, 0.8761867740678105),
    (("seed with space", "traffic", "ünïcödé@example.com"), 0xDC463CB28745ACEC, 0.8604467330799453),
    (("s", "variant", ""), 0x85A8F80FBA3EC73C, 0.5221095121762529),
]

# (experiment key, subject, variant, assignment version) -> decision id
GOLDEN_DECISION_IDS = [
    (("a-b-test", "user-1", "test", 1), "09b0c43675cde9941fc6cb480f98cd5b"),
    (("golden-exp", "user-1", "green", 1), "8c2633036de815f22a4a341bf7a34a94"),
]

N_IDS = 100_000
IDS = [f"user-{i}" for i in range(N_IDS)]


def reference_bucket(seed: str, salt: str, subject_id: str) -> tuple[int, float]:
    """The documented bucket, written from docs/flags.md without the library."""
    digest = hashlib.sha256(f"{seed}.{salt}.{subject_id}".encode()).digest()
    (h,) = struct.unpack(">Q", digest[:8])
    return h, (h >> 11) / float(1 << 53)


@pytest.mark.parametrize(("key", "h", "expected"), GOLDEN_BUCKETS)
def test_buckets_match_the_golden_values_and_an_independent_implementation(
    key: tuple[str, str, str], h: int, expected: float
) -> None:
    assert bucket(*key) == expected
    assert reference_bucket(*key) == (h, expected)


@pytest.mark.parametrize(("key", "expected"), GOLDEN_DECISION_IDS)
def test_decision_ids_match_the_golden_values(
    key: tuple[str, str, str, int], expected: str
) -> None:
    experiment, subject, variant, version = key
    text = f"{experiment}.{subject}.{variant}.{version}".encode()
    assert hashlib.sha256(text).hexdigest()[:32] == expected
    assert decision_id(*key) == expected


def test_a_new_assignment_version_gives_new_decision_ids() -> None:
    assert decision_id("exp-a", "user-1", "test", 2) != decision_id("exp-a", "user-1", "test", 1)


def test_the_largest_hash_still_buckets_below_one() -> None:
    """Dividing all 64 bits by 2**64 would round 2**64 - 1 up to 1.0, outside [0, 1)."""
    assert (2**64 - 1) / 2**64 == 1.0
    assert ((2**64 - 1) >> 11) / 2**53 < 1.0


def test_variant_boundaries_follow_cumulative_weights_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    weights = [("control", 0.25), ("a", 0.25), ("b", 0.5)]
    seen = {}
    for position in (0.0, 0.2499, 0.25, 0.4999, 0.5, 0.9999):
        monkeypatch.setattr("exp_pipeline.flags.hashing.bucket", lambda *_a, p=position: p)
        seen[position] = choose_variant("s", "u", weights)
    assert seen == {
        0.0: "control",
        0.2499: "control",
        0.25: "a",
        0.4999: "a",
        0.5: "b",
        0.9999: "b",
    }


def test_rounding_below_one_gives_the_last_weighted_variant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Weights whose float sum is a hair under 1 still place the top buckets, and never in a
    variant weighted 0."""
    monkeypatch.setattr("exp_pipeline.flags.hashing.bucket", lambda *_a: 1 - 2**-53)
    assert choose_variant("s", "u", [("control", 0.5), ("test", 0.5 - 1e-12), ("off", 0.0)]) == (
        "test"
    )


@pytest.mark.parametrize(
    "weights",
    [
        [("control", 0.5), ("test", 0.5)],
        [("control", 0.2), ("a", 0.3), ("b", 0.5)],
        [("control", 0.25), ("a", 0.25), ("b", 0.25), ("c", 0.25)],
    ],
)
def test_allocation_over_100_000_ids_passes_a_chi_square_test(
    weights: list[tuple[str, float]],
) -> None:
    counts = Counter(choose_variant("chi-square", subject, weights) for subject in IDS)
    observed = [counts[key] for key, _ in weights]
    expected = [N_IDS * weight for _, weight in weights]
    assert sum(observed) == N_IDS
    assert chisquare(observed, expected).pvalue > 0.001


@pytest.mark.parametrize("traffic", [0.1, 0.5])
def test_traffic_inclusion_over_100_000_ids_passes_a_chi_square_test(traffic: float) -> None:
    included = sum(in_traffic("chi-square", subject, traffic) for subject in IDS)
    observed = [included, N_IDS - included]
    expected = [N_IDS * traffic, N_IDS * (1 - traffic)]
    assert chisquare(observed, expected).pvalue > 0.001


def test_traffic_and_variant_hashes_are_independent() -> None:
    """Among included subjects the variant split is still the configured one: the two
    salts do not correlate (if they did, raising traffic would shift the allocation)."""
    weights = [("control", 0.5), ("test", 0.5)]
    included = [s for s in IDS if in_traffic("independence", s, 0.3)]
    counts = Counter(choose_variant("independence", s, weights) for s in included)
    observed = [counts["control"], counts["test"]]
    assert chisquare(observed, [len(included) / 2] * 2).pvalue > 0.001
