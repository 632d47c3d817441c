"""The engine seam on Apache Spark (issue 11): the same house-dialect SQL gives the same answers on
DuckDB and on Spark.

Two kinds of check share one local SparkSession (it takes ~10 s to start on 2 cores):

- constructs: each SQL construct the person record and the domain rules rely on, and each
  construct sqlglot alone carries wrongly to Spark (see openphm.engine.spark), run on both engines
  on a few hand-picked rows, including the edges (birthdays, 29 February, month ends, the 29th
  and 30th day after a discharge, NULLs);
- the person record: a generated ICS ingested, linked and built on DuckDB; the inputs the build
  reads copied to Spark through Parquet; the build run again on Spark; every record table equal
  (exact for counts, keys and values, floating point to 1e-9 relative); then on both engines the
  indicators and segments, and (with models trained once on DuckDB) the risk features, the risk
  scores of both models and the case-finding lists, all equal.

Skipped only when pyspark is not installed (`make test` installs it: pip install -e .[spark]).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from tests.spec.test_readmissions import INDEX, READMITTED
from tests.spec.test_readmissions import ROWS as SPELLS

from openphm import domain
from openphm.engine import table_columns, table_kind
from openphm.engine.connection import EngineError, memory_connection
from openphm.finance.tariff import load_tariff
from openphm.record.build import DEFAULT_SQL_DIR, build_record, read_steps

pytest.importorskip("pyspark")

from openphm.engine.spark import SparkConnection, spark_session
from openphm.engine.spark_sql import transpile

D = dt.date


@pytest.fixture(scope="module")
def spark(tmp_path_factory) -> SparkConnection:
    session = spark_session("local[2]", warehouse=str(tmp_path_factory.mktemp("spark-warehouse")))
    con = SparkConnection(session)
    yield con
    con.close()
    session.stop()


@pytest.fixture(scope="module")
def duck():
    con = memory_connection(threads=2)
    yield con
    con.close()


def normalised(frame: pl.DataFrame) -> pl.DataFrame:
    """Integers as Int64 and floats as Float64 (the engines' widths differ), rows in a fixed order."""
    casts = {c: pl.Int64 for c, t in frame.schema.items() if t.is_integer()}
    casts |= {c: pl.Float64 for c, t in frame.schema.items() if t.is_float()}
    frame = frame.cast(casts)
    sortable = [c for c, t in frame.schema.items() if not isinstance(t, pl.List | pl.Struct | pl.Array)]
    return frame.sort(sortable, nulls_last=True, maintain_order=True) if sortable else frame


def same(duck_frame: pl.DataFrame, spark_frame: pl.DataFrame, what: str = "") -> None:
    assert duck_frame.columns == spark_frame.columns, what
    assert duck_frame.height == spark_frame.height, what
    assert_frame_equal(normalised(duck_frame), normalised(spark_frame), check_dtypes=False, check_exact=False,
                       rel_tol=1e-9, abs_tol=0.0)


def both(duck, spark, sql: str, frames: dict[str, pl.DataFrame] | None = None) -> pl.DataFrame:
    """Run one house-dialect query on both engines (over the same registered frames); they must agree."""
    for name, frame in (frames or {}).items():
        duck.register(name, frame.to_arrow())
        spark.register(name, frame)
    try:
        d, s = duck.execute(sql).pl(), spark.execute(sql).pl()
    finally:
        for name in frames or {}:
            duck.unregister(name)
            spark.unregister(name)
    same(d, s, sql)
    return d


# ---- constructs -----------------------------------------------------------------------------------

BIRTHS = pl.DataFrame({"birth_year": [1950, 1950, 1950, 1950, 2008, 2000, 2023, 1930],
                       "birth_month": [2, 3, 10, 12, 2, 1, 12, 6]}, schema={"birth_year": pl.Int16,
                                                                         "birth_month": pl.Int8})
ON_DATES = [D(2024, 2, 29), D(2023, 2, 28), D(2024, 3, 1), D(2024, 10, 1), D(2024, 10, 15), D(2024, 10, 16),
            D(2024, 12, 31), D(2024, 1, 1), D(2024, 6, 30)]


def test_age_on_across_birthdays_and_29_february(duck, spark):
    ages = ", ".join(f"{domain.age_on(d)} AS age_{i}" for i, d in enumerate(ON_DATES))
    bands = ", ".join(f"{domain.age_band(domain.age_on(d))} AS band_{i}" for i, d in enumerate(ON_DATES))
    got = both(duck, spark, f"SELECT birth_year, birth_month, {ages}, {bands} FROM births", {"births": BIRTHS})
    for row in got.iter_rows(named=True):  # and both equal the Python twin
        for i, d in enumerate(ON_DATES):
            assert row[f"age_{i}"] == domain.age_on_value(row["birth_year"], row["birth_month"], d)


DATES = pl.DataFrame({
    "a": [D(2024, 2, 28), D(2023, 12, 31), D(2024, 3, 30), D(2020, 2, 29), D(1950, 6, 20), D(2024, 1, 31), None],
    "b": [D(2024, 3, 1), D(2024, 1, 1), D(2024, 4, 2), D(2021, 2, 28), D(2024, 6, 1), D(2024, 2, 1), D(2024, 1, 1)],
})


def test_date_differences_count_boundaries_as_duckdb_does(duck, spark):
    got = both(duck, spark, "SELECT a, b, date_diff('day', a, b) AS days, date_diff('month', a, b) AS months, "
               "date_diff('quarter', a, b) AS quarters, date_diff('year', a, b) AS years FROM dates", {"dates": DATES})
    assert got.filter(pl.col("a") == D(1950, 6, 20))["years"].item() == 74  # sqlglot alone gives Spark 73
    assert got.filter(pl.col("a") == D(2024, 1, 31))["months"].item() == 1


def test_day_differences_of_timestamps_count_midnights(duck, spark):
    stamps = pl.DataFrame({"a": [dt.datetime(2024, 1, 1, 23), dt.datetime(2024, 3, 30, 12)],
                           "b": [dt.datetime(2024, 1, 2, 1), dt.datetime(2024, 4, 1, 11)]})
    got = both(duck, spark, "SELECT date_diff('day', a, b) AS days FROM stamps", {"stamps": stamps})
    assert sorted(got["days"]) == [1, 2]


def test_date_minus_date_is_not_used_date_diff_is(duck, spark):
    """DuckDB's `b - a` is days, Spark's an interval: the house SQL writes date_diff('day', a, b)."""
    assert "date_diff('day'" in (DEFAULT_SQL_DIR / "inpatient_spell.sql").read_text()
    d = duck.execute("SELECT DATE '2024-03-01' - DATE '2024-02-28'").fetchone()[0]
    s = spark.execute("SELECT DATE '2024-03-01' - DATE '2024-02-28'").fetchone()[0]
    assert d == 2 and s != 2  # the trap, kept visible


def test_the_readmission_window_and_emergency_flags(duck, spark):
    apc = pl.DataFrame(SPELLS, schema=["record_id", "person_id", "admission_method", "admission_date",
                                       "discharge_date", "discharge_method", "diag_01"], orient="row")
    empty = {c: pl.lit(None, pl.Utf8) for c in ("provider_code", "gp_practice_code", "patient_classification",
                                                "admission_source", "discharge_destination", "treatment_specialty",
                                                "lsoa_code", "spell_hrg", "critical_care_days")}
    apc = apc.with_columns(**empty, discharge_ready_date=pl.col("discharge_date"), birth_year=pl.lit(1950),
                           birth_month=pl.lit(6))
    step = next(s for s in read_steps(DEFAULT_SQL_DIR) if s.table == "inpatient_spell")
    got = both(duck, spark, f"SELECT *, {domain.emergency_admission()} AS emergency FROM "
               f"({domain.expand_rules(step.sql).strip()}\n) AS s",
               {"linked_apc": apc, "tariff": load_tariff().lines, "hrg_weight": load_tariff().hrg_weights})
    assert set(got.filter("readmission_index")["spell_id"]) == INDEX
    assert got["cost"].null_count() == 0  # the shipped tariff prices every spell, alike on both engines
    assert set(got.filter("readmitted_within_30_days")["spell_id"]) == READMITTED
    assert set(got.filter("emergency")["spell_id"]) == {r[0] for r in SPELLS if r[2].startswith("2")}


def test_admission_types_and_other_rules(duck, spark):
    rows = pl.DataFrame({"method": ["11", "12", "21", "2A", "28", "31", "82", "99", None],
                         "ethnic": ["A", "D", "H", "M", "S", "Z", None, "B", "99"],
                         "registration_start": [D(2020, 1, 1)] * 9,
                         "registration_end": [None, D(2024, 3, 31), D(2024, 4, 1), None, None, None, None, None, None],
                         "date_of_death": [None, D(2024, 3, 31), D(2024, 4, 1), None, None, None, None, None, None]})
    d = D(2024, 3, 31)
    both(duck, spark, f"SELECT method, {domain.admission_type('method')} AS kind, "
         f"{domain.ethnic_group('ethnic')} AS g, {domain.registered_on(d)} AS registered, "
         f"{domain.alive_on(d)} AS alive, "
         f"{domain.registered_during(D(2024, 4, 1), D(2025, 4, 1))} AS during FROM r", {"r": rows})


LISTED = pl.DataFrame({"g": [1, 1, 1, 2, 2, 3], "x": [3, None, 1, 5, 4, None], "k": [1, 2, 3, None, 1, 1]})


def test_ordered_lists_keep_their_order_and_nulls(duck, spark):
    both(duck, spark, "SELECT g, list(x ORDER BY x) AS up, list(x ORDER BY x DESC) AS down, "
         "list(x ORDER BY k DESC, x) AS by_k, list(x ORDER BY k NULLS FIRST) AS nulls_first FROM l GROUP BY g",
         {"l": LISTED})
    unordered = both(duck, spark, "SELECT g, list_sort(list(x)) AS xs, array_length(list(x)) AS n FROM l GROUP BY g",
                     {"l": LISTED})
    assert unordered.filter(pl.col("g") == 3)["n"].item() == 1  # a NULL kept, as DuckDB keeps it


def test_string_agg_in_order_and_md5(duck, spark):
    both(duck, spark, "SELECT md5(coalesce(string_agg(CAST(x AS VARCHAR), ',' ORDER BY x), '')) AS digest FROM l",
         {"l": LISTED})


def test_quantiles_and_series(duck, spark):
    both(duck, spark, "SELECT g, quantile_cont(x, 0.5) AS q50, quantile_cont(x, 0.9) AS q90, median(x) AS m "
         "FROM l GROUP BY g", {"l": LISTED.drop_nulls("x")})
    both(duck, spark, "SELECT * FROM generate_series(1, 5)")
    both(duck, spark, "SELECT * FROM range(10, 0, -3) AS r(x)")
    both(duck, spark, "SELECT s.n * 2 AS twice FROM generate_series(1, 4) AS s(n)")
    with pytest.raises(EngineError):
        spark.execute("SELECT quantile_disc(x, 0.5) FROM (SELECT 1 AS x)")


def test_zipped_unnests_and_list_literals(duck, spark):
    codes = pl.DataFrame({"id": ["a", "b"], "d1": ["I10", None], "d2": [None, "E11"], "d3": ["J44", "N18"]})
    got = both(duck, spark, "SELECT id, unnest(range(1, 4)) AS position, unnest([d1, d2, d3]) AS code FROM c",
               {"c": codes})
    assert got.height == 6


def test_window_ordering_with_nulls_and_set_operations(duck, spark):
    rows = pl.DataFrame({"p": [1, 1, 1, 2, 2], "d": [D(2024, 1, 1), None, D(2024, 1, 1), None, D(2023, 1, 1)],
                         "c": ["b", "a", None, "z", "y"]})
    both(duck, spark, "SELECT p, d, c, row_number() OVER (PARTITION BY p ORDER BY d, c) AS asc_rank, "
         "row_number() OVER (PARTITION BY p ORDER BY d DESC, c DESC) AS desc_rank, "
         "row_number() OVER (PARTITION BY p ORDER BY d DESC NULLS FIRST, c NULLS FIRST) AS nf, "
         "bool_or(d IS NULL) OVER (PARTITION BY p) AS any_null FROM r", {"r": rows})
    both(duck, spark, "SELECT p FROM r EXCEPT SELECT 2", {"r": rows})
    both(duck, spark, "SELECT c, starts_with(c, 'a') AS sw, regexp_matches(coalesce(c, ''), '^(y|z)') AS rx, "
         "CAST(NULL AS DECIMAL(12, 2)) AS cost, greatest(p, 0) AS g FROM r", {"r": rows})


def test_the_safe_forms_of_division_and_rounding(duck, spark):
    """Untransformed traps (DuckDB: x/0 is infinity, CAST(2.5 AS INT) rounds; Spark: an error, truncation):
    the house SQL writes nullif(denominator, 0) and rounds before casting."""
    nums = pl.DataFrame({"x": [7.0, 2.5, -2.5, 3.0], "y": [2.0, 0.0, 4.0, 3.0]})
    both(duck, spark, "SELECT x / nullif(y, 0) AS ratio, CAST(round(x) AS INTEGER) AS r, "
         "CAST(floor(x / 2) AS INTEGER) AS f FROM n", {"n": nums})


def test_month_starts_intervals_and_month_labels(duck, spark):
    """date_trunc, INTERVAL arithmetic and strftime as the indicators and segments use them. `d - INTERVAL`
    is a TIMESTAMP on DuckDB and a DATE on Spark: the house SQL casts it, compares it or takes its year."""
    days = pl.DataFrame({"d": [D(2024, 1, 31), D(2024, 3, 31), D(2024, 2, 29), D(2023, 12, 1), D(2024, 4, 1)],
                         "t": [dt.datetime(2024, 1, 31, 23, 59), dt.datetime(2024, 3, 1), dt.datetime(2024, 2, 29, 12),
                               dt.datetime(2023, 12, 1), dt.datetime(2024, 4, 1, 0, 1)]})
    got = both(duck, spark, "SELECT d, CAST(date_trunc('month', d) AS DATE) AS m, CAST(date_trunc('month', t) AS DATE) "
               "AS mt, CAST(d - INTERVAL 1 MONTH AS DATE) AS back1, CAST(d - INTERVAL 3 MONTH AS DATE) AS back3, "
               "CAST(year(d - INTERVAL 3 MONTH) AS INTEGER) AS fy, strftime(d, '%Y-%m') AS label, "
               "lag(CAST(date_trunc('month', d) AS DATE)) OVER (ORDER BY d) = "
               "CAST(date_trunc('month', d) AS DATE) - INTERVAL 1 MONTH AS follows FROM s", {"s": days})
    assert got.filter(pl.col("d") == D(2024, 3, 31))["back1"].item() == D(2024, 2, 29)
    assert got.filter(pl.col("d") == D(2024, 1, 31))["fy"].item() == 2023


def test_division_is_in_double_as_on_duckdb(duck, spark):
    """DuckDB's `/` is always DOUBLE; Spark divides DECIMALs (1000.0, 36.0) as DECIMALs, to 6 places."""
    nums = pl.DataFrame({"x": [1, 2, 7], "y": [3.0, 7.0, 9.0]})
    got = both(duck, spark, "SELECT x, x * 1000.0 / 3 AS a, count(*) OVER () * 1000.0 / 7 AS b, x / 36.0 AS c, "
               "CAST(y AS DECIMAL(10, 2)) / 3 AS d, ceil(x / 2.0) AS e, x / y AS f FROM n", {"n": nums})
    assert got.schema["a"] == pl.Float64 and got.filter(pl.col("x") == 1)["a"].item() == 1000.0 / 3


def test_deletes_and_temporary_tables_written_in_place(duck, spark):
    """DELETE (refused by Spark on Parquet tables) and INSERT into a temporary table (a Spark temporary view
    cannot be written): both written as new rows over the old, and DELETE undone by ROLLBACK."""
    for con in (duck, spark):
        con.execute("CREATE SCHEMA IF NOT EXISTS parity_d")
        con.execute("CREATE OR REPLACE TABLE parity_d.t AS SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, NULL)) "
                    "AS v(k, s)")
        con.execute("DELETE FROM parity_d.t WHERE s = 'a' OR k IN (SELECT 5)")  # the NULL row is kept
        con.execute("CREATE OR REPLACE TEMP TABLE parity_tmp (k INTEGER, s VARCHAR, d DATE)")
        con.execute("INSERT INTO parity_tmp SELECT k + 10, s, CAST(? AS DATE) FROM parity_d.t", ["2024-02-29"])
        con.execute("INSERT INTO parity_tmp VALUES (?, ?, NULL)", [99, "z"])
        con.execute("DELETE FROM parity_tmp WHERE k = ?", [12])
    assert both(duck, spark, "SELECT * FROM parity_d.t")["k"].to_list() == [2, 3]
    assert both(duck, spark, "SELECT * FROM parity_tmp")["k"].to_list() == [13, 99]
    spark.execute("BEGIN")
    spark.execute("DELETE FROM parity_d.t")
    assert spark.execute("SELECT count(*) FROM parity_d.t").fetchone() == (0,)
    spark.execute("ROLLBACK")
    assert spark.execute("SELECT count(*) FROM parity_d.t").fetchone() == (2,)
    for con in (duck, spark):
        con.execute("DROP TABLE parity_tmp")


def test_select_star_exclude(duck, spark):
    """DuckDB's `* EXCLUDE (...)` is written by sqlglot as Spark's `* EXCEPT (...)` (Spark 4), the same columns."""
    rows = pl.DataFrame({"person_id": ["a", "b"], "score": [0.25, 0.5], "band": [1, 2]})
    got = both(duck, spark, "SELECT * EXCLUDE (person_id) FROM r", {"r": rows})
    assert got.columns == ["score", "band"]
    both(duck, spark, "SELECT r.* EXCLUDE (band, score), 1 AS one FROM r", {"r": rows})


def test_uuids_are_carried_as_lower_case_text(duck, spark):
    """Spark has no UUID type: CAST(x AS UUID) is the id's canonical (lower-case) text there, which joins,
    orders and prints as DuckDB's UUIDs do."""
    ids = pl.DataFrame({"s": ["A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "0fffffff-0000-0000-0000-000000000000",
                              "f0000000-0000-0000-0000-000000000000", "80000000-0000-0000-0000-000000000000"]})
    got = both(duck, spark, "SELECT CAST(CAST(s AS UUID) AS VARCHAR) AS u, row_number() OVER (ORDER BY "
               "CAST(CAST(s AS UUID) AS VARCHAR)) AS n, CAST(s AS UUID) = CAST(lower(s) AS UUID) AS same FROM i",
               {"i": ids})
    assert got.filter(pl.col("n") == 4)["u"].item() == "f0000000-0000-0000-0000-000000000000"
    assert got["same"].all()


def test_catalogue_lookups_and_a_rolled_back_switch(spark):
    spark.execute("CREATE SCHEMA IF NOT EXISTS parity_a")
    spark.execute("CREATE SCHEMA IF NOT EXISTS idn.identity")
    spark.execute("CREATE TABLE IF NOT EXISTS idn.identity.keys (k VARCHAR PRIMARY KEY, n INTEGER)")
    spark.execute("INSERT INTO idn.identity.keys VALUES (?, ?)", ["x'1", 1])
    spark.execute("CREATE OR REPLACE TABLE parity_a.t1 AS SELECT 1 AS person_id, 'one' AS v")
    spark.execute("CREATE OR REPLACE TABLE parity_a.t2 AS SELECT 2 AS person_id, 'two' AS v")
    spark.execute("CREATE OR REPLACE VIEW parity_a.current AS SELECT * FROM parity_a.t1")
    assert table_kind(spark, "parity_a", "current") == "VIEW"
    assert table_kind(spark, "parity_a", "t1") == "BASE TABLE"
    assert table_kind(spark, "parity_a", "nothing") is None
    assert table_columns(spark, "parity_a", "current") == ["person_id", "v"]
    assert spark.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'idn' AND schema_name = "
                         "'identity' AND table_name = ?", ["keys"]).fetchone() == (1,)
    assert spark.execute("SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() "
                         "AND table_schema = 'parity_a' AND table_name = 'current'").fetchall() == [("VIEW",)]
    assert spark.execute("SELECT k FROM idn.identity.keys").fetchall() == [("x'1",)]
    spark.execute("CREATE TABLE IF NOT EXISTS parity_a.log (n INTEGER)")
    spark.execute("BEGIN")
    spark.execute("CREATE OR REPLACE VIEW parity_a.current AS SELECT * FROM parity_a.t2")
    spark.execute("CREATE SCHEMA IF NOT EXISTS parity_b")
    spark.execute("DROP TABLE parity_a.t1")
    spark.execute("INSERT INTO parity_a.log VALUES (1)")
    assert spark.execute("SELECT v FROM parity_a.current").fetchall() == [("two",)]  # reads its own writes
    spark.execute("ROLLBACK")
    assert spark.execute("SELECT v FROM parity_a.current").fetchall() == [("one",)]
    assert spark.execute("SELECT count(*) FROM parity_a.log").fetchone() == (0,)
    assert table_kind(spark, "parity_a", "t1") == "BASE TABLE"
    assert not spark.spark.catalog.databaseExists("parity_b")
    spark.execute("BEGIN")
    spark.execute("DROP TABLE parity_a.t1")
    spark.execute("COMMIT")
    assert table_kind(spark, "parity_a", "t1") is None
    assert [t for (t,) in spark.execute("SELECT table_name FROM information_schema.tables WHERE "
                                        "table_schema = 'parity_a'").fetchall() if "dropped" in t] == []


