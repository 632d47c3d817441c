"""What the web pages read from the analytic database, as plain frames, through the engine.

Every aggregate here is exact; pages pass it through `openphm.governance.disclosure` before anyone
without a direct-care role sees it. Person-level reads (case-finding lists) go through
`openphm.lists.run`, which adds NHS numbers from the identity store and writes the audit entry.

One DuckDB connection serves the process; each read takes a cursor of it (DuckDB connections are
not for concurrent use from threads; cursors of one connection are, so queries run in parallel).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import polars as pl

from openphm import audit, domain
from openphm.engine.connection import Connection, EngineError
from openphm.engine.duckdb_store import Store
from openphm.identity import store as identity_store
from openphm.ingest.loader import open_store
from openphm.web import record_store
from openphm.web.record_store import RecordStore

T = TypeVar("T")
PAGES_KEPT = 4096  # rendered aggregate pages kept (least recently used dropped): bounded, whatever URLs arrive


class Database:
    """The analytic database of one installation, opened once for the web process."""

    def __init__(self, db: Path) -> None:
        self.path = Path(db)
        self.store: Store
        self.store, self.con = open_store(self.path)
        self._lock = threading.Lock()
        self._memo: dict[tuple, object] = {}
        self._memo_lock = threading.Lock()
        self._pages: OrderedDict[tuple, object] = OrderedDict()
        self.stop = False  # set on shutdown: background work stops
        self.warmed = threading.Event()  # set when the warm-up has computed every aggregate page (`/health`)
        resolved = self.path.resolve()
        self.records = RecordStore(resolved.with_name(resolved.stem + "-web"))  # made by the warm-up

    @contextmanager
    def cursor(self) -> Iterator[Connection]:
        """A cursor for one request. Cursors of one DuckDB connection may run at the same time in
        different threads (each is its own connection to the same database), so requests run in
        parallel; audit appends take turns inside `openphm.audit.append`."""
        with self._lock:
            cur = self.con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def memo(self, key: tuple, compute: Callable[[], T]) -> T:
        """`compute()`, once per `key` for the life of the process. Sound because this process holds
        the database's write lock while it serves (DuckDB lets no other process open the file), so
        nothing but this process can change what an aggregate page reads; person-level pages and
        the audit log are never memoised."""
        with self._memo_lock:
            if key in self._memo:
                return self._memo[key]  # type: ignore[return-value]
        value = compute()
        with self._memo_lock:
            self._memo.setdefault(key, value)
        return value

    def page(self, key: tuple, compute: Callable[[], T]) -> T:
        """A rendered aggregate page (or download), computed once per `key` while it stays among the
        PAGES_KEPT most recently used: the same soundness as `memo`, but bounded, since keys carry
        whatever query a client sends."""
        with self._memo_lock:
            if key in self._pages:
                self._pages.move_to_end(key)
                return self._pages[key]  # type: ignore[return-value]
        value = compute()
        with self._memo_lock:
            self._pages[key] = value
            while len(self._pages) > PAGES_KEPT:
                self._pages.popitem(last=False)
        return value

    def frame(self, sql: str, params: list | None = None) -> pl.DataFrame:
        """A query's rows as a polars frame; an empty frame if a table it reads does not exist yet."""
        with self.cursor() as cur:
            try:
                return cur.execute(sql, params or []).pl()
            except EngineError:
                return pl.DataFrame()

    def has_table(self, schema: str, table: str) -> bool:
        """Whether `schema.table` exists (a table or view)."""
        got = self.frame("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = ? "
                         "AND table_name = ?", [schema, table])
        return got.height > 0 and got["n"][0] > 0

    def close(self) -> None:
        """Close the connection (on shutdown)."""
        self.con.close()


def latest_build(db: Database) -> dict | None:
    """The build in service: version and when it finished."""
    got = db.frame("SELECT version, finished FROM ingest.builds WHERE status = 'succeeded' "
                   "ORDER BY version DESC LIMIT 1")
    return None if got.height == 0 else got.row(0, named=True)


def population_date(db: Database) -> dt.date | None:
    """The day the overview describes: the last day of the latest financial year with indicator results
    (period_end is inclusive), else the latest registration start."""
    got = db.frame("SELECT max(period_end) AS d FROM measures.measure_result WHERE period_type = 'financial_year'")
    if got.height and got["d"][0] is not None:
        return got["d"][0] if isinstance(got["d"][0], dt.date) else None
    got = db.frame("SELECT max(registration_start) AS d FROM planning.registration")
    return got["d"][0] if got.height else None


