"""The audit log: append-only in effect, hash-chained, anchored outside the database, checkable.

Each entry is a row of `audit.log` in the analytic database: `seq` (1, 2, 3, ...), `logged_at` (UTC,
ISO 8601), `actor` (the OS user running the process, `getpass.getuser()`), `stated_user` (what
`--user` said: kept, never trusted as the actor), `action` (`list_export`), `outcome` (`allowed` or
`refused`), `details` (canonical JSON, sorted keys, only the fields in DETAIL_FIELDS; anything shaped
like a valid NHS number is replaced before it is written; `person_ids`, the pseudonyms of the people
whose identifiable data were shown, must be UUIDs), `prev_hash`, `entry_hash`, `entry_mac`.

Chain (as in Certificate Transparency, RFC 6962): `entry_hash` is a domain-separated SHA-256 over the
canonical JSON of every other field, `prev_hash` included; `prev_hash` is the previous entry's
`entry_hash` (64 zeros for entry 1). Editing, removing or moving an entry breaks its hash or the
next entry's link. `entry_mac` is HMAC-SHA256 of `entry_hash` under the audit key
(`<db>-secrets/audit.key`, 32 random bytes, 600, beside the pseudonymisation key): without the key
an entry can be neither made nor re-hashed after an edit.

Anchor: after each append, `<db>-secrets/audit.checkpoint` holds the head (`seq`, `entry_hash`) and
an HMAC-SHA256 over them under the audit key. Deleting the latest entries leaves it ahead of the
table; a forged chain or checkpoint fails its hash or HMAC.

A crash between the two writes: the entry is committed first, then the checkpoint written, so a
crash leaves the checkpoint behind. `verify` accepts that, as a note and not a problem, only when
every entry after the checkpoint chains from it and carries a valid `entry_mac` (only OpenPHM, with
the key, can have written them); the next `append` moves the checkpoint on. Nothing innocent puts a
checkpoint ahead of the table or leaves an unsigned entry after it, so `append` refuses to move the
checkpoint over such a head (exports stop until someone investigates) rather than hide it.

`verify` reports in words: an entry edited (hash mismatch; or re-hashed, so the MAC fails), deleted
(a gap in `seq`), reordered (its hash matches another `seq`), a broken link, the latest entries
deleted (checkpoint ahead), the log replaced (the checkpoint's entry or HMAC differs), a missing
checkpoint or key. Limits: DuckDB cannot forbid UPDATE or DELETE (tampering is evident, not
prevented); whoever can read the audit key (the installation's owner) can rebuild everything, so
keep `openphm audit verify`'s head hash somewhere else from time to time.

Speed: `append` reads the log only from the checkpoint on; entries arriving together from one
process's threads are committed together (group commit); `openphm.audit_index` indexes the people
each entry names (written after the entry; `verify` checks it against the log), so a record page's
"who has seen this record" is an index lookup however long the log grows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import astuple, dataclass, replace
from pathlib import Path

from openphm import audit_index
from openphm.audit_entry import (  # noqa: F401  (GENESIS, Entry, entry_hash, canonical_details: the log's API)
    _CHECKPOINT_TAG,
    _MAC_TAG,
    DETAIL_FIELDS,
    GENESIS,
    OUTCOMES,
    AuditError,
    Entry,
    _canonical,
    _mac,
    _scrub,
    canonical_details,
    entry_hash,
)
from openphm.engine.connection import Connection, EngineError
from openphm.engine.duckdb_store import Store
from openphm.engine.files import private_dir, write_private

# Appends in one process take turns (the web server's threads): two transactions appending at once would
# conflict (DuckDB's optimistic concurrency), and both would write the checkpoint. Other processes cannot
# open the database while one holds it for writing. Group commit: entries that arrive while one is being
# written wait in _PENDING, and the next writer commits them all at once (each caller still returns only
# after its own entry is committed), so concurrent views share one transaction and one checkpoint.
_APPEND_LOCK = threading.Lock()
_PENDING_LOCK = threading.Lock()
_PENDING: list[_Pending] = []
_SEQ = "TRY_CAST(seq AS BIGINT)"  # a forger may have changed the column's type
log = logging.getLogger("openphm.audit")
_COLUMNS = "seq, logged_at, actor, stated_user, action, outcome, details, prev_hash, entry_hash, entry_mac"


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of `verify`: ok when there are no problems (notes do not fail it)."""

    ok: bool
    entries: int
    head_hash: str | None
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()


