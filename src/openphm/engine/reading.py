"""Reading files into the engine: the one place that knows how each engine reads CSV and Parquet.

`stage_rows` makes a temporary table of a file's rows, every column as text, numbered in file order
(`row_number`, from 1), so that what ingest validates and reports ("row 12, column date_of_birth")
is the same row on DuckDB and on Spark. `parquet_columns` names a Parquet file's columns without
reading its rows. Both raise the engine's own error (`EngineError`) for a file that cannot be read.

CSV is read strictly on both engines: every field as text, `"` to quote and to escape a quote, a
row with too few or too many fields is an error (not padded, not skipped), an empty unquoted
field is NULL. On Spark the rows are numbered by a window over `monotonically_increasing_id()`,
which increases in file order (a file's splits are read in order of their offsets); the window
moves every row of one file through one task, acceptable for the file sizes an ICS sends (one
month or year of one source).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openphm.engine import dialect
from openphm.engine.connection import EngineError
from openphm.engine.duckdb_store import ident, lit


def parquet_columns(con: Any, path: Path) -> list[str]:
    """The column names of a Parquet file, in order."""
    if dialect(con) == "spark":
        return list(con.spark.read.parquet(str(path)).columns)
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({lit(str(path))})").fetchall()]


def stage_rows(con: Any, path: Path, table: str, columns: list[str], file_columns: list[str] | None = None) -> None:
    """Temporary table `table` of the rows of the CSV or Parquet file `path`: `row_number` (file order,
    from 1) and `columns` as text (NULL where the file lacks one). For a CSV, `file_columns` are the
    names in its header line, which is skipped (the caller has read and checked it)."""
    csv = path.suffix.lower() == ".csv"
    present = set(file_columns if csv else parquet_columns(con, path))
    if csv and file_columns is None:
        raise ValueError("a CSV file needs the names of its header line")
    select = ", ".join(f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" if c in present
                       else f"CAST(NULL AS VARCHAR) AS {ident(c)}" for c in columns)
    if dialect(con) == "spark":
        _stage_on_spark(con, path, table, select, file_columns if csv else None)
        return
    con.execute(f"DROP TABLE IF EXISTS {table}")
    if csv:
        names = "{" + ", ".join(f"{lit(n)}: 'VARCHAR'" for n in file_columns) + "}"
        source = (f"read_csv({lit(str(path))}, all_varchar = true, header = false, delim = ',', quote = '\"', "
                  f"escape = '\"', strict_mode = true, null_padding = false, ignore_errors = false, "
                  f"auto_detect = false, columns = {names}, skip = 1)")
        number = "row_number() OVER ()"  # DuckDB keeps a CSV's order (preserve_insertion_order)
    else:  # Parquet numbers its rows itself, which saves a window over the file
        source = f"read_parquet({lit(str(path))}, file_row_number = true)"
        number = "file_row_number + 1"
    con.execute(f"CREATE TEMP TABLE {table} AS SELECT {number} AS row_number, {select} FROM {source}")


def _stage_on_spark(con: Any, path: Path, table: str, select: str, file_columns: list[str] | None) -> None:
    from pyspark.sql.types import StringType, StructField, StructType

    if file_columns is not None:
        schema = StructType([StructField(n, StringType(), True) for n in file_columns])
        frame = (con.spark.read.schema(schema)
                 .options(header=True, enforceSchema=True, sep=",", quote='"', escape='"', multiLine=True,
                          mode="FAILFAST", encoding="UTF-8", nullValue="", emptyValue="")
                 .csv(str(path)))
    else:
        frame = con.spark.read.parquet(str(path))
    source = f"openphm_read_{table}"
    frame.createOrReplaceTempView(source)
    staged = con.spark.sql(
        f"SELECT row_number() OVER (ORDER BY openphm_order) AS row_number, * EXCEPT (openphm_order) FROM "
        f"(SELECT monotonically_increasing_id() AS openphm_order, {_spark(select)} FROM {source})")
    try:
        con.temp_table(table, staged)
    except EngineError as exc:  # Spark's message is a Java stack: its first line that says what went wrong
        from openphm.engine.spark_sql import SparkSQLError

        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        said = next((line for line in lines if "Exception:" in line or "[" in line), lines[0] if lines else "")
        raise SparkSQLError(f"cannot read {path.name}: {said[:300]}") from None
    finally:
        con.spark.catalog.dropTempView(source)


def _spark(select: str) -> str:
    """A select list in the house dialect as Spark SQL (casts and quoted names only)."""
    from openphm.engine.spark_sql import transpile

    return transpile(f"SELECT {select}")[0].removeprefix("SELECT ")


def read_csv_table(con: Any, path: Path, table: str) -> None:
    """Table `table` (created or replaced) of a small CSV with a header line, every column as text:
    a reference file (organisations, postcodes, care homes)."""
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        header = fh.readline().rstrip("\r\n").split(",")
    names = [h.strip('"') for h in header]
    stage_rows(con, path, "openphm_reference_rows", names, names)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * EXCLUDE (row_number) FROM openphm_reference_rows "
                "ORDER BY row_number")
    con.execute("DROP TABLE IF EXISTS openphm_reference_rows")
