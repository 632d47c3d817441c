"""The new care model: biased selection of practices and a true effect the data can show."""

import json

import polars as pl


def test_care_model_practices_are_larger_more_deprived_and_the_effect_is_in_the_data(care_model_ics):
    model = json.loads((care_model_ics / "truth" / "care_model.json").read_text())
    assert model["enabled"] and model["effect"] == -0.2
    joined = set(model["practices"])
    start = pl.lit(model["start_date"]).str.to_date()

    people = pl.read_parquet(care_model_ics / "truth" / "people.parquet")
    reg = pl.read_parquet(sorted((care_model_ics / "extracts" / "gp_registrations").glob("*.parquet")))
    lsoa = pl.read_csv(care_model_ics / "reference" / "postcode_lsoa.csv").join(
        pl.read_csv(care_model_ics / "reference" / "lsoa_imd2019.csv"), on="lsoa_code")
    practices = (reg.join(lsoa, on="postcode").group_by("practice_code")
                 .agg(pl.len().alias("size"), pl.col("imd_decile").mean().alias("decile"))
                 .with_columns(pl.col("practice_code").is_in(joined).alias("joined")))
    means = practices.group_by("joined").agg(pl.col("size").mean(), pl.col("decile").mean())
    j, others = means.filter(pl.col("joined")), means.filter(~pl.col("joined"))
    assert j["size"].item() > others["size"].item()
    assert j["decile"].item() < others["decile"].item()  # lower decile = more deprived

    apc = pl.read_parquet(sorted((care_model_ics / "extracts" / "apc").glob("*.parquet")))
    t = pl.read_parquet(sorted((care_model_ics / "truth" / "records" / "apc").glob("*.parquet")))
    em = (apc.join(t, on="record_id").join(people.select("person_id", "date_of_birth"), on="person_id")
          .filter(pl.col("admission_method").str.starts_with("2") & (pl.col("discharge_method") != "4"))
          .with_columns(((pl.col("admission_date") - pl.col("date_of_birth_right")).dt.total_days() / 365.25)
                        .alias("age"),
                        pl.col("gp_practice_code").is_in(joined).alias("joined"),
                        (pl.col("admission_date") >= start).alias("post")))
    eligible = em.filter((pl.col("age") >= 75) | (pl.col("admission_source") == "85"))
    counts = eligible.group_by("joined", "post").len()

    def n(joined_: bool, post: bool) -> int:
        return counts.filter((pl.col("joined") == joined_) & (pl.col("post") == post))["len"].item()

    # Difference in differences of counts: the other practices carry the secular change.
    ratio = (n(True, True) / n(True, False)) / (n(False, True) / n(False, False))
    assert 0.65 < ratio < 0.95, ratio
    # The ineligible (under 75, not in a care home) are untouched.
    rest = em.filter((pl.col("age") < 70) & (pl.col("admission_source") != "85")).group_by("joined", "post").len()
    r = {(a, b): c for a, b, c in rest.iter_rows()}
    placebo = (r[(True, True)] / r[(True, False)]) / (r[(False, True)] / r[(False, False)])
    assert 0.88 < placebo < 1.12, placebo
