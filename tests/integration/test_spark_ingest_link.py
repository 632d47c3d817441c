"""Ingest and linking on Apache Spark (issue 11): the same files give the same rows on both engines.

A small generated ICS (linking on Spark is slow on 2 cores), with hostile files added: rows with
every kind of fault (a date of 31 February, a two-digit year, a date before 1900, a future date, a
discharge before its admission, a value longer than its column, an unknown organisation, a bad
code, a duplicate record, quoted commas and quotes, blank and whitespace-only fields, non-ASCII
names), a file with a byte-order mark, a ragged file and a file with the wrong header. Each file
is loaded on DuckDB and on Spark through `openphm.ingest.loader`, then every record is linked on
each engine (Splink's Spark backend on Spark); every raw table, the quarantine with its reasons,
the manifest, the identity store (records, quarantined values, person keys) and the links are
equal, and so are the person ids (both stores share one pseudonymisation key).

Then the command line on Spark (`--engine spark`: a persistent local Spark store, one process per
command) ingests and links a few of the files, then builds in a second process, and its record equals
DuckDB's. (Two processes rather than three: each starts a JVM, the slowest part of this suite.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("pyspark")

from openphm.engine.duckdb_store import Store
from openphm.engine.spark import SparkConnection, spark_session

DATABASES = ("raw", "ingest", "link", "reference", "idn__identity")
VOLATILE = {"ingest.manifest": ["loaded_at"], "link.run": ["run_id", "linked_at"],
            "idn.identity.link_run": ["run_id", "linked_at"], "idn.identity.person_key": ["link_run"]}


def hostile_files(ics: Path) -> None:
    """Faulty rows and files added to a generated ICS (as later periods, so they load beside it)."""
    apc = sorted((ics / "extracts" / "apc").glob("*.csv"))[0]
    rows = pl.read_csv(apc, infer_schema_length=0).head(40)
    faults = [
        ("admission_date", "2022-02-31"), ("admission_date", "22-04-05"), ("date_of_birth", "1850-01-01"),
        ("discharge_date", "2099-01-01"), ("discharge_date", "2020-01-01"), ("provider_code", "R" * 300),
        ("provider_code", "RQQ"), ("diag_01", "not a code"), ("admission_date", " "), ("nhs_number", "1111111111"),
        ("postcode", 'ZX1 "1JL", flat 2'), ("sex", ""),
    ]
    changed = []
    for i, (column, value) in enumerate(faults):
        changed.append(rows.slice(i, 1).with_columns(pl.lit(value).alias(column)))
    later = pl.concat([rows.slice(len(faults)), *changed, rows.slice(0, 2)])  # the last two repeat records
    later.write_csv(ics / "extracts" / "apc" / "apc_2031-32.csv")
    vcse = sorted((ics / "extracts" / "vcse").glob("*.csv"))[0]
    people = pl.read_csv(vcse, infer_schema_length=0)
    names = ["Zoë Ó'Brien-Łukasz", 'Smith, "Jack"', "   ", None]
    people = people.with_columns(
        pl.when(pl.int_range(pl.len()) < len(names))
        .then(pl.Series([*names, *[None] * (people.height - len(names))]))
        .otherwise(pl.col("client_name")).alias("client_name"))
    body = people.write_csv()  # quotes what needs quoting
    (ics / "extracts" / "vcse" / "vcse_2031-32.csv").write_bytes(b"\xef\xbb\xbf" + body.encode())
    text = vcse.read_text(encoding="utf-8").splitlines()
    ragged = [*text[:5], text[5] + ",an extra field"]
    (ics / "extracts" / "vcse" / "vcse_2032-33.csv").write_text("\n".join(ragged) + "\n")
    (ics / "extracts" / "vcse" / "vcse_2033-34.csv").write_text("id,name\n1,x\n")


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    session = spark_session("local[2]", warehouse=str(tmp_path_factory.mktemp("spark-ingest-warehouse")))
    con = SparkConnection(session)
    yield con
    for database in DATABASES:  # the build parity module copies its own inputs into the same names
        session.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, spark):
    from openphm.identity.linkage import link_records
    from openphm.ingest.loader import ensure_schema, extract_files, ingest_file, load_reference, open_store
    from openphm.synth.generate import GenerateOptions, generate_ics

    root = tmp_path_factory.mktemp("spark-ingest")
    ics = root / "ics"
    generate_ics(GenerateOptions(people=1_000, years=1, seed=23, out=ics, format="csv"))
    hostile_files(ics)
    store, duck = open_store(root / "duck" / "openphm.duckdb")
    ensure_schema(spark)
    results = {}
    for name, con in (("duckdb", duck), ("spark", spark)):
        load_reference(con, ics / "reference")
        results[name] = [ingest_file(con, f) for f in extract_files(ics)]
        link_records(con, store, 0.9)  # one Store: one key, so the same person ids
    yield root, ics, duck, results
    duck.close()


def comparable(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    frame = frame.drop([c for c in VOLATILE.get(name, []) if c in frame.columns])
    frame = frame.with_columns([pl.col(c).cast(pl.Utf8) for c, t in frame.schema.items()
                                if t == pl.Object or "person_id" in c])
    frame = frame.cast({c: pl.Int64 for c, t in frame.schema.items() if t.is_integer()}
                       | {c: pl.Float64 for c, t in frame.schema.items() if t.is_float()})
    return frame.sort(frame.columns, nulls_last=True)


def test_each_file_has_the_same_outcome_on_both_engines(loaded):
    _, _, _, results = loaded
    outcome = {engine: [(r.path.name, r.status, r.rows_read, r.rows_loaded, r.rows_quarantined, r.reasons)
                        for r in rs] for engine, rs in results.items()}
    assert outcome["spark"] == outcome["duckdb"]
    statuses = {name: status for name, status, *_ in outcome["duckdb"]}
    assert statuses["vcse_2032-33.csv"] == statuses["vcse_2033-34.csv"] == "rejected"
    assert statuses["vcse_2031-32.csv"] == "loaded"
    reasons = next(r.reasons for r in results["duckdb"] if r.path.name == "apc_2031-32.csv")
    assert {"BAD_DATE", "IMPLAUSIBLE_DATE", "FUTURE_DATE", "DATE_ORDER", "TOO_LONG", "UNKNOWN_ORGANISATION",
            "BAD_CODE", "DUPLICATE_RECORD"} <= set(reasons)


def test_every_loaded_table_and_every_link_is_equal(loaded, spark):
    _, _, duck, _ = loaded
    names = [f"{s}.{t}" for s, t in duck.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name "
        "IN ('raw', 'ingest', 'link', 'reference') ORDER BY ALL").fetchall()]
    names += [f"idn.identity.{t}" for (t,) in duck.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'idn' ORDER BY 1").fetchall()]
    assert {"raw.apc", "ingest.quarantine", "link.record_person", "idn.identity.records",
            "idn.identity.quarantined_rows", "idn.identity.person_key"} <= set(names)
    for name in names:
        d = comparable(duck.execute(f"SELECT * FROM {name}").pl(), name)
        s = comparable(spark.execute(f"SELECT * FROM {name}").pl(), name)
        assert d.columns == s.columns, name
        assert_frame_equal(d, s, check_dtypes=False, check_exact=False, rel_tol=1e-9, abs_tol=0.0), name
    linked = duck.execute("SELECT method, count(*) FROM link.record_person GROUP BY 1").fetchall()
    assert {m for m, _ in linked} >= {"nhs_number", "probabilistic"}


CLI = [sys.executable, "-c", "from openphm.cli import main; main()"]


def test_the_command_line_on_spark_keeps_its_store_between_commands(loaded):
    """ingest (with its linking) and build as two processes on a persistent local Spark store: the record
    equals DuckDB's."""
    root, ics, _, _ = loaded
    small = root / "small"
    for part in ("reference", "extracts/gp_registrations", "extracts/apc", "extracts/deaths"):
        shutil.copytree(ics / part, small / part, ignore=shutil.ignore_patterns("*2031*"))
    env = {**os.environ, "COLUMNS": "200"}
    stores = {}
    for engine in ("duckdb", "spark"):
        db = root / f"cli-{engine}" / "openphm.duckdb"
        db.parent.mkdir()
        shutil.copytree(root / "duck" / "openphm-secrets", db.with_name("openphm-secrets"))
        for step in (["ingest", str(small)], ["build"]):
            done = subprocess.run([*CLI, *step, "--db", str(db), "--engine", engine], capture_output=True, text=True,
                                  timeout=600, env=env)
            assert done.returncode == 0, f"{engine} {step[0]}: {done.stderr[-2000:]}"
        stores[engine] = db
    spark_dir = Store(stores["spark"]).spark_dir
    assert (spark_dir / "metastore_db").is_dir()
    # this process has its own Spark session, so the CLI's store is read from its files: the tables of
    # the build in service (the highest record_v<N> database; `record.*` are views over it)
    builds = sorted((spark_dir / "warehouse").glob("record_v*.db"), key=lambda p: int(p.stem.removeprefix("record_v")))
    assert builds
    import duckdb

    duck = duckdb.connect(str(stores["duckdb"]), read_only=True)
    try:
        for table in ("person", "registration", "inpatient_spell", "death"):
            d = comparable(duck.execute(f"SELECT * FROM record.{table}").pl(), "person_id")
            s = comparable(pl.read_parquet(builds[-1] / table / "*.parquet"), "person_id")
            assert d.height > 0 and d.columns == s.columns, table
            assert_frame_equal(d, s, check_dtypes=False, check_exact=False, rel_tol=1e-9, abs_tol=0.0)
    finally:
        duck.close()
