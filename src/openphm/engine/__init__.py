"""Where SQL runs: DuckDB, embedded, by default; Apache Spark (`openphm.engine.spark`) for scale.

Both take the house dialect (DuckDB's SQL). The few lookups whose SQL differs between engines
(which columns a table has, whether a name is a table or a view) are asked here, so that no
module outside `engine/` branches on the engine.
"""

from __future__ import annotations

from typing import Any

ENGINES = ("duckdb", "spark")


def dialect(con: Any) -> str:
    """"duckdb" or "spark": the engine behind a connection."""
    return getattr(con, "dialect", "duckdb")


def table_columns(con: Any, schema: str, table: str) -> list[str]:
    """The column names of `schema.table` (a table or a view), in order."""
    if dialect(con) == "spark":
        return [name for name, _ in con.table_columns(schema, table)]
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()]


def table_kind(con: Any, schema: str, table: str) -> str | None:
    """'BASE TABLE', 'VIEW', or None when `schema.table` does not exist (in the analytic database)."""
    if dialect(con) == "spark":
        return con.table_kind(schema, table)
    row = con.execute("SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() "
                      "AND table_schema = ? AND table_name = ?", [schema, table]).fetchone()
    return row[0] if row else None


def open_engine(store: Any, engine: str = "duckdb", spark_master: str = "local[2]") -> Any:
    """A connection to an installation (`openphm.engine.duckdb_store.Store`) on `engine`: its DuckDB
    databases (the identity store attached as `idn`), or its Spark store (`store.spark_dir`) on a
    Spark session at `spark_master` (pyspark is imported only then)."""
    if engine == "duckdb":
        return store.connect()
    if engine == "spark":
        from openphm.engine.spark import connect_store

        con = connect_store(str(store.spark_dir), spark_master)
        con.store_db = store.db  # whose key signs its risk models (openphm.risk.model_files)
        return con
    raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
