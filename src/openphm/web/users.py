"""Web users: who may sign in, with which role and scope; passwords hashed with Argon2id.

The users live in their own small SQLite file beside the analytic database
(`<db>-web/users.sqlite`, owner-only), not in the database itself: the web server holds the analytic
database open, and `openphm users ...` must work while it runs. SQLite (the standard library's
`sqlite3`) is enough for a table of a few hundred users and gives each change a transaction.

Roles (docs/governance.md): `admin`; `analyst` (pseudonymised person-level data for planning);
`clinician` (identifiable data for direct care, scoped to named practices or a PCN); `board`
(aggregate only). The public view needs no account.

Passwords: Argon2id (argon2-cffi's defaults, RFC 9106's second recommended setting: 64 MiB, 3
passes), at least 12 characters. Lock-out: after `MAX_FAILURES` wrong passwords in a row an account
is locked for `LOCK_MINUTES`; a right password while locked is refused too, so guessing gains nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from openphm.engine.files import make_private, private_dir

ROLES = ("admin", "analyst", "clinician", "board")
DIRECT_CARE_ROLES = frozenset({"clinician"})
PERSON_LEVEL_ROLES = frozenset({"admin", "analyst", "clinician"})
MAX_FAILURES = 5
LOCK_MINUTES = 15
MIN_PASSWORD = 12
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
_SCOPE = re.compile(r"^([A-Z][0-9]{5}|U[0-9]{5})$")  # a practice (ODS) or a PCN code
_HASHER = PasswordHasher()
_SCHEMA = """CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY, role TEXT NOT NULL, scope TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL, failures INTEGER NOT NULL DEFAULT 0, locked_until TEXT,
    created_at TEXT NOT NULL)"""


class UserError(ValueError):
    """A user that cannot be added or changed; the message says why."""


@dataclass(frozen=True)
class User:
    """A signed-in or listed user: name, role and scope (practice or PCN codes; clinicians only)."""

    username: str
    role: str
    scope: tuple[str, ...] = ()

    @property
    def direct_care(self) -> bool:
        """Whether the user may see identifiable data for direct care (within their scope)."""
        return self.role in DIRECT_CARE_ROLES

    @property
    def person_level(self) -> bool:
        """Whether the user may see person-level rows at all (pseudonymised for planning, or direct care)."""
        return self.role in PERSON_LEVEL_ROLES


def _users_path(db: Path) -> Path:
    return _users_path_of(str(Path(db).absolute()))


@functools.lru_cache(maxsize=64)
def _users_path_of(db: str) -> Path:
    """(Kept: resolving the path asks the file system, and a request asks for it every time.)"""
    path = Path(db).resolve()
    return path.with_name(path.stem + "-web") / "users.sqlite"


def users_file(db: Path) -> Path:
    """Where the users of the database `db` are kept (its folder made private)."""
    path = _users_path(db)
    private_dir(path.parent)
    return path


@contextmanager
def _connect(db: Path) -> Iterator[sqlite3.Connection]:
    path = users_file(db)
    with closing(sqlite3.connect(path, timeout=10, isolation_level=None)) as con:
        make_private(path)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(_SCHEMA)
        yield con


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check(username: str, role: str, scope: tuple[str, ...]) -> None:
    if not _NAME.match(username):
        raise UserError("a user name is 3 to 64 characters: lower-case letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    bad = [s for s in scope if not _SCOPE.match(s)]
    if bad:
        raise UserError(f"scope {bad[0][:20]!r} is not a practice (A81001) or PCN (U12345) code")
    if role == "clinician" and not scope:
        raise UserError("a clinician needs a scope: the practices or PCN they give direct care in (--scope)")
    if role != "clinician" and scope:
        raise UserError("only clinicians have a scope")


def add_user(db: Path, username: str, role: str, password: str, scope: tuple[str, ...] = ()) -> User:
    """Add a user; refuses a taken name, an unknown role or a short password."""
    _check(username, role, scope)
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
    with _connect(db) as con:
        try:
            con.execute("INSERT INTO users (username, role, scope, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                        (username, role, ",".join(scope), _HASHER.hash(password), _now().isoformat()))
        except sqlite3.IntegrityError:
            raise UserError(f"user {username!r} exists") from None
    return User(username, role, scope)


def remove_user(db: Path, username: str) -> None:
    """Remove a user (their audit entries stay)."""
    with _connect(db) as con:
        if con.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount == 0:
            raise UserError(f"no user {username!r}")


def set_role(db: Path, username: str, role: str, scope: tuple[str, ...] = ()) -> User:
    """Change a user's role (and scope)."""
    _check(username, role, scope)
    with _connect(db) as con:
        if con.execute("UPDATE users SET role = ?, scope = ? WHERE username = ?",
                       (role, ",".join(scope), username)).rowcount == 0:
            raise UserError(f"no user {username!r}")
    return User(username, role, scope)


