"""Risk of emergency admission: training both models, and scoring everyone (features, both models'
predictions and explanations).

Targets (issue 5): on 1,000,000 people, scoring within 5 minutes and training within 10.
Baseline: building the features alone, in the same run (the floor for scoring).
Set OPENPHM_BENCH_DB to a built person record to reuse it (otherwise one of OPENPHM_BENCH_PEOPLE
people is generated and built first, as in bench_measures).
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from stages import person_record, run_stage

PEOPLE = int(os.environ.get("OPENPHM_BENCH_PEOPLE", "1000000"))
SCORE_SECONDS, TRAIN_SECONDS = 300, 600


def run() -> str:
    from openphm.derive.features import build_features, feature_names
    from openphm.ingest.loader import open_store
    from openphm.risk.score import predict_and_explain
    from openphm.risk.train import load_models

    work = Path(tempfile.mkdtemp(prefix="openphm-bench-risk-"))
    try:
        db = person_record(work, PEOPLE)
        models_dir = work / "models"
        train_seconds, train_peak = run_stage(["risk", "train", "--db", str(db), "--out", str(models_dir)])
        _, con = open_store(db)
        last = con.execute("SELECT max(admission_date) FROM planning.inpatient_spell").fetchone()[0]
        as_of = last + dt.timedelta(days=1)
        start = time.perf_counter()
        people = build_features(con, as_of, table="bench_features")
        features_seconds = time.perf_counter() - start
        x = con.execute(f"SELECT {', '.join(feature_names())} FROM bench_features").pl().to_numpy().astype(float)
        saved = load_models(models_dir)
        for name in saved["models"]:
            predict_and_explain(saved, name, x)
        score_seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    train_verdict = f"target {TRAIN_SECONDS} s: {'meets' if train_seconds <= TRAIN_SECONDS else 'MISSES'}"
    score_verdict = f"target {SCORE_SECONDS} s: {'meets' if score_seconds <= SCORE_SECONDS else 'MISSES'}"
    return f"""## Risk of emergency admission: training and scoring

{people:,} people registered on {as_of} in the person record.

| work | wall time | peak memory |
|---|---|---|
| `openphm risk train` (features at two dates, both models, validation, report) | {train_seconds:,.0f} s \
({train_verdict}) | {train_peak:.2f} GB |
| scoring: features, both models' predictions and explanations (TreeSHAP for LightGBM's top 5%) | \
{score_seconds:,.0f} s ({score_verdict}) | \
{peak:.2f} GB |
| baseline: building the features alone | {features_seconds:,.1f} s | |
| ratio of scoring to the baseline | {score_seconds / features_seconds:.1f}x | |
"""
