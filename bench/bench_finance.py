"""Finance: costing the person record, the costs report, and a risk-share simulation of 10,000 years.

Targets (issue 13): on 1,000,000 people, costing the record within 2 minutes and 10,000 simulation
runs within 2 minutes, each beside the time to read the costed activity once (the baseline).
Costing is timed as the build's steps that make the costs: the eight activity tables (each row with
its tariff category and cost) and `activity_cost`, written to a scratch schema.
The simulation's exact sampler is checked against the naive one (resampling people) at small
scale in tests/unit/test_riskshare_simulation.py; here it is timed only.
Set OPENPHM_BENCH_DB to a built person record to reuse it (otherwise one of OPENPHM_BENCH_PEOPLE
people is generated and built first).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from stages import person_record

PEOPLE = int(os.environ.get("OPENPHM_BENCH_PEOPLE", "1000000"))
RUNS = int(os.environ.get("OPENPHM_BENCH_FINANCE_RUNS", "10000"))
TARGET_SECONDS = 120
COSTING_STEPS = ("inpatient_spell", "ae_attendance", "outpatient_appointment", "gp_appointment", "community_contact",
                 "mental_health_contact", "social_care_service", "vcse_referral", "activity_cost")


def _costing_seconds(con) -> float:
    from openphm.finance.tariff import load_tariff
    from openphm.record.build import DEFAULT_SQL_DIR, compile_step, prepare_inputs, read_steps

    steps = {s.table: s for s in read_steps(DEFAULT_SQL_DIR)}
    con.execute("DROP SCHEMA IF EXISTS bench_costing CASCADE")
    con.execute("CREATE SCHEMA bench_costing")
    start = time.perf_counter()
    prepare_inputs(con, load_tariff())
    for table in COSTING_STEPS:
        sql = compile_step(steps[table], "bench_costing")
        con.execute(sql)
    seconds = time.perf_counter() - start
    con.execute("DROP SCHEMA bench_costing CASCADE")
    return seconds


def run() -> str:
    from openphm.finance.agreement import load_agreement
    from openphm.finance.simulate import load_base_year, simulate
    from openphm.finance.spend import costed_years, spend_summary
    from openphm.finance.tariff import DATA
    from openphm.ingest.loader import open_store

    work = Path(tempfile.mkdtemp(prefix="openphm-bench-finance-"))
    try:
        db = person_record(work, PEOPLE)
        _, con = open_store(db)
        start = time.perf_counter()
        rows = con.execute("SELECT person_id, setting, financial_year, cost FROM record.activity_cost"
                           ).fetch_arrow_table().num_rows
        read_seconds = time.perf_counter() - start
        print(f"read once: {read_seconds:.1f} s ({rows:,} rows)", flush=True)
        costing_seconds = _costing_seconds(con)
        print(f"costing: {costing_seconds:.1f} s", flush=True)
        year = costed_years(con)[-1]
        start = time.perf_counter()
        summary = spend_summary(con, year)
        report_seconds = time.perf_counter() - start
        print(f"costs report: {report_seconds:.1f} s", flush=True)
        agreement = load_agreement(DATA / "example_agreement.yaml")
        start = time.perf_counter()
        base = load_base_year(con, year)
        load_seconds = time.perf_counter() - start
        start = time.perf_counter()
        result = simulate(agreement, base, runs=RUNS, seed=0)
        simulate_seconds = time.perf_counter() - start
        print(f"base year: {load_seconds:.1f} s; {RUNS:,} runs: {simulate_seconds:.1f} s", flush=True)
        profiles = getattr(result, "profiles", None)
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def verdict(seconds: float) -> str:
        return f"target {TARGET_SECONDS} s: {'meets' if seconds <= TARGET_SECONDS else 'MISSES'}"

    return f"""## Finance: costing, spend and risk share

{summary['people']:,} people registered on 1 April {year[:4]} ({rows:,} costed activity rows in the record);
spend in {year} £{summary['population_spend']:,.0f} (£{summary['spend_per_person']:,.0f} a person).

| work | wall time | × baseline |
|---|---|---|
| baseline: reading the costed activity once (`record.activity_cost`, every row) | {read_seconds:,.1f} s | 1.0x |
| costing the record: the eight activity tables and `activity_cost` (the build's costing steps) | \
{costing_seconds:,.1f} s ({verdict(costing_seconds)}) | {costing_seconds / read_seconds:.1f}x |
| `openphm costs`' work for one year (people, spend by setting and group, concentration) | \
{report_seconds:,.1f} s | {report_seconds / read_seconds:.1f}x |
| risk share: the base year's people and activity read | {load_seconds:,.1f} s | {load_seconds / read_seconds:.1f}x |
| risk share: {RUNS:,} simulated years (bootstrap of people, Poisson activity), settled under the example \
agreement{f' ({profiles:,} profiles)' if profiles else ''} | {simulate_seconds:,.1f} s ({verdict(simulate_seconds)}) | \
{simulate_seconds / read_seconds:.1f}x |
"""
