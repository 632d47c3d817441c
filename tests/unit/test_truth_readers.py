"""The readers of a synthetic ICS's truth give the same typed frames from CSV and from Parquet, from
one file or a folder of parts, and refuse a folder that is not a truth folder in one line."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from openphm.synth.truth_readers import TruthError, true_people, true_records, true_yearly_risk
from openphm.synth.writers import write_table

PEOPLE = pl.DataFrame({"person_id": [0, 1], "nhs_number": ["9434765919", "9434765870"],
                       "date_of_birth": [dt.date(1940, 2, 29), dt.date(2001, 7, 1)],
                       "exit_date": [dt.date(2023, 5, 2), None], "sex": ["F", "M"], "ethnic_category": ["A", "Z"]})
RISK = pl.DataFrame({"person_id": [0, 0, 1], "financial_year": ["2022-23", "2023-24", "2023-24"],
                     "risk_of_emergency_admission": [0.25, 0.5, 0.0125], "latent": [1.0, 2.0, 3.0]})


def write_truth(folder, fmt: str):
    truth = folder / "truth"
    write_table(PEOPLE, truth / "people", fmt)
    write_table(RISK, truth / "person_year_risk", fmt)
    for source, label, ids, people in (("apc", "2022-23", ["APC000000001"], [1]),
                                       ("apc", "2023-24", ["APC000000002", "APC000000003"], [0, 1]),
                                       ("deaths", "2023-24", ["DTH000000001"], [0])):
        write_table(pl.DataFrame({"record_id": ids, "person_id": people, "nhs_number_error": [0] * len(ids)}),
                    truth / "records" / source / f"{source}_{label}", fmt)
    return truth


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_truth_reads_as_typed_frames(tmp_path, fmt):
    truth = write_truth(tmp_path, fmt)
    assert_frame_equal(true_records(truth), pl.DataFrame(
        {"source": ["apc", "apc", "apc", "deaths"],
         "record_id": ["APC000000001", "APC000000002", "APC000000003", "DTH000000001"],
         "true_person": [1, 0, 1, 0]}))
    assert_frame_equal(true_people(truth), PEOPLE.drop("nhs_number").rename({"person_id": "true_person"}))
    assert_frame_equal(true_yearly_risk(truth), RISK.drop("latent").rename({"person_id": "true_person"}))


def test_a_table_may_be_a_folder_of_parts(tmp_path):
    truth = tmp_path / "truth"
    write_table(PEOPLE[:1], truth / "people" / "part_0", "parquet")
    write_table(PEOPLE[1:], truth / "people" / "part_1", "parquet")
    assert true_people(truth)["true_person"].to_list() == [0, 1]


def test_a_folder_that_is_not_a_truth_folder_is_refused_in_one_line(tmp_path):
    with pytest.raises(TruthError, match=r"is not a truth folder \(no records/ inside\)$"):
        true_records(tmp_path)
    with pytest.raises(TruthError, match="no person_year_risk truth file"):
        true_yearly_risk(tmp_path)
    with pytest.raises(TruthError, match="no people truth file"):
        true_people(tmp_path)
