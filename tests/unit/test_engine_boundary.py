"""The engine seam: no platform module outside `openphm.engine` imports DuckDB or PySpark (issue 11).

Checked on the syntax tree of every module, so an import inside a function counts too. Splink's
backends are chosen through `openphm.engine.connection.splink_api`, so they are not imported
elsewhere either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import openphm

SRC = Path(openphm.__file__).parent
ENGINES = ("duckdb", "pyspark")
SPLINK_BACKENDS = ("DuckDBAPI", "SparkAPI")


def imports_of(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.lineno, node.module))
            if node.module.startswith("splink"):
                out += [(node.lineno, f"splink.{a.name}") for a in node.names]
    return out


def test_only_the_engine_package_imports_an_engine():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] == "engine":
            continue
        for line, name in imports_of(path):
            if name.split(".")[0] in ENGINES or name.split(".")[-1] in SPLINK_BACKENDS:
                offenders.append(f"{path.relative_to(SRC)}:{line} imports {name}")
    assert offenders == []


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    import duckdb\n    from splink import DuckDBAPI\n")
    assert [n for _, n in imports_of(sample)] == ["duckdb", "splink", "splink.DuckDBAPI"]


def test_a_failed_step_in_a_transaction_rolls_back_and_leaves_none_open():
    import pytest

    from openphm.engine.connection import EngineError, memory_connection, transaction

    con = memory_connection()
    con.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(EngineError), transaction(con):
        con.execute("INSERT INTO t VALUES (1)")
        con.execute("INSERT INTO no_such_table VALUES (2)")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    with transaction(con):  # a transaction left open would make this BEGIN fail
        con.execute("INSERT INTO t VALUES (3)")
    assert con.execute("SELECT x FROM t").fetchall() == [(3,)]
