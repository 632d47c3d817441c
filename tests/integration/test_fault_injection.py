"""Fault injection: `openphm ingest` and `openphm build` killed with SIGKILL at many moments.

A clean run (ingest with linking, opt-out, build) of a small generated ICS is the reference. Then:

- ingest is killed at spread-out moments, again and again on the same database (each restart
  resumes from the beginning, skipping files already loaded), and finally run to the end; the
  rows of every raw table, the quarantine, the identity store, the links and every record table
  must equal the clean run's exactly (no duplicate, no loss);
- build is killed at spread-out moments; after each kill the build in service still answers,
  still excludes everyone on the opt-out list, and its planning views agree with each other;
  a final build equals the clean run's record.

Kill moments are fractions of the clean run's own duration, so they land across the whole run
on a fast or a slow machine. Both databases share one pseudonymisation key, so person ids match.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from openphm.synth.generate import GenerateOptions, generate_ics

CLI = [sys.executable, "-c", "from openphm.cli import main; main()"]
OPTED_OUT = 40


def run(*args: str, db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args, "--db", str(db)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"})


def killed_at(delay: float, *args: str, db: Path) -> int | None:
    """Start a command and SIGKILL it after `delay` seconds; its exit code if it ended first."""
    proc = subprocess.Popen([*CLI, *args, "--db", str(db)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None


def fingerprint(db: Path, record_only: bool = False) -> dict[str, tuple[int, str]]:
    """(rows, digest of the sorted rows) of every table whose content a re-run must reproduce."""
    con = duckdb.connect(str(db), read_only=True)
    identity = db.with_name(db.stem + "-identity.duckdb")
    con.execute(f"ATTACH '{identity}' AS idn (READ_ONLY)")
    names = [f"record.{v}" for (v,) in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'record' AND NOT internal").fetchall()]
    if not record_only:
        names += [f"raw.{t}" for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw' AND database_name <> 'idn'").fetchall()]
        names += ["ingest.quarantine", "link.record_person", "idn.identity.records",
                  "idn.identity.quarantined_rows", "idn.identity.person_key"]
        manifest = "(SELECT file_id, source, period, file_name, rows_read, rows_loaded, rows_quarantined, status, " \
                   "superseded_by FROM ingest.manifest)"
        names.append(manifest)
    out = {}
    for name in sorted(names):
        if name.startswith(("link.", "idn.identity.person_key")) and not con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name || '.' || table_name = ?",
                [name.removeprefix("idn.")]).fetchone()[0]:
            continue  # not linked yet
        out[name] = con.execute(f"SELECT count(*), md5(coalesce(string_agg(r, '|' ORDER BY r), '')) "
                                f"FROM (SELECT CAST(t AS VARCHAR) AS r FROM {name} t)").fetchone()
    con.close()
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict:
    """The generated ICS, an opt-out file, and a clean run's database, fingerprint and timings."""
    root = tmp_path_factory.mktemp("faults")
    ics = root / "ics"
    generate_ics(GenerateOptions(people=2_000, years=2, seed=5, out=ics, format="csv"))
    regs = pl.read_csv(sorted((ics / "extracts" / "gp_registrations").glob("*.csv"))[0], infer_schema_length=0)
    from openphm.identity.nhs_number import is_valid
    numbers = sorted({n for n in regs["nhs_number"].drop_nulls().to_list() if is_valid(n)})[:OPTED_OUT]
    optout = root / "optout.txt"
    optout.write_text("\n".join(numbers) + "\n")
    db = root / "clean" / "openphm.duckdb"
    started = time.perf_counter()
    assert run("ingest", str(ics), "--no-link", db=db).returncode == 0
    load_seconds = time.perf_counter() - started
    assert run("link", db=db).returncode == 0
    ingest_seconds = time.perf_counter() - started
    assert run("optout", str(optout), db=db).returncode == 0
    started = time.perf_counter()
    assert run("build", db=db).returncode == 0
    build_seconds = time.perf_counter() - started
    return {"root": root, "ics": ics, "db": db, "optout": optout, "numbers": numbers,
            "load_seconds": load_seconds, "ingest_seconds": ingest_seconds,
            "build_seconds": build_seconds, "fingerprint": fingerprint(db)}


def fresh_db(clean: dict, name: str) -> Path:
    """An empty installation that shares the clean run's pseudonymisation key."""
    db = clean["root"] / name / "openphm.duckdb"
    key = clean["db"].with_name("openphm-secrets")
    shutil.copytree(key, db.with_name("openphm-secrets"))
    return db


def opted_out_in_planning(db: Path, numbers: list[str]) -> int:
    con = duckdb.connect(str(db), read_only=True)
    con.execute(f"ATTACH '{db.with_name(db.stem + '-identity.duckdb')}' AS idn (READ_ONLY)")
    found = con.execute("SELECT count(*) FROM planning.person p JOIN idn.identity.person_key k USING (person_id) "
                        "WHERE k.nhs_number IN (SELECT unnest(?))", [numbers]).fetchone()[0]
    con.close()
    return found


LOADED = ("raw.", "ingest.", "idn.identity.records", "idn.identity.quarantined_rows", "(SELECT")
DYING_RUN = [sys.executable, str(Path(__file__).with_name("dying_run.py"))]


def dying_run(step: str, n: int, clean: dict, db: Path) -> subprocess.CompletedProcess:
    """Ingest or build in a subprocess that dies before its n-th SQL statement (n = 0: runs to the end)."""
    return subprocess.run([*DYING_RUN, step, str(n), str(clean["ics"]), str(db)], capture_output=True, text=True,
                          timeout=600)


