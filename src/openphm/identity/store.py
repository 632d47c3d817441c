"""The identity store: its one owner. No other module names its tables.

The identity store (`<db>-identity.duckdb`, attached to every connection as `idn`) holds what
identifies people, apart from the pseudonymised analytic database:

- `records`: the identifier columns of every loaded row (source, file id, row number, record id,
  NHS number and its validity, names, date of birth, sex, postcode, a source's own person key);
- `quarantined_rows`: every value of each quarantined row (the analytic database keeps only the
  reason, row and column);
- `person_key`: each person id's key (`nhs:<number>` or a record key) and NHS number, written by
  linking, with `link_run` naming the linking run that wrote it;
- `optout`: the National Data Opt-out list (NHS numbers), and `optout_meta`: its change log
  (counts only).

DuckDB writes one attached database per transaction, so each function here that writes does so
in its own transaction on the identity store alone; callers order these against their writes to
the analytic database (see `openphm.ingest.loader` and `openphm.identity.linkage`).
"""

from __future__ import annotations

from openphm.engine import dialect, lookup_storage
from openphm.engine.connection import Connection, transaction
from openphm.identity.pseudonym import PERSON_ID

SCHEMA = "idn.identity"
RECORDS = f"{SCHEMA}.records"
QUARANTINED = f"{SCHEMA}.quarantined_rows"
PERSON_KEY = f"{SCHEMA}.person_key"
LINK_RUN = f"{SCHEMA}.link_run"
OPTOUT = f"{SCHEMA}.optout"
OPTOUT_META = f"{SCHEMA}.optout_meta"

RECORD_COLUMNS = ("source VARCHAR, file_id INTEGER, row_number BIGINT, record_id VARCHAR, nhs_number VARCHAR, "
                  "nhs_number_valid BOOLEAN, given_name VARCHAR, family_name VARCHAR, date_of_birth DATE, "
                  "sex VARCHAR, postcode VARCHAR, native_person_key VARCHAR")


def ensure(con: Connection) -> None:
    """Create the identity store's schema and tables if absent."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {RECORDS} ({RECORD_COLUMNS})")
    con.execute(f"CREATE TABLE IF NOT EXISTS {QUARANTINED} (file_id INTEGER, source VARCHAR, row_number BIGINT, "
                "row_json VARCHAR)")
    con.execute(f"CREATE TABLE IF NOT EXISTS {OPTOUT} (nhs_number VARCHAR PRIMARY KEY)")
    con.execute(f"CREATE TABLE IF NOT EXISTS {OPTOUT_META} (version BIGINT, changed_at TIMESTAMP, people BIGINT, "
                "added BIGINT, removed BIGINT)")


def _exists(con: Connection, table: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'idn' AND schema_name = "
                       "'identity' AND table_name = ?", [table]).fetchone()[0] > 0


# ---- records, at ingest -------------------------------------------------------------------------------

def add_file(con: Connection, records_select: str, quarantined_select: str) -> None:
    """Add one file's identifier rows and quarantined values, in one transaction. The selects yield
    RECORDS' columns and (file_id, source, row_number, row_json)."""
    with transaction(con):
        con.execute(f"INSERT INTO {RECORDS} {records_select}")
        con.execute(f"INSERT INTO {QUARANTINED} {quarantined_select}")


def discard_files_above(con: Connection, file_id: int) -> int:
    """Remove the rows of files numbered above `file_id` (a load that never reached the manifest);
    returns the rows removed."""
    removed = 0
    with transaction(con):
        for table in (RECORDS, QUARANTINED):
            removed += con.execute(f"DELETE FROM {table} WHERE file_id > ?", [file_id]).fetchone()[0]
    return removed


def records_sql() -> str:
    """The identity store's records, to select from (linking, linkage quality)."""
    return RECORDS


# ---- person keys, at linking --------------------------------------------------------------------------

def replace_person_keys(con: Connection, person_table: str, run_id: str) -> None:
    """Make `person_key` the keys in `person_table` (person_id UUID, person_key), NHS numbers taken from
    `nhs:` keys, and record the linking run, in one transaction."""
    # stored uncompressed, for direct care's lookups of a page of people through the index
    with lookup_storage(con, database="idn", compressed=False), transaction(con):
        con.execute(f"""CREATE OR REPLACE TABLE {PERSON_KEY} AS
                        SELECT p.person_id, p.person_key,
                               CASE WHEN p.person_key LIKE 'nhs:%' THEN substr(p.person_key, 5) END AS nhs_number
                        FROM {person_table} p ORDER BY p.person_id""")
        if dialect(con) == "duckdb":  # direct care looks people up by id (`nhs_numbers_of`): an ART index
            con.execute(f"CREATE INDEX person_key_person_id ON {PERSON_KEY} (person_id)")
        con.execute(f"CREATE OR REPLACE TABLE {LINK_RUN} AS SELECT ? AS run_id", [run_id])


