"""Cambridge Multimorbidity Score on hand-made patients with hand-computed scores (Payne 2020 weights)."""

import datetime as dt

import duckdb
import polars as pl
import pytest

from openphm.derive.cms import cms_scores, cms_weights

D = dt.date
AS_OF = D(2024, 1, 1)
CONDITIONS = pl.DataFrame([
    # p: dementia 2.50 + COPD 1.46 + hypertension 0.08 = 4.04 (general); mortality 124.42 + 42.50 - 2.09 = 164.83
    ("p", "dementia", D(2019, 1, 1)), ("p", "copd", D(2015, 1, 1)), ("p", "hypertension", D(2010, 1, 1)),
    # q: cancer first recorded in 2017 (more than 5 years before): not counted; diabetes 0.75;
    #    heart failure after the date: not counted
    ("q", "cancer", D(2017, 6, 1)), ("q", "diabetes", D(2020, 1, 1)), ("q", "heart_failure", D(2024, 2, 1)),
    # r: recent cancer 1.53 + SMI (schizophrenia or bipolar) 0.64 = 2.17; osteoporosis is not a CMS condition
    ("r", "cancer", D(2022, 6, 1)), ("r", "smi", D(2000, 1, 1)), ("r", "osteoporosis", D(2020, 1, 1)),
], schema=["person_id", "condition", "first_date"], orient="row")
EVENTS = pl.DataFrame([("s", D(2023, 1, 1), "15188001")],  # hearing loss 0.09
                      schema=["person_id", "event_date", "snomed_code"], orient="row")


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("CREATE SCHEMA record")
    for name, frame in (("condition", CONDITIONS), ("gp_event", EVENTS)):
        c.register("f", frame.to_arrow())
        c.execute(f"CREATE TABLE record.{name} AS SELECT * FROM f")
        c.unregister("f")
    return c


def test_twenty_conditions_with_the_published_general_weights():
    w = cms_weights()
    assert len(w) == 20 and w["general"].sum() == pytest.approx(16.33)
    assert dict(zip(w["cms_condition"], w["general"], strict=True))["dementia"] == 2.50


def test_general_scores_by_hand(con):
    out = {r["person_id"]: r for r in cms_scores(con, AS_OF).iter_rows(named=True)}
    assert out["p"]["cms"] == pytest.approx(4.04) and out["p"]["conditions"] == ["copd", "dementia", "hypertension"]
    assert out["q"]["cms"] == pytest.approx(0.75)
    assert out["r"]["cms"] == pytest.approx(2.17)
    assert out["s"]["cms"] == pytest.approx(0.09) and out["s"]["conditions"] == ["hearing_loss"]


def test_mortality_weights_and_the_date(con):
    out = {r["person_id"]: r["cms"] for r in cms_scores(con, AS_OF, outcome="mortality").iter_rows(named=True)}
    assert out["p"] == pytest.approx(164.83)
    later = {r["person_id"]: r["cms"] for r in cms_scores(con, D(2024, 3, 1)).iter_rows(named=True)}
    assert later["q"] == pytest.approx(0.75 + 1.18)  # heart failure recorded in February
    with pytest.raises(ValueError, match="outcome"):
        cms_scores(con, AS_OF, outcome="admissions")
