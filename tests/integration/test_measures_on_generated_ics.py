"""Indicators on a generated ICS: recomputed independently with plain pandas from the raw files,
the injected place variation found and flagged, and the care model's step change seen by SPC."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest
from tests.integration.conftest import ingest_link_build

from openphm.measures.engine import run_measures
from openphm.variation import funnel, xmr


@pytest.fixture(scope="module")
def engine(care_model_ics, tmp_path_factory):
    """The 40,000-person care-model ICS ingested, linked, built, and every indicator computed."""
    con = ingest_link_build(care_model_ics, tmp_path_factory.mktemp("measures") / "openphm.duckdb")
    run_measures(con)
    results = con.execute("SELECT * FROM measures.measure_result").df()
    return {"con": con, "results": results, "ics": care_model_ics}


# ---- an independent recomputation in plain pandas --------------------------------------------------

def _linked(con, ics: Path, source: str) -> pd.DataFrame:
    """A source's raw extract files read with pandas, each row given the person the linkage chose
    (linkage itself is scored against the truth in test_record_pipeline)."""
    links = con.execute("""SELECT m.path, l.row_number, CAST(l.person_id AS VARCHAR) AS person_id
                           FROM link.record_person l JOIN ingest.manifest m USING (file_id)
                           WHERE l.source = ? AND m.status = 'active'""", [source]).df()
    frames = []
    for path in sorted((ics / "extracts" / source).glob("*.parquet")):
        raw = pd.read_parquet(path)
        raw["row_number"] = np.arange(1, len(raw) + 1)
        raw["path"] = str(path)
        frames.append(raw)
    return pd.concat(frames).merge(links, on=["path", "row_number"], how="inner")


def _population(regs: pd.DataFrame, deaths: pd.DataFrame, start: dt.date) -> pd.DataFrame:
    """Everyone registered in the year and alive at its start: practice, place and mid-year membership."""
    mid, end = pd.Timestamp(start.year, 10, 1), pd.Timestamp(start.year + 1, 4, 1)
    r = regs[(regs["registration_start"] < end)
             & (regs["registration_end"].isna() | (regs["registration_end"] > pd.Timestamp(start)))].copy()
    r["covers_mid"] = (r["registration_start"] <= mid) & (r["registration_end"].isna() | (r["registration_end"] > mid))
    r = r.sort_values(["person_id", "covers_mid", "registration_start"])
    people = r.groupby("person_id").agg(practice=("practice_code", "last"), place=("place_code", "last"),
                                        registered_mid=("covers_mid", "any")).reset_index()
    people = people.merge(deaths, on="person_id", how="left")
    people = people[people["date_of_death"].isna() | (people["date_of_death"] >= pd.Timestamp(start))]
    people["in_population"] = people["registered_mid"] & (people["date_of_death"].isna()
                                                          | (people["date_of_death"] > mid))
    return people


@pytest.fixture(scope="module")
def raw(engine):
    con, ics = engine["con"], engine["ics"]
    organisations = pd.read_csv(ics / "reference" / "organisations.csv", dtype=str)
    regs = _linked(con, ics, "gp_registrations").merge(
        organisations[["practice_code", "place_code"]].drop_duplicates(), on="practice_code", how="left")
    for col in ("registration_start", "registration_end"):
        regs[col] = pd.to_datetime(regs[col])
    deaths = _linked(con, ics, "deaths")
    deaths = deaths.assign(date_of_death=pd.to_datetime(deaths["date_of_death"])).groupby(
        "person_id", as_index=False)["date_of_death"].min()
    return {"regs": regs, "deaths": deaths, "ecds": _linked(con, ics, "ecds"), "apc": _linked(con, ics, "apc"),
            "op": _linked(con, ics, "op")}


def _engine_rows(results: pd.DataFrame, measure: str, level: str, period_type: str = "financial_year"):
    rows = results[(results["measure_id"] == measure) & (results["level"] == level)
                   & (results["period_type"] == period_type)]
    return {(r.period, r.unit): (r.numerator, r.denominator) for r in rows.itertuples()}


def _fy_starts(results: pd.DataFrame) -> list[dt.date]:
    labels = sorted(results.loc[results["period_type"] == "financial_year", "period"].unique())
    return [dt.date(int(label[:4]), 4, 1) for label in labels]


def _in_year(dates: pd.Series, start: dt.date) -> pd.Series:
    d = pd.to_datetime(dates)
    return (d >= pd.Timestamp(start)) & (d < pd.Timestamp(start.year + 1, 4, 1))


def test_ae_attendances_by_practice_match_a_pandas_recomputation(engine, raw):
    expected = {}
    for start in _fy_starts(engine["results"]):
        people = _population(raw["regs"], raw["deaths"], start)
        label = f"{start.year}-{(start.year + 1) % 100:02d}"
        ae = raw["ecds"][_in_year(raw["ecds"]["arrival_date"], start)].merge(people, on="person_id")
        num = ae.groupby("practice").size()
        den = people[people["in_population"]].groupby("practice").size()
        for practice in den.index.union(num.index):
            expected[(label, practice)] = (float(num.get(practice, 0)), float(den.get(practice, 0)))
    assert _engine_rows(engine["results"], "ae_attendances", "practice") == expected
    assert len(expected) >= 20


def test_first_outpatient_attendances_monthly_for_the_ics_match(engine, raw):
    start = _fy_starts(engine["results"])[2]
    people = _population(raw["regs"], raw["deaths"], start)
    op = raw["op"][_in_year(raw["op"]["appointment_date"], start) & (raw["op"]["first_attendance"] == "1")
                   & raw["op"]["attendance_status"].isin(["5", "6"])].merge(people, on="person_id")
    months = pd.to_datetime(op["appointment_date"]).dt.strftime("%Y-%m").value_counts()
    got = _engine_rows(engine["results"], "first_outpatient_attendances", "ics", "month")
    population = int(people["in_population"].sum())
    for month, count in months.items():
        days = pd.Period(month).days_in_month
        assert got[(month, "ICS")] == (pytest.approx(float(count)), pytest.approx(population * days / 365.25))
    assert len(months) == 12


def test_delayed_discharge_by_place_matches_a_pandas_recomputation(engine, raw):
    expected = {}
    apc = raw["apc"].copy()
    for col in ("admission_date", "discharge_date", "discharge_ready_date"):
        apc[col] = pd.to_datetime(apc[col])
    apc["los"] = (apc["discharge_date"] - apc["admission_date"]).dt.days
    apc["delayed"] = (apc["discharge_date"] - apc["discharge_ready_date"].fillna(apc["discharge_date"])).dt.days
    apc["delayed"] = apc["delayed"].clip(lower=0)
    for start in _fy_starts(engine["results"]):
        people = _population(raw["regs"], raw["deaths"], start)
        label = f"{start.year}-{(start.year + 1) % 100:02d}"
        spells = apc[_in_year(apc["discharge_date"], start)].merge(people, on="person_id")
        sums = spells.groupby("place")[["delayed", "los"]].sum()
        for place, row in sums.iterrows():
            expected[(label, place)] = (float(row["delayed"]), float(row["los"]))
    assert _engine_rows(engine["results"], "delayed_discharge_bed_days", "place") == expected


# ---- the injected variation, found ------------------------------------------------------------------

def _places(engine, measure: str, period: str) -> pd.DataFrame:
    r = engine["results"]
    rows = r[(r["measure_id"] == measure) & (r["level"] == "place") & (r["period"] == period)]
    truth = pd.read_csv(engine["ics"] / "truth" / "places.csv")
    return rows.merge(truth, left_on="unit", right_on="place_code").reset_index(drop=True)


def test_delayed_discharge_variation_between_places_is_found_and_flagged(engine):
    places = _places(engine, "delayed_discharge_bed_days", "2023-24")
    assert len(places) >= 3
    # the engine orders places as the generator's targets do, and the spread is about the injected 9x
    assert list(places.sort_values("value")["unit"]) == list(places.sort_values("delayed_bed_day_share_target")["unit"])
    ratio = places["value"].max() / places["value"].min()
    injected = places["delayed_bed_day_share_target"].max() / places["delayed_bed_day_share_target"].min()
    assert injected == pytest.approx(9.0)
    assert 5.0 < ratio < 15.0
    flags = funnel(places["numerator"], places["denominator"], kind="rate")["flag"]
    assert flags[places["value"].idxmax()] == "high_998"
    assert flags[places["value"].idxmin()] == "low_998"


def test_smi_care_coordination_variation_between_places_is_found_and_flagged(engine):
    places = _places(engine, "smi_care_coordinator", "2023-24")
    assert list(places.sort_values("value")["unit"]) == list(
        places.sort_values("smi_care_coordinator_coverage")["unit"])
    ratio = places["value"].max() / places["value"].min()
    assert 2.0 < ratio < 6.0  # injected about 3x; small numbers of people with SMI per place
    flags = funnel(places["numerator"], places["denominator"], kind="proportion")["flag"]
    assert flags[places["value"].idxmax()] in ("high_95", "high_998")
    assert flags[places["value"].idxmin()] == "low_998"


# ---- the care model's step change, seen by SPC ------------------------------------------------------

def _monthly_rate(engine, practices: list[str]) -> pd.DataFrame:
    r = engine["results"]
    rows = r[(r["measure_id"] == "emergency_admissions_75plus") & (r["level"] == "practice")
             & (r["period_type"] == "month") & r["unit"].isin(practices)]
    monthly = rows.groupby("period_start")[["numerator", "denominator"]].sum().sort_index()
    monthly["rate"] = monthly["numerator"] / monthly["denominator"] * 1000
    return monthly


def test_spc_on_the_care_model_practices_shows_the_step_change(engine):
    model = json.loads((engine["ics"] / "truth" / "care_model.json").read_text())
    start = pd.Timestamp(model["start_date"])
    joined = _monthly_rate(engine, model["practices"])
    assert len(joined) == 60
    after = np.asarray(joined.index >= start)
    chart = xmr(joined["rate"].to_numpy())
    low = chart["special_cause"].to_numpy() & (chart["value"] < chart["mean"]).to_numpy()
    # The chart flags the fall after the start (a low special cause) and none before it. Two practices'
    # monthly counts are noisy: simulated with this chart, a 20% step over 24 + 36 months of about 70
    # events a month gives such flags in about 85-90% of draws but a full run of 7 months below the
    # mean in about 75-85%, so the number of flagged months is left to the draw; the step itself is
    # held below by the rebased chart's means (about 4 standard errors from the 0.9 bound)
    assert low[after].any()
    assert not low[~after].any()
    rebased = xmr(joined["rate"].to_numpy(), rebase_at=int(np.argmax(after)))
    before_mean, after_mean = rebased["mean"].iloc[0], rebased["mean"].iloc[-1]
    assert after_mean < 0.9 * before_mean
    # the practices that did not join show no such step
    others = engine["results"].query("measure_id == 'emergency_admissions_75plus' and level == 'practice'")["unit"]
    rest = _monthly_rate(engine, sorted(set(others) - set(model["practices"])))
    rest_after = rest.loc[rest.index >= start, "rate"].mean() / rest.loc[rest.index < start, "rate"].mean()
    assert after_mean / before_mean < rest_after - 0.08


# ---- inequality and opportunity ------------------------------------------------------------------

def test_inequality_and_opportunity_tables(engine):
    con = engine["con"]
    # the standardised ratio (no small-count suppression, unlike the DSR, so every quintile has a value)
    inequality = con.execute("SELECT * FROM measures.inequality WHERE measure_id = 'emergency_admissions_sar'").df()
    assert len(inequality) == 5
    # the generator makes emergency admissions likelier with deprivation: a positive slope, Core20 higher
    # (3 or 4 quintiles in a 40,000-person ICS, so the intervals are wide: the point estimates are checked)
    assert (inequality["sii"] > 0).all() and (inequality["core20_ratio"] > 1.2).all()
    sar = con.execute("SELECT * FROM measures.opportunity WHERE measure_id = 'emergency_admissions_sar'").df()
    assert len(sar) > 0 and (sar["opportunity"] > 0).all() and (sar["value"] > sar["best_quartile_value"]).all()
    stay = con.execute("""SELECT avg(length_of_stay) FROM planning.inpatient_spell
                          WHERE admission_type = 'emergency' AND admission_date >= DATE '2023-04-01'
                          AND admission_date < DATE '2024-04-01'""").fetchone()[0]
    year = sar[sar["period"] == "2023-24"]
    assert year["bed_days"].to_numpy() == pytest.approx(year["opportunity"].to_numpy() * stay)
    # in pounds: the admissions avoided at the year's mean cost of an emergency spell, from the costed record
    spell = con.execute("""SELECT avg(CAST(cost AS DOUBLE)) FROM planning.inpatient_spell
                           WHERE admission_type = 'emergency' AND admission_date >= DATE '2023-04-01'
                           AND admission_date < DATE '2024-04-01'""").fetchone()[0]
    assert spell > 1000 and year["pounds"].to_numpy() == pytest.approx(year["opportunity"].to_numpy() * spell)
    # a practice's opportunity is its observed minus its expected at the best quartile's ratio
    row = year.iloc[0]
    assert row["opportunity"] == pytest.approx(row["numerator"] - row["denominator"] * row["best_quartile_value"] / 100)


# ---- population segments ----------------------------------------------------------------------------

def test_everyone_registered_is_in_exactly_one_segment_each_month(engine):
    from openphm.segments.run import run_segments

    con = engine["con"]
    months = [dt.date(2023, 4, 1), dt.date(2023, 5, 1), dt.date(2024, 4, 1)]
    assert run_segments(con, months=months) == 3
    for month in months:
        registered = con.execute(f"""
            SELECT count(DISTINCT r.person_id) FROM planning.registration r JOIN planning.person p USING (person_id)
            WHERE r.registration_start < DATE '{month}'
              AND (r.registration_end IS NULL OR r.registration_end >= DATE '{month}')
              AND (p.date_of_death IS NULL OR p.date_of_death >= DATE '{month}')""").fetchone()[0]
        in_spells = con.execute(f"""SELECT count(*), count(DISTINCT person_id) FROM segments.person_segment
                                    WHERE from_month <= DATE '{month}' AND to_month >= DATE '{month}'""").fetchone()
        assert in_spells == (registered, registered)
        assert con.execute(f"SELECT sum(people) FROM segments.size WHERE month = DATE '{month}'").fetchone()[0] \
            == registered
    # transitions account for everyone segmented in April 2023
    moved = con.execute("SELECT sum(people) FROM segments.transition WHERE from_year = DATE '2023-04-01'").fetchone()
    segmented = con.execute("SELECT sum(people) FROM segments.size WHERE month = DATE '2023-04-01'").fetchone()
    assert moved == segmented
    # need rises across the segments: the frail have several times the emergency admissions of the healthy
    rates = dict(con.execute("SELECT segment, emergency_admissions_per_1000 FROM segments.activity "
                             "WHERE year_start = DATE '2023-04-01'").fetchall())
    assert rates["frailty"] > 4 * rates["healthy"]
    assert rates["short_period_of_decline"] > rates["frailty"]


# ---- risk, explanations and case-finding lists --------------------------------------------------------

def test_no_feature_uses_information_from_on_or_after_the_index_date(engine):
    """Features at a date from the whole record equal those from a record cut off the day before."""
    from openphm.derive.features import build_features, feature_names

    con = engine["con"]
    index = dt.date(2024, 1, 1)
    build_features(con, index, table="full_features")
    full = con.execute(f"SELECT CAST(person_id AS VARCHAR) AS person_id, {', '.join(feature_names())} "
                       "FROM full_features ORDER BY 1").df()
    cut = duckdb.connect()
    cut.execute("CREATE SCHEMA planning; CREATE SCHEMA reference")
    dates = {"inpatient_spell": "admission_date", "hospital_diagnosis": "admission_date",
             "ae_attendance": "arrival_date", "outpatient_appointment": "appointment_date",
             "gp_appointment": "appointment_date", "gp_event": "event_date", "community_contact": "contact_date",
             "mental_health_contact": "contact_date", "condition": "first_date"}
    for table in ("person", "registration", *dates):
        frame = con.execute(f"SELECT * FROM planning.{table}").arrow()
        cut.register("t", frame)
        keep = f"WHERE {dates[table]} < DATE '{index}'" if table in dates else ""
        cut.execute(f"CREATE TABLE planning.{table} AS SELECT * FROM t {keep}")
        cut.unregister("t")
    # what is known about a person's registration and death before the date stays; after it, nothing
    cut.execute(f"""UPDATE planning.registration SET registration_end = NULL
                    WHERE registration_end >= DATE '{index}'""")
    cut.execute(f"DELETE FROM planning.registration WHERE registration_start >= DATE '{index}'")
    cut.execute(f"UPDATE planning.person SET date_of_death = NULL WHERE date_of_death >= DATE '{index}'")
    cut.register("imd", con.execute("SELECT * FROM reference.lsoa_imd2019").arrow())
    cut.execute("CREATE TABLE reference.lsoa_imd2019 AS SELECT * FROM imd")
    assert build_features(cut, index, table="cut_features") == len(full)
    truncated = cut.execute(f"SELECT CAST(person_id AS VARCHAR) AS person_id, {', '.join(feature_names())} "
                            "FROM cut_features ORDER BY 1").df()
    pd.testing.assert_frame_equal(full, truncated)
    # and something did happen on or after the date, so the comparison is not empty
    assert con.execute(f"SELECT count(*) FROM planning.inpatient_spell WHERE admission_date >= DATE '{index}'"
                       ).fetchone()[0] > 1000


SCORED_ON = dt.date(2025, 10, 1)


@pytest.fixture(scope="module")
def scored(engine, tmp_path_factory):
    """The risk models trained at their default dates and everyone scored on SCORED_ON into risk.score:
    what the risk test checks and what the case-finding lists run on, so that either runs alone."""
    from openphm.risk.score import score_population
    from openphm.risk.train import train_and_report
    from openphm.synth.truth_readers import true_records, true_yearly_risk

    out = tmp_path_factory.mktemp("risk")
    truth = engine["ics"] / "truth"
    report = train_and_report(engine["con"], out, true_records=true_records(truth), true_risk=true_yearly_risk(truth))
    return {"report": report, "out": out, "scores": score_population(engine["con"], out, SCORED_ON)}


def test_risk_models_report_and_scores_with_reasons(engine, scored):
    con, out, report = engine["con"], scored["out"], scored["report"]
    saved = json.loads((out / "report.json").read_text())
    for name in ("logistic", "lightgbm"):
        m = saved["models"][name]
        for key in ("auroc", "auroc_ci", "auprc", "calibration_intercept", "calibration_slope", "ppv_top_1pct",
                    "sensitivity_top_5pct", "ceiling_auroc"):
            assert key in m, (name, key)
        assert 0.68 < m["auroc"] <= m["ceiling_auroc"] + 0.01
        assert m["auroc_ci"][0] < m["auroc"] < m["auroc_ci"][1]
        assert abs(m["calibration_slope"] - 1) < 0.35 and {r["by"] for r in m["fairness"]} == {
            "sex", "age band", "ethnicity", "IMD quintile"}
    assert report["train_date"] < report["validation_date"]
    html = (out / "report.html").read_text()
    assert "Model card" in html and "Fairness" in html and "<script" not in html
    scores = scored["scores"]
    registered = con.execute(f"SELECT count(*) FROM risk.score WHERE as_of = DATE '{SCORED_ON}'").fetchone()[0]
    assert registered == len(scores) > 30_000
    top = scores.filter(pl.col("centile") == 100)
    assert top["reasons"].list.len().min() >= 1  # everyone at the top has a reason in words
    assert top["risk"].min() > scores["risk"].median()


def test_case_finding_lists_and_the_audited_direct_care_export(engine, scored, tmp_path):
    """Runs on the scores of its own fixture (not on another test's), so it passes alone."""
    from openphm.engine.duckdb_store import Store
    from openphm.lists.run import ListError, export_list, run_lists

    con = engine["con"]
    store = Store(Path(con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
                       .fetchone()[0]))
    counts = run_lists(con)
    assert set(counts["list_id"]) >= {"frail_high_risk_no_coordinator", "rising_risk_multimorbidity"}
    members = con.execute("SELECT * FROM lists.member WHERE list_id = 'frail_high_risk_no_coordinator'").df()
    assert len(members) > 0 and (pd.to_datetime(members["as_of"]).dt.date == SCORED_ON).all()
    # everyone on it meets every criterion at the scoring date, ordered by risk within each practice
    assert (members.groupby("practice_code")["risk"].apply(lambda r: r.is_monotonic_decreasing)).all()
    assert all(len(r) == 3 for r in members["reasons"])
    practice = members["practice_code"].iloc[0]
    out = tmp_path / "list.csv"
    with pytest.raises(ListError, match="direct care only"):
        export_list(con, store, "frail_high_risk_no_coordinator", practice, out, purpose=None)
    assert not out.exists()
    n = export_list(con, store, "frail_high_risk_no_coordinator", practice, out, purpose="direct_care",
                    user="test")
    exported = pd.read_csv(out, dtype=str)
    assert len(exported) == n == (members["practice_code"] == practice).sum()
    assert exported["nhs_number"].str.fullmatch(r"\d{10}").all()
    audit = con.execute("SELECT stated_user, outcome, details::JSON->>'purpose', details::JSON->>'list_id', "
                        "details::JSON->>'practice_code', CAST(details::JSON->>'people' AS INTEGER) "
                        "FROM audit.log ORDER BY seq").fetchall()
    assert audit == [(None, "refused", None, "frail_high_risk_no_coordinator", practice, None),
                     ("test", "allowed", "direct_care", "frail_high_risk_no_coordinator", practice, n)]
