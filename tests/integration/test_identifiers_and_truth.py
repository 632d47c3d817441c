"""NHS numbers are as real sources hold them, and truth/ accounts for every record."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from openphm.identity.nhs_number import is_valid

NHS_SOURCES = ["gp_registrations", "gp_events", "gp_appointments", "apc", "op", "ecds", "csds", "mhsds",
               "deaths"]
ALL_SOURCES = [*NHS_SOURCES, "asc", "vcse"]


def read_source(folder: Path, source: str) -> pl.DataFrame:
    return pl.read_parquet(sorted((folder / "extracts" / source).glob("*.parquet")))


def truth(folder: Path, name: str) -> pl.DataFrame:
    path = folder / "truth" / name
    return pl.read_parquet(sorted(path.glob("*.parquet")) if path.is_dir() else path.with_suffix(".parquet"))


@pytest.mark.parametrize("source", NHS_SOURCES)
def test_nhs_numbers_mostly_valid_and_invalid_ones_are_injected_errors(care_model_ics, source):
    records = read_source(care_model_ics, source).select("record_id", "nhs_number")
    t = truth(care_model_ics, f"records/{source}").select("record_id", "person_id", "nhs_number_error")
    people = truth(care_model_ics, "people").select("person_id", pl.col("nhs_number").alias("true_nhs"))
    joined = records.join(t, on="record_id", how="left").join(people, on="person_id", how="left")
    assert joined["person_id"].null_count() == 0
    valid = np.array([is_valid(x) for x in joined["nhs_number"].to_list()])
    error = joined["nhs_number_error"].to_numpy()
    assert valid.mean() >= 0.97, f"{source}: only {valid.mean():.1%} valid"
    # every invalid or blank number is an injected error, and every injected error is invalid
    assert (error[~valid] != 0).all()
    assert not valid[error != 0].any()
    # every valid number is the true person's own
    sent = joined["nhs_number"].to_numpy()[valid].astype(np.int64)
    assert (sent == joined["true_nhs"].to_numpy()[valid]).all()


def test_social_care_often_lacks_nhs_number_and_vcse_never_has_one(care_model_ics):
    asc = read_source(care_model_ics, "asc")
    missing = asc["nhs_number"].null_count() / asc.height
    assert 0.2 < missing < 0.5
    assert "nhs_number" not in read_source(care_model_ics, "vcse").columns
    # some councils write the number spaced 3-3-4
    assert asc["nhs_number"].drop_nulls().str.contains(" ").any()


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_truth_covers_every_source_record(care_model_ics, source):
    records = read_source(care_model_ics, source)["record_id"]
    t = truth(care_model_ics, f"records/{source}")
    assert records.n_unique() == records.len()
    assert set(records) == set(t["record_id"])
    people = set(truth(care_model_ics, "people")["person_id"])
    assert set(t["person_id"]) <= people


def test_identity_noise_is_present_where_real_sources_have_it(care_model_ics):
    vcse = truth(care_model_ics, "records/vcse")
    assert vcse["name_error"].sum() > 0 and vcse["dob_error"].sum() > 0
    people = truth(care_model_ics, "people")
    assert people["surname_change_date"].null_count() < people.height  # some surnames change
    assert (people["exit_reason"] == "left").sum() > 0 and (people["exit_reason"] == "died").sum() > 0
    reg = read_source(care_model_ics, "gp_registrations")
    # people move between practices: more registrations than people
    assert reg.height > reg["nhs_number"].n_unique()