def key_file(store: Store) -> Path:
    """The audit key, beside the pseudonymisation key."""
    return store.key_file.with_name("audit.key")


def checkpoint_file(store: Store) -> Path:
    """The signed head of the log, beside the keys."""
    return store.key_file.with_name("audit.checkpoint")


def index_file(store: Store) -> Path:
    """The index of who has seen each record (`openphm.audit_index`), beside the keys."""
    return store.key_file.with_name(audit_index.FILE)


def _key(store: Store, create: bool) -> bytes | None:
    """The audit key; created (32 random bytes, 600, never replacing one) only when `create`."""
    path = key_file(store)
    if not path.exists() and create:
        private_dir(path.parent)
        tmp = write_private(path.with_name(f".{path.name}.{os.getpid()}.new"), secrets.token_bytes(32))
        try:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # atomic, and never over a key another process made first
        finally:
            tmp.unlink()
    if not path.exists():
        return None
    key = path.read_bytes()
    if len(key) != 32:
        raise AuditError(f"{path} is not an audit key (32 bytes)")
    return key


def _read_checkpoint(store: Store, key: bytes) -> tuple[int, str] | None:
    """The checkpointed (seq, entry_hash), None when there is no checkpoint; AuditError when it is
    unreadable or its HMAC does not match."""
    path = checkpoint_file(store)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        seq, head, mac = int(data["seq"]), str(data["entry_hash"]), str(data["hmac"])
    except (ValueError, KeyError, TypeError):
        raise AuditError(f"the checkpoint {path} is unreadable (edited or damaged)") from None
    expected = _mac(key, _CHECKPOINT_TAG, _canonical({"seq": seq, "entry_hash": head}))
    if not hmac.compare_digest(mac.encode("utf-8"), expected.encode("ascii")):
        raise AuditError("the checkpoint's HMAC does not match: the checkpoint was edited or forged, or the audit "
                         "key replaced")
    return seq, head


def _n(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def _signed(key: bytes, e: Entry) -> bool:
    return hmac.compare_digest((e.entry_mac or "").encode("utf-8"), _mac(key, _MAC_TAG, e.entry_hash or "").encode())


def _write_checkpoint(store: Store, key: bytes, seq: int, head: str) -> None:
    mac = _mac(key, _CHECKPOINT_TAG, _canonical({"seq": seq, "entry_hash": head}))
    write_private(checkpoint_file(store), _canonical({"seq": seq, "entry_hash": head, "hmac": mac}) + "\n")


def _entries(con: Connection, where: str = "TRUE", params: list | None = None, exists: bool = False) -> list[Entry]:
    """The entries matching `where` (over the table's own columns), in sequence order; none when the
    table does not exist (not asked when the caller knows it does: `exists`)."""
    if not exists and not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'audit' "
                                      "AND table_name = 'log'").fetchone()[0]:
        return []
    text = ", ".join(f"CAST({c} AS VARCHAR)" for c in _COLUMNS.split(", ")[1:])  # whatever a forger's types
    rows = con.execute(f"SELECT {_SEQ}, {text} FROM audit.log WHERE {where} ORDER BY 1 NULLS LAST",
                       params or []).fetchall()
    return [Entry(*row) for row in rows]


def read_log(con: Connection) -> list[Entry]:
    """Every entry, in sequence order (none when the table does not exist)."""
    return _entries(con)


def _head_of_log(con: Connection, from_seq: int, typed: bool) -> list[Entry]:
    """What `append` checks the checkpoint against, without reading the whole log: the entries from
    `from_seq` on (or the last entry, if the log ends before it) and any without a sequence number.
    `typed`: `seq` is still the BIGINT primary key made here (never null; DuckDB finds a range of it
    without reading the other columns); a log whose columns were changed is cast row by row."""
    seq = "seq" if typed else _SEQ
    start = f"LEAST(?, coalesce((SELECT max({seq}) FROM audit.log), ?))"
    where = f"{seq} >= {start}" if typed else f"{_SEQ} IS NULL OR {_SEQ} >= {start}"
    return _entries(con, where, [from_seq, from_seq], exists=True)


