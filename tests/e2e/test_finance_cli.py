"""`openphm build` costs every activity; `openphm costs` and `openphm budgets` on a generated ICS,
their totals checked against the record by another route (pandas over planning.activity_cost)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pandas as pd
import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from openphm.cli import main; main()", *args], capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def ics(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("finance")
    db = work / "db" / "openphm.duckdb"
    for args in (["generate", "--people", "15000", "--out", str(work / "ics"), "--quiet"],
                 ["ingest", str(work / "ics"), "--db", str(db)]):
        done = run(*args)
        assert done.returncode == 0, done.stderr
    built = run("build", "--db", str(db))
    assert built.returncode == 0, built.stderr
    costs = run("costs", "--db", str(db), "--out", str(work / "costs"))
    assert costs.returncode == 0, costs.stderr
    budgets = run("budgets", "--db", str(db), "--out", str(work / "budgets"))
    assert budgets.returncode == 0, budgets.stderr
    from openphm.ingest.loader import open_store

    _, con = open_store(db)
    activity = con.execute("SELECT CAST(person_id AS VARCHAR) AS person_id, setting, financial_year, "
                           "CAST(cost AS DOUBLE) AS cost FROM planning.activity_cost").df()
    con.close()
    return {"work": work, "db": db, "built": built.stdout, "activity": activity,
            "costs": json.loads((work / "costs" / "costs.json").read_text()),
            "budgets": json.loads((work / "budgets" / "budgets.json").read_text())}


def test_the_build_costs_every_row_of_the_generated_record(ics):
    assert "Costed at 2023-24 prices" in ics["built"]
    assert "No tariff line prices" not in ics["built"]
    assert ics["activity"]["cost"].notna().all()


def test_spend_reconciles_with_the_record(ics):
    report = ics["costs"]
    year = ics["activity"][ics["activity"]["financial_year"] == report["year"]]
    assert report["population_spend"] + report["other_spend"] == pytest.approx(year["cost"].sum(), rel=1e-9)
    by_setting = year.groupby("setting")["cost"].sum()
    for row in report["by_setting"]:
        assert row["total_spend"] == pytest.approx(by_setting.get(row["setting"], 0.0), rel=1e-9, abs=0.01)
    practices = pd.read_csv(ics["work"] / "costs" / "spend_by_practice.csv")
    assert practices["spend"].sum() == pytest.approx(report["population_spend"], rel=1e-9)
    assert practices["people"].sum() == report["people"]


def test_concentration_is_recomputed_from_the_record(ics):
    """The top shares from the people in the report's population, ranked by their costs in the year."""
    report = ics["costs"]
    year = ics["activity"][ics["activity"]["financial_year"] == report["year"]]
    # the population's spend is the report's; its people with any cost are the costliest
    per_person = year.groupby("person_id")["cost"].sum().sort_values(ascending=False)
    n = report["people"]
    top1 = per_person.iloc[: -(-n // 100)].sum()
    # people outside the population (born or arrived in the year) can only push the record's top share up
    assert report["concentration"]["all"]["top"]["1%"] <= top1 / report["population_spend"] + 1e-9
    lorenz = report["concentration"]["all"]["lorenz"]
    assert lorenz[0] == 0 and lorenz[-1] == pytest.approx(1)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(lorenz))
    assert 1 - lorenz[95] == pytest.approx(report["concentration"]["all"]["top"]["5%"], abs=0.01)


def test_budgets_share_out_the_envelope_and_the_reports_are_self_contained(ics):
    budgets = ics["budgets"]
    for level in ("practice", "pcn", "place"):
        frame = pd.read_csv(ics["work"] / "budgets" / f"budgets_by_{level}.csv")
        assert frame["fair_share"].sum() == pytest.approx(budgets["envelope"], rel=1e-9)
        assert set(frame["verdict"]) <= {"within chance", "beyond 95%", "beyond 99.8%"}
    assert budgets["envelope"] == pytest.approx(ics["costs"]["population_spend"], rel=1e-9)
    assert 0 < budgets["r2"]["hospital_spend_in_sample"]["person"] < budgets["r2"]["in_sample"]["person"] < 1
    for page in (ics["work"] / "costs" / "costs.html", ics["work"] / "budgets" / "budgets.html"):
        text = page.read_text()
        assert "<script" not in text and "src=" not in text and "@import" not in text


def test_spend_is_an_evaluation_outcome(ics):
    """The evaluation panel's monthly spend is the record's health care spend of the units' people."""
    import datetime as dt

    from openphm.evaluate.panel import build_panel
    from openphm.evaluate.spec import EvaluationSpec
    from openphm.ingest.loader import open_store

    _, con = open_store(ics["db"])
    units = [r[0] for r in con.execute("SELECT DISTINCT practice_code FROM planning.person "
                                       "WHERE practice_code IS NOT NULL ORDER BY 1").fetchall()]
    spec = EvaluationSpec(name="spend", level="practice", starts={units[0]: dt.date(2024, 4, 1)}, outcomes=["cost"],
                          population="everyone", start=dt.date(2023, 4, 1), end=dt.date(2025, 3, 1))
    panel = build_panel(con, spec).frame
    con.close()
    activity = ics["activity"]
    in_period = activity[(activity["financial_year"].isin(["2023-24", "2024-25"]))]
    health = in_period[in_period["setting"] != "Adult social care"]["cost"].sum()
    got = panel["cost_events"].sum()
    # the panel counts the spend of people registered with a practice on the day (not the unregistered)
    assert 0.9 * health < got <= health * (1 + 1e-9)
    assert (panel["cost"] > 0).all()  # pounds per 1,000 people a month, every practice and month


def test_reconcile_settles_an_actual_year_from_the_records_spend(ics):
    """`openphm riskshare reconcile` on the shipped example agreement: each partner's spend is the record's
    spend on its settings in the year (pandas over planning.activity_cost), 'baseline' budgets are the year
    before's spend plus growth, and the nets place every pound of the total variance."""
    import yaml

    from openphm.finance.tariff import DATA

    year = ics["costs"]["year"]
    out = ics["work"] / "reconcile"
    done = run("riskshare", "reconcile", str(DATA / "example_agreement.yaml"), "--year", year, "--db", str(ics["db"]),
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "reconcile.json").read_text())
    agreement = yaml.safe_load((DATA / "example_agreement.yaml").read_text())
    activity = ics["activity"]
    this_year = activity[activity["financial_year"] == year].groupby("setting")["cost"].sum()
    before = f"{int(year[:4]) - 1}-{year[2:4]}"
    last_year = activity[activity["financial_year"] == before].groupby("setting")["cost"].sum()
    by_id = {p["id"]: p for p in result["partners"]}
    for partner in agreement["partners"]:
        got = by_id[partner["id"]]
        assert got["spend"] == pytest.approx(sum(this_year.get(s, 0.0) for s in partner["bears"]), rel=1e-9)
        growth = partner.get("growth", 0.03)
        assert got["budget"] == pytest.approx(sum(last_year.get(s, 0.0) for s in partner["bears"]) * (1 + growth),
                                              rel=1e-9)
        assert got["variance"] == pytest.approx(got["spend"] - got["budget"], rel=1e-9, abs=0.01)
    assert sum(p["net"] for p in result["partners"]) == pytest.approx(
        sum(p["variance"] for p in result["partners"]), rel=1e-9, abs=0.01)
