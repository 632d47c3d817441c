"""Plain conditions written in data files (segment rules, list criteria, indicator filters), checked.

A condition parses with sqlglot (DuckDB dialect) into columns, numbers, strings, comparisons,
AND/OR/NOT and parentheses only, over a known set of column names. Callers put the returned
tree into SQL by rendering it (`render_condition`, or `.sql(dialect=...)`), never the text: the
tree holds one expression and nothing after it, comments are removed, and string literals are
quoted by sqlglot. Qualified names are refused except under an allowed alias (`p.age` for
indicator filters), so a condition cannot name another schema or table (`raw.apc.x`).
"""

from __future__ import annotations

from collections.abc import Collection

import sqlglot
from sqlglot import exp

from openphm.domain import expand_rules

ALLOWED = (exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ,
           exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Neg)
DIALECT = "duckdb"


def check_condition(text: str, names: Collection[str] | None, where: str, error: type[ValueError],
                    kind: str = "name", extra_nodes: tuple[type[exp.Expression], ...] = (),
                    qualified: dict[str, tuple[Collection[str], str]] | None = None) -> exp.Expression:
    """The parsed condition, without comments; raises `error` naming `where` for anything else or
    an unknown `kind` of name. `names=None` accepts any unqualified column (a table's own);
    `qualified` maps a table alias to its allowed names and how to call them ("person attribute
    p."), and no other qualified name is accepted; `extra_nodes` allows more syntax (LIKE, IN
    lists, IS NULL)."""
    if not isinstance(text, str):
        raise error(f"{where}: a condition must be text, not {type(text).__name__}")
    try:  # a domain rule called by name, `{{ emergency_admission() }}`, is its SQL, checked as any other
        text = expand_rules(text)
    except ValueError as exc:
        raise error(f"{where}: {exc}") from None
    try:
        tree = sqlglot.parse_one(text, read=DIALECT)
    except sqlglot.errors.ParseError as exc:
        raise error(f"{where}: the condition does not parse: {str(exc).splitlines()[0]}") from None
    for node in tree.walk():
        if not isinstance(node, ALLOWED + extra_nodes):
            raise error(f"{where}: conditions may not use {type(node).__name__} ({text!r})")
        node.comments = None  # rendered from the tree, a comment cannot hide anything after it
        if isinstance(node, exp.Column):
            _check_column(node, names, where, error, kind, qualified or {})
    return tree


def _check_column(node: exp.Column, names: Collection[str] | None, where: str, error: type[ValueError],
                  kind: str, qualified: dict[str, tuple[Collection[str], str]]) -> None:
    """Refuse a column that is not a known name, or is qualified other than by an allowed alias."""
    if node.args.get("db") or node.args.get("catalog") or (node.table and node.table not in qualified):
        aliases = ", ".join(f"{alias}." for alias in sorted(qualified)) or "none"
        raise error(f"{where}: qualified name {node.sql(dialect=DIALECT)} is not allowed (allowed prefixes: "
                    f"{aliases})")
    if node.table:
        allowed, label = qualified[node.table]
        if node.name not in allowed:
            raise error(f"{where}: unknown {label}{node.name}")
    elif names is not None and node.name not in names:
        raise error(f"{where}: unknown {kind} {node.name!r}")


def render_condition(tree: exp.Expression) -> str:
    """A checked condition as DuckDB SQL, rendered from the tree (never the original text)."""
    return tree.sql(dialect=DIALECT, comments=False)
