"""`openphm generate`, `calibrate` and `demo`: the synthetic ICS, its calibration and the whole flow on it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from openphm.cli.app import app, console, fail, working


def _date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        parts = value.split("-")
        if len(parts) == 2:
            return dt.date(int(parts[0]), int(parts[1]), 1)
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{name} must be a date such as 2023-04 or 2023-04-01 (got {value!r})")
    return None


def _check(opts) -> None:
    """Validate options and create the output folder, failing in one line."""
    try:
        opts.check()
        Path(opts.out).mkdir(parents=True, exist_ok=True)
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot create --out {opts.out}: {exc.strerror or exc}")


def _generate(opts, quiet: bool = False) -> dict:
    from openphm.synth.generate import STEPS, generate_ics

    steps = [s for s in STEPS if not s.startswith("year ") or int(s.split()[1]) <= opts.years]
    with Progress(TextColumn("{task.description:<42}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, disable=quiet, transient=False,
                  auto_refresh=console.is_terminal) as progress:
        task = progress.add_task("generating synthetic ICS", total=len(steps))

        def step(name: str) -> None:
            progress.update(task, advance=1, description=f"generated: {name}")

        return generate_ics(opts, step)


@app.command()
def generate(
    people: Annotated[int, typer.Option(help="People registered at the start.")] = 50_000,
    years: Annotated[int, typer.Option(help="Years of monthly time to simulate.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives identical files.")] = 42,
    out: Annotated[Path, typer.Option(help="Folder to write the extracts, reference and truth into.")]
    = Path("synthetic-ics"),
    format: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    gp_format: Annotated[str, typer.Option(help="table (CSV/Parquet) or fhir (FHIR R4 NDJSON).")] = "table",
    start: Annotated[str, typer.Option(help="First day of the first financial year.")] = "2021-04-01",
    care_model: Annotated[bool, typer.Option("--care-model", help="Inject a new care model.")] = False,
    care_model_start: Annotated[str | None, typer.Option(help="Month the care model starts (YYYY-MM); "
                                                         "default: two years in.")] = None,
    care_model_effect: Annotated[float, typer.Option(help="True relative effect on emergency admissions "
                                                     "and A&E of the over-75s and care-home residents.")] = -0.20,
    care_model_waves: Annotated[int, typer.Option(help="Staggered adoption: the joining practices start in this "
                                                  "many waves, six months apart.")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Generate a synthetic ICS: extracts as each source sends them, reference files and truth."""
    from openphm.synth.generate import GenerateOptions

    opts = GenerateOptions(people=people, years=years, seed=seed, out=out, format=format,
                           gp_format=gp_format, start=_date(start, "--start"), care_model=care_model,
                           care_model_start=_date(care_model_start, "--care-model-start"),
                           care_model_effect=care_model_effect, care_model_waves=care_model_waves)
    _check(opts)
    try:
        summary = _generate(opts, quiet)
    except OSError as exc:
        fail(f"could not write to {out}: {exc.strerror or exc}")
    table = Table(title=f"Synthetic ICS written to {out}")
    table.add_column("source")
    table.add_column("rows", justify="right")
    for source, rows in summary["rows"].items():
        table.add_row(source, f"{rows:,}")
    Console().print(table)


@app.command()
def calibrate(
    folder: Annotated[Path, typer.Argument(help="A folder written by `openphm generate`.")],
    report: Annotated[Path | None, typer.Option(help="Folder for calibration.html and .csv.")] = None,
) -> None:
    """Compare a generated ICS with the published English figures (REFERENCE.md)."""
    from openphm.synth.calibration import calibration_checks
    from openphm.synth.report import write_calibration_report

    if not (folder / "extracts").is_dir():
        fail(f"{folder} has no extracts/ folder: is it the output of `openphm generate`?")
    with working("measuring the generated ICS against REFERENCE.md ..."):
        checks = calibration_checks(folder)
    _print_checks(checks)
    html, _ = write_calibration_report(folder, checks, report or folder)
    Console().print(f"Calibration report: {html.resolve()}")