def test_transpiled_sql_is_readable():
    assert transpile("SELECT date_diff('year', a, b) FROM t") == ["SELECT CAST((YEAR(b) - YEAR(a)) AS BIGINT) FROM t"]


# ---- the person record ----------------------------------------------------------------------------

INPUT_SCHEMAS = ("raw", "link", "ingest", "reference")
IDENTITY_INPUTS = ("person_key", "optout", "optout_meta", "link_run")


def copy_inputs(duck_con, spark: SparkConnection, folder: Path) -> list[str]:
    """What a build reads, from a DuckDB store to Spark through Parquet (UUIDs as text: Spark has none)."""
    tables = duck_con.execute(
        "SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE NOT temporary AND "
        f"((database_name = current_database() AND schema_name IN {INPUT_SCHEMAS} AND table_name <> 'builds') OR "
        f"(database_name = 'idn' AND table_name IN {IDENTITY_INPUTS})) ORDER BY ALL").fetchall()
    copied = []
    for database, schema, table in tables:
        columns = duck_con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog "
                                   "= ? AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                                   [database, schema, table]).fetchall()
        select = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' if t == "UUID" else f'"{c}"' for c, t in columns)
        path = folder / f"{database}.{schema}.{table}.parquet"
        duck_con.execute(f"COPY (SELECT {select} FROM \"{database}\".\"{schema}\".\"{table}\") TO '{path}' "
                         "(FORMAT parquet)")
        target = f"{schema}" if database != "idn" else f"idn__{schema}"
        spark.spark.sql(f"CREATE DATABASE IF NOT EXISTS {target}")
        spark.spark.read.parquet(str(path)).write.saveAsTable(f"{target}.{table}")
        copied.append(f"{schema}.{table}")
    return copied


