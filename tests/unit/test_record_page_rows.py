"""The record page's rows of a person: sorted in Python (not in the lookup), newest first or in the order
named, nulls last as DuckDB sorts them, at most the limit, only the person's own rows; and the same rows,
typed the same, from the SQLite row store as from DuckDB."""

import datetime as dt
import sqlite3

import duckdb
import pytest

from openphm.web import record_store
from openphm.web.record_store import KINDS, Kind, RecordStore, from_duckdb, ordered, rows_of

ANN, BOB = "0b8f2e3c-1d2a-4c5b-9e6f-7a8b9c0d1e2f", "1c9a3f4d-2e3b-4d6c-8f70-8b9cad1e2f30"
NOBODY = "2d0b4a5e-3f4c-4e7d-9a81-9cadbe2f3041"


def _spells() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE spell (person_id UUID, admission_date DATE, code VARCHAR)")
    con.executemany("INSERT INTO spell VALUES (?, ?, ?)", [
        (ANN, dt.date(2024, 3, 1), "b"), (ANN, None, "x"), (ANN, dt.date(2025, 1, 9), "c"),
        (ANN, dt.date(2023, 7, 4), "a"), (BOB, dt.date(2026, 1, 1), "bob")])
    return con


def test_rows_come_newest_first_with_unknown_dates_last_and_at_most_the_limit():
    con = _spells()
    newest, oldest = Kind("spell", "admission_date, code", "admission_date DESC"), Kind("spell", "admission_date, code",
                                                                                         "admission_date")
    got = ordered(from_duckdb(con, newest, ANN), newest)
    assert [r["code"] for r in got] == ["c", "b", "a", "x"]
    two = Kind("spell", "admission_date, code", "admission_date DESC", 2)
    assert [r["code"] for r in ordered(from_duckdb(con, two, ANN), two)] == ["c", "b"]
    assert [r["code"] for r in ordered(from_duckdb(con, oldest, ANN), oldest)] == ["a", "b", "c", "x"]
    # the same as DuckDB's own ORDER BY
    expected = [r[0] for r in con.execute("SELECT code FROM spell WHERE person_id = ? ORDER BY admission_date DESC",
                                          [ANN]).fetchall()]
    assert [r["code"] for r in got] == expected
    assert from_duckdb(con, oldest, NOBODY) == []
    assert from_duckdb(con, Kind("no_such_table", "code"), ANN) == []  # a table not made yet reads as empty