def _audit_tables(con: Connection) -> tuple[set[str], bool]:
    """The tables in the audit schema, and whether audit.log's `seq` is still a BIGINT (as made here).
    Asked of the log itself when it has an entry (a quarter of a millisecond), else of the catalogue
    (some milliseconds on a database of many tables)."""
    try:
        kind = con.execute("SELECT typeof(seq) FROM audit.log LIMIT 1").fetchone()
    except EngineError:  # no log yet
        kind = None
    if kind is not None and kind[0] is not None:
        return {"log"}, str(kind[0]).upper() == "BIGINT"
    rows = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'audit'").fetchall()
    return {t for t, _, _ in rows}, any((t, c, d) == ("log", "seq", "BIGINT") for t, c, d in rows)


def catch_up_index(con: Connection, store: Store) -> None:
    """Bring the index of who has seen each record up to the log's head: add the entries after the
    one it has reached, or make it again from the whole log when the log's entry there is not the one
    it copied (the log replaced) or the file is damaged. Callers hold _APPEND_LOCK. Drops
    audit.person_access, the index's table in the database before it moved to its own file."""
    path = index_file(store)
    try:
        at = audit_index.head(path)
        if at is not None:
            same = _entries(con, f"{_SEQ} = ?", [at[0]])
            if len(same) == 1 and same[0].entry_hash == at[1]:
                tail = [e for e in _entries(con, f"{_SEQ} > ?", [at[0]], exists=True) if e.seq is not None]
                if not tail or audit_index.add(path, at, tail):
                    return
    except audit_index.ERRORS as exc:
        log.warning("audit: the index of who has seen each record is damaged (%s); making it again from the log",
                    type(exc).__name__)
        audit_index.discard(path)
    with contextlib.suppress(*EngineError):
        con.execute("DROP TABLE IF EXISTS audit.person_access")
    audit_index.add(path, None, [e for e in read_log(con) if e.seq is not None], replace=True)


def _check_head(entries: list[Entry], checkpoint: tuple[int, str] | None, key: bytes) -> tuple[list[str], list[str]]:
    """Problems with the log's head against the checkpoint, and notes that do not fail verification."""
    if checkpoint is None:
        return ([f"no checkpoint but the log has {len(entries)} entries: the checkpoint was deleted, or the log was "
                 "written outside OpenPHM"] if entries else []), []
    seq, head = checkpoint
    last = entries[-1].seq if entries else 0
    if last < seq:
        ends = f"ends at entry {last}" if last else "is empty"
        return [f"the checkpoint records entry {seq} but the log {ends}: the latest {_n(seq - last)} deleted (log "
                "truncated)"], []
    at = next((e for e in entries if e.seq == seq), None)
    if at is None or at.entry_hash != head:
        return [f"entry {seq} is not the entry the checkpoint recorded: the log was replaced or rewritten"], []
    tail = [e for e in entries if e.seq > seq]
    if not tail:
        return [], []
    if all(_signed(key, e) for e in tail):
        return [], [f"the checkpoint is {_n(len(tail))} behind (up to entry {tail[-1].seq}), each signed with the "
                    "audit key: OpenPHM wrote them and the checkpoint was not updated (a crash between the two); the "
                    "next append moves it on"]
    return [f"the checkpoint is {_n(len(tail))} behind and not all are signed with the audit key: entries added "
            "outside OpenPHM"], []


