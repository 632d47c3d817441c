"""The identity store has one owner: only `openphm.identity.store` names its tables in code (issue 11).

Docstrings may mention the tables; SQL in any other module must go through the owner's functions
and names (`store.RECORDS`, `store.records_sql()`, `store.nhs_numbers_sql()` ...).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import openphm

SRC = Path(openphm.__file__).parent
OWNER = SRC / "identity" / "store.py"
NAMED = re.compile(r"\bidn\.identity\b|\bidentity\.(records|quarantined_rows|person_key|link_run|optout)\b")


def code_strings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_only_the_owner_names_the_identity_stores_tables():
    offenders = [f"{p.relative_to(SRC)}:{line}" for p in sorted(SRC.rglob("*.py")) if p != OWNER
                 for line, text in code_strings(p) if NAMED.search(text)]
    assert offenders == []


def test_the_check_finds_a_table_named_in_sql(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text('"""Reads idn.identity.records (allowed here)."""\n'
                      'SQL = "SELECT * FROM idn.identity.person_key"\n')
    assert [t for _, t in code_strings(sample) if NAMED.search(t)] == ["SELECT * FROM idn.identity.person_key"]
