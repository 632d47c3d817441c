"""The Spark session OpenPHM runs on, and what crosses between Python and Spark: query results
(`SparkResult`, answering as a DuckDB result does) and frames handed to Spark (polars, Arrow,
pandas). Used by `openphm.engine.spark`."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import tempfile
import uuid
from typing import Any

import polars as pl
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession


def spark_session(master: str = "local[2]", warehouse: str | None = None, shuffle_partitions: int = 2,
                  driver_memory: str = "2g", app_name: str = "openphm",
                  metastore: str | None = None) -> SparkSession:
    """A SparkSession for OpenPHM: session time zone UTC, the UI off, few shuffle partitions, the
    warehouse in `warehouse` (default a new temporary folder). On a cluster, pass its master URL
    (or use the session spark-submit made: `SparkConnection(SparkSession.getActiveSession())`).

    `metastore`: a folder for a persistent catalogue in local mode (Hive's metastore in an embedded
    Derby database), so that the tables and views one command writes are there for the next; on a
    cluster the cluster's own catalogue (Hive metastore, Glue, Unity) is used instead."""
    local = master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.warehouse.dir", warehouse or tempfile.mkdtemp(prefix="openphm-spark-"))
               .config("spark.sql.sources.default", "parquet"))
    try:  # Splink's similarity functions (Jaro-Winkler and others) for linking on Spark, built for Spark 4
        from splink.backends.spark import similarity_jar_location

        builder = builder.config("spark.jars", similarity_jar_location())
    except ImportError:
        pass
    if local:
        builder = (builder.config("spark.driver.memory", driver_memory)
                   .config("spark.default.parallelism", str(shuffle_partitions))
                   .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1"))
    if metastore:
        builder = builder.config("spark.sql.catalogImplementation", "hive")
        if local:
            folder = os.path.abspath(metastore)
            os.makedirs(folder, exist_ok=True)
            builder = (builder
                       .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                               f"jdbc:derby:;databaseName={folder}/metastore_db;create=true")
                       .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={folder}"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if spark.sparkContext.getCheckpointDir() is None:  # Splink's Spark backend checkpoints between steps
        base = os.path.abspath(metastore) if metastore and local else tempfile.gettempdir()
        spark.sparkContext.setCheckpointDir(os.path.join(base, "checkpoints"))
    return spark


def _naive_utc(table: pa.Table) -> pa.Table:
    """Timestamps as DuckDB returns TIMESTAMP: without a time zone (Spark's are UTC here)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            table = table.set_column(i, field.name, table.column(i).cast(pa.timestamp(field.type.unit)))
    return table


class SparkResult:
    """What `SparkConnection.execute` returns: DuckDB's fetch methods over a Spark result."""

    def __init__(self, frame: DataFrame | None = None, rows: list[tuple] | None = None,
                 columns: tuple[str, ...] = ()) -> None:
        self._frame, self._rows, self._columns, self._next = frame, rows, columns, 0

    def arrow(self) -> pa.Table:
        if self._frame is not None:
            return _naive_utc(self._frame.toArrow())
        rows = self._rows or []
        return pa.table({c: [r[i] for r in rows] for i, c in enumerate(self._columns)})

    def _all(self) -> list[tuple]:
        if self._rows is None:
            table = self.arrow()
            self._rows = list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))
        return self._rows

    def fetchall(self) -> list[tuple]:
        rows = self._all()[self._next:]
        self._next = len(self._all())
        return rows

    def fetchone(self) -> tuple | None:
        rows = self._all()
        if self._next >= len(rows):
            return None
        self._next += 1
        return rows[self._next - 1]

    def pl(self) -> pl.DataFrame:
        return pl.from_arrow(self.arrow())

    def df(self) -> Any:
        return self.arrow().to_pandas()


EMPTY_RESULT = SparkResult(rows=[])



def spark_parameter(value: object) -> object:
    """A `?` parameter's value as Spark binds it (a UUID as its text, a numpy scalar as Python's)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes | dt.date | decimal.Decimal):
        return value.item()  # a numpy scalar
    return value


def spark_frame_source(frame: object) -> Any:
    """A polars or Arrow frame (or pandas) in a form Spark's createDataFrame takes."""
    if isinstance(frame, pl.DataFrame):
        frame = frame.to_arrow()
    if type(frame).__name__ == "DataFrame" and hasattr(frame, "to_numpy"):  # pandas (Spark cannot type an empty one)
        frame = pa.Table.from_pandas(frame, preserve_index=False)
    if isinstance(frame, pa.RecordBatchReader):
        frame = frame.read_all()
    if isinstance(frame, pa.Table):
        fields = []
        for f in frame.schema:
            t = f.type
            t = pa.string() if pa.types.is_large_string(t) or pa.types.is_string_view(t) else t
            t = pa.binary() if pa.types.is_large_binary(t) else t
            t = pa.string() if pa.types.is_null(t) else t  # an empty or all-missing text column, as DuckDB types it
            fields.append(pa.field(f.name, t))
        return frame.cast(pa.schema(fields))
    return frame
