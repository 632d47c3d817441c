"""Charlson Comorbidity Index on hand-made patients with hand-computed scores."""

import datetime as dt

import duckdb
import polars as pl
import pytest

from openphm.derive.charlson import charlson_scores

D = dt.date
DIAGNOSES = pl.DataFrame({
    "person_id": ["x", "x", "x", "x", "y", "y", "y", "z", "z", "w"],
    "admission_date": [D(2020, 1, 1), D(2020, 1, 1), D(2022, 6, 1), D(2023, 3, 1), D(2021, 5, 1), D(2021, 5, 1),
                       D(2021, 5, 1), D(2019, 1, 1), D(2023, 6, 1), D(2022, 1, 1)],
    "code": ["I219", "I500", "E119", "E112", "C18X", "C787", "K703", "J449", "F03X", "R074"],
})


@pytest.fixture
def con():
    c = duckdb.connect()
    c.register("d", DIAGNOSES.to_arrow())
    c.execute("CREATE TABLE hospital_diagnosis AS SELECT person_id, admission_date, code FROM d")
    return c


def scores(con, as_of, **kw) -> dict[str, tuple[int, list[str]]]:
    out = charlson_scores(con, as_of, diagnoses="hospital_diagnosis", **kw)
    return {r["person_id"]: (r["charlson_score"], r["categories"]) for r in out.iter_rows(named=True)}


def test_original_weights_with_hierarchy(con):
    got = scores(con, D(2023, 12, 31), weights="charlson")
    # x: MI 1 + CHF 1 + diabetes with complications 2 (uncomplicated diabetes not counted) = 4
    assert got["x"] == (4, ["chf", "diabwc", "mi"])
    # y: metastatic solid tumour 6 (any malignancy not counted) + mild liver disease 1 = 7
    assert got["y"] == (7, ["metacanc", "mld"])
    # z: COPD 1 + dementia 1 = 2; w: chest pain is no Charlson condition
    assert got["z"] == (2, ["cpd", "dementia"])
    assert "w" not in got


def test_quan_weights_and_scores_at_a_date(con):
    got = scores(con, D(2023, 12, 31), weights="quan")
    # Quan 2011: MI 0, CHF 2, diabetes with complications 1 -> 3; metastatic 6 + mild liver 2 -> 8;
    # COPD 1 + dementia 2 -> 3
    assert got["x"][0] == 3 and got["y"][0] == 8 and got["z"][0] == 3
    earlier = scores(con, D(2022, 12, 31), weights="charlson")
    # by the end of 2022 x had only uncomplicated diabetes: MI 1 + CHF 1 + diabetes 1 = 3; z had no dementia yet
    assert earlier["x"] == (3, ["chf", "diab", "mi"])
    assert earlier["z"] == (1, ["cpd"])
    recent = scores(con, D(2023, 12, 31), weights="charlson", lookback_years=2)
    assert recent["x"] == (2, ["diabwc"])  # the 2020 MI and CHF fall outside two years
    with pytest.raises(ValueError, match="weights must be one of"):
        charlson_scores(con, D(2023, 1, 1), weights="elixhauser", diagnoses="hospital_diagnosis")