def list_users(db: Path) -> list[tuple[User, bool]]:
    """Every user, with whether they are locked out now."""
    now = _now().isoformat()
    with _connect(db) as con:
        rows = con.execute("SELECT username, role, scope, locked_until FROM users ORDER BY username").fetchall()
    return [(User(u, r, tuple(s for s in scope.split(",") if s)), bool(locked and locked > now))
            for u, r, scope, locked in rows]


def authenticate(db: Path, username: str, password: str) -> User | None:
    """The user, if the password is right and the account is not locked; counts failures and locks
    the account after MAX_FAILURES in a row. The same answer (None) for an unknown name, a wrong
    password and a locked account, so a caller cannot tell them apart."""
    now = _now()
    with _connect(db) as con:
        row = con.execute("SELECT role, scope, password_hash, failures, locked_until FROM users WHERE username = ?",
                          (username,)).fetchone()
        if row is None:
            _HASHER.hash(password)  # spend the same time as a real check
            return None
        role, scope, stored, failures, locked_until = row
        if locked_until and locked_until > now.isoformat():
            return None
        try:
            _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            failures += 1
            lock = (now + dt.timedelta(minutes=LOCK_MINUTES)).isoformat() if failures >= MAX_FAILURES else None
            con.execute("UPDATE users SET failures = ?, locked_until = ? WHERE username = ?",
                        (0 if lock else failures, lock, username))
            return None
        new_hash = _HASHER.hash(password) if _HASHER.check_needs_rehash(stored) else stored
        con.execute("UPDATE users SET failures = 0, locked_until = NULL, password_hash = ? WHERE username = ?",
                    (new_hash, username))
    return User(username, role, tuple(s for s in scope.split(",") if s))


_READERS = threading.local()  # each web worker thread's read-only connections, by users file


def _reader(path: Path) -> sqlite3.Connection | None:
    """This thread's read-only connection to the users file `path` (None when there is no file); a new
    one when the file at `path` is another file than the one held (replaced, or deleted and made again:
    its device, inode or change time differ; a checkpoint's write only costs a reconnection)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    held: dict[str, tuple[tuple[int, int, int], sqlite3.Connection]] = _READERS.__dict__.setdefault("held", {})
    which = (st.st_dev, st.st_ino, st.st_ctime_ns)
    kept = held.get(str(path))
    if kept is not None and kept[0] == which:
        return kept[1]
    if kept is not None:
        kept[1].close()
    while len(held) >= 8:  # a thread that has served many installations (tests) keeps the latest few
        held.pop(next(iter(held)))[1].close()
    con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10)
    held[str(path)] = (which, con)
    return con


def get_user(db: Path, username: str) -> User | None:
    """A user by name (for a session that names them), or None if removed since. Asked on every
    request, so through this thread's read-only connection, kept open (opening one cost more than the
    page's other checks together). In WAL mode each query sees every change committed before it, so a
    user removed or given another role is seen at once; a users file replaced or recreated is opened
    afresh."""
    path = _users_path(db)  # as users_file, without making the folder private on every request
    try:
        con = _reader(path)
        row = con.execute("SELECT role, scope FROM users WHERE username = ?", (username,)).fetchone() if con else None
    except sqlite3.OperationalError:  # no users table yet: nobody can be signed in
        return None
    return None if row is None else User(username, row[0], tuple(s for s in row[1].split(",") if s))
