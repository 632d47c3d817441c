"""The record page's rows of a person, sorted in Python (not in the lookup): newest first or in the
order named, nulls last as DuckDB sorts them, at most the limit, and only the person's own rows."""

import datetime as dt

import duckdb

from openphm.web.care_pages import _of_person

ANN, BOB = "0b8f2e3c-1d2a-4c5b-9e6f-7a8b9c0d1e2f", "1c9a3f4d-2e3b-4d6c-8f70-8b9cad1e2f30"


def _spells() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE spell (person_id UUID, admission_date DATE, code VARCHAR)")
    con.executemany("INSERT INTO spell VALUES (?, ?, ?)", [
        (ANN, dt.date(2024, 3, 1), "b"), (ANN, None, "x"), (ANN, dt.date(2025, 1, 9), "c"),
        (ANN, dt.date(2023, 7, 4), "a"), (BOB, dt.date(2026, 1, 1), "bob")])
    return con


def test_rows_come_newest_first_with_unknown_dates_last_and_at_most_the_limit():
    con = _spells()
    newest = _of_person(con, "admission_date, code", "spell", "admission_date DESC", ANN)
    assert [r["code"] for r in newest] == ["c", "b", "a", "x"]
    assert [r["code"] for r in _of_person(con, "admission_date, code", "spell", "admission_date DESC", ANN, 2)] \
        == ["c", "b"]
    oldest = _of_person(con, "admission_date, code", "spell", "admission_date", ANN)
    assert [r["code"] for r in oldest] == ["a", "b", "c", "x"]
    # the same as DuckDB's own ORDER BY
    expected = [r[0] for r in con.execute("SELECT code FROM spell WHERE person_id = ? ORDER BY admission_date DESC",
                                          [ANN]).fetchall()]
    assert [r["code"] for r in newest] == expected
    nobody = "2d0b4a5e-3f4c-4e7d-9a81-9cadbe2f3041"
    assert _of_person(con, "admission_date, code", "spell", "admission_date", nobody) == []
