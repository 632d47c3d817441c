"""Who has seen a person's record: the audit entries that name them, found through the index of who
has seen each record (`openphm.audit_index`, copied from the log and brought up to it first when it is
behind; `openphm audit verify` checks it against the log), for the record page's "who has seen this
record"."""

from __future__ import annotations

from dataclasses import dataclass

from openphm import audit, audit_index
from openphm.audit import AuditError
from openphm.engine.connection import Connection
from openphm.engine.duckdb_store import Store
from openphm.identity.pseudonym import PERSON_ID


@dataclass(frozen=True)
class Access:
    """One view of a person's record as "who has seen this record" lists it (an entry, without its details)."""

    seq: int
    logged_at: str
    actor: str
    stated_user: str | None
    action: str
    outcome: str


def _log_head(store: Store) -> tuple[int, str] | None:
    """The log's head as the checkpoint records it (a file read: no question to the database); None
    when there is none or it cannot be trusted (the index is then checked against the log itself)."""
    try:
        key = audit._key(store, create=False)
        return audit._read_checkpoint(store, key) if key is not None else None
    except (AuditError, OSError):
        return None


def _in_step(path, store: Store) -> bool:
    head = _log_head(store)
    return head is not None and audit_index.head(path) == head


def accesses_of(con: Connection, store: Store, person_id: str, latest: int | None = None,
                count_up_to: int | None = None) -> tuple[list[Access], int]:
    """The entries that name `person_id` among the people whose identifiable data were shown (for the
    record page's "who has seen this record"): the `latest` of them (all if None), newest first, and
    how many there are in all, counted up to `count_up_to` (more are reported as `count_up_to` + 1:
    a person on a list viewed every day is named thousands of times). The index is first brought up
    to the log unless it has reached the checkpoint's entry (every append moves both)."""
    if not PERSON_ID.fullmatch(str(person_id)):
        raise AuditError("not a person id")
    path = audit.index_file(store)
    for attempt in (1, 2):
        try:
            if not _in_step(path, store):
                with audit._APPEND_LOCK:  # not while an append is between its commit and its index entry
                    if not _in_step(path, store):
                        audit.catch_up_index(con, store)
            rows, total = audit_index.accesses(path, str(person_id), latest, count_up_to)
            return [Access(*row) for row in rows], total
        except audit_index.ERRORS:
            if attempt == 2:
                raise
            with audit._APPEND_LOCK:
                audit_index.discard(path)  # damaged: made again from the log
    raise AssertionError("unreachable")
