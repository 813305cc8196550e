"""Pseudonymous subject labels: HMAC-SHA256 of the subject id under a secret key.

Where events are tracked under a label instead of the raw id (an email address, an account
number), the label must not be reversible by anyone who holds the events. A bare hash such
as MD5(id) is: ids come from small, guessable spaces, so hashing every candidate id and
matching takes seconds. A keyed hash is a pseudonym that only the key holder can link back:
HMAC-SHA256(key, id), hex-encoded, with the key read from the environment
(`EXP_PIPELINE_PSEUDONYM_KEY`), never from a file in the repository.

The trade-off, stated so nobody relies on more than it gives:
- It is pseudonymisation, not anonymisation: whoever has the key can recompute the label of
  any id, so labelled events are still personal data where the law says so.
- The same key gives the same label everywhere, which is what lets events from several
  systems join on it; rotating the key breaks that join for everything labelled before.
- Assignment still hashes the id the flag is randomised by (docs/flags.md); the label is for
  storage and sharing, and an experiment randomised by label must always be given the label.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from exp_pipeline.errors import FlagError

KEY_VARIABLE = "EXP_PIPELINE_PSEUDONYM_KEY"
# 128 bits: a shorter secret could be found by trying keys against a known (id, label) pair.
MIN_KEY_BYTES = 16


def pseudonym_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The labelling key from the environment; a clear error when it is missing or short."""
    value = (os.environ if environ is None else environ).get(KEY_VARIABLE, "")
    key = value.encode()
    if len(key) < MIN_KEY_BYTES:
        raise FlagError(
            f"{KEY_VARIABLE} must hold a secret of at least {MIN_KEY_BYTES} bytes "
            f"(got {len(key)}); generate one with `python -c 'import secrets; "
            f"print(secrets.token_hex(32))'`"
        )
    return key


def pseudonymous_label(subject_id: str, key: bytes) -> str:
    """HMAC-SHA256 of the UTF-8 subject id under `key`, as 64 lowercase hex characters."""
    if not subject_id:
        raise FlagError("the subject id must be a non-empty string")
    return hmac.new(key, subject_id.encode(), hashlib.sha256).hexdigest()
