"""The platform's SQL on Apache Spark: a `Connection` over a SparkSession (`pip install openphm[spark]`).

Each statement arrives in the house dialect (DuckDB's), is parsed by sqlglot, rewritten by the
transforms below where sqlglot's own Spark output would answer differently or fail, written as
Spark SQL and run with its `?` parameters bound by Spark (`SparkSession.sql(text, args=[...])`:
values never enter the SQL text). Every transform has a parity test on both engines
(tests/integration/test_spark_parity.py); docs/scale.md lists what each fixes.

- `_date_diff`: DuckDB's date_diff counts part boundaries crossed (sqlglot's TIMESTAMPDIFF counts
  whole parts: 73 years where DuckDB says 74); `_lists`: list(x ORDER BY ...) keeps its order and
  its NULLs; `_aggregates`: quantile_cont as PERCENTILE; `_unnests`: several unnest() in one
  SELECT zipped as one INLINE(ARRAYS_ZIP()); `_generate_series`: FROM generate_series/range;
  `_division`: `/` in DOUBLE, as DuckDB divides (Spark keeps DECIMAL / DECIMAL a DECIMAL);
  `_uuids`: CAST(x AS UUID) as lower-case text (Spark has no UUID type: ids are carried as text);
- `attached_names`: a table of an attached DuckDB catalog (`idn.identity.t`) lives in the Spark database
  `idn__identity`; `_catalog`: information_schema and duckdb_tables()/duckdb_views()/
  duckdb_schemas() read views made from Spark's catalogue just before the statement runs;
  `_constraints`: PRIMARY KEY and UNIQUE dropped (Spark enforces neither);
- statements: `CREATE OR REPLACE TABLE` is a drop and a create; `CREATE TEMP TABLE ... AS` a
  temporary view over a materialised (locally checkpointed) result (with columns and no AS: over
  no rows); `DELETE`, and `INSERT` into a temporary table, compute the rows to keep (or the old
  rows and the new), materialise them and write them over the table; `DESCRIBE` gives DuckDB's
  first columns. Constructs no transform can make equal without column types (date minus date,
  division by zero, CAST of a fraction to an integer) are kept out of the house SQL.

**Atomicity.** Spark has no multi-statement transactions. `BEGIN` opens an undo log: each
statement still runs at once (later ones read earlier ones' results, as in DuckDB), after the log
has recorded how to undo it (a view's previous definition; a created table or database to drop;
a table's rows, checkpointed, to restore after an INSERT or DELETE; a dropped table is renamed aside and only
dropped at `COMMIT`). `ROLLBACK` undoes in reverse order. A statement that fails therefore leaves
the catalogue as it was at `BEGIN`; a process killed between `BEGIN` and `COMMIT` does not. The
record build keeps that window small: it writes a new database `record_v<N>` and only then points
the `record.*` and `planning.*` views at it (catalogue operations only, no data moved), keeping
the previous build's database. A switch that survives a kill needs a transactional catalogue
(Delta Lake, Iceberg, Unity Catalog): see docs/scale.md.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import sqlglot
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from sqlglot import exp

from openphm.engine.spark_session import (
    EMPTY_RESULT,
    SparkResult,
    spark_frame_source,
    spark_parameter,
    spark_session,
)
from openphm.engine.spark_sql import (
    ATTACHED_SEPARATOR,
    CATALOG,
    HOUSE,
    INFO_PREFIX,
    SparkSQLError,
    attached_names,
    to_spark,
    unsupported,
)


class SparkConnection:
    """A `Connection` (openphm.engine.connection) over a SparkSession; `spark` is the session."""

    dialect = "spark"
    store_db = None  # the installation (its `--db` path) when opened by openphm.engine.open_engine

    def __init__(self, spark: SparkSession, owns_session: bool = False) -> None:
        self.spark = spark
        self._owns = owns_session
        self._temp_tables: set[str] = set()
        self._undo: list[Callable[[], None]] | None = None  # open transaction's undo log
        self._aside: list[tuple[str, str]] = []  # (holding, original) of tables dropped in the transaction

    # -- statements
    def execute(self, query: str, parameters: object = None) -> SparkResult:
        try:
            trees = [t for t in sqlglot.parse(query, read=HOUSE) if t is not None]
        except sqlglot.errors.SqlglotError as exc:
            raise SparkSQLError(f"cannot read the statement as DuckDB SQL: {str(exc).splitlines()[0]}") from None
        args = [spark_parameter(v) for v in parameters] if parameters else None  # type: ignore[union-attr]
        if args and len(trees) > 1:
            raise SparkSQLError("parameters are bound to one statement at a time")
        result = EMPTY_RESULT
        for tree in trees:
            result = self._run(tree, args)
        return result

    def executemany(self, query: str, parameters: object = None) -> SparkResult:
        for row in parameters or []:  # type: ignore[union-attr]
            self.execute(query, row)
        return EMPTY_RESULT

    def _sql(self, tree: exp.Expression, args: list | None = None) -> DataFrame:
        views: set[str] = set()
        tree = to_spark(tree, views)
        for view in sorted(views):
            self._catalog_view(view)
        return self.spark.sql(tree.sql("spark"), args=args or None)

    def _run(self, tree: exp.Expression, args: list | None) -> SparkResult:
        if isinstance(tree, exp.Transaction):
            return self._begin()
        if isinstance(tree, exp.Commit):
            return self._commit()
        if isinstance(tree, exp.Rollback):
            return self._rollback()
        if isinstance(tree, exp.Describe):
            table = attached_names(tree.this.copy())
            columns = self.table_columns(table.db, table.name)
            return SparkResult(rows=[(n, t, "YES", None, None, None) for n, t in columns],
                               columns=("column_name", "column_type", "null", "key", "default", "extra"))
        if isinstance(tree, exp.Create) and tree.kind == "TABLE":
            return self._create_table(tree, args)
        if isinstance(tree, exp.Update):
            return self._update(tree, args)
        if isinstance(tree, exp.Delete | exp.Insert):
            target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
            name = attached_names(target.copy())
            if isinstance(tree, exp.Delete) or (name.name in self._temp_tables and not name.db):
                return self._rewrite_rows(tree, name, args)
        if self._undo is not None and isinstance(tree, exp.Drop) and tree.kind == "TABLE":
            return self._drop_aside(tree)
        if self._undo is not None:
            self._log_undo(tree)
        if isinstance(tree, exp.Drop) and tree.kind == "TABLE":
            for table in tree.args.get("tables") or []:
                self._temp_tables.discard(table.name)
        frame = self._sql(tree, args)
        if isinstance(tree, exp.Query | exp.Show):
            return SparkResult(frame)
        return EMPTY_RESULT

    def _create_table(self, tree: exp.Create, args: list | None) -> SparkResult:
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        name = attached_names(target.copy())
        if _is_temporary(tree):
            if tree.args.get("exists") and self.spark.catalog.tableExists(name.name):
                return EMPTY_RESULT
            query = tree.expression or _empty_rows(tree.this)
            frame = self._sql(query, args).localCheckpoint(eager=True)
            frame.createOrReplaceTempView(name.name)
            self._temp_tables.add(name.name)
            return EMPTY_RESULT
        qualified = ".".join(p for p in (name.db, name.name) if p)
        if tree.args.get("replace") and tree.expression is not None and any(
                attached_names(t.copy()).name == name.name and attached_names(t.copy()).db == name.db
                for t in tree.expression.find_all(exp.Table)):
            # CREATE OR REPLACE TABLE t AS ... FROM t: the new rows are made before the old table goes
            frame = self._sql(tree.expression, args).localCheckpoint(eager=True)
            self._run(exp.Drop(tables=[exp.table_(name.name, db=name.db or None)], kind="TABLE", exists=True), None)
            if self._undo is not None:
                self._undo.append(lambda: self.spark.sql(f"DROP TABLE IF EXISTS {_quoted(name)}"))
            frame.write.saveAsTable(_quoted(name))
            return EMPTY_RESULT
        if tree.args.get("replace"):
            self._run(exp.Drop(tables=[exp.table_(name.name, db=name.db or None)], kind="TABLE", exists=True), None)
            tree = tree.copy()
            tree.set("replace", False)
        if self._undo is not None and not self.spark.catalog.tableExists(qualified):
            self._undo.append(lambda: self.spark.sql(f"DROP TABLE IF EXISTS {_quoted(name)}"))
        self._sql(tree, args)
        return EMPTY_RESULT

    def _rewrite_rows(self, tree: exp.Delete | exp.Insert, name: exp.Table, args: list | None) -> SparkResult:
        """DELETE (any table) and INSERT into a temporary table, which Spark cannot do in place on Parquet
        tables or temporary views: the rows to keep (and to add) are computed, materialised, and written
        over the table (a temporary table's view is replaced)."""
        temporary = name.name in self._temp_tables and not name.db
        qualified = _quote(name.name) if temporary else _quoted(name)
        old = self.spark.table(qualified)
        if isinstance(tree, exp.Delete):
            where = tree.args.get("where")
            keep = exp.select("*").from_(tree.this.copy())
            if where is not None:
                keep = keep.where(exp.not_(exp.func("coalesce", where.this.copy(), exp.false())))
            else:
                keep = keep.where(exp.false())
            new = self._sql(keep, args)
        else:
            if isinstance(tree.this, exp.Schema) or tree.args.get("alternative"):
                raise unsupported("INSERT with a column list or OR REPLACE into a temporary table")
            added = self._sql(tree.expression, args)
            added = added.toDF(*(f"_c{i}" for i in range(len(added.columns))))  # by position, as SQL inserts
            added = added.select(*[added[f"_c{i}"].cast(f.dataType).alias(f.name)
                                   for i, f in enumerate(old.schema.fields)])
            new = old.union(added)
        new = new.localCheckpoint(eager=True)
        # the rows deleted or inserted, as DuckDB answers such a statement (counted before the write)
        return self._write_back(name, qualified, temporary, old, new, abs(old.count() - new.count()))

    def _update(self, tree: exp.Update, args: list | None) -> SparkResult:
        """UPDATE t SET c = v, ... WHERE w, which Spark cannot do on Parquet tables: every row written
        again with CASE WHEN w THEN v ELSE c END (in c's type). `?` parameters become named ones, since
        the rewritten statement repeats the condition."""
        if tree.args.get("from") or tree.args.get("joins"):
            raise unsupported("UPDATE ... FROM")
        tree = tree.copy()
        named: dict[str, object] = {}
        for i, marker in enumerate(list(tree.find_all(exp.Placeholder, bfs=False))):
            if marker.args.get("this") is not None:
                raise unsupported("UPDATE with named parameters")
            named[f"openphm_p{i}"] = (args or [])[i]
            marker.replace(exp.Placeholder(this=f"openphm_p{i}"))
        name = attached_names(tree.this.copy())
        temporary = name.name in self._temp_tables and not name.db
        qualified = _quote(name.name) if temporary else _quoted(name)
        old = self.spark.table(qualified)
        sets = {eq.this.name: eq.expression for eq in tree.expressions}
        unknown = set(sets) - set(old.columns)
        if unknown:
            raise SparkSQLError(f"UPDATE {qualified}: no column {', '.join(sorted(unknown))}")
        where = tree.args.get("where")
        hit = exp.func("coalesce", where.this.copy(), exp.false()) if where is not None else exp.true()
        items = [exp.If(this=hit.copy(), true=sets[c].copy(), false=exp.column(c, quoted=True)).as_(c, quoted=True)
                 if c in sets else exp.column(c, quoted=True) for c in old.columns]
        query = exp.select(*items, hit.as_("openphm_hit")).from_(tree.this.copy())
        frame = self._sql(query, named or None)
        frame = frame.select(*[frame[f.name].cast(f.dataType).alias(f.name) for f in old.schema.fields],
                             frame["openphm_hit"]).localCheckpoint(eager=True)
        changed = frame.filter("openphm_hit").count()
        return self._write_back(name, qualified, temporary, old, frame.drop("openphm_hit"), changed)

    def _write_back(self, name: exp.Table, qualified: str, temporary: bool, old: DataFrame, new: DataFrame,
                    count: int) -> SparkResult:
        """Rows computed from a table (materialised) written over it; `count` rows changed."""
        changed = SparkResult(rows=[(count,)])
        if temporary:
            new.createOrReplaceTempView(name.name)
            return changed
        if self._undo is not None:
            saved = old.localCheckpoint(eager=True)
            self._undo.append(lambda: saved.write.insertInto(qualified, overwrite=True))
        new.write.insertInto(qualified, overwrite=True)
        return changed

    def dataframe(self, python_object: object) -> DataFrame:
        """A polars, Arrow or pandas frame as a Spark DataFrame."""
        return self.spark.createDataFrame(spark_frame_source(python_object))

    def register(self, view_name: str, python_object: object) -> SparkConnection:
        self.dataframe(python_object).createOrReplaceTempView(view_name)
        return self

    def temp_table(self, name: str, frame: DataFrame) -> None:
        """A temporary table `name` holding a Spark DataFrame's rows, materialised now (as
        `CREATE TEMP TABLE name AS ...` makes one)."""
        frame.localCheckpoint(eager=True).createOrReplaceTempView(name)
        self._temp_tables.add(name)

    def unregister(self, view_name: str) -> SparkConnection:
        self.spark.catalog.dropTempView(view_name)
        self._temp_tables.discard(view_name)
        return self

    def close(self) -> None:
        for name in list(self._temp_tables):
            self.spark.catalog.dropTempView(name)
        self._temp_tables.clear()
        if self._owns:
            self.spark.stop()

    # -- the catalogue
    def table_columns(self, schema: str | None, table: str) -> list[tuple[str, str]]:
        """(name, Spark type) of a table's or view's columns, in order."""
        qualified = f"{_quote(schema)}.{_quote(table)}" if schema else _quote(table)
        return [(f.name, f.dataType.simpleString()) for f in self.spark.table(qualified).schema.fields]

    def _columns_or_none(self, schema: str | None, table: str) -> list[tuple[str, str]]:
        """A table's columns; none for a view whose tables are gone (Spark cannot resolve it; DuckDB would
        still list the columns it had)."""
        try:
            return self.table_columns(schema, table)
        except PySparkException:
            return []

    def table_kind(self, schema: str, table: str) -> str | None:
        """'BASE TABLE', 'VIEW' or None (no such table), as information_schema.tables says."""
        qualified = f"{_quote(schema)}.{_quote(table)}"
        if not self.spark.catalog.databaseExists(schema) or not self.spark.catalog.tableExists(qualified):
            return None
        found = self.spark.catalog.getTable(qualified)
        return "VIEW" if found.tableType == "VIEW" else "BASE TABLE"

    def _databases(self) -> list[tuple[str, str, str]]:
        """(Spark database, DuckDB catalog, DuckDB schema) of every database."""
        out = []
        for (name,) in self.spark.sql("SHOW DATABASES").collect():
            catalog, sep, schema = name.partition(ATTACHED_SEPARATOR)
            out.append((name, catalog, schema) if sep else (name, CATALOG, "main" if name == "default" else name))
        return out

    def _tables(self) -> list[tuple[str | None, str, str, str, str]]:
        """(Spark database, catalog, schema, table, kind) of every table and view, temporary ones last."""
        out: list[tuple[str | None, str, str, str, str]] = []
        temporary: set[str] = set()
        for database, catalog, schema in self._databases():
            views = {r.viewName for r in self.spark.sql(f"SHOW VIEWS IN {_quote(database)}").collect()
                     if not r.isTemporary}
            for r in self.spark.sql(f"SHOW TABLES IN {_quote(database)}").collect():
                if r.isTemporary:
                    temporary.add(r.tableName)
                else:
                    kind = "VIEW" if r.tableName in views else "BASE TABLE"
                    out.append((database, catalog, schema, r.tableName, kind))
        out += [(None, "temp", "main", t, "LOCAL TEMPORARY" if t in self._temp_tables else "VIEW")
                for t in sorted(temporary)]
        return out

    def _catalog_view(self, view: str) -> None:
        tables = self._tables()
        if view == "tables":
            rows: list[tuple] = [(c, s, t, k) for _, c, s, t, k in tables]
            columns = ["table_catalog", "table_schema", "table_name", "table_type"]
        elif view == "duckdb_tables":
            rows = [(c, s, t, c == "temp") for _, c, s, t, k in tables if k != "VIEW"]
            columns = ["database_name", "schema_name", "table_name", "temporary"]
        elif view == "duckdb_views":
            rows = [(c, s, t, c == "temp") for _, c, s, t, k in tables if k == "VIEW"]
            columns = ["database_name", "schema_name", "view_name", "temporary"]
        elif view in ("schemata", "duckdb_schemas"):
            rows = [(c, s) for _, c, s in self._databases()]
            columns = ["catalog_name", "schema_name"] if view == "schemata" else ["database_name", "schema_name"]
        else:  # columns
            rows = [(c, s, t, name, i + 1, kind.upper(), "YES")
                    for d, c, s, t, _ in tables for i, (name, kind) in enumerate(self._columns_or_none(d, t))]
            columns = ["table_catalog", "table_schema", "table_name", "column_name", "ordinal_position",
                       "data_type", "is_nullable"]
        data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
        types = {"ordinal_position": pa.int64(), "temporary": pa.bool_()}
        table = pa.table({c: pa.array(v, types.get(c, pa.string())) for c, v in data.items()})
        self.spark.createDataFrame(table).createOrReplaceTempView(INFO_PREFIX + view)

    # -- transactions (see the module's note)
    def _begin(self) -> SparkResult:
        if self._undo is not None:
            raise SparkSQLError("a transaction is already open")
        self._undo, self._aside = [], []
        return EMPTY_RESULT

    def _commit(self) -> SparkResult:
        if self._undo is None:
            raise SparkSQLError("no transaction is open")
        for holding, _ in self._aside:
            self.spark.sql(f"DROP TABLE IF EXISTS {holding}")
        self._undo, self._aside = None, []
        return EMPTY_RESULT

    def _rollback(self) -> SparkResult:
        if self._undo is None:
            raise SparkSQLError("no transaction is open")
        undo, self._undo, self._aside = self._undo, None, []
        for step in reversed(undo):
            step()
        return EMPTY_RESULT

    def _log_undo(self, tree: exp.Expression) -> None:
        """Record how to undo `tree` before it runs (views, schemas, tables, inserts, drops)."""
        undo = self._undo
        assert undo is not None
        if isinstance(tree, exp.Create) and tree.kind == "VIEW" and not _is_temporary(tree):
            undo.append(self._restore_view(attached_names(tree.this.copy())))
        elif isinstance(tree, exp.Create) and tree.kind == "SCHEMA":
            name = attached_names(tree.this.copy()).db
            if not self.spark.catalog.databaseExists(name):
                undo.append(lambda: self.spark.sql(f"DROP DATABASE IF EXISTS {_quote(name)} CASCADE"))
        elif isinstance(tree, exp.Insert):
            target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
            qualified = _quoted(attached_names(target.copy()))
            saved = self.spark.table(qualified).localCheckpoint(eager=True)
            undo.append(lambda: saved.write.insertInto(qualified, overwrite=True))
        elif isinstance(tree, exp.Drop) and tree.kind == "VIEW":
            for view in tree.args.get("tables") or []:
                undo.append(self._restore_view(attached_names(view.copy())))
        elif not isinstance(tree, exp.Query | exp.Show):
            what = f"{tree.key.upper()} {tree.args.get('kind') or ''}".strip()
            raise unsupported(f"{what} inside a transaction (no undo for it)")

    def _drop_aside(self, tree: exp.Drop) -> SparkResult:
        """DROP TABLE in a transaction: renamed aside now, dropped at COMMIT, renamed back at ROLLBACK."""
        for table in tree.args.get("tables") or []:
            name = attached_names(table.copy())
            qualified = _quoted(name)
            if not self.spark.catalog.tableExists(".".join(p for p in (name.db, name.name) if p)):
                if not tree.args.get("exists"):
                    raise SparkSQLError(f"table {qualified} does not exist")
                continue
            holding = _quoted(exp.table_(f"{name.name}__dropped_{uuid.uuid4().hex[:12]}", db=name.db or None))
            self.spark.sql(f"ALTER TABLE {qualified} RENAME TO {holding}")
            self._aside.append((holding, qualified))
            self._undo.append(lambda h=holding, q=qualified: self.spark.sql(f"ALTER TABLE {h} RENAME TO {q}"))
        return EMPTY_RESULT

    def _restore_view(self, name: exp.Table) -> Callable[[], None]:
        qualified = _quoted(name)
        kind = self.table_kind(name.db, name.name) if name.db else None
        if kind != "VIEW":
            return lambda: self.spark.sql(f"DROP VIEW IF EXISTS {qualified}")
        text = next(r.data_type for r in self.spark.sql(f"DESCRIBE TABLE EXTENDED {qualified}").collect()
                    if r.col_name == "View Text")
        return lambda: self.spark.sql(f"CREATE OR REPLACE VIEW {qualified} AS {text}")


def _empty_rows(schema: exp.Expression) -> exp.Select:
    """`CREATE TEMP TABLE t (a type, ...)` as a query of no rows with those columns."""
    if not isinstance(schema, exp.Schema):
        raise unsupported("CREATE TEMP TABLE with neither columns nor AS SELECT")
    columns = [exp.cast(exp.null(), c.args["kind"]).as_(c.name) for c in schema.expressions
               if isinstance(c, exp.ColumnDef)]
    return exp.select(*columns).where(exp.false())


def _is_temporary(tree: exp.Create) -> bool:
    props = tree.args.get("properties")
    return props is not None and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions)


def _quote(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("spark")


def _quoted(table: exp.Table) -> str:
    return ".".join(_quote(p) for p in (table.db, table.name) if p)


def connect(master: str = "local[2]", **settings: Any) -> SparkConnection:
    """A SparkConnection on a new (or the running) SparkSession, which `close()` stops."""
    return SparkConnection(spark_session(master, **settings), owns_session=True)


def connect_store(folder: str, master: str = "local[2]") -> SparkConnection:
    """A SparkConnection to an installation's Spark store: its tables under `folder`/warehouse and,
    in local mode, its catalogue in `folder` (so that `openphm ingest --engine spark` and a later
    `openphm build --engine spark` see the same tables)."""
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    # the driver's memory in local mode (where it is every executor too): OPENPHM_SPARK_DRIVER_MEMORY
    memory = os.environ.get("OPENPHM_SPARK_DRIVER_MEMORY", "2g")
    return connect(master, warehouse=os.path.join(folder, "warehouse"), metastore=folder, driver_memory=memory)

