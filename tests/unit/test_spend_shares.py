"""The calibration's concentration of spend, on a hand-made year of spending."""

from __future__ import annotations

import polars as pl
import pytest

from openphm.synth.calibration import top_share

# 200 people registered; person 0 spends 500 in hospital and 100 with the GP, persons 1-9 spend 10
# each in hospital, and person 999 (not registered at mid-year: died before it) spends 90 in hospital.
POP = pl.DataFrame({"nhs_number": [f"{i:010d}" for i in range(200)]})
SPEND = pl.DataFrame({
    "nhs_number": ["0000000000", "0000000000", *[f"{i:010d}" for i in range(1, 10)], "0000000999"],
    "setting": ["spell", "gp", *["outpatient"] * 9, "spell"],
    "cost": [500.0, 100.0, *[10.0] * 9, 90.0],
})
HOSPITAL = ("spell", "outpatient", "ae")


def test_the_costliest_share_of_people_counts_everyone_registered_and_everyone_who_spent():
    # 201 people; the costliest 1% is 2 people: 500 and 90 of 680 hospital spend
    assert top_share(SPEND, POP, 0.01, HOSPITAL) == pytest.approx(100 * 590 / 680)
    # all settings: 600 and 90 of 780
    assert top_share(SPEND, POP, 0.01) == pytest.approx(100 * 690 / 780)


def test_the_costliest_share_of_patients_counts_only_people_who_spent_there():
    # 11 patients in hospital; the costliest 10% is 1 person (rounded): 500 of 680
    assert top_share(SPEND, None, 0.10, HOSPITAL) == pytest.approx(100 * 500 / 680)
    # the GP alone: one patient, all of the spend
    assert top_share(SPEND, None, 0.01, ("gp",)) == pytest.approx(100.0)


def test_the_published_figures_patients_are_those_admitted_in_the_three_years_and_present_in_this_one(tmp_path):
    import datetime as dt

    from openphm.synth.calibration import panel_patients

    apc = tmp_path / "extracts" / "apc"
    apc.mkdir(parents=True)
    # A the year before, C in the year, D the year after (but gone), E and B outside the three years
    pl.DataFrame({"nhs_number": ["A", "B", "C", "D", "E", None],
                  "admission_date": ["2022-06-01", "2025-05-01", "2023-05-01", "2024-06-01", "2021-05-01",
                                     "2023-07-01"]}).write_csv(apc / "apc_2023-24.csv")
    pop = pl.DataFrame({"nhs_number": ["A", "B", "E", "F"]})  # registered at mid-year
    spend = pl.DataFrame({"nhs_number": ["C", "F"], "setting": ["spell", "gp"], "cost": [100.0, 5.0]})  # C died
    got = panel_patients(tmp_path, dt.date(2023, 4, 1), dt.date(2024, 4, 1), pop, spend)
    assert sorted(got["nhs_number"].to_list()) == ["A", "C"]