def link_run_id(con: Connection) -> str | None:
    """The id of the linking run that wrote the person keys, or None."""
    if not _exists(con, "link_run"):
        return None
    row = con.execute(f"SELECT run_id FROM {LINK_RUN}").fetchone()
    return row[0] if row else None


def nhs_numbers_of(con: Connection, person_ids: list[str]) -> dict[str, str | None]:
    """The NHS numbers of the people given (pseudonyms as text), for direct care: by the person keys'
    index, so a page of a list costs a few lookups rather than a scan of every key. Ids are checked
    to be UUIDs (ValueError) and written into the statement as literals, which DuckDB answers from
    the index (a parameter list is joined, scanning every key)."""
    if not person_ids:
        return {}
    bad = next((p for p in person_ids if not PERSON_ID.fullmatch(p)), None)
    if bad is not None:
        raise ValueError(f"not a person id: {bad[:40]!r}")
    literals = ", ".join(f"'{p}'" for p in dict.fromkeys(person_ids))
    rows = con.execute(f"SELECT CAST(person_id AS VARCHAR), nhs_number FROM {PERSON_KEY} "
                       f"WHERE person_id IN ({literals})").fetchall()
    found = dict(rows)
    return {p: found.get(p) for p in person_ids}


# ---- the National Data Opt-out list -------------------------------------------------------------------

def optout_replace(con: Connection, wanted_view: str, check: object = None) -> tuple[int, int, int]:
    """Make the stored list exactly the `nhs_number`s of `wanted_view`, in one transaction; returns
    (people before, removed, added). `check(before, removed)` may raise to refuse the change, which
    then leaves the list as it was."""
    ensure(con)
    con.execute("BEGIN")
    try:
        before = con.execute(f"SELECT count(*) FROM {OPTOUT}").fetchone()[0]
        removed = con.execute(f"SELECT count(*) FROM {OPTOUT} WHERE nhs_number NOT IN "
                              f"(SELECT nhs_number FROM {wanted_view})").fetchone()[0]
        if check is not None:
            check(before, removed)
        added = con.execute(f"SELECT count(*) FROM {wanted_view} WHERE nhs_number NOT IN "
                            f"(SELECT nhs_number FROM {OPTOUT})").fetchone()[0]
        con.execute(f"DELETE FROM {OPTOUT} WHERE nhs_number NOT IN (SELECT nhs_number FROM {wanted_view})")
        con.execute(f"INSERT INTO {OPTOUT} SELECT nhs_number FROM {wanted_view} WHERE nhs_number NOT IN "
                    f"(SELECT nhs_number FROM {OPTOUT})")
        people = con.execute(f"SELECT count(*) FROM {OPTOUT}").fetchone()[0]
        version = con.execute(f"SELECT coalesce(max(version), 0) + 1 FROM {OPTOUT_META}").fetchone()[0]
        con.execute(f"INSERT INTO {OPTOUT_META} VALUES (?, now(), ?, ?, ?)", [version, people, added, removed])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return before, removed, added


def optout_version(con: Connection) -> tuple[int, object, int]:
    """(version, when it was changed, people) of the stored list; (0, None, n) if no change was logged."""
    ensure(con)
    version, changed = con.execute(f"SELECT max(version), max(changed_at) FROM {OPTOUT_META}").fetchone()
    people = con.execute(f"SELECT count(*) FROM {OPTOUT}").fetchone()[0]
    return int(version or 0), changed, people


def optout_people_linked(con: Connection) -> int:
    """How many linked people the stored list names (people with no verified NHS number cannot be)."""
    if not _exists(con, "person_key"):
        return 0
    ensure(con)
    return con.execute(f"SELECT count(DISTINCT k.person_id) FROM {PERSON_KEY} k JOIN {OPTOUT} o "
                       "USING (nhs_number)").fetchone()[0]


def opted_out_person_ids_sql() -> str:
    """SELECT the person ids (no identifiers) of linked people on the stored list, for a build."""
    return (f"SELECT DISTINCT k.person_id FROM {PERSON_KEY} k JOIN {OPTOUT} o USING (nhs_number) "
            "WHERE k.person_id IS NOT NULL")
