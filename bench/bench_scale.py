"""How the DuckDB pipeline grows with the ICS: ingest+link+build, indicators and scoring at several sizes.

Issue 11's scale benchmark: 125k, 250k, 500k and 1M people (OPENPHM_BENCH_SCALE_SIZES, comma-separated,
to run fewer), each generated over 5 years in Parquet and taken through every stage in its own
process (wall time and peak memory per stage). The growth exponent of each stage is the slope of
log(time) against log(source rows), fitted by least squares over the sizes run; the goal is at
most 1.1 (near-linear). Baseline, measured in the same run: DuckDB reading every input file once.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import numpy as np

from stages import read_floor, run_stage

SIZES = [int(s) for s in os.environ.get("OPENPHM_BENCH_SCALE_SIZES", "125000,250000,500000,1000000").split(",")]
STAGES = ("ingest", "link", "build", "indicators", "risk train", "risk score")
GOAL = 1.1


def _one_size(people: int, work: Path) -> dict:
    ics, db, models = work / "ics", work / "db" / "openphm.duckdb", work / "models"
    run_stage(["generate", "--people", str(people), "--format", "parquet", "--out", str(ics), "--quiet"])
    commands = {"ingest": ["ingest", str(ics), "--db", str(db), "--no-link"], "link": ["link", "--db", str(db)],
                "build": ["build", "--db", str(db)], "indicators": ["measures", "run", "--db", str(db)],
                "risk train": ["risk", "train", "--db", str(db), "--out", str(models)],
                "risk score": ["risk", "score", "--db", str(db), "--models", str(models)]}
    out = {"people": people, "floor": read_floor(ics)}
    for stage in STAGES:
        out[stage] = run_stage(commands[stage])
    con = duckdb.connect(str(db), read_only=True)
    out["rows"] = con.execute("SELECT sum(rows_read) FROM ingest.manifest").fetchone()[0]
    con.close()
    return out


def exponent(rows: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(rows)."""
    if len(rows) < 2:
        return math.nan
    return float(np.polyfit(np.log(rows), np.log(seconds), 1)[0])


def run() -> str:
    results = []
    for people in SIZES:
        work = Path(tempfile.mkdtemp(prefix=f"openphm-bench-scale-{people}-"))
        try:
            results.append(_one_size(people, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    rows = [r["rows"] for r in results]
    header = "| stage | " + " | ".join(f"{r['people']:,} people ({r['rows'] / 1e6:.1f}M rows)" for r in results) \
        + " | growth exponent |\n|---|" + "---|" * (len(results) + 1) + "\n"
    lines = []
    for stage in STAGES:
        times = [r[stage][0] for r in results]
        cells = " | ".join(f"{r[stage][0]:,.0f} s, {r[stage][1]:.1f} GB" for r in results)
        lines.append(f"| {stage} | {cells} | {exponent(rows, times):.2f} |")
    first3 = [sum(r[s][0] for s in ("ingest", "link", "build")) for r in results]
    lines.append("| **ingest+link+build** | " + " | ".join(f"**{t:,.0f} s**" for t in first3)
                 + f" | **{exponent(rows, first3):.2f}** |")
    lines.append("| baseline: DuckDB reading every input once | " + " | ".join(f"{r['floor']:,.1f} s" for r in results)
                 + f" | {exponent(rows, [r['floor'] for r in results]):.2f} |")
    lines.append("| ingest+link+build / baseline | " + " | ".join(f"{t / r['floor']:.1f}x" for t, r in
                                                                    zip(first3, results, strict=True)) + " | |")
    sizes = ", ".join(f"{p:,}" for p in SIZES)
    return (f"## Growth with the size of the ICS (DuckDB)\n\nSizes run: {sizes} people over 5 years (Parquet); "
            f"each stage in its own process (wall time, peak memory). Growth exponent: slope of log time on "
            f"log source rows (goal at most {GOAL}).\n\n" + header + "\n".join(lines) + "\n")
