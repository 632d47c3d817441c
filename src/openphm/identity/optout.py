"""The National Data Opt-out: the stored list, how it reaches the record, and who it applies to.

**What it applies to.** The national data opt-out applies to confidential patient information
used for purposes beyond individual care — planning and research — and not to individual (direct)
care (NHS England, National data opt-out operational policy guidance, sections 2 and 5). OpenPHM
therefore keeps two views of one record:

- direct care (`record.*`, and outputs made for clinicians): everyone, opted out or not. The
  case-finding lists in `lists.member` and the identifiable export a practice takes for its
  multidisciplinary team (`openphm lists export ... --purpose direct_care`) include people with an
  opt-out: finding one's own patients for proactive care is individual care, and leaving a frail
  patient off her practice's list because she declined research and planning would harm her care,
  which the opt-out was never meant to do. To score them, `openphm risk score` scores everyone in
  the record. (Where a risk-stratification data flow relies on section 251 support instead, its
  approval's conditions decide; an installation that must apply opt-outs to its lists too can
  filter the export by `record.opted_out`.)
- planning and research (`planning.*`): nobody with an opt-out, ever. Every person-level planning
  view excludes `record.opted_out`, including the planning views of outputs computed outside the
  record — `planning.risk_score`, `planning.risk_rising`, `planning.person_segment`,
  `planning.list_member` and the list sizes in `planning.list_size` — so an output computed before
  an opt-out loses that person at read time, as soon as a build applies it. Analysts read
  `planning.*`, never `lists.member` or `risk.score` directly. Models are trained, and segments
  and indicators computed, from `planning.*` only.

**How a change arrives.** `openphm optout FILE` replaces the stored list (`idn.identity.optout`,
NHS numbers, in the identity store only) in one transaction: a file that is empty, unreadable, not
UTF-8 or holds an invalid number is refused with the file and line (never the number) and the list
is left as it was; a replacement that would remove more than half of a list of 100 or more is
refused unless asked for (a truncated file looks like mass withdrawal). Each change is recorded in
`idn.identity.optout_meta` (version, time, people, added, removed: no identifiers).

**How it reaches the record.** `openphm build` computes the opted-out person ids into the new build
(`record_v<N>.opted_out`, with `record_v<N>.optout_applied` saying which list version) and switches
`record.*`, `record.opted_out` and every `planning.*` view to it in one transaction, so a build
that fails or is killed at any moment leaves either the old consistent state or the new one.

**Aggregates.** Segment tables and indicators are computed from planning views, so they are right
when computed; each records the opt-out state it was computed under (`optout.output_state`), and
`stale_outputs` names those computed before the opt-out set in service changed: re-run them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from openphm.engine.connection import Connection
from openphm.engine.duckdb_store import ident
from openphm.identity import store
from openphm.identity.nhs_number import is_valid

LARGE_LIST = 100  # a list at least this long may not lose more than half of itself without being asked


class OptoutError(ValueError):
    """An opt-out file or change that cannot be used; the message says which and why (never a number)."""


@dataclass(frozen=True)
class OptoutChange:
    """What one replacement of the list did."""

    added: int
    removed: int
    total: int
    version: int


@dataclass(frozen=True)
class OptoutStatus:
    """The stored list against the record in service."""

    list_version: int  # 0: never loaded
    list_changed_at: dt.datetime | None
    list_people: int
    applied_version: int | None  # the list version the build in service applied (None: no build has)
    opted_out_people: int | None  # people the build in service leaves out of planning outputs
    stale: list[str]  # outputs computed before the opted-out set in service changed

    @property
    def pending(self) -> bool:
        """The list changed after the build in service: `openphm build` applies it."""
        return self.applied_version is None or self.applied_version < self.list_version


# ---- the file ------------------------------------------------------------------------------------

def read_optout_file(path: Path) -> list[str]:
    """The distinct NHS numbers in a file of one number per line (spaces within a number and blank
    lines allowed), in file order. OptoutError (one line, naming the file and line, never the
    number) for a file that cannot be read, is not UTF-8, holds no numbers or an invalid one."""
    path = Path(path)
    if not path.is_file():
        raise OptoutError(f"{path} is not a file; nothing loaded")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OptoutError(f"{path} cannot be read ({exc.strerror or type(exc).__name__}); nothing loaded") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise OptoutError(f"{path}: line {line} is not UTF-8 text; nothing loaded") from None
    numbers: list[str] = []
    invalid: list[int] = []
    for i, line in enumerate(text.splitlines(), start=1):
        value = "".join(line.split())
        if not value:
            continue
        if is_valid(value):
            numbers.append(value)
        else:
            invalid.append(i)
    if invalid:
        raise OptoutError(f"{path}: line {invalid[0]} is not a valid NHS number ({len(invalid)} invalid lines); "
                          "nothing loaded")
    if not numbers:
        raise OptoutError(f"{path} holds no NHS numbers; nothing loaded (an empty list would withdraw every "
                          "opt-out)")
    return list(dict.fromkeys(numbers))


# ---- the stored list (identity store) --------------------------------------------------------------

def ensure_optout_tables(con: Connection) -> None:
    """The list and its change log in the identity store (openphm.identity.store)."""
    store.ensure(con)


def replace_optout(con: Connection, numbers: list[str],
                   allow_large_removal: bool = False) -> OptoutChange:
    """Make the stored list exactly `numbers`, in one transaction on the identity store, and log the
    change. An empty list, an invalid number, or (unless `allow_large_removal`) losing more than
    half of a list of LARGE_LIST or more is refused and the list is left as it was."""
    wanted = list(dict.fromkeys("".join(str(n).split()) for n in numbers))
    if not wanted:
        raise OptoutError("an empty opt-out list is refused (it would withdraw every opt-out); the list is unchanged")
    bad = sum(not is_valid(n) for n in wanted)
    if bad:
        raise OptoutError(f"{bad} of the numbers are not valid NHS numbers; the list is unchanged")

    def check(before: int, removed: int) -> None:
        if not allow_large_removal and before >= LARGE_LIST and removed * 2 > before:
            raise OptoutError(f"the new list would remove {removed:,} of the {before:,} people on the stored "
                              "list (more than half): check the file is complete, or allow a large removal; "
                              "the list is unchanged")

    con.register("optout_new", pa.table({"nhs_number": pa.array(wanted, pa.string())}))
    try:
        _, removed, added = store.optout_replace(con, "optout_new", check)
    finally:
        con.unregister("optout_new")
    version = store.optout_version(con)[0]
    return OptoutChange(added=added, removed=removed, total=len(wanted), version=version)


def list_version(con: Connection) -> tuple[int, dt.datetime | None, int]:
    """(version, when it was changed, people) of the stored list; (0, None, n) if no change was logged."""
    return store.optout_version(con)


def people_in_record(con: Connection) -> int:
    """How many linked people the stored list names (people with no verified NHS number cannot be)."""
    return store.optout_people_linked(con)


def opted_out_sql() -> str:
    """SELECT the person ids (no identifiers) of linked people on the stored list, for a build."""
    return store.opted_out_person_ids_sql()


# ---- planning views and stale outputs (analytic database) ------------------------------------------

def _exists(con: Connection, schema: str, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
                            "AND table_schema = ? AND table_name = ?", [schema, name]).fetchone()[0])


def record_applies_optout(con: Connection) -> bool:
    """True when a build in service carries its opted-out set (`record.opted_out`)."""
    return _exists(con, "record", "opted_out")


def direct_care_schema(con: Connection) -> str:
    """The schema direct-care outputs (risk scores, case-finding lists) read: `record`, everyone, once
    a build carries its opted-out set; before that (a record built by an earlier version, or a
    database holding only planning data) `planning`, which is never wider than it should be."""
    return "record" if record_applies_optout(con) else "planning"


def planning_view(con: Connection, name: str, source: str) -> bool:
    """Create `planning.<name>` over `source` (a person-level table, `schema.table`) without the people
    the build in service leaves out. It reads `record.opted_out`, so it follows every build with
    no need to be made again. Returns False (and makes nothing) when no build carries an opted-out
    set yet; then there is no planning view, and a planning reader gets an error, not the people."""
    if not record_applies_optout(con):
        return False
    schema, table = source.split(".")
    con.execute("CREATE SCHEMA IF NOT EXISTS planning")
    con.execute(f"CREATE OR REPLACE VIEW planning.{ident(name)} AS SELECT t.* FROM {ident(schema)}.{ident(table)} t "
                "WHERE t.person_id NOT IN (SELECT person_id FROM record.opted_out)")
    return True


def fingerprint(con: Connection) -> str | None:
    """The opted-out set in service as `people:md5` (None when no build carries one)."""
    if not record_applies_optout(con):
        return None
    n, digest = con.execute("SELECT count(*), md5(coalesce(string_agg(CAST(person_id AS VARCHAR), ',' "
                            "ORDER BY person_id), '')) FROM record.opted_out").fetchone()
    return f"{n}:{digest}"


def stamp(con: Connection, output: str) -> None:
    """Record that `output` (e.g. `segments`, `measures`) was just computed under the opted-out set in
    service. Nothing when no build carries one. Call it inside the transaction that writes the output."""
    current = fingerprint(con)
    if current is None:
        return
    con.execute("CREATE SCHEMA IF NOT EXISTS optout")
    con.execute("CREATE TABLE IF NOT EXISTS optout.output_state (output VARCHAR PRIMARY KEY, fingerprint VARCHAR, "
                "computed_at TIMESTAMP)")
    # a delete and an insert, not INSERT OR REPLACE: the same on DuckDB and Spark (which has no upsert on Parquet)
    con.execute("DELETE FROM optout.output_state WHERE output = ?", [output])
    con.execute("INSERT INTO optout.output_state VALUES (?, ?, now())", [output, current])


def stale_outputs(con: Connection) -> list[str]:
    """Outputs computed under another opted-out set than the one in service: run them again."""
    current = fingerprint(con)
    if current is None or not _exists(con, "optout", "output_state"):
        return []
    return [r[0] for r in con.execute("SELECT output FROM optout.output_state WHERE fingerprint <> ? ORDER BY 1",
                                      [current]).fetchall()]


def status(con: Connection) -> OptoutStatus:
    """The stored list, the one the build in service applied, and the outputs now stale."""
    version, changed, people = list_version(con)
    applied = opted = None
    if _exists(con, "record", "optout_applied"):
        applied, opted = con.execute("SELECT list_version, people FROM record.optout_applied").fetchone()
    return OptoutStatus(version, changed, people, applied, opted, stale_outputs(con))
