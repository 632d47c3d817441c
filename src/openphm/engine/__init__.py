"""Where SQL runs: DuckDB, embedded, by default; Apache Spark (`openphm.engine.spark`) for scale.

Both take the house dialect (DuckDB's SQL). The few lookups whose SQL differs between engines
(which columns a table has, whether a name is a table or a view) are asked here, so that no
module outside `engine/` branches on the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


# Every compression method DuckDB 1.5 has, for `lookup_storage(..., compressed=False)`.
UNCOMPRESSED = "bitpacking,fsst,dictionary,rle,dict_fsst,alp,alprd,chimp,patas,zstd,roaring"


@contextmanager
def lookup_storage(con: Any, database: str | None = None, compressed: bool = True) -> Iterator[None]:
    """Tables written inside this block are stored for lookups by person, on DuckDB: without
    bit-packing, which DuckDB chooses for sorted UUIDs, and unpacking a row group's 122,880 person ids
    made each lookup cost 6-8 ms; unpacked, about 1 ms (measured on 1.25M people), as with an ART
    index. Not an index: with DuckDB 1.5 a process killed after CREATE INDEX leaves a WAL that a
    read-only open cannot replay until a read-write open has (duckdb/duckdb#24103), which the
    fault-injection tests found. Other columns keep their dictionary, RLE and FSST compression, unless
    `compressed` is false: a table read row by row through an index (the identity store's person
    keys) fetches each row's vector, and decompressing it made a hundred lookups cost 13 ms against 4
    uncompressed. The block ends with a checkpoint of `database` (default: the main one; a table
    smaller than a row group is compressed then). Spark: as is."""
    if dialect(con) != "duckdb":
        yield
        return
    con.execute(f"SET disabled_compression_methods = '{'bitpacking' if compressed else UNCOMPRESSED}'")
    try:
        yield
        con.execute(f"CHECKPOINT {database}" if database else "CHECKPOINT")
    finally:
        con.execute("RESET disabled_compression_methods")
