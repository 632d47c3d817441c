"""The index of who has seen each record: for every audit entry that names people (`person_ids`),
who viewed whom and when, in SQLite beside the audit key (`<db>-secrets/audit-access.sqlite`, in the
owner-only secrets folder), for the record page's "who has seen this record".

Derived, never the record: everything in it is copied from `audit.log` (per entry that names people:
seq, logged_at, actor, stated_user, action, outcome; per person named: person id and seq), and its
head says which of the log's entries it has reached (that entry's seq and entry_hash). It is brought
into step by `openphm.audit` (`append` adds each batch after committing it; a reader whose index head
is not the log's does the same first), made again from the whole log when the log's entry at its head
is not the one it copied (the log was replaced) or the file is damaged, and `openphm audit verify`
compares it with the log. Only this module reads or writes the file.

Why SQLite and not a table in the analytic database (as until December 2026): measured on a
1.26-million-person database whose log had 143,000 entries, DuckDB's ART index made the append of a
list view (which names 100 people) 10 ms instead of 6, and finding a person's 50 latest viewers took
6 ms (the index lookup, then the entries by their key); SQLite's B-tree does each in a fraction of a
millisecond. The index may fall behind the log (a crash between the two writes): a commit here does not
wait for the disk (WAL, synchronous=NORMAL), because what a power cut loses is copied again from the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from openphm.audit_entry import Entry, ids_named
from openphm.engine.files import private_dir

FILE = "audit-access.sqlite"
ERRORS = (sqlite3.Error, OSError)  # what reading or writing the index can raise
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS head (one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL, "
    "entry_hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS entry (seq INTEGER PRIMARY KEY, logged_at TEXT, actor TEXT, stated_user TEXT, "
    "action TEXT, outcome TEXT)",
    "CREATE TABLE IF NOT EXISTS named (person_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (person_id, seq)) "
    "WITHOUT ROWID",
)
_SHOWN = ("seq", "logged_at", "actor", "stated_user", "action", "outcome")
_NAME = f"the index of who has seen each record ({FILE})"  # as problems and notes name it

_local = threading.local()  # each thread keeps its own connections (path -> (file identity, connection))


def _connection(path: Path, create: bool) -> sqlite3.Connection | None:
    """This thread's connection to the index at `path` (kept open; opened again when the file was
    replaced or deleted); None when there is no index and not `create`."""
    kept: dict[str, tuple[tuple[int, int], sqlite3.Connection]] = _local.__dict__.setdefault("kept", {})
    try:
        st = path.stat()
        ident = (st.st_dev, st.st_ino)
    except FileNotFoundError:
        ident = None
    got = kept.get(str(path))
    if got is not None and got[0] == ident:
        return got[1]
    if got is not None:
        with contextlib.suppress(sqlite3.Error):
            got[1].close()
        del kept[str(path)]
    if ident is None:
        if not create:
            return None
        private_dir(path.parent)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # owner-only from the start
        st = path.stat()
        ident = (st.st_dev, st.st_ino)
    while len(kept) >= 8:  # a thread that has served many installations (tests) keeps the latest few
        with contextlib.suppress(sqlite3.Error):
            kept.pop(next(iter(kept)))[1].close()
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            con.execute(statement)
    except sqlite3.Error:
        con.close()
        raise
    kept[str(path)] = (ident, con)
    return con


def _json_columns(n: int) -> str:
    """The `n` columns of a JSON array of arrays, row by row, as json_each gives them."""
    return ", ".join(f"json_extract(value, '$[{i}]')" for i in range(n))


def _head_of(con: sqlite3.Connection) -> tuple[int, str] | None:
    got = con.execute("SELECT seq, entry_hash FROM head").fetchone()
    return (int(got[0]), str(got[1])) if got else None


def head(path: Path) -> tuple[int, str] | None:
    """The log entry the index has reached (seq, entry_hash); None when it has reached none."""
    con = _connection(path, create=False)
    return _head_of(con) if con is not None else None


def add(path: Path, after: tuple[int, str] | None, entries: Iterable[Entry], replace: bool = False) -> bool:
    """Add the entries (in sequence order, all after `after`) in one transaction, if the index's head
    is `after`; False, leaving it as it was, when it is not. `replace`: empty it first (no check)."""
    con = _connection(path, create=True)
    assert con is not None
    entries = list(entries)
    named = [(e, ids_named(e.details)) for e in entries]
    con.execute("BEGIN IMMEDIATE")  # a batch in a few calls: under load each call waits for the interpreter lock
    try:
        if replace:
            for table in ("head", "entry", "named"):
                con.execute(f"DELETE FROM {table}")
        else:
            if _head_of(con) != after:
                con.execute("ROLLBACK")
                return False
        # each as one statement over a JSON array: executemany steps once per row, and each step
        # gives up the interpreter lock (a list view names 100 people)
        con.execute(f"INSERT OR IGNORE INTO entry SELECT {_json_columns(6)} FROM json_each(?)",
                    (json.dumps([[e.seq, e.logged_at, e.actor, e.stated_user, e.action, e.outcome]
                                 for e, ids in named if ids]),))
        con.execute(f"INSERT OR IGNORE INTO named SELECT {_json_columns(2)} FROM json_each(?)",
                    (json.dumps([[pid, e.seq] for e, ids in named for pid in ids]),))
        if entries:
            con.execute("INSERT OR REPLACE INTO head VALUES (1, ?, ?)", (entries[-1].seq, entries[-1].entry_hash))
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")
        raise
    return True


def discard(path: Path) -> None:
    """Delete the index (damaged, or made from another log): it is made again from the log."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()


