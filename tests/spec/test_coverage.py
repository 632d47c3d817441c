"""The analysis period is the data's real coverage, not the span of its stray dates (issue 10, item 6)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from openphm.record.coverage import covered_months, covered_years


def spells_db(dates: list[dt.date], files: list[str] | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA planning; CREATE TABLE planning.inpatient_spell (admission_date DATE)")
    if dates:
        con.executemany("INSERT INTO planning.inpatient_spell VALUES (?)", [[d] for d in dates])
    if files is not None:
        con.execute("CREATE SCHEMA ingest; CREATE TABLE ingest.manifest (source VARCHAR, period VARCHAR, "
                    "status VARCHAR)")
        con.executemany("INSERT INTO ingest.manifest VALUES ('apc', ?, 'active')", [[p] for p in files])
    return con


def two_years() -> list[dt.date]:
    start = dt.date(2021, 4, 1)
    return [start + dt.timedelta(days=i) for i in range(0, 730, 3)]  # April 2021 to March 2023


@pytest.mark.parametrize("files", [["2021-22", "2022-23"], None])
def test_a_stray_old_admission_does_not_stretch_the_period(files):
    con = spells_db([*two_years(), dt.date(1995, 6, 1)], files)
    assert covered_years(con) == [dt.date(2021, 4, 1), dt.date(2022, 4, 1)]
    months = covered_months(con)
    assert (months[0], months[-1], len(months)) == (dt.date(2021, 4, 1), dt.date(2023, 3, 1), 24)


def test_a_year_with_a_file_counts_and_a_year_without_one_does_not():
    con = spells_db([*two_years(), *[dt.date(2024, 5, 1)] * 200], ["2021-22", "2022-23"])
    assert covered_years(con) == [dt.date(2021, 4, 1), dt.date(2022, 4, 1)]


def test_one_year_of_data_ends_at_the_last_admission():
    con = spells_db([dt.date(2023, 4, 1) + dt.timedelta(days=i) for i in range(200)], ["2023-24"])
    months = covered_months(con)
    assert (months[0], months[-1], len(months)) == (dt.date(2023, 4, 1), dt.date(2023, 10, 1), 7)


def test_no_spells_no_period():
    assert covered_years(spells_db([], None)) == [] and covered_months(spells_db([], None)) == []
