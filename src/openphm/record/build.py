"""`openphm build`: the person record from the ingested, linked data.

Each table is one SQL file in `record/sql/` (a SELECT with a header naming its table, grain and
dependencies, and for the tables a person's record page reads, `-- order: person_id`, so that their
rows are stored by person and a lookup reads one row group). The runner orders them by dependency,
parses each with sqlglot, points references to `record.<table>` at the version being built and
writes `<dialect>` SQL. A build writes a new schema `record_v<N>`; only when every table is built
does it switch the views in `record` (and the opt-out-filtered `planning` views) over, in one
transaction. A failed build drops its partial schema and leaves the last good build in service.

The same steps run on Apache Spark through `openphm.engine.spark.SparkConnection`, which
transpiles each statement; the two lookups that differ between engines (a table's columns, table
or view) are asked through `openphm.engine`. On Spark the switch's "transaction" is that
connection's undo log: a failing statement rolls the views back, a killed process may not (see
docs/scale.md).

The National Data Opt-out is part of the build (openphm.identity.optout): the person ids of
people on the stored list are written into the build as `record_v<N>.opted_out` before any step
(`person.sql` reads it as `link.opted_out`, pointed at the build like `record.*`), and the switch
points `record.opted_out` at it in the same transaction as `record.*` and `planning.*`. Every
planning view reads `record.opted_out`, so planning.person, the activity views and the planning
views of later outputs (risk scores, segments, lists) always leave out the same people: a build
that fails or is killed at any moment leaves the old set and the old record, or the new ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from contextlib import nullcontext
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import polars as pl
import sqlglot
from sqlglot import exp

from openphm.codelists import load_codelists
from openphm.domain import expand_rules
from openphm.engine import lookup_storage, table_columns, table_kind
from openphm.engine.connection import Connection, EngineError
from openphm.engine.duckdb_store import ident, lit
from openphm.finance.tariff import Tariff, load_tariff
from openphm.identity.linkage import link_complete
from openphm.identity.optout import ensure_optout_tables, list_version, opted_out_sql, stale_outputs
from openphm.ingest.loader import ensure_raw_table, ensure_schema
from openphm.sources import SOURCES

log = logging.getLogger("openphm.record")
DEFAULT_SQL_DIR = Path(str(resources.files("openphm.record") / "sql"))
OPTED_OUT_INPUT = ("link", "opted_out")  # read by person.sql; built into each version (see the module's note)


class BuildFailed(Exception):  # noqa: N818
    """A build that did not complete; the previous build is still in service."""


@dataclass(frozen=True)
class Step:
    """One SQL file: the table it makes and the tables it needs."""

    table: str
    depends: tuple[str, ...]
    sql: str
    order: tuple[str, ...] = ()  # `-- order:` header: the rows are stored sorted by these columns
    view: bool = False  # `-- materialise: view` header: a view over the build's tables, not a copy of their rows


def read_steps(sql_dir: Path) -> list[Step]:
    """SQL files in dependency order (each file's `-- depends:` header names the tables it needs)."""
    steps = {}
    for path in sorted(sql_dir.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        table = re.search(r"^-- table:\s*(\w+)", text, re.M)
        depends = re.search(r"^-- depends:(.*)$", text, re.M)
        if not table:
            raise BuildFailed(f"{path.name}: no '-- table:' header")
        deps = tuple(d.strip() for d in (depends.group(1) if depends else "").split(",") if d.strip())
        order = re.search(r"^-- order:(.*)$", text, re.M)
        columns = tuple(c.strip() for c in (order.group(1) if order else "").split(",") if c.strip())
        if any(not re.fullmatch(r"[a-z_][a-z0-9_]*", c) for c in columns):
            raise BuildFailed(f"{path.name}: '-- order:' names columns, separated by commas")
        materialise = re.search(r"^-- materialise:\s*(\w+)\s*$", text, re.M)
        kind = materialise.group(1) if materialise else "table"
        if kind not in ("table", "view") or (kind == "view" and columns):
            raise BuildFailed(f"{path.name}: '-- materialise:' is table or view (a view has no '-- order:')")
        steps[table.group(1)] = Step(table.group(1), deps, text, columns, kind == "view")
    ordered: list[Step] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if any(s.table == name for s in ordered):
            return
        if name in visiting:
            raise BuildFailed(f"circular dependency at {name}")
        if name not in steps:
            raise BuildFailed(f"a step depends on {name}, which no SQL file makes")
        visiting.add(name)
        for dep in steps[name].depends:
            visit(dep)
        ordered.append(steps[name])

    for name in sorted(steps):
        visit(name)
    return ordered


def compile_step(step: Step, schema: str, dialect: str = "duckdb") -> str:
    """The step's SELECT as `CREATE TABLE <schema>.<table> AS ...` (or `CREATE VIEW` for a step
    materialised as a view), with record.* pointed at `schema`."""
    tree = sqlglot.parse_one(expand_rules(step.sql), read="duckdb")

    def retarget(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and (node.db == "record" or (node.db, node.name) == OPTED_OUT_INPUT):
            return exp.table_(node.name, db=schema, alias=node.alias or None)
        return node

    tree = tree.transform(retarget)
    # Stored by person: a person's rows share a row group, so a record lookup reads one (and the build
    # writes it in `engine.lookup_storage`, so that the row group is quick to read).
    if step.order:
        tree = exp.select("*").from_(tree.subquery("step")).order_by(*step.order)
    create = exp.Create(this=exp.table_(step.table, db=schema), kind="VIEW" if step.view else "TABLE",
                        expression=tree)
    return create.sql(dialect=dialect)


def _linked_views(con: Connection) -> None:
    for spec in SOURCES.values():
        ensure_raw_table(con, spec)
        con.execute(f"""CREATE OR REPLACE TEMP VIEW {ident('linked_' + spec.name)} AS
            SELECT l.person_id, a.*, m.period AS file_period FROM raw.{ident(spec.table)} AS a
            JOIN ingest.manifest AS m ON m.file_id = a.file_id AND m.status = 'active'
            JOIN link.record_person AS l ON l.source = {lit(spec.name)} AND l.file_id = a.file_id
                 AND l.row_number = a.row_number""")


def _opted_out(con: Connection, schema: str) -> int:
    """`<schema>.opted_out`: the person ids (no identifiers) of linked people on the stored opt-out
    list, and `<schema>.optout_applied`: which list version that was. Returns the people."""
    ensure_optout_tables(con)  # the identity store: committed on its own, before the build writes anything
    version = list_version(con)[0]
    con.execute(f"CREATE TABLE {ident(schema)}.opted_out AS {opted_out_sql()} ORDER BY 1")
    people = con.execute(f"SELECT count(*) FROM {ident(schema)}.opted_out").fetchone()[0]
    # no time here: the same data and list give the same record (when the list changed: idn.identity.optout_meta)
    con.execute(f"CREATE TABLE {ident(schema)}.optout_applied AS SELECT CAST(? AS BIGINT) AS list_version, "
                "CAST(? AS BIGINT) AS people", [version, people])
    return people


def _switch_over(con: Connection, schema: str, tables: list[str], version: int,
                 started: dt.datetime) -> None:
    """Point the record and planning views, and the opted-out set they leave out, at the new build,
    in one transaction."""
    con.execute("BEGIN")
    con.execute("CREATE SCHEMA IF NOT EXISTS record")
    con.execute("CREATE SCHEMA IF NOT EXISTS planning")
    for table in ("opted_out", "optout_applied"):
        con.execute(f"CREATE OR REPLACE VIEW record.{table} AS SELECT * FROM {ident(schema)}.{table}")
    _link_opted_out_view(con)
    for table in tables:
        con.execute(f"CREATE OR REPLACE VIEW record.{ident(table)} AS SELECT * FROM {ident(schema)}.{ident(table)}")
        if table == "person":
            con.execute("CREATE OR REPLACE VIEW planning.person AS SELECT * FROM record.person "
                        "WHERE NOT national_data_opt_out")
        elif "person_id" in table_columns(con, schema, table):
            con.execute(f"CREATE OR REPLACE VIEW planning.{ident(table)} AS SELECT t.* FROM record.{ident(table)} t "
                        "WHERE t.person_id NOT IN (SELECT person_id FROM record.opted_out)")
    con.execute("INSERT INTO ingest.builds VALUES (?, 'succeeded', ?, now(), NULL)", [version, started])
    con.execute("COMMIT")


def _link_opted_out_view(con: Connection) -> None:
    """`link.opted_out`, where earlier builds kept the set as a table of its own (rewritten before
    each build, so a failed build left it out of step with the record), becomes a view of the
    set in service."""
    con.execute("CREATE SCHEMA IF NOT EXISTS link")
    if table_kind(con, "link", "opted_out") not in (None, "VIEW"):
        con.execute("DROP TABLE link.opted_out")
    con.execute("CREATE OR REPLACE VIEW link.opted_out AS SELECT person_id FROM record.opted_out")


def prepare_inputs(con: Connection, tariff: Tariff) -> None:
    """What the steps read besides the record: the `linked_<source>` views of records in service with
    their person, the code lists and the tariff (temporary tables)."""
    _linked_views(con)
    con.register("codelists_frame", load_codelists().to_arrow())
    con.execute("CREATE OR REPLACE TEMP TABLE codelists AS SELECT * FROM codelists_frame")
    con.unregister("codelists_frame")
    con.register("tariff_frame", tariff.lines.with_columns(pl.lit(tariff.price_year).alias("price_year")).to_arrow())
    con.execute("CREATE OR REPLACE TEMP TABLE tariff AS SELECT * FROM tariff_frame")
    con.unregister("tariff_frame")
    con.register("hrg_weight_frame", tariff.hrg_weights.to_arrow())
    con.execute("CREATE OR REPLACE TEMP TABLE hrg_weight AS SELECT * FROM hrg_weight_frame")
    con.unregister("hrg_weight_frame")


def build_record(con: Connection, sql_dir: Path = DEFAULT_SQL_DIR, tariff: Tariff | None = None) -> dict:
    """Build a new version of the person record and switch to it; returns table row counts, and the
    activity no tariff line priced (`uncosted`: activity, category, rows). `tariff`: the unit costs
    (default: the shipped tariff at its latest price year), kept in the build as `record.tariff`."""
    ensure_schema(con)
    con.execute("CREATE TABLE IF NOT EXISTS ingest.builds (version INTEGER, status VARCHAR, started TIMESTAMP, "
                "finished TIMESTAMP, error VARCHAR)")
    if table_kind(con, "link", "record_person") is None:
        raise BuildFailed("no linked records: run `openphm ingest` (which links) first")
    if not link_complete(con):
        raise BuildFailed("the last linking did not finish (the links and the identity store's person keys come "
                          "from different runs): run `openphm link` first; the build in service is unchanged")
    version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM ingest.builds").fetchone()[0]
    schema = f"record_v{version}"
    started = dt.datetime.now()
    steps = read_steps(sql_dir)
    tariff = tariff or load_tariff()
    prepare_inputs(con, tariff)
    con.execute(f"DROP SCHEMA IF EXISTS {ident(schema)} CASCADE")  # left by a build that crashed
    con.execute(f"CREATE SCHEMA {ident(schema)}")
    try:
        opted_out = _opted_out(con, schema)
        con.execute(f"CREATE TABLE {ident(schema)}.tariff AS SELECT * FROM tariff")
        for step in steps:
            with lookup_storage(con) if step.order else nullcontext():
                con.execute(compile_step(step, schema))
            log.info("built %s", step.table)
    except Exception as exc:
        con.execute(f"DROP SCHEMA {ident(schema)} CASCADE")
        con.execute("INSERT INTO ingest.builds VALUES (?, 'failed', ?, now(), ?)", [version, started, str(exc)[:500]])
        log.error("build %d failed; the previous build stays in service", version)
        raise BuildFailed(f"build {version} failed at a step: {str(exc).splitlines()[0][:300]}") from None
    tables = [s.table for s in steps] + ["tariff"]
    try:
        _switch_over(con, schema, tables, version, started)
    except EngineError as exc:
        con.execute("ROLLBACK")
        con.execute(f"DROP SCHEMA {ident(schema)} CASCADE")
        con.execute("INSERT INTO ingest.builds VALUES (?, 'failed', ?, now(), ?)", [version, started, str(exc)[:500]])
        raise BuildFailed(f"build {version} failed while switching over: {str(exc).splitlines()[0][:300]}") from None
    old = [r[0] for r in con.execute("SELECT version FROM ingest.builds WHERE status = 'succeeded' "
                                     "AND version < ? ORDER BY version DESC", [version]).fetchall()]
    for v in old[1:]:  # keep the previous good build for audit and fallback
        con.execute(f"DROP SCHEMA IF EXISTS {ident(f'record_v{v}')} CASCADE")
    counts = {t: con.execute(f"SELECT count(*) FROM record.{ident(t)}").fetchone()[0] for t in tables}
    log.info("build %d in service: %s; %d people opted out of planning outputs", version, counts, opted_out)
    stale = stale_outputs(con)
    if stale:
        log.info("computed before the opt-out set changed, to run again: %s", ", ".join(stale))
    uncosted = con.execute("SELECT activity, coalesce(cost_category, '(none)'), count(*) FROM record.activity_cost "
                           "WHERE cost IS NULL GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2").fetchall()
    if uncosted:
        log.warning("activity no tariff line prices: %s", "; ".join(f"{a} {c}: {n}" for a, c, n in uncosted))
    hrg_unknown = con.execute("SELECT count(*) FROM record.inpatient_spell "
                              "WHERE spell_hrg IS NOT NULL AND NOT hrg_priced").fetchone()[0]
    if hrg_unknown:
        log.warning("%d spells have an HRG the case-mix weights do not know: priced at their department's "
                    "average", hrg_unknown)
    return {"version": version, "tables": counts, "opted_out": opted_out, "stale": stale,
            "uncosted": uncosted, "price_year": tariff.price_year, "hrg_unknown": hrg_unknown}