def population_pyramid(db: Database, on: dt.date) -> pl.DataFrame:
    """People registered and alive on `on` by five-year age band and sex (exact counts)."""
    age = domain.age_on(on, "p")
    return db.frame(f"""
        SELECT {domain.age_band(age)} AS age_band, p.sex, count(*) AS people
        FROM planning.person AS p JOIN ({domain.registration_on('planning.registration', on, ('practice_code',))}) r
             ON r.person_id = p.person_id
        WHERE r.registered_on_date AND {domain.alive_on(on, 'p')}
        GROUP BY ALL ORDER BY 1, 2""")


def measure_results(db: Database, measure_id: str, levels: tuple[str, ...],
                    period_type: str = "financial_year") -> pl.DataFrame:
    """One indicator's results at the levels given, every period of a type (exact counts)."""
    marks = ", ".join("?" for _ in levels)
    return db.frame("SELECT measure_id, period_type, period, period_start, level, unit, numerator, denominator, "
                    "value, lower95, upper95, lower998, upper998 FROM measures.measure_result "
                    f"WHERE measure_id = ? AND level IN ({marks}) AND period_type = ? ORDER BY period_start, unit",
                    [measure_id, *levels, period_type])


def practices_of(db: Database, scope: tuple[str, ...]) -> set[str]:
    """The practices a clinician's scope covers: practices named, and the practices of PCNs named."""
    pcns = sorted(s for s in scope if s.startswith("U"))
    practices = {s for s in scope if not s.startswith("U")}
    if pcns:  # asked on every person-level request: kept per PCN set (`memo`: nothing changes while serving)
        marks = ", ".join("?" for _ in pcns)
        practices |= db.memo(("practices_of", tuple(pcns)), lambda: frozenset(db.frame(
            f"SELECT DISTINCT practice_code FROM record.registration WHERE pcn_code IN ({marks})", pcns)
            .get_column("practice_code", default=pl.Series([], dtype=pl.String)).to_list()))
    return practices


def list_sizes(db: Database, practices: set[str]) -> pl.DataFrame:
    """People on each list at each of `practices` (direct care: opted-out people included)."""
    if not practices:
        return pl.DataFrame()
    marks = ", ".join("?" for _ in practices)
    return db.memo(("list_sizes", tuple(sorted(practices))), lambda: db.frame(
        f"SELECT list_id, practice_code, count(*) AS people FROM lists.member WHERE practice_code IN ({marks}) "
        "GROUP BY ALL ORDER BY 1, 2", sorted(practices)))


def identified_person(db: Database, person_id: str, cur: Connection | None = None) -> dict | None:
    """One person's `record.person` row (opted-out people included: direct care) with their NHS number
    and age today, `person_id` as text; None if there is no such person. Through `cur` if given (a
    request's cursor), else a cursor of its own."""
    if cur is None:
        with db.cursor() as own:
            return identified_person(db, person_id, own)
    rows = record_store.rows_of(db.records, cur, "person", person_id)
    if not rows:  # no such person, or no build yet
        return None
    number = identity_store.nhs_numbers_of(cur, [person_id])[person_id]
    person = {**rows[0], "person_id": person_id}
    # the domain's rule, by its Python twin: in the SQL it made the lookup twice as slow
    year, month = person.get("birth_year"), person.get("birth_month")
    age = domain.age_on_value(year, month, dt.date.today()) if year is not None and month is not None else None
    return {**person, "nhs_number": number, "age": age}


def record_access(db: Database, action: str, person_id: str, purpose: str, stated_user: str,
                  refused_because: str | None = None, cur: Connection | None = None) -> None:
    """The audit entry for a view of one person's identifiable data, or (`refused_because`) its refusal,
    written before anything is sent (through `cur` if given, else a cursor of its own)."""
    if cur is None:
        with db.cursor() as own:
            return record_access(db, action, person_id, purpose, stated_user, refused_because, own)
    details: dict[str, object] = {"person_ids": person_id, "purpose": purpose}
    details |= {"reason": refused_because} if refused_because else {"people": 1}
    audit.append(cur, db.store, action, "refused" if refused_because else "allowed", details, stated_user=stated_user)


def read_report(path: Path) -> dict | None:
    """A report's JSON document, or None when it has not been written (or is not a report)."""
    try:
        got = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) else None
