"""`openphm measures`: indicators declared as data (list, show, docs, run, report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, TimeElapsedColumn
from rich.table import Table

from openphm.cli.app import DB_OPTION, ENGINE_OPTION, SPARK_MASTER_OPTION, app, console, fail, open_db
from openphm.engine.connection import EngineError

measures_app = typer.Typer(no_args_is_help=True, help="Indicators declared as data.")
app.add_typer(measures_app, name="measures")


@measures_app.command("list")
def measures_list() -> None:
    """Every indicator: id, title, unit and polarity."""
    from openphm.measures.definitions import load_measures

    table = Table(title="Indicators")
    for col in ("id", "title", "unit", "polarity"):
        table.add_column(col)
    for mid, m in load_measures().items():
        table.add_row(mid, m.title, m.unit, m.polarity.replace("_", " "))
    Console().print(table)


@measures_app.command("show")
def measures_show(measure_id: Annotated[str, typer.Argument(help="An indicator id (see `measures list`).")]) -> None:
    """One indicator's definition in full."""
    from openphm.measures.definitions import load_measures, render_doc

    measures = load_measures()
    if measure_id not in measures:
        fail(f"no indicator {measure_id!r}; `openphm measures list` shows the {len(measures)} there are")
    print(render_doc(measures[measure_id]))


@measures_app.command("docs")
def measures_docs(out: Annotated[Path, typer.Option(help="Folder for the pages.")] = Path("docs/measures")) -> None:
    """Write one documentation page per indicator (and an index) from the definitions."""
    from openphm.measures.definitions import load_measures, render_docs

    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_docs(load_measures()).items():
        (out / name).write_text(text, encoding="utf-8")
    Console().print(f"Wrote {len(load_measures())} indicator pages to {out}")


@measures_app.command("run")
def measures_run(
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    only: Annotated[list[str] | None, typer.Option("--only", help="Indicator ids (repeatable).")] = None,
    engine: Annotated[str, ENGINE_OPTION] = "duckdb",
    spark_master: Annotated[str, SPARK_MASTER_OPTION] = "local[2]",
) -> None:
    """Compute every indicator for every level and period (financial years; months or rolling 12 months
    where the indicator declares them) into measures.measure_result."""
    from openphm.measures.definitions import load_measures
    from openphm.measures.engine import financial_years, run_measures

    _, con = open_db(db, engine, spark_master)
    chosen = [m for m in load_measures() if not only or m in only]
    try:
        with Progress(*Progress.get_default_columns(), TimeElapsedColumn(), console=console,
                      auto_refresh=console.is_terminal) as bar:
            task = bar.add_task("computing indicators", total=len(chosen) * max(1, len(financial_years(con))))
            result = run_measures(con, only, progress=lambda mid: bar.advance(task))
    except (ValueError, *EngineError) as exc:
        fail(str(exc).splitlines()[0])
    counts = result.group_by("period_type").len().sort("period_type")
    Console().print(f"measures.measure_result: {len(result):,} rows for {result['measure_id'].n_unique()} "
                    "indicators (" + ", ".join(f"{n:,} {t.replace('_', ' ')}" for t, n in counts.iter_rows()) + ")")


@measures_app.command("report")
def measures_report(
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    out: Annotated[Path, typer.Option(help="Folder for indicators.html.")] = Path("reports"),
) -> None:
    """Write an HTML report of the latest year's indicators: funnel plots and league tables."""
    from openphm.ingest.loader import open_store
    from openphm.measures.report import write_measures_report

    if not db.exists():
        fail(f"{db} does not exist")
    _, con = open_store(db)
    try:
        path = write_measures_report(con, out)
    except (ValueError, *EngineError) as exc:
        fail(str(exc).splitlines()[0])
    Console().print(f"Indicator report: open {path.resolve()}")

