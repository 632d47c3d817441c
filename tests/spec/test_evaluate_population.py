"""Who is in an evaluation's population on a day: by age on that day, care home, or segment in that
day's month."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pytest

from openphm.evaluate.panel import population_filter

D = dt.date


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA planning")
    people = pl.DataFrame({"person_id": ["a", "b", "c"], "birth_year": [1948, 1960, 1930], "birth_month": [6, 1, 1]})
    regs = pl.DataFrame({"person_id": ["a", "b", "c"], "care_home_code": [None, "CH1", None]},
                        schema_overrides={"care_home_code": pl.Utf8})
    segments = pl.DataFrame({"person_id": ["a", "a", "c"], "segment": ["frailty", "healthy", "frailty"],
                             "from_month": [D(2023, 1, 1), D(2023, 7, 1), D(2022, 1, 1)],
                             "to_month": [D(2023, 6, 1), D(2023, 12, 1), D(2022, 12, 1)]})
    con.register("p", people.to_arrow())
    con.register("r", regs.to_arrow())
    con.register("segments_frame", segments.to_arrow())
    con.execute("CREATE TABLE planning.person_segment AS SELECT * FROM segments_frame")
    return con


@pytest.mark.parametrize("population, day, who", [
    ("everyone", D(2023, 6, 20), {"a", "b", "c"}),
    ("aged_75_plus", D(2023, 6, 15), {"c"}),           # a turns 75 in June: from the 16th
    ("aged_75_plus", D(2023, 6, 16), {"a", "c"}),
    ("care_home", D(2023, 6, 16), {"b"}),
    ("aged_75_plus_or_care_home", D(2023, 6, 16), {"a", "b", "c"}),
    ("segment:frailty", D(2023, 6, 30), {"a"}),        # a leaves frailty in July; c's spell ended in 2022
    ("segment:frailty", D(2023, 7, 1), set()),
    ("segment:healthy", D(2023, 7, 1), {"a"}),
])
def test_who_is_in_the_population(con, population, day, who) -> None:
    sql = population_filter(population, f"DATE '{day}'")
    got = {row[0] for row in con.execute(f"SELECT p.person_id FROM p JOIN r USING (person_id) WHERE {sql}").fetchall()}
    assert got == who
