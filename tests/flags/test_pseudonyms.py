"""Pseudonymous labels: HMAC-SHA256 as RFC 4231 defines it, keyed from the environment."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner

from exp_pipeline.cli import cli
from exp_pipeline.errors import FlagError
from exp_pipeline.flags import pseudonym_key, pseudonymous_label

KEY = "k" * 32


def hmac_by_hand(key: bytes, message: bytes) -> str:
    """HMAC from its definition (RFC 2104), independent of the hmac module."""
    block = 64
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).hexdigest()


def test_rfc_4231_test_case_2() -> None:
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert pseudonymous_label("what do ya want for nothing?", b"Jefe") == expected


@pytest.mark.parametrize("subject", ["user-1", "alice@example.com", "ünïcode-ид"])
def test_labels_match_the_definition_and_differ_from_a_bare_hash(subject: str) -> None:
    label = pseudonymous_label(subject, KEY.encode())
    assert label == hmac_by_hand(KEY.encode(), subject.encode())
    assert label != hashlib.sha256(subject.encode()).hexdigest()
    assert label != pseudonymous_label(subject, b"another key of 16+ bytes")


def test_the_key_comes_from_the_environment_and_must_be_long_enough() -> None:
    assert pseudonym_key({"EXP_PIPELINE_PSEUDONYM_KEY": KEY}) == KEY.encode()
    with pytest.raises(FlagError, match="EXP_PIPELINE_PSEUDONYM_KEY must hold a secret"):
        pseudonym_key({})
    with pytest.raises(FlagError, match=r"at least 16 bytes \(got 5\)"):
        pseudonym_key({"EXP_PIPELINE_PSEUDONYM_KEY": "short"})


def test_flags_label_prints_one_label_per_subject() -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["flags", "label", "u1", "u2"], env={"EXP_PIPELINE_PSEUDONYM_KEY": KEY}
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"u1\t{hmac_by_hand(KEY.encode(), b'u1')}",
        f"u2\t{hmac_by_hand(KEY.encode(), b'u2')}",
    ]
    missing = runner.invoke(cli, ["flags", "label", "u1"], env={"EXP_PIPELINE_PSEUDONYM_KEY": ""})
    assert missing.exit_code != 0
    assert "EXP_PIPELINE_PSEUDONYM_KEY must hold a secret" in missing.output
