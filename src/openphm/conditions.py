"""Plain conditions written in data files (segment rules, list criteria), checked before they run.

A condition parses with sqlglot (DuckDB dialect) into columns, numbers, comparisons, AND/OR/NOT
and parentheses only, over a known set of column names, so it can be pasted into SQL safely.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlglot
from sqlglot import exp

ALLOWED = (exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ,
           exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Neg)


def check_condition(text: str, names: Collection[str] | None, where: str, error: type[ValueError],
                    kind: str = "name", extra_nodes: tuple[type[exp.Expression], ...] = (),
                    qualified: dict[str, tuple[Collection[str], str]] | None = None) -> exp.Expression:
    """The parsed condition; raises `error` naming `where` for anything else or an unknown `kind`
    of name. `names=None` accepts any unqualified column (a table's own); `qualified` maps a table
    alias to its allowed names and how to call them ("person attribute p."); `extra_nodes` allows
    more syntax (LIKE, IN lists, IS NULL)."""
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise error(f"{where}: the condition does not parse: {str(exc).splitlines()[0]}") from None
    for node in tree.walk():
        if not isinstance(node, ALLOWED + extra_nodes):
            raise error(f"{where}: conditions may not use {type(node).__name__} ({text!r})")
        if not isinstance(node, exp.Column):
            continue
        if node.table and qualified and node.table in qualified:
            allowed, label = qualified[node.table]
            if node.name not in allowed:
                raise error(f"{where}: unknown {label}{node.name}")
        elif names is not None and node.name not in names:
            raise error(f"{where}: unknown {kind} {node.name!r}")
    return tree