def _installation() -> duckdb.DuckDBPyConnection:
    """The tables the record page reads, with two people: nulls, ties on a date, booleans, a list."""
    con = duckdb.connect()
    for schema in ("record", "risk"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute("CREATE TABLE record.person (person_id UUID, birth_year SMALLINT, birth_month TINYINT, sex VARCHAR, "
                "imd_decile INTEGER, practice_code VARCHAR, care_home_resident BOOLEAN, date_of_death DATE)")
    con.execute(f"INSERT INTO record.person VALUES ('{ANN}', 1941, 3, 'F', 2, 'A81001', true, NULL), "
                f"('{BOB}', 1980, 12, 'M', NULL, 'A81001', false, DATE '2025-02-03')")
    con.execute("CREATE TABLE record.condition (person_id UUID, condition VARCHAR, first_date DATE, latest_date DATE)")
    con.execute(f"INSERT INTO record.condition VALUES ('{ANN}', 'copd', DATE '2019-01-01', DATE '2025-01-01'), "
                f"('{ANN}', 'asthma', DATE '2019-01-01', NULL), ('{ANN}', 'diabetes', NULL, NULL)")
    con.execute("CREATE TABLE risk.score (person_id UUID, as_of DATE, risk DOUBLE, centile BIGINT, reasons VARCHAR[])")
    con.execute(f"INSERT INTO risk.score VALUES ('{ANN}', DATE '2026-04-01', 0.123456789012345, 97, "
                f"['age 85', 'copd']), ('{ANN}', DATE '2025-04-01', 0.1, 90, []), ('{BOB}', DATE '2026-04-01', "
                "0.01, 10, NULL)")
    con.execute("CREATE TABLE record.inpatient_spell (person_id UUID, admission_date DATE, discharge_date DATE, "
                "admission_type VARCHAR, length_of_stay BIGINT, primary_diagnosis VARCHAR, "
                "treatment_specialty VARCHAR)")
    spells = [(ANN, dt.date(2025, 1, 1) + dt.timedelta(days=d // 2), None if d % 7 == 0 else dt.date(2025, 3, 1),
               "emergency" if d % 2 else "elective", d % 5, None if d % 3 == 0 else f"J4{d % 10}", "300")
              for d in range(30)]  # ties on the admission date, more rows than the page shows
    con.executemany("INSERT INTO record.inpatient_spell VALUES (?, ?, ?, ?, ?, ?, ?)", spells)
    con.execute("CREATE TABLE record.ae_attendance (person_id UUID, arrival_date DATE, department_type VARCHAR, "
                "disposal VARCHAR)")
    con.execute(f"INSERT INTO record.ae_attendance VALUES ('{BOB}', NULL, '01', NULL), "
                f"('{BOB}', DATE '2024-06-01', '01', 'discharged')")
    con.execute("CREATE TABLE record.outpatient_appointment (person_id UUID, appointment_date DATE, "
                "treatment_specialty VARCHAR, first_attendance BOOLEAN, attended BOOLEAN)")
    con.execute(f"INSERT INTO record.outpatient_appointment VALUES ('{ANN}', DATE '2025-05-05', '330', true, NULL), "
                f"('{ANN}', DATE '2025-05-05', '330', false, false)")
    return con


def _every_kind(store: RecordStore, con, person_id: str) -> dict:
    return {name: rows_of(store, con, name, person_id) for name in KINDS}


def test_the_row_store_gives_the_same_rows_as_duckdb_typed_the_same(tmp_path):
    con = _installation()
    store = RecordStore(tmp_path / "web")
    from_db = {p: _every_kind(store, con, p) for p in (ANN, BOB, NOBODY)}  # not ready: read from DuckDB
    assert len(from_db[ANN]["spells"]) == record_store.RECENT and from_db[NOBODY]["person"] == []
    # ties on the date broken by the rows' other values: the same rows shown whatever order they come in
    every = from_duckdb(con, KINDS["spells"], ANN)
    assert ordered(every, KINDS["spells"]) == ordered(every[::-1], KINDS["spells"]) == from_db[ANN]["spells"]
    assert from_db[ANN]["risk"][0]["reasons"] == "age 85; copd"
    store.make(con)
    assert store.ready.is_set() and store.path.stat().st_mode & 0o077 == 0  # owner-only
    for person_id, expected in from_db.items():
        got = _every_kind(store, con, person_id)
        assert got == expected
        assert [[{k: type(v) for k, v in r.items()} for r in rows] for rows in got.values()] == \
            [[{k: type(v) for k, v in r.items()} for r in rows] for rows in expected.values()]


def test_a_changed_table_gives_a_new_copy_and_the_old_one_goes(tmp_path):
    con = _installation()
    first = RecordStore(tmp_path / "web")
    first.make(con)
    again = RecordStore(tmp_path / "web")
    again.make(con)
    assert again.path == first.path  # the same data: the copy found, not made again
    con.execute(f"UPDATE risk.score SET risk = 0.5 WHERE person_id = '{BOB}'")  # a new scoring, say
    changed = RecordStore(tmp_path / "web")
    changed.make(con)
    assert changed.path != first.path and not first.path.exists()
    assert rows_of(changed, con, "risk", BOB)[0]["risk"] == 0.5


def test_a_half_made_copy_is_never_used(tmp_path, monkeypatch):
    con = _installation()
    store = RecordStore(tmp_path / "web")
    stopped = iter([False, False, True])  # stopped while copying the third kind
    store.make(con, stopping=lambda: next(stopped, True))
    assert not store.ready.is_set() and not list((tmp_path / "web").glob("*"))
    killed = tmp_path / "web" / ".record-store-0123abcd.4242.tmp"  # a copy a killed server left half-made
    killed.write_bytes(b"half a copy")
    done = RecordStore(tmp_path / "web")
    done.make(con)
    assert not killed.exists() and [p.name for p in (tmp_path / "web").iterdir()] == [done.path.name]
    with sqlite3.connect(done.path) as check:
        check.execute("DELETE FROM meta")  # as if killed before the last write
    assert not record_store._complete(done.path, done.path.stem.removeprefix("record-store-"))
    retry = RecordStore(tmp_path / "web")
    retry.make(con)
    assert retry.ready.is_set() and rows_of(retry, con, "person", ANN)[0]["birth_year"] == 1941


def test_a_column_of_a_type_not_copied_leaves_the_pages_on_duckdb(tmp_path, monkeypatch):
    con = _installation()
    monkeypatch.setitem(KINDS, "risk", Kind("risk.score", "as_of, risk, reasons", "as_of DESC", 1))  # a list
    store = RecordStore(tmp_path / "web")
    store.make(con)
    assert not store.ready.is_set()
    assert rows_of(store, con, "risk", ANN)[0]["reasons"] == ["age 85", "copd"]


def test_a_table_not_made_yet_reads_as_empty_from_the_copy_too(tmp_path):
    con = _installation()
    con.execute("DROP TABLE risk.score")  # before `openphm risk score`
    store = RecordStore(tmp_path / "web")
    store.make(con)
    assert store.ready.is_set() and rows_of(store, con, "risk", ANN) == []
    assert rows_of(store, con, "person", ANN)[0]["sex"] == "F"


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_reads_only_the_persons_rows(name):
    con = _installation()
    for person_id in (ANN, BOB):
        with_ids = from_duckdb(con, Kind(KINDS[name].table, "CAST(person_id AS VARCHAR) AS pid"), person_id)
        assert {r["pid"] for r in with_ids} <= {person_id}
