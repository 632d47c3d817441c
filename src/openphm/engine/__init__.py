"""Where SQL runs: DuckDB, embedded, by default; Apache Spark (`openphm.engine.spark`) for scale.

Both take the house dialect (DuckDB's SQL). The few lookups whose SQL differs between engines
(which columns a table has, whether a name is a table or a view) are asked here, so that no
module outside `engine/` branches on the engine.
"""

from __future__ import annotations

from typing import Any


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
