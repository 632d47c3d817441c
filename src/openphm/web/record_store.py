"""What a patient's record page shows, and a row store that finds one person's rows in microseconds.

`KINDS` says what the page reads: a person's `record.person` row, conditions, latest risk score and
recent hospital activity. `rows_of` gives one kind of one person's rows, in the page's order.

Why a row store: DuckDB keeps columns, so finding one person's rows costs 0.6-1 ms a table however it
is asked (measured on 1.26 million people: zone maps 0.8 ms, an ART index over uncompressed rows
0.65 ms), and a record page reads six tables. SQLite (Python's standard library) finds them through a
B-tree in 0.02-0.03 ms. So `openphm serve` copies these columns of every person into SQLite
(`<db>-web/record-store-<fingerprint>.sqlite`, owner-only: pseudonymised person-level data; NHS
numbers stay in the identity store) in the background as it starts, and serves record pages from it
once it is complete. Until then, or if it cannot be made, pages read DuckDB: the same rows, as a
test checks.

The copy is named by a fingerprint of what it copies: each source table's rows counted and every
row hashed, with KINDS and FORMAT. A new build, a new risk scoring or a change to KINDS gives a new
fingerprint, so a copy of other data is never served (the server holds the database's write lock
while it runs, so nothing changes under it). A copy is written under a temporary name and renamed
only when complete, so a server killed half-way leaves nothing that would be used; older copies are
deleted once a new one is ready.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openphm.engine.connection import Connection, EngineError
from openphm.engine.files import private_dir

log = logging.getLogger("openphm.web")
FORMAT = 1  # the store's layout: part of the fingerprint
RECENT = 20  # the latest rows of each kind of activity shown on a record
BATCH = 100_000  # rows fetched and inserted at a time while copying


@dataclass(frozen=True)
class Kind:
    """One kind of row on the record page: the select list over `table` (DuckDB SQL), the order the
    page shows them in (a column, with DESC for newest first; nulls last, as DuckDB sorts), at most
    `limit` of them."""

    table: str
    columns: str
    order: str = ""
    limit: int | None = None


KINDS = {
    "person": Kind("record.person", "* EXCLUDE (person_id)"),
    "conditions": Kind("record.condition", "condition, first_date, latest_date", "first_date"),
    "risk": Kind("risk.score", "as_of, risk, centile, array_to_string(reasons, '; ') AS reasons", "as_of DESC", 1),
    "spells": Kind("record.inpatient_spell", "admission_date, discharge_date, admission_type, length_of_stay, "
                   "primary_diagnosis, treatment_specialty", "admission_date DESC", RECENT),
    "ae": Kind("record.ae_attendance", "arrival_date, department_type, disposal", "arrival_date DESC", RECENT),
    "outpatients": Kind("record.outpatient_appointment", "appointment_date, treatment_specialty, first_attendance, "
                        "attended", "appointment_date DESC", RECENT),
}

# how each DuckDB type is kept in SQLite (an SQL expression over the column) and read back; a column of
# any other type stops the copy (the pages keep reading DuckDB), so a value is never shown changed
_STORED = {"DATE": "CAST({} AS VARCHAR)", "BOOLEAN": "CAST({} AS TINYINT)", "VARCHAR": "{}", "DOUBLE": "{}",
           "TINYINT": "{}", "SMALLINT": "{}", "INTEGER": "{}", "BIGINT": "{}"}
_READ_BACK = {"DATE": dt.date.fromisoformat, "BOOLEAN": bool}


def ordered(rows: list[dict], kind: Kind) -> list[dict]:
    """`rows` in the kind's order, nulls last as in DuckDB, ties broken by the rows' other values (so the
    copy and DuckDB, which give a person's rows in different orders, show the same), at most its
    limit. Sorted here, not in the lookup: a person has a few rows, and in SQL an ORDER BY with a
    small LIMIT makes DuckDB's late materialisation turn the lookup into a semi-join over a scan of
    the whole table."""
    if not kind.order:
        return rows
    key, _, direction = kind.order.partition(" ")

    def rank(row: dict) -> tuple:
        return (row[key], *((v is None, 0 if v is None else v) for v in row.values()))

    present = sorted((r for r in rows if r[key] is not None), key=rank, reverse=direction.upper() == "DESC")
    result = present + sorted((r for r in rows if r[key] is None), key=rank)
    return result[:kind.limit] if kind.limit else result


def rows_of(store: RecordStore, cur: Connection, name: str, person_id: str) -> list[dict]:
    """A person's rows of the kind `name`, in the page's order: from the copy once it is ready, else
    from DuckDB through `cur`."""
    kind = KINDS[name]
    rows = store.rows(name, person_id) if store.ready.is_set() else from_duckdb(cur, kind, person_id)
    return ordered(rows, kind)


def from_duckdb(cur: Connection, kind: Kind, person_id: str) -> list[dict]:
    """A person's rows of one kind read from DuckDB, unordered; none when the table is not there yet
    (risk scores before `openphm risk score`, say)."""
    try:
        result = cur.execute(f"SELECT {kind.columns} FROM {kind.table} WHERE person_id = CAST(? AS UUID)",
                             [person_id])
    except EngineError:
        return []
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


class RecordStore:
    """The SQLite copy of KINDS for one database, made in the background; `rows` answers once `ready`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path: Path | None = None
        self.ready = threading.Event()
        self.columns: dict[str, list[tuple[str, str]] | None] = {}  # kind: (name, DuckDB type) per column
        self._local = threading.local()

    def rows(self, name: str, person_id: str) -> list[dict]:
        """A person's rows of one kind from the copy, unordered, typed as DuckDB gives them."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True,
                                                    check_same_thread=False)
        columns = self.columns[name]
        if columns is None:  # its table did not exist when the copy was made
            return []
        names = ", ".join(f"c{i}" for i in range(len(columns)))
        readers = [(n, _READ_BACK.get(t)) for n, t in columns]
        got = con.execute(f"SELECT {names} FROM k_{name} WHERE person_id = ? ORDER BY n", (person_id,)).fetchall()
        return [{n: (v if r is None or v is None else r(v)) for (n, r), v in zip(readers, row, strict=True)}
                for row in got]

    def make(self, con: Connection, stopping: Callable[[], bool] = lambda: False) -> None:
        """Find or make the copy for the database as it is now (through `con`, a cursor this thread
        owns), then mark it ready. Logs and returns, leaving the pages on DuckDB, if it cannot."""
        started = time.monotonic()
        try:
            columns, fingerprint = self._describe(con)
        except (*EngineError, ValueError) as exc:
            log.info("record store: not made (%s); record pages read the database", exc)
            return
        path = private_dir(self.folder) / f"record-store-{fingerprint}.sqlite"
        for stale in self.folder.glob(".record-store-*.tmp"):  # left by a server killed while copying (only
            with contextlib.suppress(OSError):                 # one server runs: it holds the database's lock)
                stale.unlink()
        if not _complete(path, fingerprint):
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
            try:
                self._copy(con, columns, fingerprint, tmp, stopping)
            except Exception:
                tmp.unlink(missing_ok=True)
                log.warning("record store: the copy failed; record pages read the database", exc_info=False)
                return
            if tmp.exists():
                os.replace(tmp, path)
        for old in self.folder.glob("record-store-*.sqlite"):
            if old != path:
                with contextlib.suppress(OSError):
                    old.unlink()
        self.columns, self.path = columns, path
        self.ready.set()
        log.info("record store ready in %.0f s", time.monotonic() - started)

    @staticmethod
    def _describe(con: Connection) -> tuple[dict[str, list[tuple[str, str]] | None], str]:
        """Each kind's columns and types, and the fingerprint of the rows they come from."""
        columns: dict[str, list[tuple[str, str]] | None] = {}
        digest = hashlib.sha256(json.dumps([FORMAT, {k: vars(v) for k, v in KINDS.items()}]).encode())
        for name, kind in KINDS.items():
            try:
                got = con.execute(f"SELECT {kind.columns} FROM {kind.table} LIMIT 0")
            except EngineError:  # not made yet (risk scores before `openphm risk score`): none to copy
                columns[name] = None
                digest.update(f"{name}:absent".encode())
                continue
            columns[name] = [(d[0], str(d[1])) for d in got.description]
            unknown = [f"{name}.{c} ({t})" for c, t in columns[name] if t not in _STORED]
            if unknown:
                raise ValueError(f"columns of a type not copied: {', '.join(unknown)}")
            counted = con.execute(f"SELECT count(*), bit_xor(h), sum(h) FROM (SELECT hash(t) AS h FROM {kind.table} t)"
                                  ).fetchone()
            digest.update(f"{name}:{columns[name]}:{counted}".encode())  # the types too: they say how it is kept
        return columns, digest.hexdigest()[:32]

    @staticmethod
    def _copy(con: Connection, columns: dict[str, list[tuple[str, str]] | None], fingerprint: str, tmp: Path,
              stopping: Callable[[], bool]) -> None:
        tmp.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # owner-only before anything is in it
        with contextlib.closing(sqlite3.connect(tmp)) as out:
            out.execute("PRAGMA journal_mode=OFF")  # a half-made copy is thrown away, never repaired
            out.execute("PRAGMA synchronous=OFF")
            out.execute("CREATE TABLE meta (fingerprint TEXT, kinds TEXT)")
            for name, kind in KINDS.items():
                cols = columns[name]
                if cols is None:
                    continue
                out.execute(f"CREATE TABLE k_{name} (person_id TEXT NOT NULL, n INTEGER NOT NULL, "
                            + ", ".join(f"c{i}" for i in range(len(cols)))
                            + ", PRIMARY KEY (person_id, n)) WITHOUT ROWID")
                select = ", ".join(_STORED[t].format(f'"{c}"') for c, t in cols)
                got = con.execute(f"SELECT CAST(person_id AS VARCHAR), {select} FROM (SELECT person_id, {kind.columns} "
                                  f"FROM {kind.table}) ORDER BY person_id")
                marks = ", ".join("?" for _ in range(len(cols) + 2))
                n = 0
                while batch := got.fetchmany(BATCH):
                    if stopping():
                        raise InterruptedError("the server is stopping")
                    out.executemany(f"INSERT INTO k_{name} VALUES ({marks})",
                                    [(row[0], n + i, *row[1:]) for i, row in enumerate(batch)])
                    n += len(batch)
            out.execute("INSERT INTO meta VALUES (?, ?)", (fingerprint, json.dumps(columns)))
            out.commit()


def _complete(path: Path, fingerprint: str) -> bool:
    """Whether `path` is a finished copy with this fingerprint (its meta row is written last)."""
    if not path.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as con:
            row = con.execute("SELECT fingerprint FROM meta").fetchone()
    except sqlite3.DatabaseError:
        return False
    return row is not None and row[0] == fingerprint