@pytest.fixture(scope="module")
def builds(tmp_path_factory, spark):
    from openphm.identity.linkage import link_records
    from openphm.identity.optout import read_optout_file, replace_optout
    from openphm.ingest.loader import extract_files, ingest_file, load_reference, open_store
    from openphm.synth.generate import GenerateOptions, generate_ics

    root = tmp_path_factory.mktemp("parity")
    ics = root / "ics"
    generate_ics(GenerateOptions(people=20_000, years=2, seed=11, out=ics, format="parquet"))
    store, duck_con = open_store(root / "db" / "openphm.duckdb")
    load_reference(duck_con, ics / "reference")
    for f in extract_files(ics):
        ingest_file(duck_con, f)
    link_records(duck_con, store, 0.9)
    replace_optout(duck_con, read_optout_file(ics / "optout" / "national_data_opt_out.txt"))
    started = time.perf_counter()
    on_duckdb = build_record(duck_con)
    duck_seconds = time.perf_counter() - started
    folder = root / "copy"
    folder.mkdir()
    copied = copy_inputs(duck_con, spark, folder)
    started = time.perf_counter()
    on_spark = build_record(spark)
    spark_seconds = time.perf_counter() - started
    print(f"\nbuild: DuckDB {duck_seconds:.1f} s, Spark {spark_seconds:.1f} s; copied {len(copied)} tables")
    yield duck_con, on_duckdb, on_spark
    duck_con.close()


