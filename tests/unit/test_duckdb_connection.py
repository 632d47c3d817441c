"""The DuckDB connection fetches each query's result whole, not through DuckDB's streamed result
(whose buffered fetch was caught spinning for ever), and keeps DuckDB's answers for everything else."""

from __future__ import annotations

import polars as pl
import pytest

from openphm.engine.connection import EngineError, memory_connection
from openphm.engine.duckdb_connection import DuckDBConnection
from openphm.engine.duckdb_store import Store


@pytest.fixture
def con():
    con = memory_connection(threads=2)
    con.execute("CREATE TABLE t AS SELECT range AS i, range % 7 AS g FROM range(300000)")
    yield con
    con.close()


def test_a_query_is_materialised_when_executed(con) -> None:
    # a streamed result belongs to the connection and is replaced by its next statement; a
    # materialised one is still whole after the connection has moved on
    result = con.execute("SELECT i FROM t WHERE g = 3 ORDER BY i")
    con.execute("INSERT INTO t VALUES (-1, 3)")
    con.execute("SELECT 42").fetchall()
    frame = result.pl()
    assert frame.height == len(range(3, 300000, 7))
    assert frame["i"].to_list() == list(range(3, 300000, 7))


def test_with_and_from_first_queries_and_every_fetch(con) -> None:
    assert con.execute("WITH a AS (SELECT count(*) AS n FROM t) SELECT n FROM a").fetchone() == (300000,)
    assert con.execute("FROM t SELECT max(i)").fetchall() == [(299999,)]
    assert con.execute("SELECT g, count(*) AS n FROM t GROUP BY g ORDER BY g").df()["n"].sum() == 300000
    assert isinstance(con.execute("SELECT * FROM t LIMIT 3").pl(), pl.DataFrame)


def test_statements_that_change_data_still_return_their_counts(con) -> None:
    assert con.execute("DELETE FROM t WHERE g = 0").fetchone() == (len(range(0, 300000, 7)),)
    assert con.execute("UPDATE t SET g = 9 WHERE i < ?", [10]).fetchone()[0] == 10 - len(range(0, 10, 7))
    assert con.execute("SELECT count(*) FROM t WHERE i < ?", [100]).fetchone() == (100 - len(range(0, 100, 7)),)


def test_errors_are_raised_by_execute_itself(con) -> None:
    with pytest.raises(EngineError, match="Conversion"):
        con.execute("SELECT CAST(CASE WHEN i = 299999 THEN 'x' ELSE '1' END AS INTEGER) FROM t")
    with pytest.raises(EngineError):
        con.execute("SELEC 1")


def test_every_connection_the_platform_opens_is_this_one(tmp_path) -> None:
    store_con = Store(tmp_path / "ics.duckdb").connect()
    try:
        assert isinstance(store_con, DuckDBConnection)
        attached = "SELECT count(*) FROM duckdb_databases() WHERE database_name = 'idn'"
        assert store_con.execute(attached).fetchone() == (1,)
    finally:
        store_con.close()
    assert isinstance(memory_connection(), DuckDBConnection)
