"""`openphm risk` (train, score), `openphm lists` (run, export) and `openphm audit` (verify, list) commands."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console

from openphm.cli.app import ENGINE_OPTION, SPARK_MASTER_OPTION, app, fail, open_db, working
from openphm.engine.connection import EngineError

DB_OPTION = typer.Option(help="The OpenPHM database.")
risk_app = typer.Typer(help="Risk of emergency admission within 12 months.", no_args_is_help=True)
app.add_typer(risk_app, name="risk")


def _open_store(db: Path):
    """The installation's Store and a connection, failing in one line if the database is missing."""
    from openphm.ingest.loader import open_store

    if not db.exists():
        fail(f"{db} does not exist: run `openphm ingest` and `openphm build` first")
    return open_store(db)


def _date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{name} must be a date as YYYY-MM-DD (got {value!r})")
    return None


@risk_app.command("train")
def risk_train(
    out: Annotated[Path, typer.Option(help="Folder for the models, report.html and report.json.")],
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    truth: Annotated[Path | None, typer.Option(help="A synthetic ICS's truth folder, for the ceiling.")] = None,
    train_date: Annotated[str | None, typer.Option(help="Index date for training (default: two years "
                                                         "before the last complete year).")] = None,
    validation_date: Annotated[str | None, typer.Option(help="Later index date for validation.")] = None,
    engine: Annotated[str, ENGINE_OPTION] = "duckdb",
    spark_master: Annotated[str, SPARK_MASTER_OPTION] = "local[2]",
) -> None:
    """Train the logistic and LightGBM models at one date, validate them on a later one, and report."""
    from openphm.risk.train import train_and_report
    from openphm.synth.truth_readers import true_records, true_yearly_risk

    if truth is not None and not truth.is_dir():
        fail(f"{truth} is not a folder (give the synthetic ICS's truth folder)")
    _, con = open_db(db, engine, spark_master)
    try:
        with working("building features, training and validating ..."):
            dates = {"train_date": _date(train_date, "--train-date"),
                     "validation_date": _date(validation_date, "--validation-date")}
            # the truth is read here and handed to the platform as frames (a TruthError is a ValueError)
            true = {"true_risk": true_yearly_risk(truth), "true_records": true_records(truth)} if truth else {}
            report = train_and_report(con, out, **dates, **true)
    except (ValueError, *EngineError) as exc:
        fail(str(exc).splitlines()[0])
    for name, m in report["models"].items():
        ceiling = f", {m['ceiling_ratio']:.1%} of the ceiling {m['ceiling_auroc']:.3f}" if m["ceiling_auroc"] else ""
        Console().print(f"{name}: AUROC {m['auroc']:.3f} ({m['auroc_ci'][0]:.3f} to {m['auroc_ci'][1]:.3f}), "
                        f"calibration slope {m['calibration_slope']:.2f}{ceiling}")
    Console().print(f"Report: open {(out / 'report.html').resolve()} (report.json beside it)")


@risk_app.command("score")
def risk_score(
    model_dir: Annotated[Path, typer.Option("--models", help="Folder written by `openphm risk train`.")],
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    as_of: Annotated[str | None, typer.Option(help="Date to score at (default: the day after the last "
                                                   "hospital spell).")] = None,
    model: Annotated[str | None, typer.Option(help="logistic or lightgbm (default: the better one).")] = None,
    engine: Annotated[str, ENGINE_OPTION] = "duckdb",
    spark_master: Annotated[str, SPARK_MASTER_OPTION] = "local[2]",
) -> None:
    """Score everyone registered, with reasons, into risk.score; rising risk into risk.rising."""
    from openphm.risk.score import score_population

    _, con = open_db(db, engine, spark_master)
    when = _date(as_of, "--as-of")
    if when is None:
        last = con.execute("SELECT max(admission_date) FROM planning.inpatient_spell").fetchone()[0]
        if last is None:
            fail("the record has no hospital spells: run `openphm build` first")
        when = last + dt.timedelta(days=1)
    try:
        with working(f"scoring everyone registered on {when} ..."):
            scores = score_population(con, model_dir, when, model)
    except (ValueError, *EngineError) as exc:
        fail(str(exc).splitlines()[0])
    rising = con.execute("SELECT count(*) FROM risk.rising").fetchone()[0]
    Console().print(f"risk.score: {len(scores):,} people scored on {when} with {scores['model'][0]}; "
                    f"risk.rising: {rising:,} compared with the previous scoring")


