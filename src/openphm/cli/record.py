"""Commands of the linked person record: ingest (and link), files, build, link, link-report, link-files, optout."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from openphm.cli.app import DB_OPTION, ENGINE_OPTION, SPARK_MASTER_OPTION, app, console, fail, open_db, working
from openphm.engine.connection import EngineError


@app.command()
def ingest(
    folder: Annotated[Path, typer.Argument(help="A folder of extracts (e.g. the output of `openphm generate`).")],
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    threshold: Annotated[float, typer.Option(help="Match probability above which a probabilistic link is "
                                                  "accepted.")] = 0.9,
    link: Annotated[bool, typer.Option("--link/--no-link", help="Link records to people after loading.")] = True,
    replace: Annotated[bool, typer.Option("--replace", help="Confirm supersessions that shrink a period by half "
                                                            "or more (refused without it).")] = False,
    engine: Annotated[str, ENGINE_OPTION] = "duckdb",
    spark_master: Annotated[str, SPARK_MASTER_OPTION] = "local[2]",
) -> None:
    """Load every extract in FOLDER (rows loaded or quarantined with a reason), then link records to people.
    A file for a period already loaded supersedes the earlier one (`openphm files list` shows every
    supersession; `openphm files restore ID` puts an earlier file back)."""
    from openphm.identity.linkage import link_records

    if not folder.is_dir():
        fail(f"{folder} is not a folder of extracts")
    store, con = open_db(db, engine, spark_master, must_exist=False)
    results = load_folder(con, folder, replace)
    if not results:
        fail(f"no extract files (.csv, .parquet or a gp_fhir folder) found in {folder}")
    _summary(results)
    if link:
        with working("linking records to people (deterministic, then Splink) ..."):
            started = time.perf_counter()
            summary = link_records(con, store, threshold)
        Console().print(f"Linked in {time.perf_counter() - started:,.0f} s: "
                        + ", ".join(f"{k} {v:,}" for k, v in summary.by_method.items())
                        + f". Model saved to {summary.model_path}")
    if any(r.status in ("rejected", "refused") for r in results):
        raise typer.Exit(1)


def load_folder(con, folder: Path, replace: bool = False) -> list:
    """Load reference files and every extract in `folder`, with a progress bar; returns per-file results."""
    from openphm.ingest.loader import extract_files, ingest_fhir_folder, ingest_file, load_reference

    if (folder / "reference").is_dir():
        load_reference(con, folder / "reference")
    files = extract_files(folder)
    fhir = [p for p in (folder / "extracts" / "gp_fhir", folder / "gp_fhir") if p.is_dir()]
    results = []
    with Progress(TextColumn("{task.description:<48}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, auto_refresh=console.is_terminal) as progress:
        task = progress.add_task("loading", total=len(files) + len(fhir))
        for path in files:
            progress.update(task, description=f"loading {path.name}")
            results.append(ingest_file(con, path, replace=replace))
            progress.advance(task)
        for f in fhir:
            progress.update(task, description="loading GP FHIR resources")
            results.extend(ingest_fhir_folder(con, f))
            progress.advance(task)
    return results


def _summary(results) -> None:
    by_source: dict[str, dict] = {}
    for r in results:
        s = by_source.setdefault(r.source, {"files": 0, "unchanged": 0, "rejected": 0, "read": 0, "loaded": 0,
                                            "quarantined": 0, "reasons": {}})
        s["files"] += 1
        s["unchanged"] += r.status in ("unchanged", "restored")
        s["rejected"] += r.status in ("rejected", "refused")
        s["read"] += r.rows_read
        s["loaded"] += r.rows_loaded
        s["quarantined"] += r.rows_quarantined
        for k, v in (r.reasons or {}).items():
            s["reasons"][k] = s["reasons"].get(k, 0) + v
    table = Table(title="Ingest summary (rows read = loaded + quarantined)")
    for col in ("source", "files", "unchanged", "not loaded", "rows read", "loaded", "quarantined", "by reason"):
        table.add_column(col, justify="left" if col in ("source", "by reason") else "right")
    for source, s in by_source.items():
        table.add_row(source, str(s["files"]), str(s["unchanged"]), str(s["rejected"]), f"{s['read']:,}",
                      f"{s['loaded']:,}", f"{s['quarantined']:,}",
                      ", ".join(f"{k} {v:,}" for k, v in sorted(s["reasons"].items())))
    Console().print(table)
    for r in results:
        if r.status in ("rejected", "refused"):
            console.print(f"{r.status}: {r.problem}", markup=False, highlight=False)
        elif r.status == "restored":
            console.print(f"restored: {r.path.name} is back in service in place of file(s) "
                          f"{', '.join(map(str, r.superseded or []))}", markup=False, highlight=False)
        elif r.superseded:
            console.print(f"superseded: {r.path.name} replaces file(s) {', '.join(map(str, r.superseded))}",
                          markup=False, highlight=False)


files_app = typer.Typer(no_args_is_help=True, help="The extract files loaded: what is in service, what was "
                                                   "superseded, and putting an earlier file back.")
app.add_typer(files_app, name="files")


@files_app.command("list")
def files_list(db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb")) -> None:
    """Every file loaded (in service or superseded) and every supersession and restoration."""
    from openphm.ingest.loader import open_store, supersessions

    if not db.exists():
        fail(f"{db} does not exist")
    _, con = open_store(db)
    table = Table(title="Files loaded")
    for col in ("id", "source", "period", "file", "rows loaded", "quarantined", "status", "superseded by", "loaded"):
        table.add_column(col, justify="right" if col in ("id", "rows loaded", "quarantined") else "left")
    for row in con.execute("SELECT file_id, source, period, file_name, rows_loaded, rows_quarantined, status, "
                           "superseded_by, loaded_at FROM ingest.manifest ORDER BY file_id").fetchall():
        fid, source, period, name, rows, quarantined, status, by, at = row
        table.add_row(str(fid), source, period, name, f"{rows:,}", f"{quarantined:,}", status,
                      "" if by is None else str(by), f"{at:%Y-%m-%d %H:%M}")
    Console().print(table)
    changes = supersessions(con)
    if changes:
        history = Table(title="Supersessions")
        for col in ("when", "out of service", "in its place", "action", "confirmed --replace", "rows out"):
            history.add_column(col)
        for at, fid, name, by, by_name, action, confirmed, rows in changes:
            history.add_row(f"{at:%Y-%m-%d %H:%M}", f"{name} ({fid})", f"{by_name} ({by})", action,
                            "yes" if confirmed else "no", f"{rows:,}")
        Console().print(history)


@files_app.command("restore")
def files_restore(
    file_id: Annotated[int, typer.Argument(help="The id of a superseded file (see `openphm files list`).")],
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    replace: Annotated[bool, typer.Option("--replace", help="Confirm a restoration that shrinks the period by "
                                                            "half or more.")] = False,
) -> None:
    """Put a superseded file back in service in place of the file now in service for its period, then link.
    Run `openphm build` afterwards."""
    from openphm.identity.linkage import link_records
    from openphm.ingest.loader import open_store, restore_file

    if not db.exists():
        fail(f"{db} does not exist")
    store, con = open_store(db)
    try:
        result = restore_file(con, file_id, replace)
    except ValueError as exc:
        fail(str(exc))
    if result.status == "refused":
        fail(result.problem)
    if result.status == "unchanged":
        Console().print(f"File {file_id} ({result.path.name}) is already in service.")
        return
    with working("linking records to people ..."):
        link_records(con, store)
    Console().print(f"File {file_id} ({result.path.name}, {result.rows_loaded:,} rows) is back in service in "
                    f"place of file(s) {', '.join(map(str, result.superseded or []))}. Run `openphm build`.")


@app.command()
def build(
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    engine: Annotated[str, ENGINE_OPTION] = "duckdb",
    spark_master: Annotated[str, SPARK_MASTER_OPTION] = "local[2]",
    tariff: Annotated[Path | None, typer.Option(help="Your own tariff (CSV in the shipped tariff's columns); "
                                                     "default: the shipped national unit costs.")] = None,
    price_year: Annotated[str | None, typer.Option(help="Uplift every unit cost to this financial year's "
                                                        "prices (e.g. 2024-25) by the NHS Cost Inflation Index; "
                                                        "default: the tariff's latest price year.")] = None,
) -> None:
    """Build the person record (a new version; the last good one stays in service if this fails), with
    the cost of every activity from the tariff."""
    from openphm.finance.tariff import TariffError, load_tariff
    from openphm.record.build import BuildFailed, build_record

    try:
        unit_costs = load_tariff(tariff, price_year)
    except TariffError as exc:
        fail(str(exc))
    _, con = open_db(db, engine, spark_master)
    try:
        with working("building the person record ..."):
            result = build_record(con, tariff=unit_costs)
    except BuildFailed as exc:
        fail(str(exc))
    table = Table(title=f"Person record, build {result['version']} (in service)")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for t, n in result["tables"].items():
        table.add_row(f"record.{t}", f"{n:,}")
    Console().print(table)
    Console().print(f"Costed at {unit_costs.price_year} prices ({unit_costs.path.name}).")
    if result["uncosted"]:
        lines = "\n".join(f"  {a} {c!r}: {n:,} rows" for a, c, n in result["uncosted"])
        Console().print(f"[yellow]No tariff line prices these rows (their cost is empty, not zero):[/]\n{lines}")
    if result["hrg_unknown"]:
        Console().print(f"[yellow]{result['hrg_unknown']:,} spells have an HRG the case-mix weights do not know; "
                        "they are priced at their department's average.[/]")


@app.command("link-report")
def link_report(
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    truth: Annotated[Path | None, typer.Option(help="A synthetic ICS's truth/ folder, to score linkage.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here.")] = None,
) -> None:
    """Link rates per source, match probabilities, and (with --truth) precision, recall and F1 by group."""
    import polars as pl

    from openphm.identity.report import accuracy, link_rates, probability_distribution
    from openphm.ingest.loader import open_store
    from openphm.synth.truth_readers import TruthError, true_people, true_records

    if not db.exists():
        fail(f"{db} does not exist")
    _, con = open_store(db)
    frames = {"link_rate_by_source": link_rates(con), "match_probability": probability_distribution(con)}
    if truth is not None:
        try:
            with working("reading the truth ..."):
                records, people = true_records(truth), true_people(truth)
        except TruthError as exc:
            fail(str(exc))
        with working("scoring linkage against the truth ..."):
            frames.update({f"accuracy_by_{k}": v for k, v in accuracy(con, records, people).items()})
    with pl.Config(tbl_rows=60, tbl_width_chars=160, tbl_hide_dataframe_shape=True):
        for name, frame in frames.items():
            Console().print(f"\n[bold]{name.replace('_', ' ')}[/bold]")
            print(frame)
    if out:
        out.write_text(json.dumps({k: v.to_dicts() for k, v in frames.items()}, indent=1, default=str))


@app.command()
def optout(
    file: Annotated[Path, typer.Argument(help="The National Data Opt-out list: one NHS number a line.")],
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    build: Annotated[bool, typer.Option("--build", help="Build the person record straight after, to apply "
                                                        "the list.")] = False,
    allow_large_removal: Annotated[bool, typer.Option("--allow-large-removal", help="Accept a list that removes "
                                                      "more than half of the stored one.")] = False,
) -> None:
    """Replace the National Data Opt-out list in one step: those people leave every planning output at the
    next build (they stay in the record for direct care). An empty, unreadable or invalid file is refused
    and the stored list kept."""
    from openphm.identity.optout import OptoutError, people_in_record, read_optout_file, replace_optout
    from openphm.ingest.loader import open_store

    if not db.exists():
        fail(f"{db} does not exist: run `openphm ingest FOLDER --db {db}` first")
    try:
        numbers = read_optout_file(file)
    except OptoutError as exc:
        fail(str(exc))
    _, con = open_store(db)
    try:
        change = replace_optout(con, numbers, allow_large_removal)
        linked = people_in_record(con)
    except OptoutError as exc:
        fail(str(exc) + (" (--allow-large-removal accepts it)" if "more than half" in str(exc) else ""))
    except EngineError as exc:
        fail(f"the opt-out list could not be replaced and is unchanged: {(str(exc).splitlines() or [''])[0][:200]}")
    Console().print(f"Opt-out list: {change.total:,} people ({change.added:,} added, {change.removed:,} removed); "
                    f"{linked:,} of them are people in this record.")
    if not build:
        Console().print("Run `openphm build` to apply it (until then planning outputs follow the list the last "
                        "build applied).")
        return
    from openphm.record.build import BuildFailed, build_record

    try:
        with working("building the person record ..."):
            result = build_record(con)
    except BuildFailed as exc:
        fail(f"{exc} (the list is stored: run `openphm build` to apply it)")
    everyone = con.execute("SELECT count(*) FROM record.person").fetchone()[0]
    planning = con.execute("SELECT count(*) FROM planning.person").fetchone()[0]
    Console().print(f"Build {result['version']} in service: {result['opted_out']:,} people left out of every "
                    f"planning output (planning.person {planning:,} of {everyone:,} people); they stay in the "
                    "record and on case-finding lists for direct care.")
    for view, table, words in (("risk_score", "risk.score", "risk scores"), ("list_member", "lists.member",
                                                                            "case-finding list places")):
        if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
                       "AND table_schema = 'planning' AND table_name = ?", [view]).fetchone()[0]:
            hidden = con.execute(f"SELECT count(*) FROM {table} WHERE person_id IN "
                                 "(SELECT person_id FROM record.opted_out)").fetchone()[0]
            Console().print(f"  {table}: {hidden:,} {words} of theirs, kept for direct care and left out of "
                            f"planning.{view}.")
    commands = {"segments": "openphm segments run", "measures": "openphm measures run"}
    if result["stale"]:
        Console().print("Computed before this change, so run again: "
                        + ", ".join(f"`{commands.get(s, s)}`" for s in result["stale"]))


@app.command("link")
def link_command(
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    threshold: Annotated[float, typer.Option(help="Match probability above which a probabilistic link is "
                                                  "accepted.")] = 0.9,
    engine: Annotated[str, ENGINE_OPTION] = "duckdb",
    spark_master: Annotated[str, SPARK_MASTER_OPTION] = "local[2]",
) -> None:
    """Link every active record to a person again (for example with another threshold)."""
    from openphm.identity.linkage import link_records

    if not 0 < threshold < 1:
        fail(f"--threshold must be between 0 and 1 (got {threshold})")
    store, con = open_db(db, engine, spark_master)
    with working("linking records to people (deterministic, then Splink) ..."):
        summary = link_records(con, store, threshold)
    Console().print("Linked: " + ", ".join(f"{k} {v:,}" for k, v in summary.by_method.items()))


@app.command("link-files")
def link_files_command(
    left: Annotated[Path, typer.Argument(help="A CSV or Parquet file of people.")],
    right: Annotated[Path, typer.Argument(help="Another file of people to link it to.")],
    out: Annotated[Path, typer.Option(help="Where to write the pairs (CSV).")] = Path("links.csv"),
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns to compare, each NAME or "
                                                     "LEFT_NAME=RIGHT_NAME (default: every recognised one "
                                                     "both files have).")] = None,
    id_column: Annotated[str | None, typer.Option(help="Each file's own id column, carried into the output: "
                                                       "NAME or LEFT_NAME=RIGHT_NAME (default: rec_id, id, "
                                                       "record_id or the index, if there is one).")] = None,
    threshold: Annotated[float, typer.Option(help="Match probability threshold.")] = 0.9,
) -> None:
    """Link two files of people: pairs with match probabilities, cluster ids and each file's own ids."""
    from openphm.identity.link_files import LinkFilesError, link_files

    if not 0 < threshold < 1:
        fail(f"--threshold must be between 0 and 1 (got {threshold})")
    names = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    ids: tuple[str | None, str | None] = (None, None)
    if id_column:
        first, _, second = id_column.partition("=")
        ids = (first.strip(), (second or first).strip())
    try:
        with working("linking the two files ..."):
            result = link_files(left, right, out, names, threshold, ids)
    except LinkFilesError as exc:
        fail(str(exc))
    except Exception as exc:  # never a traceback: one line naming what failed
        fail(f"link-files failed: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}")
    carried = f"; ids as {', '.join(result['id_columns'])}" if result["id_columns"] else ""
    Console().print(f"{result['pairs']:,} pairs above {threshold} between {result['left_rows']:,} and "
                    f"{result['right_rows']:,} rows, on {', '.join(result['columns'])}{carried}: {out}")
