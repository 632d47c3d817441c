"""A date is parsed only when its shape is its format's: four-digit years on every engine."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from openphm.calendar_dates import strftime_parts
from openphm.ingest.validation import parsed_date_sql


def test_strftime_parts():
    assert strftime_parts("%d/%m/%Y") == ["%d", "/", "%m", "/", "%Y"]
    assert strftime_parts("%Y-%m-%dT%H") == ["%Y", "-", "%m", "-", "%d", "T", "%H"]
    assert strftime_parts("100%") == ["1", "0", "0", "%"]


@pytest.mark.parametrize(("text", "date_format", "want"), [
    ("05/01/2020", "%d/%m/%Y", dt.date(2020, 1, 5)),
    ("5/1/2020", "%d/%m/%Y", dt.date(2020, 1, 5)),
    (" 05/01/2020 ", "%d/%m/%Y", dt.date(2020, 1, 5)),
    ("05/01/20", "%d/%m/%Y", None),  # DuckDB's strptime alone reads the year 20
    ("31/02/2020", "%d/%m/%Y", None),
    ("2020-01-05", "%Y-%m-%d", dt.date(2020, 1, 5)),
    ("20-01-05", "%Y-%m-%d", None),  # DuckDB's strptime alone reads 5 January of the year 20
    ("12020-01-05", "%Y-%m-%d", None),
    ("0001-01-01", "%Y-%m-%d", dt.date(1, 1, 1)),  # parsed, then quarantined as implausible
    ("2020-01-05x", "%Y-%m-%d", None),
])
def test_parsed_dates(text, date_format, want):
    got = duckdb.sql(f"SELECT {parsed_date_sql('d', date_format)} FROM (SELECT ? AS d)", params=[text]).fetchone()
    assert got[0] == want