def test_the_build_runs_on_spark_with_the_same_counts(builds):
    _, on_duckdb, on_spark = builds
    assert on_spark["tables"] == on_duckdb["tables"]
    assert on_spark["opted_out"] == on_duckdb["opted_out"] > 0
    assert all(n > 0 for t, n in on_spark["tables"].items() if t != "vcse_referral")


def record_tables(on_duckdb: dict) -> list[str]:
    return [*on_duckdb["tables"], "opted_out", "optout_applied"]


def duck_frame(duck_con, schema: str, table: str) -> pl.DataFrame:
    columns = duck_con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = "
                               "current_database() AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                               [schema, table]).fetchall()
    select = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' if t == "UUID" else f'"{c}"' for c, t in columns)
    return duck_con.execute(f'SELECT {select} FROM {schema}."{table}"').pl()


def test_every_record_table_is_equal(builds, spark):
    duck_con, on_duckdb, _ = builds
    for table in record_tables(on_duckdb):
        d = duck_frame(duck_con, "record", table)
        s = spark.execute(f'SELECT * FROM record."{table}"').pl()
        same(d, s, table)


def test_the_planning_views_leave_out_the_same_people(builds, spark):
    duck_con, on_duckdb, _ = builds
    for table in on_duckdb["tables"]:
        if table_kind(duck_con, "planning", table) is None:  # no person in it (the tariff): no planning view
            assert table_kind(spark, "planning", table) is None, table
            continue
        d = duck_con.execute(f'SELECT count(*) FROM planning."{table}"').fetchone()
        assert spark.execute(f'SELECT count(*) FROM planning."{table}"').fetchone() == d, table
    people = spark.execute("SELECT count(*) FROM record.person WHERE national_data_opt_out").fetchone()[0]
    assert people == on_duckdb["opted_out"]