def accesses(path: Path, person_id: str, latest: int | None, count_up_to: int | None) -> tuple[list[tuple], int]:
    """The `latest` entries naming `person_id` (all if None), newest first, as (seq, logged_at, actor,
    stated_user, action, outcome), and how many there are, counted up to `count_up_to` (+1 beyond)."""
    con = _connection(path, create=False)
    if con is None:
        return [], 0
    # each answer in one row: SQLite gives up the interpreter lock at every row it steps to, and under
    # load each row then waits for it again (a person on a list viewed daily is named thousands of times)
    top = f" LIMIT {int(count_up_to) + 1}" if count_up_to is not None else ""
    total = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM named WHERE person_id = ?{top})",
                        (person_id,)).fetchone()[0]
    if not total or latest == 0:
        return [], total
    shown = f" LIMIT {int(latest)}" if latest is not None else ""
    got = con.execute(f"SELECT json_group_array(json_array({', '.join('e.' + c for c in _SHOWN)})) FROM (SELECT seq "
                      f"FROM named WHERE person_id = ? ORDER BY seq DESC{shown}) AS n JOIN entry AS e ON e.seq = n.seq",
                      (person_id,)).fetchone()[0]
    return sorted((tuple(row) for row in json.loads(got)), key=lambda row: row[0], reverse=True), total


def problems(path: Path, entries: list[Entry]) -> tuple[list[str], list[str]]:
    """How the index differs from the log's `entries` (problems: a record page would show the wrong
    viewers), and notes (behind the log, or made from another log: brought into step at the next view)."""
    try:
        at = head(path)
        if at is None:
            return [], []
        con = _connection(path, create=False)
        assert con is not None
        indexed = Counter(con.execute("SELECT person_id, seq FROM named").fetchall())
        copied = {row[0]: tuple(row) for row in con.execute(f"SELECT {', '.join(_SHOWN)} FROM entry").fetchall()}
    except ERRORS as exc:
        return [], [f"{_NAME} cannot be read ({exc}); it is made again "
                    "from the log at the next view"]
    reached = next((e for e in entries if e.seq == at[0]), None)
    if reached is None or reached.entry_hash != at[1]:
        return [], [f"{_NAME} was made from another log; it is made "
                    "again from this one at the next view"]
    upto = [e for e in entries if e.seq <= at[0]]
    said = Counter((pid, e.seq) for e in upto for pid in ids_named(e.details))
    found = []
    if indexed != said:
        missing, extra = sum((said - indexed).values()), sum((indexed - said).values())
        found.append(f"{_NAME} disagrees with the log ({missing} of the "
                     f"people entries name missing, {extra} not named by any entry): a record page's list of who "
                     "has seen it would be wrong")
    wrong = [e.seq for e in upto if e.seq in copied and copied[e.seq] != tuple(getattr(e, c) for c in _SHOWN)]
    if wrong:
        found.append(f"{_NAME} shows {len(wrong)} of the log's entries "
                     f"otherwise than the log does (first: entry {wrong[0]})")
    behind = sum(e.seq > at[0] for e in entries)
    notes = [f"the index of who has seen each record is {behind} {'entry' if behind == 1 else 'entries'} behind "
             "the log; the next view brings it up to date"] if behind else []
    return found, notes
