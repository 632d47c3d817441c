"""Keyed pseudonyms: person_id = HMAC-SHA256(secret key, person key), truncated to 128 bits.

The same person gets the same person_id in every build as long as the key is kept; without the
key nobody can compute a person_id from an NHS number. The key never enters a database or a log.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# a person_id as the databases hold it (a UUID of the 128-bit pseudonym)
UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PERSON_ID = re.compile(f"^{UUID_TEXT}$")


def person_ids(key: bytes, person_keys: list[str]) -> list[str]:
    """Pseudonymous ids (32 hex characters) for person keys such as 'nhs:9434765919'."""
    return [hmac.new(key, k.encode("utf-8"), hashlib.sha256).hexdigest()[:32] for k in person_keys]


def as_uuid(person_id: str) -> str:
    """A 32-hex-character person_id written as the databases hold it (a UUID)."""
    h = person_id
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