def death_points(total: int, count: int, seed: int) -> list[int]:
    """`count` statement numbers spread over 1..total: one drawn at random from each equal stratum."""
    rng = random.Random(seed)
    edges = [1 + total * i // count for i in range(count + 1)]
    return [rng.randrange(lo, max(lo + 1, hi)) for lo, hi in itertools.pairwise(edges)]


def test_ingest_dying_at_statements_across_the_run_then_rerun_gives_exactly_the_clean_rows(clean):
    """Deaths at every kind of point: between and inside the two commits of a file's load, in
    supersession bookkeeping, and in linking; then ingest and link again, which must repair."""
    want = {k: v for k, v in clean["fingerprint"].items() if not k.startswith("record.")}
    probe = fresh_db(clean, "ingest_count")
    statements = int(dying_run("ingest", 0, clean, probe).stdout.split()[-1])
    for n in death_points(statements, 16, seed=3):
        db = fresh_db(clean, f"ingest_dies_{n}")
        died = dying_run("ingest", n, clean, db)
        assert died.returncode == 9, f"statement {n}: {died.stderr[-500:]}"
        resumed = dying_run("ingest", 0, clean, db)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        got = fingerprint(db)
        assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in want.items()}, f"died at statement {n}"
        assert got == want, f"died at statement {n}"


def test_ingest_killed_at_moments_then_rerun_gives_exactly_the_clean_rows(clean):
    """SIGKILL of the real command at moments spread over loading and linking."""
    kills = 0
    for i, fraction in enumerate((0.2, 0.4, 0.6, 0.8)):
        db = fresh_db(clean, f"ingest_kill_{i}")
        kills += killed_at(clean["ingest_seconds"] * fraction, "ingest", str(clean["ics"]), db=db) is None
        final = run("ingest", str(clean["ics"]), db=db)
        assert final.returncode == 0, final.stderr[-2000:]
        assert run("optout", str(clean["optout"]), db=db).returncode == 0
        assert run("build", db=db).returncode == 0
        assert fingerprint(db) == clean["fingerprint"], f"killed at {fraction:.0%} of a clean run's time"
    assert kills >= 3, "the kills should land while ingest is running"


def test_build_killed_at_many_moments_keeps_a_whole_build_in_service_and_the_opt_out(clean):
    db = fresh_db(clean, "build_kills")
    for suffix in ("", "-identity"):
        shutil.copy(clean["db"].with_name(f"openphm{suffix}.duckdb"), db.with_name(f"openphm{suffix}.duckdb"))
    total = clean["build_seconds"]
    for fraction in (0.3, 0.45, 0.6, 0.75, 0.9, 1.0):
        killed_at(total * fraction, "build", db=db)
        assert opted_out_in_planning(db, clean["numbers"]) == 0
        con = duckdb.connect(str(db), read_only=True)
        people, planning_people = con.execute(
            "SELECT (SELECT count(*) FROM record.person), (SELECT count(*) FROM planning.person)").fetchone()
        # the planning activity views and planning.person come from the same build and opt-out set
        stray = con.execute("SELECT count(*) FROM planning.inpatient_spell s ANTI JOIN planning.person p "
                            "USING (person_id)").fetchone()[0]
        con.close()
        assert people - planning_people > 0 and stray == 0
    assert run("build", db=db).returncode == 0
    assert fingerprint(db, record_only=True) == fingerprint(clean["db"], record_only=True)


def test_build_dying_at_statements_across_the_run_leaves_a_consistent_build_in_service(clean):
    """Deaths inside and between the build's steps and its switch-over transaction."""
    probe = fresh_db(clean, "build_count")
    for suffix in ("", "-identity"):
        shutil.copy(clean["db"].with_name(f"openphm{suffix}.duckdb"), probe.with_name(f"openphm{suffix}.duckdb"))
    statements = int(dying_run("build", 0, clean, probe).stdout.split()[-1])
    record = fingerprint(clean["db"], record_only=True)
    for n in death_points(statements, 10, seed=5):
        died = dying_run("build", n, clean, probe)
        assert died.returncode == 9, f"statement {n}: {died.stderr[-500:]}"
        assert opted_out_in_planning(probe, clean["numbers"]) == 0, f"died at statement {n}"
        assert fingerprint(probe, record_only=True) == record, f"died at statement {n}"
    assert dying_run("build", 0, clean, probe).returncode == 0
    assert fingerprint(probe, record_only=True) == record


def test_a_build_after_an_interrupted_link_is_refused(clean):
    """Linking commits the links and the person keys separately; dying between them must not let a
    build pair new links with old person keys (the opt-out is applied through those keys)."""
    db = fresh_db(clean, "link_dies")
    for suffix in ("", "-identity"):
        shutil.copy(clean["db"].with_name(f"openphm{suffix}.duckdb"), db.with_name(f"openphm{suffix}.duckdb"))
    con = duckdb.connect(str(db))
    con.execute("UPDATE link.run SET run_id = 'a later run whose person keys were never written'")
    con.close()
    refused = run("build", db=db)
    assert refused.returncode == 2 and "the last linking did not finish" in refused.stderr
    relinked = run("link", db=db)
    assert relinked.returncode == 0, relinked.stderr[-3000:]
    rebuilt = run("build", db=db)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
