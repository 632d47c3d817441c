"""The synthetic ICS reproduces published English figures (REFERENCE.md) within stated tolerances."""

import polars as pl
import pytest

from openphm.synth.calibration import calibration_checks, calibration_frame

GROUPS = ("people", "patients", "people aged 65+", "patients aged 65+", "people under 25", "patients under 25")
SPEND = (*(f"Admitted-care spend on the costliest 1% of {who} %" for who in GROUPS),
         "Health care spend on the costliest 5% of people %")


@pytest.fixture(scope="module")
def checks(calibration_ics):
    return calibration_checks(calibration_ics)


def test_spend_is_as_concentrated_as_published(checks):
    by = {c.measure: c for c in checks}
    assert all(by[m].ok for m in SPEND), [(m, round(by[m].generated, 1)) for m in SPEND]


def test_generated_ics_matches_reference_figures(checks, capsys):
    frame = calibration_frame(checks)
    config = pl.Config(tbl_rows=100, fmt_str_lengths=70, tbl_width_chars=200, tbl_hide_dataframe_shape=True)
    with config, capsys.disabled():
        print("\nGenerated (100,000 people, middle financial year) vs REFERENCE.md")
        print(frame.drop("source"))
    measures = set(frame["measure"])
    for required in ("% aged 65+", "Multimorbidity % aged 80+", "A&E attendances per 1,000",
                     "Emergency admissions per 1,000 aged 75+", "Mean length of stay, ordinary admissions (days)",
                     "Type 1 A&E attenders attending 3+ times %",
                     "Emergency readmissions within 30 days %", "Emergency admissions in the last year of life %",
                     "Deaths per 1,000",
                     "Care-home residents' emergency admissions per resident-year",
                     "Delayed discharge bed days per 1,000: max/min across places",
                     "People admitted to mental health wards %", "Median stay on mental health wards (days)",
                     "SMI with a care coordinator: max/min across places"):
        assert required in measures
    assert sum("prevalence" in m for m in measures) >= 15
    assert all(m in measures for m in SPEND)  # in the report; held to the published figures by the test above
    failed = [f"{c.measure}: {c.generated:.2f} not in {c.low}-{c.high}" for c in checks
              if not c.ok and c.measure not in SPEND]
    assert not failed, "\n".join(failed)
