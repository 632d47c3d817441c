"""Acceptance: on a generated ICS of 200,000 people the better risk model reaches at least 95% of
the ceiling (the AUROC of each person's true risk), and the report shows AUROC, calibration and
the ratio."""

import json

from openphm.identity.linkage import link_records
from openphm.ingest.loader import extract_files, ingest_file, load_reference, open_store
from openphm.record.build import build_record
from openphm.risk.train import train_and_report
from openphm.synth.generate import GenerateOptions, generate_ics

TARGET_SHARE_OF_CEILING = 0.95


def test_the_better_model_reaches_95_percent_of_the_ceiling(tmp_path):
    ics = tmp_path / "ics"
    generate_ics(GenerateOptions(people=200_000, years=5, seed=42, out=ics, format="parquet"))
    store, con = open_store(tmp_path / "db" / "openphm.duckdb")
    load_reference(con, ics / "reference")
    for f in extract_files(ics):
        ingest_file(con, f)
    link_records(con, store, 0.9)
    build_record(con)
    report = train_and_report(con, tmp_path / "risk", truth=ics / "truth")
    saved = json.loads((tmp_path / "risk" / "report.json").read_text())
    shares = {name: m["auroc"] / m["ceiling_auroc"] for name, m in saved["models"].items()}
    print({name: (round(m["auroc"], 4), round(m["ceiling_auroc"], 4), round(shares[name], 4))
           for name, m in saved["models"].items()})
    assert max(shares.values()) >= TARGET_SHARE_OF_CEILING, shares
    best = saved["models"][report["best_model"]]
    assert abs(best["calibration_intercept"]) < 0.1 and 0.85 < best["calibration_slope"] < 1.15
    html = (tmp_path / "risk" / "report.html").read_text()
    assert "share of the ceiling" in html and "calibration slope" in html
