"""The one seam between the platform and the engine that runs its SQL.

Every module outside `openphm.engine` talks to a `Connection` and catches `EngineError`; none
imports DuckDB or PySpark. A `Connection` is the small part of the DB-API the platform uses:

- `execute(sql, parameters)`: run one statement written in the house dialect (DuckDB's), with `?`
  parameters; returns something with `fetchone()`, `fetchall()`, `pl()` (polars), `df()` (pandas)
  and `arrow()`;
- `executemany(sql, rows)`;
- `register(name, frame)` / `unregister(name)`: an in-memory Arrow or polars frame as a view;
- `close()`.

DuckDB's own connection is almost exactly this: `openphm.engine.duckdb_connection` only fetches
each query's result whole rather than streamed (DuckDB 1.5's streamed fetch can spin). The
Spark engine (`openphm.engine.spark`) implements it by transpiling each statement with sqlglot
and running it in a SparkSession; every SQL construct the platform uses has a parity test there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import duckdb


class Result(Protocol):
    """What `Connection.execute` returns."""

    def fetchone(self) -> tuple | None: ...
    def fetchall(self) -> list[tuple]: ...
    def pl(self) -> Any: ...
    def df(self) -> Any: ...
    def arrow(self) -> Any: ...


class Connection(Protocol):
    """A connection to the engine (see the module's note)."""

    def execute(self, query: str, parameters: object = None) -> Any: ...
    def executemany(self, query: str, parameters: object = None) -> Any: ...
    def register(self, view_name: str, python_object: object) -> Any: ...
    def unregister(self, view_name: str) -> Any: ...
    def close(self) -> None: ...


def _engine_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [duckdb.Error]
    try:  # Spark's, when the optional extra is installed
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import PySparkException
        errors += [PySparkException, Py4JJavaError]  # the latter: a JVM call outside SQL (reading a file)
    except ImportError:
        pass
    return tuple(errors)


# Catch with `except EngineError`: an error raised by whichever engine ran the statement.
EngineError: tuple[type[BaseException], ...] = _engine_errors()


def memory_connection(threads: int | None = None, share: float = 0.35) -> Connection:
    """A private in-memory DuckDB database (for work that needs no store: linking two files, a Splink
    training run), spilling to the system's temporary folder, with `share` of this machine's memory
    (or OPENPHM_MEMORY_LIMIT) and, when given, a fixed number of threads (reproducible sums)."""
    from openphm.engine.duckdb_connection import DuckDBConnection
    from openphm.engine.duckdb_store import duckdb_config, quiet_unless_watched

    config = duckdb_config(share, in_memory=True)
    if threads:
        config["threads"] = str(int(threads))
    con = duckdb.connect(config=config)
    quiet_unless_watched(con)
    return DuckDBConnection(con)


def splink_api(con: Connection) -> Any:
    """Splink's database API for a connection: its DuckDB backend for a DuckDB connection, its Spark
    backend for a Spark one (chosen here, so that no platform module imports either engine)."""
    spark = getattr(con, "spark", None)
    if spark is not None:
        from splink import SparkAPI
        return SparkAPI(spark_session=spark)
    from splink import DuckDBAPI
    return DuckDBAPI(getattr(con, "raw", con))


@contextlib.contextmanager
def transaction(con: Connection) -> Iterator[None]:
    """`BEGIN` ... `COMMIT`; on any error (or an interrupt) `ROLLBACK`, so that no failed step leaves a
    transaction open on the connection, then the error goes on up."""
    con.execute("BEGIN")
    try:
        yield
    except BaseException:
        with contextlib.suppress(*EngineError):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