# ---- indicators and segments ---------------------------------------------------------------------

MEASURE_TABLES = ("measure_result", "inequality", "opportunity")
SEGMENT_TABLES = ("definition", "person_segment", "size", "activity", "transition")


@pytest.fixture(scope="module")
def outputs(builds, spark):
    """Every indicator and the segments computed on both engines from their records. Segments over five
    months (two Aprils, so activity and transitions have rows; consecutive months and a gap, so spells
    join and break), not all 24: on 2 cores each month is ~4.5 s of Spark."""
    from openphm.measures.engine import run_measures
    from openphm.segments.run import record_months, run_segments

    duck_con = builds[0]
    months = [m for m in record_months(duck_con) if m.month in (3, 4, 5)]
    seconds = {}
    for name, con in (("DuckDB", duck_con), ("Spark", spark)):
        started = time.perf_counter()
        run_measures(con)
        middle = time.perf_counter()
        run_segments(con, months=months)
        seconds[name] = (middle - started, time.perf_counter() - middle)
        run_measures(con, only=["emergency_admissions_dsr"])  # its rows deleted (DELETE) and written again
    print("\n" + "; ".join(f"{k}: indicators {a:.1f} s, segments {b:.1f} s" for k, (a, b) in seconds.items()))
    return months


def test_every_indicator_and_segment_table_is_equal(builds, outputs, spark):
    duck_con = builds[0]
    rows = {}
    for schema, tables in (("measures", MEASURE_TABLES), ("segments", SEGMENT_TABLES)):
        for table in tables:
            d = duck_frame(duck_con, schema, table)
            same(d, spark.execute(f"SELECT * FROM {schema}.{table}").pl(), f"{schema}.{table}")
            rows[f"{schema}.{table}"] = d.height
    print(rows)
    assert all(rows[t] > 0 for t in ("measures.measure_result", "measures.inequality", "segments.person_segment",
                                     "segments.size", "segments.activity", "segments.transition"))