def verify(con: Connection, store: Store) -> VerifyResult:
    """Check every entry's hash and MAC, the chain, the sequence and the checkpoint."""
    problems: list[str] = []
    try:
        entries = read_log(con)
    except EngineError as exc:
        return VerifyResult(False, 0, None, (f"audit.log cannot be read as the audit log (altered): {exc}",))
    if any(e.seq is None for e in entries):
        problems.append(f"{sum(e.seq is None for e in entries)} entries have no sequence number")
        entries = [e for e in entries if e.seq is not None]
    key = _key(store, create=False)
    if key is None and (entries or checkpoint_file(store).exists()):
        problems.append(f"the audit key {key_file(store)} is missing: nothing can be checked against it")
    for seq, n in sorted(Counter(e.seq for e in entries).items()):
        if n > 1:
            problems.append(f"sequence number {seq} appears {n} times")
    broken = {e.seq for e in entries if entry_hash(e) != e.entry_hash}
    for e in entries:
        if e.seq in broken:
            moved = next((s for s in sorted(broken) if s != e.seq and entry_hash(replace(e, seq=s)) == e.entry_hash),
                         None)
            problems.append(f"entry {e.seq}: written as entry {moved} (entries reordered)" if moved is not None else
                            f"entry {e.seq}: its contents do not match its hash (edited after it was written)")
        elif key and not _signed(key, e):
            problems.append(f"entry {e.seq}: its hash is not signed with the audit key (written, or edited and "
                            "re-hashed, outside OpenPHM)")
    prev_seq, prev_hash = 0, GENESIS
    for e in entries:
        if e.seq == prev_seq:
            continue  # a duplicate, reported above
        if e.seq > prev_seq + 1:
            gap = f"entry {prev_seq + 1}" if e.seq == prev_seq + 2 else f"entries {prev_seq + 1}-{e.seq - 1}"
            where = f"jumps from {prev_seq} to {e.seq}" if prev_seq else f"starts at {e.seq}"
            problems.append(f"{gap} missing: the sequence {where} (deleted)")
        elif e.prev_hash != prev_hash and e.seq not in broken and prev_seq not in broken:
            what = f"entry {prev_seq}'s hash" if prev_seq else "the start of the log"
            problems.append(f"entry {e.seq}: its prev_hash is not {what} (chain broken)")
        prev_seq, prev_hash = e.seq, e.entry_hash
    index_problems, notes = audit_index.problems(index_file(store), entries)
    problems += index_problems
    if key is not None:
        try:
            head_problems, head_notes = _check_head(entries, _read_checkpoint(store, key), key)
        except AuditError as exc:
            head_problems, head_notes = [str(exc)], []
        problems += head_problems
        notes = head_notes + notes
    return VerifyResult(not problems, len(entries), entries[-1].entry_hash if entries else None, tuple(problems),
                        tuple(notes))


def _actor() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"uid:{os.getuid()}"


def append(con: Connection, store: Store, action: str, outcome: str, details: Mapping[str, object],
           stated_user: str | None = None) -> int:
    """Add one entry (committed), then move the checkpoint to it; returns its sequence number. Refuses
    (AuditError) when the log's head does not match the checkpoint in a way a crash cannot explain."""
    if outcome not in OUTCOMES:
        raise AuditError(f"outcome must be one of {', '.join(OUTCOMES)} (got {outcome!r})")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", action):
        raise AuditError(f"action must be a short lower-case name such as list_export (got {action!r})")
    body = canonical_details(details)
    stated = _scrub(stated_user)[:200] if stated_user is not None else None
    item = _Pending(str(checkpoint_file(store)), action, outcome, body, stated)
    with _PENDING_LOCK:
        _PENDING.append(item)
    with _APPEND_LOCK:  # whoever holds it writes every entry waiting for this installation, in one commit
        if not item.done:
            with _PENDING_LOCK:
                batch = [p for p in _PENDING if p.installation == item.installation]
                _PENDING[:] = [p for p in _PENDING if p.installation != item.installation]
            try:
                for pending, seq in zip(batch, _append(con, store, batch), strict=True):
                    pending.seq = seq
            except BaseException as exc:
                for pending in batch:
                    pending.error = exc
            finally:
                for pending in batch:
                    pending.done = True
    if item.error is not None:
        raise item.error
    return item.seq


@dataclass
class _Pending:
    """An entry waiting to be written (group commit: see `append`)."""

    installation: str
    action: str
    outcome: str
    body: str
    stated: str | None
    done: bool = False
    seq: int = 0
    error: BaseException | None = None


def _new_entries(batch: list[_Pending], key: bytes, seq: int, digest: str) -> list[Entry]:
    """The batch as entries chained on from entry `seq` (whose hash is `digest`), hashed and signed."""
    written = []
    for p in batch:
        seq += 1
        entry = Entry(seq, dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"), _actor(), p.stated,
                      p.action, p.outcome, p.body, digest, "", "")
        digest = entry_hash(entry)
        written.append(replace(entry, entry_hash=digest, entry_mac=_mac(key, _MAC_TAG, digest)))
    return written


