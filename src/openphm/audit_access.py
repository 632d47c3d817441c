"""Who has seen a person's record: the audit entries that name them, found through
`audit.person_access` (the index of the people each entry names, written with the entry; `openphm
audit verify` checks it against the log), for the record page's "who has seen this record"."""

from __future__ import annotations

from dataclasses import dataclass

from openphm.audit import _SEQ, AuditError
from openphm.engine.connection import Connection, EngineError
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


# whether an entry's details name the person (its person_ids, space-separated UUIDs as canonical_details
# writes them), asked in DuckDB: a list view's details name a hundred people, and carrying them all to
# Python to parse cost more than the rest of the lookup. In the select list, not the WHERE clause: there
# it made DuckDB scan the whole log instead of finding the rows by their primary key.
_NAMES_PERSON = ("coalesce(CASE WHEN json_valid(CAST(details AS VARCHAR)) THEN list_contains(string_split("
                 "json_extract_string(CAST(details AS VARCHAR), '$.person_ids'), ' '), ?) END, FALSE)")


def accesses_of(con: Connection, person_id: str, latest: int | None = None,
                count_up_to: int | None = None) -> tuple[list[Access], int]:
    """The entries that name `person_id` among the people whose identifiable data were shown (for the
    record page's "who has seen this record"): the `latest` of them (all if None), newest first, and
    how many there are in all, counted up to `count_up_to` (more are reported as `count_up_to` + 1:
    a person on a list viewed every day is named thousands of times, and counting them all reads
    every row of audit.person_access). Found through audit.person_access; each entry found is checked
    to name the person."""
    if not PERSON_ID.fullmatch(str(person_id)):
        raise AuditError("not a person id")
    pid = str(person_id)
    top = f" LIMIT {int(count_up_to) + 1}" if count_up_to is not None else ""
    try:  # asked straight away (a catalogue lookup first cost as much as the answer)
        # found first, as a materialised step: with ORDER BY and LIMIT in one query DuckDB scans the
        # whole table instead of using the index on person_id
        seqs = [s for (s,) in con.execute("WITH mine AS MATERIALIZED (SELECT seq FROM audit.person_access "
                                          "WHERE person_id = CAST(? AS UUID)) "
                                          f"SELECT seq FROM mine ORDER BY seq DESC{top}", [pid]).fetchall()]
    except EngineError:  # no index table: nothing has been logged with this version yet
        return [], 0
    shown = seqs[:latest] if latest is not None else seqs
    if not shown:
        return [], 0
    wanted = ", ".join(str(int(s)) for s in shown)
    fields = ", ".join(f"CAST({c} AS VARCHAR)" for c in ("logged_at", "actor", "stated_user", "action", "outcome"))
    try:  # by the primary key: a few rows, however long the log
        found = con.execute(f"SELECT seq, {fields}, {_NAMES_PERSON} FROM audit.log WHERE seq IN ({wanted})",
                            [pid]).fetchall()
    except EngineError:  # a log whose seq column was changed: cast every row
        found = con.execute(f"SELECT {_SEQ}, {fields}, {_NAMES_PERSON} FROM audit.log WHERE {_SEQ} IN ({wanted})",
                            [pid]).fetchall()
    accesses = sorted((Access(*row[:-1]) for row in found if row[-1]), key=lambda a: a.seq, reverse=True)
    return accesses, len(seqs)
