"""`openphm variation`: funnel, SPC and league table for an analyst's own aggregate CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from openphm.cli.app import ENGINE_OPTION, SPARK_MASTER_OPTION, app, fail, open_db


@app.command("variation")
def variation(
    file: Annotated[Path, typer.Argument(help="CSV with one row per organisation and period.")],
    org: Annotated[str, typer.Option(help="Column naming the organisation.")],
    period: Annotated[str, typer.Option(help="Column naming the period (sorts in time order, e.g. 2019-03-01).")],
    numerator: Annotated[str, typer.Option(help="Column with the numerator.")],
    denominator: Annotated[str, typer.Option(help="Column with the denominator.")],
    out: Annotated[Path, typer.Option(help="Folder for variation.html and the CSV files.")],
    kind: Annotated[str, typer.Option(help="proportion, rate or ratio.")] = "proportion",
    per: Annotated[float, typer.Option(help="Multiplier for values: 100 for %, 1000 for per 1,000.")] = 100.0,
    unit: Annotated[str, typer.Option(help="Label for values on the charts.")] = "%",
    polarity: Annotated[str, typer.Option(help="higher_is_better, lower_is_better or no_judgement.")] = "no_judgement",
) -> None:
    """Funnel plot (latest period), SPC per organisation and league table, as charts and CSV."""
    from openphm.variation.dataset import Columns, DatasetError, analyse, read_dataset, write_outputs

    if not file.exists():
        fail(f"{file} does not exist")
    try:
        data = read_dataset(file, Columns(org, period, numerator, denominator))
        if polarity not in ("higher_is_better", "lower_is_better", "no_judgement"):
            raise DatasetError(f"--polarity must be higher_is_better, lower_is_better or no_judgement "
                               f"(got {polarity!r})")
        results = analyse(data, kind, per, polarity=polarity)
        page = write_outputs(results, out, file, unit, per)
    except DatasetError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{out}: cannot write ({exc.strerror})")
    flagged = results["funnel"]["flag"].isin(["high_998", "low_998"]).sum()
    Console().print(f"{data['org'].nunique()} organisations, {data['period'].nunique()} periods; latest period "
                    f"{results['funnel']['period'].iloc[0]}: {flagged} outside the 99.8% limits.\n"
                    f"Open {page.resolve()} (funnel.csv, league.csv, spc.csv beside it)")


codelists_app = typer.Typer(help="Versioned code lists (conditions and frailty deficits).", no_args_is_help=True)
app.add_typer(codelists_app, name="codelists")


@codelists_app.command("list")
def codelists_list() -> None:
    """Every code list with its kind, version, date and number of codes."""
    from rich.table import Table

    from openphm.codelists import data_dir, load_manifest

    table = Table("id", "kind", "version", "updated", "codes")
    for e in load_manifest():
        rows = sum(1 for _ in (data_dir() / e["file"]).open(encoding="utf-8")) - 1
        table.add_row(e["id"], e["kind"], str(e["version"]), e["updated"], str(rows))
    Console().print(table)


@codelists_app.command("stamp")
def codelists_stamp() -> None:
    """After editing code-list files: raise the version of each changed file in the manifest."""
    from openphm.codelists import stamp

    changed = stamp()
    Console().print("\n".join(changed) if changed else "No code list has changed.")


segments_app = typer.Typer(help="Population segments (Bridges to Health).", no_args_is_help=True)
app.add_typer(segments_app, name="segments")


@segments_app.command("run")
def segments_run(
    db: Annotated[Path, typer.Option(help="The OpenPHM database.")] = Path("openphm.duckdb"),
    engine: Annotated[str, ENGINE_OPTION] = "duckdb",
    spark_master: Annotated[str, SPARK_MASTER_OPTION] = "local[2]",
) -> None:
    """Give every registered person a segment at the start of each month the record covers, and write
    segment sizes, activity per segment and year-on-year transitions (schema `segments`)."""
    from rich.progress import Progress, TimeElapsedColumn

    from openphm.segments.run import record_months, run_segments

    _, con = open_db(db, engine, spark_master)
    months = record_months(con)
    with Progress(*Progress.get_default_columns(), TimeElapsedColumn()) as bar:
        task = bar.add_task("segmenting the population", total=len(months))
        try:
            run_segments(con, months=months, progress=lambda month: bar.advance(task))
        except ValueError as exc:
            fail(str(exc))
    latest = con.execute("SELECT segment, people, share FROM segments.size WHERE month = "
                         "(SELECT max(month) FROM segments.size) ORDER BY people DESC").fetchall()
    Console().print(f"{len(months)} months segmented. Latest month:")
    for segment, people, share in latest:
        Console().print(f"  {segment:<28} {people:>10,} ({share:.1%})")