def test_the_outputs_are_stamped_with_the_same_optout_set(builds, outputs, spark):
    from openphm.identity.optout import stale_outputs

    duck_con = builds[0]
    query = "SELECT output, fingerprint FROM optout.output_state ORDER BY output"
    assert spark.execute(query).fetchall() == duck_con.execute(query).fetchall()
    assert stale_outputs(spark) == stale_outputs(duck_con) == []
    count = "SELECT count(*) FROM planning.person_segment"
    assert spark.execute(count).fetchone() == duck_con.execute(count).fetchone()


def test_a_failed_build_on_spark_leaves_the_build_in_service(builds, spark, tmp_path):
    from openphm.record.build import BuildFailed

    on_spark = builds[2]
    steps = tmp_path / "sql"
    steps.mkdir()
    for path in DEFAULT_SQL_DIR.glob("*.sql"):
        (steps / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (steps / "aaa_broken.sql").write_text("-- table: aaa_broken\n-- depends:\nSELECT no_such_column FROM linked_apc\n",
                                          encoding="utf-8")
    before = spark.execute("SELECT count(*) FROM record.person").fetchone()
    with pytest.raises(BuildFailed):
        build_record(spark, steps)
    assert spark.execute("SELECT count(*) FROM record.person").fetchone() == before
    assert table_kind(spark, f"record_v{on_spark['version'] + 1}", "person") is None
    statuses = spark.execute("SELECT status FROM ingest.builds ORDER BY version").fetchall()
    assert statuses == [("succeeded",), ("failed",)]


# ---- risk features, risk scores and case-finding lists -------------------------------------------


@pytest.fixture(scope="module")
def risk_outputs(builds, spark, tmp_path_factory):
    """Models trained once on DuckDB (Python, on frames), then the features, the scores and the lists at one
    date on both engines with the same saved models. Spark's catalogue has no store, so the installation's
    model key is passed to it (on DuckDB it is read from the store, as the CLI does)."""
    from openphm.derive.features import build_features
    from openphm.lists.run import run_lists
    from openphm.risk.model_files import installation_key
    from openphm.risk.score import score_population
    from openphm.risk.train import default_dates, train_and_report

    duck_con = builds[0]
    models = tmp_path_factory.mktemp("risk") / "models"
    started = time.perf_counter()
    report = train_and_report(duck_con, models)
    seconds = {"train (DuckDB)": time.perf_counter() - started}
    as_of = default_dates(duck_con)[1]
    key = installation_key(duck_con)
    assert key is not None
    with pytest.raises(ValueError, match="no OpenPHM store"):
        installation_key(spark)
    other = next(m for m in report["models"] if m != report["best_model"])
    for name, con in (("DuckDB", duck_con), ("Spark", spark)):
        started = time.perf_counter()
        build_features(con, as_of, schema="record", table="parity_features")
        middle = time.perf_counter()
        score_population(con, models, as_of, key=key)
        scored = time.perf_counter()
        run_lists(con)
        seconds[name] = (middle - started, scored - middle, time.perf_counter() - scored)
        # and the other model, after the lists: LightGBM's many equal risks and its TreeSHAP reasons
        score_population(con, models, as_of, model=other, key=key)
    trained = seconds.pop("train (DuckDB)")
    print(f"\nrisk at {as_of} (lists on {report['best_model']}): train {trained:.1f} s; " + "; ".join(
        f"{k}: features {a:.1f} s, score {b:.1f} s, lists {c:.1f} s" for k, (a, b, c) in seconds.items()))
    return as_of


def test_every_risk_feature_score_and_list_member_is_equal(builds, risk_outputs, spark):
    duck_con = builds[0]
    rows = {}
    features = duck_con.execute("SELECT * EXCLUDE (person_id), CAST(person_id AS VARCHAR) AS person_id "
                                "FROM parity_features").pl()
    same(features, spark.execute("SELECT * EXCLUDE (person_id), CAST(person_id AS VARCHAR) AS person_id "
                                 "FROM parity_features").pl(), "features")
    rows["features"] = features.height
    for con in (duck_con, spark):
        con.execute("DROP TABLE parity_features")
    for schema, table in (("risk", "score"), ("risk", "rising"), ("lists", "member")):
        d = duck_frame(duck_con, schema, table)
        same(d, spark.execute(f"SELECT * FROM {schema}.{table}").pl(), f"{schema}.{table}")
        rows[f"{schema}.{table}"] = d.height
    print(rows)
    assert 2 * rows["features"] == rows["risk.score"] > 0 and rows["lists.member"] > 0  # two models
    for view in ("risk_score", "list_member", "list_size"):
        count = f"SELECT count(*) FROM planning.{view}"
        assert spark.execute(count).fetchone() == duck_con.execute(count).fetchone(), view
