"""Every indicator at every level for every financial year and month: `openphm measures run`.

Target (issue 4): 1,000,000 people, all indicators, levels and 60 months within 3 minutes.
Baseline: DuckDB scanning every column of every table of the person record once, in the same run.
Set OPENPHM_BENCH_DB to a built person record to reuse it; otherwise an ICS of
OPENPHM_BENCH_PEOPLE people (default 1,000,000) is generated, ingested, linked and built first.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from stages import person_record, run_stage

PEOPLE = int(os.environ.get("OPENPHM_BENCH_PEOPLE", "1000000"))
TARGET_SECONDS = 180


def _scan_once(db: Path) -> float:
    con = duckdb.connect(str(db), read_only=True)
    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_schema = 'planning'").fetchall()]
    start = time.perf_counter()
    for table in tables:
        con.execute(f"SELECT max(COLUMNS(*)) FROM planning.{table}").fetchall()
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


def run() -> str:
    work = Path(tempfile.mkdtemp(prefix="openphm-bench-measures-"))
    try:
        db = person_record(work, PEOPLE)
        seconds, peak = run_stage(["measures", "run", "--db", str(db)])
        scan = _scan_once(db)
        con = duckdb.connect(str(db), read_only=True)
        people = con.execute("SELECT count(*) FROM planning.person").fetchone()[0]
        counts = dict(con.execute("SELECT period_type, count(*) FROM measures.measure_result GROUP BY ALL").fetchall())
        months = con.execute("SELECT count(DISTINCT period) FROM measures.measure_result "
                             "WHERE period_type = 'month'").fetchone()[0]
        indicators = con.execute("SELECT count(DISTINCT measure_id) FROM measures.measure_result").fetchone()[0]
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    verdict = f"target {TARGET_SECONDS} s: {'meets' if seconds <= TARGET_SECONDS else 'MISSES'}"
    return f"""## Indicators: `measures run`

{people:,} people in the planning record; {indicators} indicators at every level they declare, for every
financial year and {months} months: {counts.get('financial_year', 0):,} yearly, {counts.get('month', 0):,} monthly
and {counts.get('rolling_12_months', 0):,} rolling 12-month results, with the inequality and opportunity tables.

| work | wall time | peak memory |
|---|---|---|
| `openphm measures run` | {seconds:,.0f} s ({verdict}) | {peak:.2f} GB |
| baseline: DuckDB scanning every column of the planning record once | {scan:,.1f} s | |
| ratio | {seconds / scan:.1f}x | |
"""
