"""The size of system-wide year-to-year change, estimated from a record with known spend per person."""

import datetime as dt
import math

import polars as pl
import pytest

from openphm.engine.connection import memory_connection
from openphm.finance.shocks import shock_factors, shock_sd

D = dt.date


def test_the_sd_of_log_growth_in_spend_per_registered_person():
    con = memory_connection()
    con.execute("CREATE SCHEMA planning")
    people = pl.DataFrame({"person_id": ["a", "b"], "registration_start": [D(2000, 1, 1)] * 2,
                           "registration_end": [None, None]}, schema_overrides={"registration_end": pl.Date})
    # A&E spend by year: 100, 110, 99, 120 (two people each year); general practice flat at 50
    spend = {"2021-22": 100.0, "2022-23": 110.0, "2023-24": 99.0, "2024-25": 120.0}
    rows = [(p, "A&E", year, total / 2) for year, total in spend.items() for p in ("a", "b")]
    rows += [(p, "General practice", year, 25.0) for year in spend for p in ("a", "b")]
    activity = pl.DataFrame(rows, schema=["person_id", "setting", "financial_year", "cost"], orient="row")
    con.register("people_frame", people.to_arrow())
    con.register("activity_frame", activity.to_arrow())
    con.execute("CREATE TABLE planning.registration AS SELECT * FROM people_frame")
    con.execute("CREATE TABLE planning.activity_cost AS SELECT * FROM activity_frame")
    sd = shock_sd(con, list(spend))
    growth = [math.log(b / a) for a, b in zip(list(spend.values()), list(spend.values())[1:], strict=False)]
    mean = sum(growth) / 3
    assert sd["A&E"] == pytest.approx(math.sqrt(sum((g - mean) ** 2 for g in growth) / 2), rel=1e-12)
    assert sd["General practice"] == pytest.approx(0, abs=1e-12)
    assert "Adult social care" not in sd  # no spend: no estimate
    assert shock_sd(con, ["2021-22", "2022-23"]) == {}  # two years: one change, no spread


def test_factors_have_mean_one_and_the_given_spread():
    factors = shock_factors([0.05, 0.0], 200_000, seed=3)
    assert factors[0].mean() == pytest.approx(1, abs=0.001) and factors[0].std() == pytest.approx(0.05, rel=0.01)
    assert (factors[1] == 1).all()
