"""Indicators on a small hand-written record: expected numerators and denominators as tables."""

import datetime as dt

import duckdb
import polars as pl
import pytest

from openphm.measures.definitions import load_measures
from openphm.measures.engine import _period_population, compute_measure

# people registered on 1 October 2023 (mid-year of 2023-24) unless stated
PERSON = pl.DataFrame({
    "person_id": ["a", "b", "c", "d", "e"],
    "birth_year": [1940, 1945, 1980, 1990, 1930],
    "birth_month": [1, 11, 5, 5, 2],  # b turns 78 in November: 77 on 1 October
    "sex": ["F", "M", "F", "M", "F"], "ethnic_category": ["A", "H", "N", "A", "A"],
    "date_of_death": [None, None, None, None, dt.date(2023, 6, 1)],  # e died before mid-year
    "national_data_opt_out": [False] * 5,
}, schema_overrides={"date_of_death": pl.Date})
REGISTRATION = pl.DataFrame({
    "person_id": ["a", "b", "c", "d", "e"],
    "practice_code": ["C81001", "C81001", "C81002", "C81002", "C81001"],
    "pcn_code": ["U91000"] * 5, "place_code": ["P1", "P1", "P2", "P2", "P1"],
    "lsoa_code": ["L1", "L1", "L2", "L2", "L1"], "care_home_code": [None, None, None, None, None],
    "registration_start": [dt.date(2000, 1, 1)] * 5, "registration_end": [None] * 5,
}, schema_overrides={"registration_end": pl.Date, "care_home_code": pl.Utf8})
CONDITION = pl.DataFrame({"person_id": ["c", "d"], "condition": ["smi", "smi"],
                          "first_date": [dt.date(2015, 1, 1), dt.date(2023, 9, 1)]})
SPELLS = pl.DataFrame({
    "person_id": ["a", "a", "b", "c", "a"],
    "admission_date": [dt.date(2023, 5, 1), dt.date(2024, 2, 1), dt.date(2023, 12, 1), dt.date(2023, 7, 1),
                       dt.date(2024, 4, 2)],  # the last is in 2024-25
    "admission_type": ["emergency", "emergency", "emergency", "emergency", "emergency"],
})
MH = pl.DataFrame({"person_id": ["c", "d", "a"], "contact_date": [dt.date(2023, 8, 1), dt.date(2024, 1, 5),
                                                                   dt.date(2023, 8, 1)],
                   "has_care_coordinator": [True, False, True], "care_plan_agreed_date": [None, None, None]},
                  schema_overrides={"care_plan_agreed_date": pl.Date})


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("CREATE SCHEMA planning; CREATE SCHEMA reference")
    for schema, name, frame in (("planning", "person", PERSON), ("planning", "registration", REGISTRATION),
                                ("planning", "condition", CONDITION), ("planning", "inpatient_spell", SPELLS),
                                ("planning", "mental_health_contact", MH)):
        c.register("f", frame.to_arrow())
        c.execute(f"CREATE TABLE {schema}.{name} AS SELECT * FROM f")
        c.unregister("f")
    c.execute("CREATE TABLE reference.lsoa_imd2019 AS SELECT * FROM (VALUES ('L1', '1'), ('L2', '10')) "
              "t(lsoa_code, imd_decile)")
    _period_population(c, dt.date(2023, 4, 1), dt.date(2024, 4, 1))
    return c


def rows(result: pl.DataFrame, level: str) -> set[tuple]:
    return set(result.filter(pl.col("level") == level).select("unit", "numerator", "denominator").iter_rows())


def test_emergency_admissions_of_the_over_75s(con):
    result = compute_measure(con, load_measures()["emergency_admissions_75plus"], dt.date(2023, 4, 1),
                             dt.date(2024, 4, 1))
    # a (83) has two admissions in the year, b (77) one; c is under 75; e died before mid-year
    assert rows(result, "practice") == {("C81001", 3.0, 2.0)}
    assert rows(result, "ics") == {("ICS", 3.0, 2.0)}
    assert rows(result, "imd_quintile") == {("1", 3.0, 2.0)}
    value = result.filter(pl.col("level") == "ics")["value"][0]
    assert value == pytest.approx(1500.0)  # per 1,000 aged 75+


def test_smi_care_coordination_counts_only_people_with_smi(con):
    result = compute_measure(con, load_measures()["smi_care_coordinator"], dt.date(2023, 4, 1), dt.date(2024, 4, 1))
    # c and d have SMI by 1 October; c has a coordinator; a has one but no SMI, so is not counted
    assert rows(result, "place") == {("P2", 1.0, 2.0)}
    assert rows(result, "ics") == {("ICS", 1.0, 2.0)}
    assert result.filter(pl.col("level") == "ics")["value"][0] == pytest.approx(50.0)