def _insert(con: Connection, written: list[Entry], condition: str = "TRUE", params: list | None = None) -> int:
    """Insert the entries in one statement (executemany prepares and runs one per row) if `condition`
    holds when it runs; how many were inserted."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(written))
    got = con.execute(f"INSERT INTO audit.log ({_COLUMNS}) SELECT * FROM (VALUES {values}) WHERE {condition}",
                      [v for e in written for v in astuple(e)] + (params or [])).fetchone()
    return int(got[0]) if got else 0


def _append(con: Connection, store: Store, batch: list[_Pending]) -> list[int]:
    """Write the batch. The common case is one statement, its own transaction: the INSERT itself checks
    that the log ends at the checkpoint's entry, as checkpointed (seq still the BIGINT made here), and
    writes nothing otherwise; then the careful way (`_append_once`) finds out why (a crash's tail after
    the checkpoint, a new log, tampering) and writes, or refuses."""
    try:
        key = _key(store, create=False)
        checkpoint = _read_checkpoint(store, key) if key is not None else None
    except AuditError:
        checkpoint = None  # the careful way says what is wrong
    if key is not None and checkpoint is not None:
        written = _new_entries(batch, key, *checkpoint)
        try:
            inserted = _insert(con, written, "(SELECT typeof(max(seq)) = 'BIGINT' AND max(seq) = ? FROM audit.log) "
                               "AND (SELECT entry_hash FROM audit.log WHERE seq = ?) = ?",
                               [checkpoint[0], checkpoint[0], checkpoint[1]])
        except EngineError:
            inserted = 0
        if inserted == len(written):
            _after_commit(con, store, key, checkpoint, written)
            return [e.seq for e in written]
    return _append_once(con, store, batch)


def _append_once(con: Connection, store: Store, batch: list[_Pending]) -> list[int]:
    key = _key(store, create=False)
    checkpoint = _read_checkpoint(store, key) if key is not None else None
    tables, typed = _audit_tables(con)
    if "log" not in tables:  # one catalogue question, not a CREATE ... IF NOT EXISTS per table, per append
        con.execute("CREATE SCHEMA IF NOT EXISTS audit")
        con.execute("CREATE TABLE IF NOT EXISTS audit.log (seq BIGINT PRIMARY KEY, logged_at VARCHAR NOT NULL, "
                    "actor VARCHAR NOT NULL, stated_user VARCHAR, action VARCHAR NOT NULL, outcome VARCHAR NOT "
                    "NULL, details VARCHAR NOT NULL, prev_hash VARCHAR NOT NULL, entry_hash VARCHAR NOT NULL, "
                    "entry_mac VARCHAR NOT NULL)")
        typed = True
    con.execute("BEGIN")
    try:
        # from the checkpoint on, not the whole log: an append costs the same however long the log is
        entries = _head_of_log(con, checkpoint[0], typed) if checkpoint else read_log(con)
        if any(e.seq is None for e in entries):
            raise AuditError("the log has entries without a sequence number; run `openphm audit verify`")
        if key is None:
            key = _key(store, create=not entries and not checkpoint_file(store).exists())
        if key is None:
            raise AuditError(f"the audit key {key_file(store)} is missing but the log or its checkpoint exists")
        problems, _ = _check_head(entries, checkpoint, key)
        if problems:
            raise AuditError(f"{problems[0]}; run `openphm audit verify`")
        before = (entries[-1].seq, entries[-1].entry_hash) if entries else None
        written = _new_entries(batch, key, *(before or (0, GENESIS)))
        _insert(con, written)
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(*EngineError):
            con.execute("ROLLBACK")
        raise
    _after_commit(con, store, key, before, written)
    return [e.seq for e in written]


def _after_commit(con: Connection, store: Store, key: bytes, before: tuple[int, str] | None,
                  written: list[Entry]) -> None:
    """Move the checkpoint to the last entry written, then add the entries to the index."""
    try:
        _write_checkpoint(store, key, written[-1].seq, written[-1].entry_hash)
    except OSError as exc:  # the entries stand; verify explains the checkpoint behind them
        raise AuditError(f"entry {written[-1].seq} was recorded but the checkpoint could not be written "
                         f"({exc.strerror or exc})") from None
    _index(con, store, before, written)


def _index(con: Connection, store: Store, before: tuple[int, str] | None, written: list[Entry]) -> None:
    """Add the entries just committed to the index of who has seen each record, first bringing it up to
    the log if it is behind (`before`: the log's head before them). The entries stand whatever
    happens here: an index that cannot be written is brought into step at the next view."""
    try:
        if not audit_index.add(index_file(store), before, written):
            catch_up_index(con, store)
    except (*audit_index.ERRORS, *EngineError) as exc:
        log.warning("audit: the index of who has seen each record could not be updated (%s); the next view "
                    "brings it up to date", type(exc).__name__)
