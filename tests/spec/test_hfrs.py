"""Hospital Frailty Risk Score on hand-made patients with hand-computed scores (Gilbert 2018 points)."""

import datetime as dt

import duckdb
import polars as pl
import pytest

from openphm.derive.hfrs import hfrs_scores, hfrs_weights

D = dt.date
AS_OF = D(2024, 1, 1)
DIAGNOSES = pl.DataFrame([
    # x: F00 7.1 + W19 3.2 + N39 3.2 + R29 3.6 + S72 1.4 = 18.5 (high); F00 twice counts once;
    #    the I10 diagnosis scores nothing; the 2021 G81 is outside the two years
    ("x", D(2023, 5, 1), "F001"), ("x", D(2023, 5, 1), "W19X"), ("x", D(2023, 9, 1), "N390"),
    ("x", D(2023, 9, 1), "F009"), ("x", D(2022, 2, 1), "R296"), ("x", D(2022, 2, 1), "S720"),
    ("x", D(2023, 9, 1), "I10X"), ("x", D(2021, 12, 1), "G819"),
    # y: R41 2.7 + E86 2.3 = 5.0 exactly: intermediate (5 to 15)
    ("y", D(2023, 12, 31), "R410"), ("y", D(2023, 1, 2), "E86X"),
    # z: M81 1.4 + Z74 1.1 + R50 0.1 = 2.6 (low); the L89 after the index date is not counted
    ("z", D(2022, 6, 1), "M819"), ("z", D(2023, 6, 1), "Z740"), ("z", D(2023, 6, 1), "R509"),
    ("z", D(2024, 1, 2), "L890"),
    # w: nothing that scores
    ("w", D(2023, 6, 1), "J449"),
], schema=["person_id", "admission_date", "code"], orient="row")


@pytest.fixture
def con():
    c = duckdb.connect()
    c.register("d", DIAGNOSES.to_arrow())
    c.execute("CREATE TABLE hospital_diagnosis AS SELECT * FROM d")
    return c


def test_the_published_table_has_109_codes():
    w = hfrs_weights()
    assert len(w) == w["icd10_category"].n_unique() == 109
    assert w["weight"].sum() == pytest.approx(173.2)
    assert dict(zip(w["icd10_category"], w["weight"], strict=True))["F00"] == 7.1


def test_scores_and_categories_by_hand(con):
    out = {r["person_id"]: r for r in hfrs_scores(con, AS_OF, diagnoses="hospital_diagnosis").iter_rows(named=True)}
    assert set(out) == {"x", "y", "z"}
    assert out["x"]["hfrs"] == pytest.approx(18.5) and out["x"]["hfrs_category"] == "high"
    assert out["x"]["categories"] == ["F00", "N39", "R29", "S72", "W19"]
    assert out["y"]["hfrs"] == pytest.approx(5.0) and out["y"]["hfrs_category"] == "intermediate"
    assert out["z"]["hfrs"] == pytest.approx(2.6) and out["z"]["hfrs_category"] == "low"


def test_the_score_moves_with_the_index_date(con):
    later = {r["person_id"]: r["hfrs"] for r in hfrs_scores(con, D(2024, 3, 1), diagnoses="hospital_diagnosis")
             .iter_rows(named=True)}
    # by March 2024 z's pressure ulcer (L89 1.7) counts and x's 2022 codes (R29, S72) have aged out
    assert later["z"] == pytest.approx(2.6 + 1.7)
    assert later["x"] == pytest.approx(7.1 + 3.2 + 3.2)
