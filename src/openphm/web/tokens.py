"""API tokens for scripts and apps: made for a user (their role and scope) or for a patient (their own
record only, through FHIR patient access), stored hashed, with an expiry, revocable.

A token is 32 random bytes (`secrets.token_urlsafe`), prefixed `ophm_` so that secret scanners can
find one pasted where it should not be; only its SHA-256 is kept (`<db>-web/users.sqlite`, table
`tokens`). A slow hash (Argon2) protects guessable passwords; a random 256-bit token cannot be
guessed, so a fast hash loses nothing and lets every API request check its token cheaply. The token
itself is shown once, when it is made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from openphm.identity.pseudonym import PERSON_ID
from openphm.web.users import User, UserError, _connect, get_user

PREFIX = "ophm_"
_TOKEN_SCHEMA = """CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, username TEXT, person_id TEXT,
    created_at TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT)"""
MAX_DAYS = 366


@dataclass(frozen=True)
class TokenHolder:
    """Who a token speaks for: a user (with their role and scope), or a patient (their pseudonym)."""

    token_id: str
    user: User | None
    person_id: str | None

    @property
    def name(self) -> str:
        """For the audit log: `api:<user>` or `patient:<token id>` (never an identifier)."""
        return f"api:{self.user.username}" if self.user else f"patient:{self.token_id}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_token(db: Path, expires: dt.date, username: str | None = None,
                 person_id: str | None = None) -> tuple[str, str]:
    """A new token for `username` or for the patient `person_id` (exactly one), valid until the end of
    `expires` (UTC; at most a year ahead); returns (token id, token). The token is not kept."""
    if (username is None) == (person_id is None):
        raise UserError("a token is for a user (--user) or for a patient (--patient), not both or neither")
    today = _now().date()
    if not today <= expires <= today + dt.timedelta(days=MAX_DAYS):
        raise UserError(f"--expires must be from today to {MAX_DAYS} days ahead (got {expires.isoformat()})")
    if username is not None and get_user(db, username) is None:
        raise UserError(f"no user {username!r}; `openphm users list` shows them")
    if person_id is not None and not PERSON_ID.match(person_id):
        raise UserError("a patient token needs the person's pseudonym (a UUID)")
    token, token_id = PREFIX + secrets.token_urlsafe(32), secrets.token_hex(6)
    with _connect(db) as con:
        con.execute(_TOKEN_SCHEMA)
        con.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, NULL)",
                    (token_id, _hash(token), username, person_id, _now().isoformat(),
                     dt.datetime.combine(expires, dt.time.max, dt.UTC).isoformat()))
    return token_id, token


def revoke_token(db: Path, token_id: str) -> None:
    """Revoke a token by its id (it stops working at once)."""
    with _connect(db) as con:
        con.execute(_TOKEN_SCHEMA)
        done = con.execute("UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                           (_now().isoformat(), token_id)).rowcount
    if not done:
        raise UserError(f"no live token {token_id!r}; `openphm tokens list` shows them")


def list_tokens(db: Path) -> list[dict]:
    """Every token: id, for whom, made, expires, revoked (never the token or its hash)."""
    with _connect(db) as con:
        con.execute(_TOKEN_SCHEMA)
        rows = con.execute("SELECT token_id, username, person_id IS NOT NULL, created_at, expires_at, revoked_at "
                           "FROM tokens ORDER BY created_at").fetchall()
    return [{"token_id": r[0], "for": r[1] or "a patient", "patient": bool(r[2]), "created_at": r[3],
             "expires_at": r[4], "revoked_at": r[5]} for r in rows]


def token_holder(db: Path, token: str) -> TokenHolder | None:
    """Who a presented token speaks for, or None (unknown, expired, revoked, or its user removed)."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    with _connect(db) as con:
        con.execute(_TOKEN_SCHEMA)
        row = con.execute("SELECT token_id, username, person_id, expires_at, revoked_at FROM tokens "
                          "WHERE token_hash = ?", (_hash(token),)).fetchone()
    if row is None or row[4] is not None or dt.datetime.fromisoformat(row[3]) < _now():
        return None
    if row[1] is not None:
        user = get_user(db, row[1])
        return None if user is None else TokenHolder(row[0], user, None)
    return TokenHolder(row[0], None, row[2])
