"""The new care model: biased selection of practices, and a true effect that is exactly the
difference from the same seed run without it."""

import datetime as dt
import json

import numpy as np
import polars as pl

from openphm.synth.generate import GenerateOptions, generate_ics
from openphm.synth.simulate import setup


def test_larger_and_more_deprived_practices_are_likelier_to_join():
    sim = setup(400_000, 5, 3, dt.date(2021, 4, 1), True, None, -0.2)
    geo, people = sim.geo, sim.people
    practice = people.view("practice")
    dep = geo.lsoa_deprivation[geo.postcode_lsoa[people.view("postcode")]]
    size = np.bincount(practice, minlength=len(geo.practice_code))
    mean_dep = np.bincount(practice, dep, len(geo.practice_code)) / size
    joined = np.zeros(len(size), dtype=bool)
    joined[sim.care_model.practices] = True
    assert 0.2 < joined.mean() < 0.4
    assert size[joined].mean() > 1.1 * size[~joined].mean()
    assert mean_dep[joined].mean() > mean_dep[~joined].mean() + 0.1


def eligible_emergency_admissions(folder) -> pl.DataFrame:
    people = pl.read_parquet(folder / "truth" / "people.parquet").select("person_id", "date_of_birth")
    apc = pl.read_parquet(sorted((folder / "extracts" / "apc").glob("*.parquet")))
    t = pl.read_parquet(sorted((folder / "truth" / "records" / "apc").glob("*.parquet")))
    return (apc.join(t, on="record_id").join(people, on="person_id", suffix="_true")
            .filter(pl.col("admission_method").str.starts_with("2"))
            .with_columns(((pl.col("admission_date") - pl.col("date_of_birth_true")).dt.total_days() / 365.25)
                          .alias("age")))


def test_effect_equals_the_difference_from_the_counterfactual_run(tmp_path):
    runs = {}
    for name, on in (("with", True), ("without", False)):
        out = tmp_path / name
        generate_ics(GenerateOptions(people=30_000, years=4, seed=5, out=out, format="parquet", care_model=on))
        runs[name] = out
    model = json.loads((runs["with"] / "truth" / "care_model.json").read_text())
    assert model["effect"] == -0.2 and model["start_date"] == "2023-04-01"
    start = dt.date.fromisoformat(model["start_date"])

    def classify(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            (pl.col("gp_practice_code").is_in(model["practices"]) & (pl.col("admission_date") >= start)
             & ((pl.col("age") >= 75) | (pl.col("admission_source") == "85"))).alias("treated"))

    with_ = classify(eligible_emergency_admissions(runs["with"]))
    without = classify(eligible_emergency_admissions(runs["without"]))
    # The run with the model holds a subset of the same events ...
    key = ["person_id", "admission_date", "discharge_date", "diag_01", "admission_method"]
    assert with_.join(without, on=key, how="anti").height == 0
    # ... and every event it lacks was eligible: a participating practice, after the start, a person
    # aged 75+ (the generator takes age at the middle of each exposure period, hence 74.5) or in a care home.
    gone = without.join(with_, on=key, how="anti")
    assert gone.height > 100
    assert gone["gp_practice_code"].is_in(model["practices"]).all()
    assert (gone["admission_date"] >= start).all()
    assert ((gone["age"] >= 74.5) | (gone["admission_source"] == "85")).all()
    treated_with = with_.filter(pl.col("treated")).height
    treated_without = without.filter(pl.col("treated")).height
    assert treated_without > 300
    ratio = treated_with / treated_without
    se = np.sqrt(0.8 * 0.2 / treated_without)
    # Readmissions after a prevented admission go with it, so the ratio sits a little below 0.8.
    assert 0.8 - 0.03 - 4 * se < ratio < 0.8 + 4 * se, ratio
    # The truth says how many events were prevented, and that is exactly the difference.
    prevented = {r["outcome"]: r["events_prevented"] for r in model["events_prevented"]}
    assert prevented["emergency admissions"] == gone.height
    ae = {name: sum(pl.read_parquet(p).height for p in (out / "extracts" / "ecds").glob("*.parquet"))
          for name, out in runs.items()}
    assert prevented["A&E attendances"] == ae["without"] - ae["with"] > 0
    # By practice and month: the events there would have been are the same in both runs, every
    # prevented one is at a joining practice from its start, and they add up to the totals.
    cells = {name: pl.read_csv(out / "truth" / "care_model_effects.csv", try_parse_dates=True)
             for name, out in runs.items()}
    key = ["practice_code", "month", "outcome", "group"]
    both = cells["with"].join(cells["without"], on=key, how="full", suffix="_without", coalesce=True)
    assert both["events"].to_list() == both["events_without"].to_list()
    assert cells["without"]["prevented"].sum() == 0
    off = cells["with"].filter(~pl.col("practice_code").is_in(model["practices"]) | (pl.col("month") < start))
    assert off["prevented"].sum() == 0
    totals = cells["with"].group_by("outcome").agg(pl.col("prevented").sum())
    assert dict(totals.iter_rows()) == prevented
    assert cells["with"].filter(pl.col("group") == "other")["prevented"].sum() == 0


def test_staggered_adoption_starts_the_joiners_in_waves(tmp_path):
    generate_ics(GenerateOptions(people=100_000, years=4, seed=9, out=tmp_path, format="parquet", care_model=True,
                                 care_model_waves=3))
    model = json.loads((tmp_path / "truth" / "care_model.json").read_text())
    starts = model["practice_starts"]
    assert sorted(set(starts.values())) == ["2023-04-01", "2023-10-01", "2024-04-01"]
    assert set(starts) == set(model["practices"])
    cells = pl.read_csv(tmp_path / "truth" / "care_model_effects.csv", try_parse_dates=True)
    first_prevented = (cells.filter(pl.col("prevented") > 0).group_by("practice_code").agg(pl.col("month").min())
                       .iter_rows())
    for practice, month in first_prevented:
        assert month >= dt.date.fromisoformat(starts[practice])
