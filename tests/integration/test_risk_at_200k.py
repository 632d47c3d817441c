"""Acceptance: on a generated ICS of 200,000 people the better risk model reaches at least 95% of
the ceiling (the AUROC of each person's true risk), and the report shows AUROC, calibration and
the ratio."""

import json

from tests.integration.conftest import ingest_link_build

from openphm.risk.train import train_and_report
from openphm.synth.generate import GenerateOptions, generate_ics
from openphm.synth.truth_readers import true_records, true_yearly_risk

TARGET_SHARE_OF_CEILING = 0.95


def test_the_better_model_reaches_95_percent_of_the_ceiling(tmp_path):
    ics = tmp_path / "ics"
    generate_ics(GenerateOptions(people=200_000, years=5, seed=42, out=ics, format="parquet"))
    con = ingest_link_build(ics, tmp_path / "db" / "openphm.duckdb")
    report = train_and_report(con, tmp_path / "risk", true_records=true_records(ics / "truth"),
                              true_risk=true_yearly_risk(ics / "truth"))
    saved = json.loads((tmp_path / "risk" / "report.json").read_text())
    shares = {name: m["auroc"] / m["ceiling_auroc"] for name, m in saved["models"].items()}
    print({name: (round(m["auroc"], 4), round(m["ceiling_auroc"], 4), round(shares[name], 4))
           for name, m in saved["models"].items()})
    assert max(shares.values()) >= TARGET_SHARE_OF_CEILING, shares
    best = saved["models"][report["best_model"]]
    assert abs(best["calibration_intercept"]) < 0.1 and 0.85 < best["calibration_slope"] < 1.15
    html = (tmp_path / "risk" / "report.html").read_text()
    assert "share of the ceiling" in html and "calibration slope" in html
