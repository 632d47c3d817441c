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


def check_condition(text: str, names: Collection[str], where: str, error: type[ValueError],
                    kind: str = "name") -> exp.Expression:
    """The parsed condition; raises `error` naming `where` for anything else or an unknown `kind`
    of name."""
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise error(f"{where}: the condition does not parse: {str(exc).splitlines()[0]}") from None
    for node in tree.walk():
        if not isinstance(node, ALLOWED):
            raise error(f"{where}: conditions may not use {type(node).__name__} ({text!r})")
        if isinstance(node, exp.Column) and node.name not in names:
            raise error(f"{where}: unknown {kind} {node.name!r}")
    return tree