lists_app = typer.Typer(help="Case-finding lists for multidisciplinary teams.", no_args_is_help=True)
app.add_typer(lists_app, name="lists")


@lists_app.command("run")
def lists_run(
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    only: Annotated[list[str] | None, typer.Option("--only", help="List ids (repeatable).")] = None,
    model: Annotated[str | None, typer.Option(help="The model whose scores to use, when several models scored "
                                                   "on the latest date (logistic or lightgbm).")] = None,
    engine: Annotated[str, ENGINE_OPTION] = "duckdb",
    spark_master: Annotated[str, SPARK_MASTER_OPTION] = "local[2]",
) -> None:
    """Run every list at the latest risk scoring into lists.member (pseudonymous), ordered by risk."""
    from openphm.lists.run import ListError, run_lists

    _, con = open_db(db, engine, spark_master)
    try:
        with working("running the case-finding lists ..."):
            counts = run_lists(con, only, model)
    except (ListError, *EngineError) as exc:
        fail(str(exc).splitlines()[0])
    totals = counts.group_by("list_id").agg(pl.col("people").sum(), pl.len().alias("units")).sort("list_id")
    for list_id, people, units in totals.iter_rows():
        Console().print(f"  {list_id:<36} {people:>7,} people across {units} practices")
    Console().print("Export one practice's list for direct care: openphm lists export ID --practice CODE "
                    "--out FILE.csv --purpose direct_care")


@lists_app.command("export")
def lists_export(
    list_id: Annotated[str, typer.Argument(help="The list's id.")],
    practice: Annotated[str, typer.Option(help="The practice's ODS code.")],
    out: Annotated[Path, typer.Option(help="CSV file to write.")],
    purpose: Annotated[str | None, typer.Option(help="Must be direct_care: the export identifies people.")] = None,
    user: Annotated[str | None, typer.Option(help="Who you say is exporting: recorded in the audit log as the "
                                                  "stated user (the actor recorded is the OS user).")] = None,
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
) -> None:
    """Export a practice's list with NHS numbers for direct care; audit-logged, refused without the purpose.
    The file is the owner's only (600) before a row is written; a folder created for it is 700."""
    from openphm.engine.files import private_output
    from openphm.lists.run import ListError, export_list

    store, con = _open_store(db)
    try:
        with private_output(out):
            rows = export_list(con, store, list_id, practice, out, purpose, user)
    except (ListError, *EngineError) as exc:
        fail(str(exc).splitlines()[0])
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    Console().print(f"Wrote {rows:,} people to {out.resolve()} (recorded in the audit log; `openphm audit list`)")


audit_app = typer.Typer(help="The tamper-evident audit log (audit.log).", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb")) -> None:
    """Check the audit log's hash chain and its signed checkpoint; exit 1 with each problem if it was altered."""
    from openphm.audit import AuditError, verify

    store, con = _open_store(db)
    try:
        result = verify(con, store)
    except (AuditError, *EngineError) as exc:
        fail(str(exc).splitlines()[0])
    for note in result.notes:
        typer.echo(f"note: {note}")
    if not result.ok:
        for problem in result.problems:
            typer.echo(f"FAILED: {problem}", err=True)
        typer.echo(f"The audit log of {db} does not verify: {len(result.problems)} problem(s) in {result.entries} "
                   "entries", err=True)
        raise typer.Exit(1)
    head = f", head {result.head_hash}" if result.head_hash else ""
    typer.echo(f"OK: {result.entries} entries{head}")


@audit_app.command("list")
def audit_list(
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    last: Annotated[int | None, typer.Option(min=1, help="Only the latest N entries.")] = None,
) -> None:
    """Show the audit log's entries (they hold no identifiers): when, who, what, outcome and details."""
    from openphm.audit import read_log

    _, con = _open_store(db)
    try:
        entries = read_log(con)
    except EngineError as exc:
        fail(str(exc).splitlines()[0])
    shown = entries[-last:] if last else entries
    for e in shown:
        stated = f" (stated user {e.stated_user!r})" if e.stated_user is not None else ""
        typer.echo(f"{e.seq:>6}  {e.logged_at}  {e.actor}{stated}  {e.action}  {e.outcome}  {e.details}")
    typer.echo(f"{len(entries)} entries; `openphm audit verify` checks them")

