"""The house dialect (DuckDB's SQL) as Spark SQL: sqlglot's transpiler and the transforms that make
Spark answer as DuckDB does, used by `openphm.engine.spark`. Each transform, and why it is needed,
is in the module note of `openphm.engine.spark` and in docs/scale.md; each has a parity test
(tests/integration/test_spark_parity.py).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from pyspark.errors import PySparkException
from sqlglot import exp

from openphm.calendar_dates import strftime_parts

HOUSE = "duckdb"
CATALOG = "openphm"  # what current_database() answers, and information_schema's table_catalog
ATTACHED_SEPARATOR = "__"  # catalog `idn`, schema `identity` -> Spark database `idn__identity`
INFO_PREFIX = "__openphm_info_"  # prefix of the catalogue views


class SparkSQLError(PySparkException):
    """A statement this engine cannot run as DuckDB would (caught by `except EngineError`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


# ---- transforms (house dialect tree -> a tree Spark answers the same) ----------------------------

def unsupported(what: str) -> SparkSQLError:
    return SparkSQLError(f"not supported on Spark (no construct there gives DuckDB's answer): {what}")


def attached_names(node: exp.Expression) -> exp.Expression:
    """Attached catalogs as databases, temp.* as temporary views, current_database() as CATALOG."""
    if isinstance(node, exp.Table) and node.args.get("catalog") is not None:
        catalog, schema = node.catalog.lower(), node.db
        if catalog == "temp":
            node.set("db", None)
        elif catalog not in (CATALOG, "spark_catalog") and schema:
            node.set("db", exp.to_identifier(f"{catalog}{ATTACHED_SEPARATOR}{schema}"))
        node.set("catalog", None)
    if isinstance(node, exp.CurrentDatabase):
        return exp.Literal.string(CATALOG)
    return node


_CATALOG_VIEWS = {("information_schema", "tables"): "tables", ("information_schema", "columns"): "columns",
                  ("information_schema", "schemata"): "schemata", ("", "duckdb_tables"): "duckdb_tables",
                  ("", "duckdb_views"): "duckdb_views", ("", "duckdb_schemas"): "duckdb_schemas"}


def _catalog(node: exp.Expression, wanted: set[str]) -> exp.Expression:
    """information_schema and duckdb_*() as the catalogue views (made before the statement runs)."""
    if not isinstance(node, exp.Table):
        return node
    inner = node.this
    key = ("", inner.name.lower()) if isinstance(inner, exp.Anonymous) else (node.db.lower(), node.name.lower())
    view = _CATALOG_VIEWS.get(key)
    if view is None:
        return node
    wanted.add(view)
    alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(key[1]))
    return exp.Table(this=exp.to_identifier(INFO_PREFIX + view), alias=alias)


def _part(unit: str, value: exp.Expression) -> exp.Expression:
    return {"year": exp.Year, "month": exp.Month, "quarter": exp.Quarter}[unit](this=value.copy())


def _date_diff(node: exp.Expression) -> exp.Expression:
    """date_diff(part, start, end) as DuckDB counts it: part boundaries crossed."""
    if not isinstance(node, exp.DateDiff):
        return node
    unit = (node.text("unit") or "day").lower().rstrip("s")
    end, start = node.this, node.expression
    if unit == "day":
        dates = [exp.cast(end.copy(), "date"), exp.cast(start.copy(), "date")]
        days = exp.Anonymous(this="DATEDIFF", expressions=dates)
        return exp.cast(days, "bigint")
    if unit not in ("month", "quarter", "year"):
        raise unsupported(f"date_diff('{unit}', ...): use 'day', 'month', 'quarter' or 'year'")
    diff: exp.Expression = exp.Sub(this=exp.Year(this=end.copy()), expression=exp.Year(this=start.copy()))
    if unit != "year":
        per_year = 12 if unit == "month" else 4
        diff = exp.Sub(this=exp.Add(this=exp.Mul(this=exp.Paren(this=diff), expression=exp.Literal.number(per_year)),
                                    expression=_part(unit, end)), expression=_part(unit, start))
    return exp.cast(exp.Paren(this=diff), "bigint")


def _aggregates(node: exp.Expression) -> exp.Expression:
    """quantile_cont as PERCENTILE; quantile_disc refused."""
    if isinstance(node, exp.PercentileCont) and node.expression is not None:
        return exp.Anonymous(this="PERCENTILE", expressions=[node.this.copy(), node.expression.copy()])
    if isinstance(node, exp.PercentileDisc) and not isinstance(node.parent, exp.WithinGroup):
        raise unsupported("quantile_disc (Spark's PERCENTILE_DISC picks another element): use quantile_cont")
    return node


