"""Ingest, link and build the person record: time of each stage, peak memory, and the floor.

Target (issue 3): 1,000,000 people over 5 years within 15 minutes and 12 GB peak memory.
Baseline: the time DuckDB takes only to read every input file once, in the same run.
Set OPENPHM_BENCH_ICS to reuse a generated Parquet ICS; otherwise one is generated.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import duckdb

from stages import read_floor, run_stage

PEOPLE = int(os.environ.get("OPENPHM_BENCH_PEOPLE", "1000000"))
TARGET_SECONDS, TARGET_GB = 900, 12.0


def run() -> str:
    work = Path(tempfile.mkdtemp(prefix="openphm-bench-record-"))
    try:
        ics = Path(os.environ["OPENPHM_BENCH_ICS"]) if os.environ.get("OPENPHM_BENCH_ICS") else work / "ics"
        if not ics.exists():
            run_stage(["generate", "--people", str(PEOPLE), "--format", "parquet", "--out", str(ics), "--quiet"])
        db = work / "db" / "openphm.duckdb"
        t_ingest, m_ingest = run_stage(["ingest", str(ics), "--db", str(db), "--no-link"])
        t_link, m_link = run_stage(["link", "--db", str(db)])
        t_build, m_build = run_stage(["build", "--db", str(db)])
        floor = read_floor(ics)
        con = duckdb.connect(str(db), read_only=True)
        rows = con.execute("SELECT sum(rows_read) FROM ingest.manifest").fetchone()[0]
        people = con.execute("SELECT count(*) FROM record.person").fetchone()[0]
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = t_ingest + t_link + t_build
    peak = max(m_ingest, m_link, m_build)
    time_verdict = f"target {TARGET_SECONDS} s: {'meets' if total <= TARGET_SECONDS else 'MISSES'}"
    memory_verdict = f"target {TARGET_GB:.0f} GB: {'meets' if peak <= TARGET_GB else 'MISSES'}"
    return f"""## Ingest, link and build the person record

{PEOPLE:,}-person synthetic ICS over 5 years in Parquet: {rows:,} source rows, {people:,} people in the record.

| stage | wall time | peak memory |
|---|---|---|
| ingest (validate, quarantine, split identifiers, load) | {t_ingest:,.0f} s | {m_ingest:.2f} GB |
| link (deterministic + Splink) | {t_link:,.0f} s | {m_link:.2f} GB |
| build (person record, all tables) | {t_build:,.0f} s | {m_build:.2f} GB |
| **total** | **{total:,.0f} s** ({time_verdict}) | **{peak:.2f} GB** ({memory_verdict}) |
| baseline: DuckDB reading every input file once (the floor) | {floor:,.0f} s | |
| ratio of total to the floor | {total / floor:.1f}x | |
"""
