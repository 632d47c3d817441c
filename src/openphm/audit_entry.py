"""An audit entry's format: the fields it may hold (no identifiers), its canonical serialisation and
hash, and the MAC that only a holder of the audit key can make. The log itself (chain, checkpoint,
append, verify, who has seen a record) is `openphm.audit`."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from math import isfinite

from openphm.identity.nhs_number import is_valid
from openphm.identity.pseudonym import UUID_TEXT

OUTCOMES = ("allowed", "refused")
DETAIL_FIELDS = frozenset({"list_id", "practice_code", "people", "purpose", "file", "reason", "person_ids"})
_PERSON_IDS = re.compile(f"^{UUID_TEXT}( {UUID_TEXT})*$")
GENESIS = "0" * 64
_ENTRY_TAG = b"openphm audit entry v1\n"  # domain separation: an entry's hash, its MAC, the checkpoint's HMAC
_MAC_TAG = b"openphm audit mac v1\n"
_CHECKPOINT_TAG = b"openphm audit head v1\n"
_NHS_LIKE = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")


class AuditError(ValueError):
    """The audit log cannot be written safely; the message says why."""


@dataclass(frozen=True)
class Entry:
    """One row of audit.log."""

    seq: int
    logged_at: str
    actor: str
    stated_user: str | None
    action: str
    outcome: str
    details: str
    prev_hash: str
    entry_hash: str
    entry_mac: str


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def entry_hash(e: Entry) -> str:
    """SHA-256 over the canonical serialisation of every field but the hash and MAC themselves."""
    fields = {k: v for k, v in asdict(e).items() if k not in ("entry_hash", "entry_mac")}
    return hashlib.sha256(_ENTRY_TAG + _canonical(fields).encode("ascii")).hexdigest()


def _mac(key: bytes, tag: bytes, message: str) -> str:
    return hmac.new(key, tag + message.encode("utf-8"), hashlib.sha256).hexdigest()


def _scrub(text: str) -> str:
    """`text` with anything shaped like a valid NHS number replaced and control characters removed."""
    text = _NHS_LIKE.sub(lambda m: "[NHS number removed]" if is_valid(re.sub(r"\D", "", m[0])) else m[0], text)
    return "".join(c if c.isprintable() else "?" for c in text)


def canonical_details(details: Mapping[str, object]) -> str:
    """The details as canonical JSON: known fields only, scalar values, identifiers removed."""
    unknown = set(details) - DETAIL_FIELDS
    if unknown:
        raise AuditError(f"audit details may hold only {', '.join(sorted(DETAIL_FIELDS))} (not "
                         f"{', '.join(sorted(unknown))})")
    clean: dict[str, object] = {}
    for name, value in details.items():
        if not (value is None or isinstance(value, str | int | bool) or (isinstance(value, float) and isfinite(value))):
            raise AuditError(f"audit detail {name} must be text, a number or empty")
        if name == "person_ids":  # which people: their pseudonyms (UUIDs), checked, so nothing else can hide here
            if not (isinstance(value, str) and _PERSON_IDS.match(value)):
                raise AuditError("audit detail person_ids must be pseudonyms (UUIDs) separated by spaces")
            clean[name] = value
            continue
        clean[name] = _scrub(value) if isinstance(value, str) else value
    return _canonical(clean)


def ids_named(details: str | None) -> list[str]:
    """The person ids an entry's details name (its `person_ids`), each once, none if it names none."""
    try:
        named = json.loads(details or "").get("person_ids", "")
    except (ValueError, AttributeError):
        return []
    return list(dict.fromkeys(named.split())) if isinstance(named, str) else []