def _print_checks(checks) -> None:
    table = Table(title="Generated vs published figures")
    for col in ("measure", "generated", "reference", "accepted", "ok"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for c in checks:
        table.add_row(c.measure, f"{c.generated:,.2f}", f"{c.reference:,.2f}", f"{c.low:,.2f}-{c.high:,.2f}",
                      "yes" if c.ok else "NO")
    Console().print(table)


def _demo_web_users(db: Path, practice: str | None) -> Path:
    """A user of each role for the demo's web application, with random passwords written owner-only
    beside the database (the users store is made afresh with the database)."""
    import secrets
    import shutil

    from openphm.engine.files import write_private
    from openphm.web.users import add_user, users_file

    shutil.rmtree(users_file(db).parent, ignore_errors=True)
    lines = []
    for name, role, scope in (("demo-admin", "admin", ()), ("demo-analyst", "analyst", ()),
                              ("demo-clinician", "clinician", (practice,) if practice else ()),
                              ("demo-board", "board", ())):
        if role == "clinician" and not scope:
            continue
        password = secrets.token_urlsafe(12)
        add_user(db, name, role, password, scope)
        lines.append(f"{name:15} {role:9} password {password}" + (f"  (direct care at {scope[0]})" if scope else ""))
    return write_private(db.with_name("demo-web-users.txt"), "\n".join(lines) + "\n")


@app.command()
def demo(
    people: Annotated[int, typer.Option(help="People in the demo ICS.")] = 50_000,
    out: Annotated[Path, typer.Option(help="Folder for everything the demo writes.")] = Path("demo-output"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Generate a synthetic ICS with a new care model, check it, ingest, link and build the person
    record, score the linkage, and say where the results are."""
    from openphm.cli.record import load_folder
    from openphm.identity.linkage import link_records
    from openphm.identity.optout import read_optout_file, replace_optout
    from openphm.identity.report import accuracy, link_rates, report_json
    from openphm.ingest.loader import open_store
    from openphm.record.build import build_record
    from openphm.synth.calibration import calibration_checks
    from openphm.synth.generate import GenerateOptions
    from openphm.synth.report import write_calibration_report
    from openphm.synth.truth_readers import true_people, true_records, true_yearly_risk

    ics = out / "synthetic-ics"
    opts = GenerateOptions(people=people, seed=seed, out=ics, care_model=True)
    _check(opts)
    summary = _generate(opts)
    with working("measuring the generated ICS against REFERENCE.md ..."):
        checks = calibration_checks(ics)
    _print_checks(checks)
    html, csv = write_calibration_report(ics, checks, out / "reports")

    db = out / "openphm.duckdb"
    for stale in (db, db.with_name(db.stem + "-identity.duckdb")):
        stale.unlink(missing_ok=True)
    store, con = open_store(db)
    results = load_folder(con, ics)
    with working("linking records to people ..."):
        link_records(con, store)
    # the National Data Opt-out list arrives as an ICS receives it: planning outputs leave those
    # people out, direct care (the record, risk scores, case-finding lists) keeps them
    optout_file = ics / "optout" / "national_data_opt_out.txt"
    optout_change = replace_optout(con, read_optout_file(optout_file)) if optout_file.exists() else None
    with working("building the person record ..."):
        built = build_record(con)
    planning_people = con.execute("SELECT count(*) FROM planning.person").fetchone()[0]
    with working("computing indicators ..."):
        from openphm.measures.engine import run_measures
        from openphm.measures.report import write_measures_report

        run_measures(con)
        n_results = con.execute("SELECT count(*) FROM measures.measure_result").fetchone()[0]
        indicators_html = write_measures_report(con, out / "reports")
    with working("segments, risk models and case-finding lists ..."):
        from openphm.lists.run import run_lists
        from openphm.risk.score import score_population
        from openphm.risk.train import train_and_report
        from openphm.segments.run import record_months, run_segments

        run_segments(con, months=[m for m in record_months(con) if m.month == 4])
        truth_records = true_records(ics / "truth")
        risk_report = train_and_report(con, out / "reports" / "risk", true_records=truth_records,
                                       true_risk=true_yearly_risk(ics / "truth"))
        last = con.execute("SELECT max(admission_date) FROM planning.inpatient_spell").fetchone()[0]
        score_population(con, out / "reports" / "risk", last + dt.timedelta(days=1))
        list_counts = run_lists(con)
    with working("spend, its concentration and fair-share budgets ..."):
        from openphm.finance.budgets import population_budgets
        from openphm.finance.report import write_budgets, write_costs
        from openphm.finance.spend import cost_per_segment_by_year, costed_years, spend_summary

        years = costed_years(con)
        spend = spend_summary(con, years[-1])
        costs_html = write_costs(spend, cost_per_segment_by_year(con, years[-5:], {years[-1]: spend["people_frame"]}),
                                 out / "reports" / "costs")
        budgets = population_budgets(con, years[-1]) if len(years) >= 2 else None
        budgets_html = write_budgets(budgets, out / "reports" / "budgets") if budgets else None
    with working("scoring linkage against the truth ..."):
        scores = accuracy(con, truth_records, true_people(ics / "truth"))
        rates = link_rates(con)
    report = out / "reports" / "linkage.json"
    report.write_text(report_json({"link_rate_by_source": rates,
                                   **{f"accuracy_by_{k}": v for k, v in scores.items()}}))
    busiest = con.execute("SELECT practice_code FROM lists.member GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
                          ).fetchone()
    con.close()
    web_users = _demo_web_users(db, busiest[0] if busiest else None)
    rows_read = sum(r.rows_read for r in results)
    overall = scores["overall"].row(0, named=True)
    con_out = Console()
    con_out.print(f"\n[bold]OpenPHM demo: {people:,} people, {sum(summary['rows'].values()):,} source records.[/bold]")
    con_out.print(f"  Extracts (as each organisation sends them): {(ics / 'extracts').resolve()}")
    con_out.print(f"  Calibration report: open {html.resolve()}  (table: {csv.resolve()})")
    con_out.print(f"  Person record (DuckDB, build {built['version']}): {db.resolve()} - "
                  f"{built['tables']['person']:,} people from {rows_read:,} rows")
    con_out.print(f"  Identity store (identifiers only, kept apart): {store.identity_db.resolve()}")
    if optout_change:
        con_out.print(f"  National Data Opt-out: {optout_change.total:,} NHS numbers on the list; "
                      f"{built['tables']['person'] - planning_people:,} people left out of planning "
                      f"(planning.person {planning_people:,} of {built['tables']['person']:,}), kept for direct care")
    con_out.print(f"  Indicators: open {indicators_html.resolve()} ({n_results:,} results in "
                  "measures.measure_result; `openphm measures list` describes them)")
    best = risk_report["models"][risk_report["best_model"]]
    con_out.print("  Segments (Bridges to Health, each April): segments.size, segments.activity, segments.transition; "
                  "`openphm segments run` does every month")
    con_out.print(f"  Risk model: open {(out / 'reports' / 'risk' / 'report.html').resolve()} - "
                  f"{risk_report['best_model']} AUROC {best['auroc']:.3f}, {best['ceiling_ratio']:.0%} of the ceiling")
    con_out.print(f"  Case-finding lists: {int(list_counts['people'].sum()):,} people on "
                  f"{list_counts['list_id'].n_unique()} lists in lists.member; export one practice's with "
                  "`openphm lists export ID --practice CODE --out FILE.csv --purpose direct_care`")
    top = spend["concentration"]["all"]["top"]
    con_out.print(f"  Spend in {spend['year']}: open {costs_html.resolve()} - "
                  f"£{spend['spend_per_person']:,.0f} a person; the costliest 5% of people account for "
                  f"{top['5%']:.0%} of it")
    if budgets_html:
        con_out.print(f"  Fair-share budgets: open {budgets_html.resolve()} - the capitation model explains "
                      f"{budgets['fit_hospital']['person']:.0%} of hospital spend between people; "
                      "`openphm riskshare simulate src/openphm/finance/data/example_agreement.yaml` tries a risk share")
    con_out.print(f"  Linkage against the truth: precision {overall['precision']:.4f}, recall {overall['recall']:.4f}"
                  f" - {report.resolve()}")
    con_out.print(f"\n[bold]Web application:[/bold] .venv/bin/openphm serve --db {db.resolve()}  then open "
                  "http://127.0.0.1:8000 (the public view needs no sign-in). Demo users (also in "
                  f"{web_users.resolve()}, readable by you only):")
    for line in web_users.read_text(encoding="utf-8").splitlines():
        con_out.print(f"    {line}", markup=False)

