"""How the DuckDB pipeline grows with the ICS: ingest+link+build, indicators and scoring at several sizes.

Issue 11's scale benchmark: 125k, 250k, 500k and 1M people (OPENPHM_BENCH_SCALE_SIZES, comma-separated,
to run fewer), each generated over 5 years in Parquet and taken through every stage in its own
process (wall time and peak memory per stage). The growth exponent of each stage is the slope of
log(time) against log(source rows), fitted by least squares over the sizes run; the goal is at
most 1.1 (near-linear). Baselines, measured in the same run: DuckDB reading every input file once
(the issue's), and DuckDB writing every input file once into a database file (the least any stage
that keeps rows in a database must do).

At the largest size each of ingest, link and build is also profiled (cProfile): the OpenPHM
functions with the most time inside them. Spark in local mode runs the same commands
(`--engine spark`) at OPENPHM_BENCH_SPARK_SIZES (default 125000; empty to skip), with
OPENPHM_SPARK_DRIVER_MEMORY (default here 8g) for the driver, which in local mode is every executor.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import numpy as np

from stages import read_floor, run_stage, where_time_goes, write_floor

SIZES = [int(s) for s in os.environ.get("OPENPHM_BENCH_SCALE_SIZES", "125000,250000,500000,1000000").split(",")]
SPARK_SIZES = [int(s) for s in os.environ.get("OPENPHM_BENCH_SPARK_SIZES", "125000").split(",") if s.strip()]
STAGES = ("ingest", "link", "build", "indicators", "risk train", "risk score")
PROFILED = ("ingest", "link", "build")
GOAL = 1.1


def _one_size(people: int, work: Path, engine: str = "duckdb", profile: bool = False) -> dict:
    ics, db, models = work / "ics", work / "db" / "openphm.duckdb", work / "models"
    run_stage(["generate", "--people", str(people), "--format", "parquet", "--out", str(ics), "--quiet"])
    on = ["--db", str(db), "--engine", engine]
    commands = {"ingest": ["ingest", str(ics), *on, "--no-link"], "link": ["link", *on],
                "build": ["build", *on], "indicators": ["measures", "run", *on],
                "risk train": ["risk", "train", *on, "--out", str(models)],
                "risk score": ["risk", "score", *on, "--models", str(models)]}
    out = {"people": people, "floor": read_floor(ics), "write floor": write_floor(ics, work), "profile": {}}
    for stage in STAGES:
        prof = work / f"{stage.replace(' ', '_')}.prof" if profile and stage in PROFILED else None
        out[stage] = run_stage(commands[stage], prof)
        if prof is not None:
            out["profile"][stage] = where_time_goes(prof, out[stage][0])
    if engine == "spark":
        out["rows"] = sum(r["rows"] for r in _manifest_rows(ics))
        return out
    con = duckdb.connect(str(db), read_only=True)
    out["rows"] = con.execute("SELECT sum(rows_read) FROM ingest.manifest").fetchone()[0]
    con.close()
    return out


def exponent(rows: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(rows)."""
    if len(rows) < 2:
        return math.nan
    return float(np.polyfit(np.log(rows), np.log(seconds), 1)[0])


def _manifest_rows(ics: Path) -> list[dict]:
    """Rows of every extract file (for a Spark store, which this process cannot open beside its own)."""
    con = duckdb.connect()
    rows = [{"rows": con.execute(f"SELECT count(*) FROM read_parquet('{p}')").fetchone()[0]}
            for p in sorted((ics / "extracts").rglob("*.parquet"))]
    con.close()
    return rows


# Each size's figures as soon as it is done, so that a run stopped in its second hour keeps the first
PARTIAL = Path(tempfile.gettempdir()) / "openphm-bench-scale-partial.json"


def run() -> str:
    results = []
    for people in SIZES:
        work = Path(tempfile.mkdtemp(prefix=f"openphm-bench-scale-{people}-"))
        try:
            results.append(_one_size(people, work, profile=people == max(SIZES)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        PARTIAL.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
        print(f"{people:,} people done: figures so far in {PARTIAL}", flush=True)
    return _duckdb_table(results) + _profile_table(results[-1]) + _spark_table(results)


def _spark_table(duck: list[dict]) -> str:
    if not SPARK_SIZES:
        return ""
    os.environ.setdefault("OPENPHM_SPARK_DRIVER_MEMORY", "8g")
    lines = []
    for people in SPARK_SIZES:
        work = Path(tempfile.mkdtemp(prefix=f"openphm-bench-spark-{people}-"))
        try:
            r = _one_size(people, work, engine="spark")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        same = next((d for d in duck if d["people"] == people), None)
        for stage in STAGES:
            ratio = f"{r[stage][0] / same[stage][0]:.1f}x" if same else "not run on DuckDB"
            lines.append(f"| {people:,} | {stage} | {r[stage][0]:,.0f} s | {r[stage][1]:.1f} GB | {ratio} |")
    return ("\n### On Spark, local mode (2 cores)\n\nThe same commands with `--engine spark` (local[2], 2 shuffle "
            "partitions, one process per command on a persistent local store). Peak memory is the Python driver's; "
            "Spark's JVM is capped by OPENPHM_SPARK_DRIVER_MEMORY. Ratio: Spark's time over DuckDB's at the same "
            "size in this run.\n\n| people | stage | time | peak memory (Python) | Spark / DuckDB |\n"
            "|---|---|---|---|---|\n"
            + "\n".join(lines) + "\n")


def _profile_table(largest: dict) -> str:
    lines = [f"| {stage} | {largest[stage][0]:,.0f} s | {largest['profile'][stage]} |"
             for stage in PROFILED if stage in largest["profile"]]
    return (f"\n### Where the time goes at {largest['people']:,} people (cProfile)\n\nThe OpenPHM functions with the "
            "most time inside them (a caller includes its callees).\n\n| stage | time | functions |\n|---|---|---|\n"
            + "\n".join(lines) + "\n")


def _duckdb_table(results: list[dict]) -> str:
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
    if all("write floor" in r for r in results):
        writes = [r["write floor"] for r in results]
        lines.append("| second baseline: DuckDB writing every input once into a database file | "
                     + " | ".join(f"{w:,.1f} s ({w / r['floor']:.1f}x the read)" for w, r in
                                  zip(writes, results, strict=True)) + f" | {exponent(rows, writes):.2f} |")
        lines.append("| ingest+link+build / second baseline | " + " | ".join(
            f"{t / w:.1f}x" for t, w in zip(first3, writes, strict=True)) + " | |")
    sizes = ", ".join(f"{p:,}" for p in SIZES)
    return (f"## Growth with the size of the ICS (DuckDB)\n\nSizes run: {sizes} people over 5 years (Parquet); "
            f"each stage in its own process (wall time, peak memory). Growth exponent: slope of log time on "
            f"log source rows (goal at most {GOAL}).\n\n" + header + "\n".join(lines) + "\n")