def _generate_series(node: exp.Expression) -> exp.Expression:
    """FROM generate_series(...) / range(...) as EXPLODE(SEQUENCE(...)) with DuckDB's column name (sqlglot
    writes an aliased one as invalid SQL)."""
    if not (isinstance(node, exp.Table) and isinstance(node.this, exp.GenerateSeries)):
        return node
    series = node.this
    start, end, step = series.args.get("start"), series.args["end"], series.args.get("step")
    exclusive = bool(series.args.get("is_end_exclusive"))
    if start is None:
        start = exp.Literal.number(0)
    if exclusive:
        if step is not None and not (isinstance(step.unnest(), exp.Literal | exp.Neg)):
            raise unsupported("range(start, end, step) with a step that is not a number")
        down = step is not None and step.sql("duckdb").lstrip("(").startswith("-")
        end = (exp.Add if down else exp.Sub)(this=end.copy(), expression=exp.Literal.number(1))
    args = [start.copy(), end.copy(), *([step.copy()] if step is not None else [])]
    alias = node.args.get("alias")
    name = "range" if exclusive else "generate_series"
    columns = alias.columns if alias is not None and alias.columns else [exp.to_identifier(name)]
    return exp.Table(this=exp.Anonymous(this="EXPLODE", expressions=[exp.Anonymous(this="SEQUENCE", expressions=args)]),
                     alias=exp.TableAlias(this=exp.to_identifier(alias.name if alias else name), columns=columns))


def _comparator(keys: list[tuple[bool, bool]]) -> str:
    """A Spark ARRAY_SORT comparator of structs l, r over fields k0.. with (descending, nulls first)."""
    out = "0"
    for i in reversed(range(len(keys))):
        desc, nulls_first = keys[i]
        a, b = f"l.k{i}", f"r.k{i}"
        out = (f"CASE WHEN {a} IS NULL AND {b} IS NOT NULL THEN {-1 if nulls_first else 1} "
               f"WHEN {a} IS NOT NULL AND {b} IS NULL THEN {1 if nulls_first else -1} "
               f"WHEN {a} < {b} THEN {1 if desc else -1} WHEN {a} > {b} THEN {-1 if desc else 1} ELSE {out} END")
    return out


def _lists(node: exp.Expression) -> exp.Expression:
    """list(x [ORDER BY ...]): keeps NULLs and the order, as DuckDB does."""
    if not isinstance(node, exp.ArrayAgg):
        return node
    if isinstance(node.parent, exp.Filter):
        raise unsupported("list(...) FILTER (WHERE ...): write list(CASE WHEN ... END) over the filtered rows")
    value, order = node.this, []
    if isinstance(value, exp.Order):
        order = [(o.this, bool(o.args.get("desc")), bool(o.args.get("nulls_first"))) for o in value.expressions]
        value = value.this
    if isinstance(value, exp.Distinct):
        raise unsupported("list(DISTINCT ...): use list() over a SELECT DISTINCT")
    fields = [f"'k{i}', {k.sql('spark')}" for i, (k, _, _) in enumerate(order)] + [f"'v', {value.sql('spark')}"]
    collected = f"COLLECT_LIST(NAMED_STRUCT({', '.join(fields)}))"
    if order:
        collected = f"ARRAY_SORT({collected}, (l, r) -> {_comparator([(d, n) for _, d, n in order])})"
    return sqlglot.parse_one(f"TRANSFORM({collected}, s -> s.v)", read="spark")


def _unnests(node: exp.Expression) -> exp.Expression:
    """Several unnest(...) in one SELECT, zipped as DuckDB does, as one INLINE(ARRAYS_ZIP(...))."""
    if not isinstance(node, exp.Select):
        return node
    items = node.expressions
    at = [i for i, e in enumerate(items) if isinstance(e.unalias(), exp.Explode)]
    if len(at) < 2:
        return node
    if at != list(range(at[0], at[0] + len(at))) or any(not isinstance(items[i], exp.Alias) for i in at):
        raise unsupported("several unnest(...) in one SELECT must be side by side, each with a name")
    zipped = exp.Aliases(this=exp.Anonymous(this="INLINE", expressions=[exp.Anonymous(
        this="ARRAYS_ZIP", expressions=[items[i].unalias().this.copy() for i in at])]),
        expressions=[items[i].args["alias"].copy() for i in at])
    node.set("expressions", [*items[:at[0]], zipped, *items[at[-1] + 1:]])
    return node


def _division(node: exp.Expression) -> exp.Expression:
    """a / b as DuckDB divides: always in DOUBLE (Spark divides DECIMALs, e.g. 1000.0, as DECIMALs)."""
    doubled = isinstance(node.this, exp.Cast) and node.this.to.this == exp.DataType.Type.DOUBLE
    if isinstance(node, exp.Div) and not doubled:
        node.set("this", exp.cast(node.this.copy(), "double"))
    return node


