"""The synthetic ICS reproduces published English figures (REFERENCE.md) within stated tolerances."""

import polars as pl

from openphm.synth.calibration import calibration_checks, calibration_frame


def test_generated_ics_matches_reference_figures(calibration_ics, capsys):
    checks = calibration_checks(calibration_ics)
    frame = calibration_frame(checks)
    config = pl.Config(tbl_rows=100, fmt_str_lengths=70, tbl_width_chars=200, tbl_hide_dataframe_shape=True)
    with config, capsys.disabled():
        print("\nGenerated (100,000 people, middle financial year) vs REFERENCE.md")
        print(frame.drop("source"))
    measures = set(frame["measure"])
    for required in ("% aged 65+", "Multimorbidity % aged 80+", "A&E attendances per 1,000",
                     "Emergency admissions per 1,000 aged 75+", "Mean length of stay, ordinary admissions (days)",
                     "Emergency readmissions within 30 days %", "Deaths per 1,000",
                     "Care-home residents' emergency admissions per resident-year",
                     "Delayed discharge bed days per 1,000: max/min across places",
                     "SMI with a care coordinator: max/min across places"):
        assert required in measures
    assert sum("prevalence" in m for m in measures) >= 15
    failed = [f"{c.measure}: {c.generated:.2f} not in {c.low}-{c.high}" for c in checks if not c.ok]
    assert not failed, "\n".join(failed)
