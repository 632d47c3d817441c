"""Running one openphm command in its own process, with its wall time and peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Each stage reports its own peak resident memory when it exits.
# With OPENPHM_BENCH_PROFILE set, a stage also writes a cProfile of itself there (where its time goes).
STAGE = ("import atexit, cProfile, os, resource, sys\n"
         "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
         "atexit.register(lambda: sys.stderr.write('PEAK_KB %d\\n' % peak()))\n"
         "out = os.environ.get('OPENPHM_BENCH_PROFILE')\n"
         "prof = cProfile.Profile() if out else None\n"
         "if prof:\n"
         "    atexit.register(lambda: (prof.disable(), prof.dump_stats(out)))\n"
         "    prof.enable()\n"
         "from openphm.cli import main\nmain()\n")


def run_stage(args: list[str], profile: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident GB of one openphm command in its own process (and, given
    `profile`, a cProfile of it written there)."""
    start = time.perf_counter()
    env = {**os.environ, "OPENPHM_BENCH_PROFILE": str(profile)} if profile else None
    proc = subprocess.run([sys.executable, "-c", STAGE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"openphm {' '.join(args)} failed: {proc.stderr[-2000:]}")
    peak_kb = max(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KB"))
    return time.perf_counter() - start, peak_kb / 1024**2


def person_record(work: Path, people: int) -> Path:
    """OPENPHM_BENCH_DB if set (a built person record to reuse); otherwise generate an ICS of `people`
    in `work` and ingest, link and build it. Returns the database path."""
    if os.environ.get("OPENPHM_BENCH_DB"):
        return Path(os.environ["OPENPHM_BENCH_DB"])
    ics, db = work / "ics", work / "db" / "openphm.duckdb"
    run_stage(["generate", "--people", str(people), "--format", "parquet", "--out", str(ics), "--quiet"])
    for args in (["ingest", str(ics), "--db", str(db), "--no-link"], ["link", "--db", str(db)],
                 ["build", "--db", str(db)]):
        run_stage(args)
    return db


def read_floor(ics: Path, tries: int = 3) -> float:
    """Seconds DuckDB takes only to read every Parquet input of a generated ICS once (the baseline):
    the fastest of `tries` reads, since one read on a busy 2-core machine varies by a quarter."""
    import duckdb

    times = []
    for _ in range(tries):
        con = duckdb.connect()
        start = time.perf_counter()
        for path in sorted((ics / "extracts").rglob("*.parquet")):
            con.execute(f"CREATE OR REPLACE TEMP TABLE t AS SELECT * FROM read_parquet('{path}')")
        times.append(time.perf_counter() - start)
        con.close()
    return min(times)


def _fastest_copy(con: Any, sources: list[str], target: Path, tries: int) -> float:
    """Seconds to write each of `sources` (anything after FROM) as a table of a new database file
    `target` attached to `con`, then checkpoint it: the fastest of `tries`, the file removed after each."""
    times = []
    for _ in range(tries):
        con.execute(f"ATTACH '{target}' AS copy (READ_WRITE)")
        start = time.perf_counter()
        for i, source in enumerate(sources):
            con.execute(f"CREATE TABLE copy.t{i} AS SELECT * FROM {source}")
        con.execute("CHECKPOINT copy")
        times.append(time.perf_counter() - start)
        con.execute("DETACH copy")
        target.unlink()
    return min(times)


def write_floor(ics: Path, work: Path, tries: int = 2) -> float:
    """Seconds DuckDB takes to read every Parquet input of a generated ICS and write it once into a
    new database file (each file a table, then a checkpoint): the least that any pipeline keeping the
    rows in a database must do, before validating, linking or building anything. Fastest of `tries`."""
    import duckdb

    con = duckdb.connect()
    inputs = [f"read_parquet('{path}')" for path in sorted((ics / "extracts").rglob("*.parquet"))]
    seconds = _fastest_copy(con, inputs, work / "write-floor.duckdb", tries)
    con.close()
    return seconds


# The copies the design writes on purpose: the analytic rows, the identity store's records, the
# record-to-person links and the person record's tables (views are not copies and are left out).
DESIGN_COPIES = {
    "raw.* (ingest)": "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                      "WHERE table_catalog = current_database() AND table_schema = 'raw'",
    "identity store records (ingest)": "SELECT 'idn.identity.records'",
    "link.record_person (link)": "SELECT 'link.record_person'",
    "the record's tables (build)": "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                                   "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' "
                                   "AND table_schema = (SELECT max(schema_name) FROM information_schema.schemata "
                                   "WHERE catalog_name = current_database() AND schema_name LIKE 'record_v%')",
}


def design_writes(db: Path, work: Path, tries: int = 2) -> dict[str, tuple[int, float]]:
    """(rows, seconds) to copy each group of tables the design writes from a finished store into a new
    database file, with nothing else done (no reading of extracts, no validation, no joins): what the
    design's own writes cost, the least ingest, link and build could take. Fastest of `tries` each."""
    import duckdb

    from openphm.engine.duckdb_store import Store

    con = duckdb.connect(str(db), read_only=True)
    con.execute(f"ATTACH '{Store(db).identity_db}' AS idn (READ_ONLY)")
    out = {}
    for label, listing in DESIGN_COPIES.items():
        tables = [r[0] for r in con.execute(listing).fetchall()]
        rows = sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)
        out[label] = (rows, _fastest_copy(con, tables, work / "design-writes.duckdb", tries))
    con.close()
    return out


def where_time_goes(profile: Path, seconds: float, top: int = 6) -> str:
    """The OpenPHM functions (command wrappers left out) with the most time inside them, from a
    stage's cProfile, as "name s (share)" items; nested functions overlap (a caller includes its callees)."""
    import pstats

    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    rows = []
    for (path, _, name), (_, _, _, cumulative, _) in stats.items():
        if "/openphm/" in path and "/openphm/cli/" not in path and not name.startswith("<"):
            module = path.split("/openphm/")[-1].removesuffix(".py").replace("/", ".")
            rows.append((cumulative, f"{module}.{name}"))
    rows.sort(reverse=True)
    return "; ".join(f"{name} {t:,.0f} s ({t / seconds:.0%})" for t, name in rows[:top])
