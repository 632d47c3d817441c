"""DuckDB's connection as the platform's `Connection`, with every query's result fetched whole.

DuckDB's Python `execute()` always opens a *streaming* result, and fetching it (`.pl()`,
`.fetchall()`, `.df()`) pulls batches through DuckDB's buffered batch collector. In DuckDB 1.5 that
path can spin for ever: a command of ours was caught at 100% of a core in
`BatchedBufferedData::ReplenishBuffer` -> `ConcurrentQueue::DequeueFromProducer` under
`FetchPolars`, with no progress, and CI once timed out the same way. The relation API's
`execute()` runs the query to a materialised result instead (DuckDB's parallel batch collector,
no buffered stream), raises its errors at once as `execute()` does, and on this machine fetched a
300,000-row query into polars in 48 ms against the stream's 65 ms.

So a single SELECT without parameters goes through `sql(query).execute()`; everything else
(statements that change data, parameterised lookups, scripts) goes to DuckDB's `execute()` as
before. Every other attribute is DuckDB's own connection's; `raw` is that connection, for Splink.
"""

from __future__ import annotations

import functools
from typing import Any

import duckdb


@functools.lru_cache(maxsize=512)
def _is_one_select(query: str) -> bool:
    """Whether `query` is exactly one SELECT (including WITH ... SELECT and FROM-first)."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error:
        return False  # let execute() raise the parser's own message
    return len(statements) == 1 and statements[0].type == duckdb.StatementType.SELECT


class DuckDBConnection:
    """A DuckDB connection whose queries are fetched whole (see the module's note)."""

    __slots__ = ("raw",)

    def __init__(self, raw: duckdb.DuckDBPyConnection) -> None:
        self.raw = raw

    def execute(self, query: str, parameters: object = None) -> Any:
        """Run one statement; a query's result has `fetchone`, `fetchall`, `pl`, `df` and `arrow`."""
        if parameters is None and _is_one_select(query):
            return self.raw.sql(query).execute()
        return self.raw.execute(query, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def __enter__(self) -> DuckDBConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()