def _uuids(node: exp.Expression) -> exp.Expression:
    """CAST(x AS UUID) as lower-case text: Spark has no UUID type, so person ids are carried as their
    canonical text (DuckDB writes a UUID as lower-case text, and orders UUIDs as that text)."""
    if isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.UUID):
        return exp.Lower(this=exp.cast(node.this.copy(), "varchar"))
    return node


# strftime (DuckDB's strptime) to Java's DateTimeFormatter (Spark's to_timestamp): the parts the
# sources declare. Single letters accept one or two digits, as %d and %m do when DuckDB parses; a
# year is four digits on both engines because the house SQL checks a date's shape before parsing
# (openphm.ingest.validation.parsed_date_sql: DuckDB reads "20" as the year 20, Spark as nothing).
_JAVA_DATE_PARTS = {"%Y": "yyyy", "%m": "M", "%d": "d", "%b": "MMM", "%H": "H", "%M": "m", "%S": "s"}


def _java_date_format(strftime: str) -> str:
    out = []
    for part in strftime_parts(strftime):
        if part in _JAVA_DATE_PARTS:
            out.append(_JAVA_DATE_PARTS[part])
        elif part.startswith("%"):
            raise unsupported(f"strptime format {part}")
        else:
            out.append(f"'{part}'" if part.isalpha() else ("''" if part == "'" else part))
    return "".join(out)


def _text(node: exp.Expression) -> exp.Expression:
    """Text functions of ingest: try_strptime as try_to_timestamp (a Java format); regexp_full_match
    as RLIKE anchored at both ends (\\z: Java's $ also matches before a final newline); strlen (bytes)
    as octet_length; json_object as to_json of a struct keeping NULL members, as DuckDB writes them;
    regexp_replace only with the 'g' flag (without it DuckDB replaces the first match, Spark all)."""
    if isinstance(node, exp.Anonymous) and node.name.upper() == "TRY_STRPTIME":
        value, fmt = node.expressions
        if not isinstance(fmt, exp.Literal):
            raise unsupported("try_strptime with a format that is not a literal")
        return exp.Anonymous(this="TRY_TO_TIMESTAMP",
                             expressions=[value.copy(), exp.Literal.string(_java_date_format(fmt.this))])
    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        if not isinstance(pattern, exp.Literal):
            raise unsupported("regexp_full_match with a pattern that is not a literal")
        return exp.RegexpLike(this=node.this.copy(), expression=exp.Literal.string(f"^(?:{pattern.this})\\z"))
    if isinstance(node, exp.Anonymous) and node.name.upper() == "STRLEN":
        return exp.Anonymous(this="OCTET_LENGTH", expressions=[e.copy() for e in node.expressions])
    if isinstance(node, exp.JSONObject):
        pairs = [part.copy() for kv in node.expressions for part in (kv.this, kv.expression)]
        options = exp.Anonymous(this="MAP", expressions=[exp.Literal.string("ignoreNullFields"),
                                                         exp.Literal.string("false")])
        return exp.Anonymous(this="TO_JSON", expressions=[exp.Anonymous(this="NAMED_STRUCT", expressions=pairs),
                                                           options])
    if isinstance(node, exp.RegexpReplace):
        flags = node.args.get("modifiers")
        if not (isinstance(flags, exp.Literal) and flags.this == "g"):
            raise unsupported("regexp_replace without the 'g' flag (DuckDB replaces only the first match)")
    return node


def _constraints(node: exp.Expression) -> exp.Expression:
    """PRIMARY KEY and UNIQUE (Spark enforces neither) dropped from CREATE TABLE."""
    if isinstance(node, exp.PrimaryKey | exp.UniqueColumnConstraint) or (
            isinstance(node, exp.ColumnConstraint)
            and isinstance(node.kind, exp.PrimaryKeyColumnConstraint | exp.UniqueColumnConstraint)):
        return None  # type: ignore[return-value]
    return node


TRANSFORMS: tuple[Callable[[exp.Expression], exp.Expression], ...] = (
    attached_names, _constraints, _uuids, _date_diff, _aggregates, _generate_series, _lists, _unnests, _division,
    _text)


def to_spark(tree: exp.Expression, catalog_views: set[str] | None = None) -> exp.Expression:
    """A house-dialect statement as a tree that Spark answers as DuckDB does (see the module's note)."""
    wanted = catalog_views if catalog_views is not None else set()
    tree = tree.transform(_catalog, wanted)
    for transform in TRANSFORMS:  # one pass each: a transform's output is not transformed again
        tree = tree.transform(transform)
    return tree


def transpile(sql: str) -> list[str]:
    """The Spark SQL of each statement in `sql` (for reading and tests)."""
    return [to_spark(t).sql("spark") for t in sqlglot.parse(sql, read=HOUSE) if t is not None]
