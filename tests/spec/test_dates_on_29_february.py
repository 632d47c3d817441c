"""A 29 February is an ordinary day: the risk model's examples and features at a 29 February index
date, and a synthetic ICS starting on one, are built without error (a year after 29 February
2024 is 28 February 2025: `openphm.calendar_dates.add_months`).

The record (everyone registered at C81001 from 2000, born 1950, index date 29 February 2024):

| person | emergency admissions                        | outcome (admitted in the next 12 months) |
|--------|---------------------------------------------|------------------------------------------|
| a      | 29 Feb 2024 (the index date itself)         | 1                                        |
| b      | 15 Jan 2025                                 | 1                                        |
| c      | 5 Mar 2025 (after the 12 months)            | 0                                        |
| d      | 28 Feb 2024 (the day before), 1 Mar 2023    | 0; 2 emergency admissions in 12 months   |
| e      | 27 Feb 2023 (over 12 months before); an     | 0; 0 in 12 months, 1 in 24               |
|        | elective admission on 1 Apr 2024            |                                          |
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest

from openphm.risk.model import examples
from openphm.synth.generate import GenerateOptions

D = dt.date
INDEX = D(2024, 2, 29)
PEOPLE = ["a", "b", "c", "d", "e"]
SPELLS = [("a", "emergency", D(2024, 2, 29)), ("b", "emergency", D(2025, 1, 15)), ("c", "emergency", D(2025, 3, 5)),
          ("d", "emergency", D(2024, 2, 28)), ("d", "emergency", D(2023, 3, 1)), ("e", "emergency", D(2023, 2, 27)),
          ("e", "elective", D(2024, 4, 1))]


def _table(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    con.register("f", frame.to_arrow())
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM f")
    con.unregister("f")


@pytest.fixture
def record() -> duckdb.DuckDBPyConnection:
    """A hand-written planning schema with every table the risk features read."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA planning; CREATE SCHEMA reference")
    n = len(PEOPLE)
    _table(con, "planning.person", pl.DataFrame(
        {"person_id": PEOPLE, "birth_year": [1950] * n, "birth_month": [6] * n, "sex": ["F", "M", "F", "M", "F"],
         "ethnic_category": ["A"] * n, "date_of_death": [None] * n}, schema_overrides={"date_of_death": pl.Date}))
    _table(con, "planning.registration", pl.DataFrame(
        {"person_id": PEOPLE, "practice_code": ["C81001"] * n, "pcn_code": ["U00001"] * n, "lsoa_code": ["L1"] * n,
         "care_home_code": [None] * n, "registration_start": [D(2000, 1, 1)] * n, "registration_end": [None] * n},
        schema_overrides={"care_home_code": pl.Utf8, "registration_end": pl.Date}))
    _table(con, "planning.inpatient_spell", pl.DataFrame(
        SPELLS, schema=["person_id", "admission_type", "admission_date"], orient="row").with_columns(
        pl.lit(3).alias("length_of_stay"), pl.lit(False).alias("regular_day_attender")))
    _table(con, "planning.hospital_diagnosis", pl.DataFrame(
        [("d", D(2024, 2, 28), "R296")], schema=["person_id", "admission_date", "code"], orient="row"))
    _table(con, "planning.condition", pl.DataFrame(
        [("a", "diabetes", D(2010, 1, 1)), ("d", "copd", D(2024, 2, 29))],  # d's on the index date: not yet known
        schema=["person_id", "condition", "first_date"], orient="row"))
    _table(con, "planning.gp_event", pl.DataFrame(
        [("a", "0", D(2020, 1, 1))], schema=["person_id", "snomed_code", "event_date"], orient="row"))
    for name, date in (("ae_attendance", "arrival_date"), ("community_contact", "contact_date")):
        _table(con, f"planning.{name}", pl.DataFrame([("b", D(2023, 12, 1))], schema=["person_id", date],
                                                     orient="row"))
    for name in ("outpatient_appointment", "gp_appointment"):
        _table(con, f"planning.{name}", pl.DataFrame([("c", D(2024, 1, 31), True)],
                                                     schema=["person_id", "appointment_date", "attended"],
                                                     orient="row"))
    _table(con, "planning.mental_health_contact", pl.DataFrame(
        [("e", D(2023, 3, 1), True)], schema=["person_id", "contact_date", "has_care_coordinator"], orient="row"))
    con.execute("CREATE TABLE reference.lsoa_imd2019 AS SELECT 'L1' AS lsoa_code, '3' AS imd_decile")
    return con


def test_risk_examples_at_a_29_february_index_date(record):
    frame = examples(record, INDEX).sort("person_id")
    assert frame["person_id"].to_list() == PEOPLE
    assert frame["outcome"].to_list() == [1, 1, 0, 0, 0]
    by = {r["person_id"]: r for r in frame.iter_rows(named=True)}
    assert by["d"]["emergency_admissions_12m"] == 2 and by["d"]["days_since_emergency_admission"] == 1
    assert by["e"]["emergency_admissions_12m"] == 0 and by["e"]["emergency_admissions_24m"] == 1
    assert by["a"]["emergency_admissions_12m"] == 0  # the index day's admission is the outcome, not a feature
    assert by["a"]["has_diabetes"] == 1 and by["d"]["has_copd"] == 0
    assert by["e"]["has_care_coordinator"] == 1  # a contact on 1 March 2023 is within the 12 months
    assert all(r["age"] == 73 for r in by.values())


def test_a_synthetic_ics_may_start_on_29_february(tmp_path: Path):
    GenerateOptions(start=INDEX, years=1, out=tmp_path / "ics", care_model_start=D(2025, 2, 27)).check()
    with pytest.raises(ValueError, match="must fall within 2024-02-29 to 2025-02-28"):
        GenerateOptions(start=INDEX, years=1, out=tmp_path / "ics", care_model_start=D(2025, 2, 28)).check()
