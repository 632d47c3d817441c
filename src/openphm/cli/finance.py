"""`openphm costs` and `openphm budgets`: spend from the costed record, and fair-share budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from openphm.cli.app import DB_OPTION, app, fail, open_db, working

YEAR_OPTION = typer.Option("--year", help="Financial year, e.g. 2024-25 (default: the latest with costs).")


def _year(con, year: str | None) -> str:
    from openphm.finance.spend import costed_years, year_start

    years = costed_years(con)
    if not years:
        fail("the record holds no costs: run `openphm build` (it costs every activity from the tariff)")
    chosen = year or years[-1]
    try:
        year_start(chosen)
    except ValueError as exc:
        fail(str(exc))
    if chosen not in years:
        fail(f"no costed activity in {chosen} (years with costs: {', '.join(years)})")
    return chosen


@app.command("costs")
def costs(
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    year: Annotated[str | None, YEAR_OPTION] = None,
    out: Annotated[Path, typer.Option(help="Folder for costs.json, the CSVs and costs.html.")] = Path("costs"),
) -> None:
    """Spend in a financial year: per person, by setting, segment, age band, deprivation, practice, PCN and
    place, and how concentrated it is (the top 1%, 5% and 20% of people, the Lorenz curve)."""
    from openphm.finance.report import write_costs
    from openphm.finance.spend import cost_per_segment_by_year, costed_years, spend_summary

    _, con = open_db(db)
    chosen = _year(con, year)
    with working(f"costing {chosen} ..."):
        summary = spend_summary(con, chosen)
        full_years = [y for y in costed_years(con) if y <= chosen][-5:]
        per_segment = cost_per_segment_by_year(con, full_years, {chosen: summary["people_frame"]})
    path = write_costs(summary, per_segment, out)
    top = summary["concentration"]["all"]["top"]
    Console().print(f"{chosen}: £{summary['population_spend']:,.0f} on {summary['people']:,} people "
                    f"(£{summary['spend_per_person']:,.0f} each); the top 1%, 5% and 20% of people account for "
                    f"{top['1%']:.0%}, {top['5%']:.0%} and {top['20%']:.0%} of it. Report: {path}")


@app.command("budgets")
def budgets(
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    year: Annotated[str | None, typer.Option("--year", help="The budget year (default: the latest with costs); "
                                                            "the model is fitted on the year before.")] = None,
    envelope: Annotated[float | None, typer.Option(help="The total to share out, in pounds (default: the "
                                                        "year's actual spend on its population).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for budgets.json, the CSVs and budgets.html.")] = Path("budgets"),
) -> None:
    """Fair-share population budgets per practice, PCN and place from a capitation model, against actual
    spend, with the model's R squared beside England's person-based formula."""
    from openphm.finance.budgets import population_budgets
    from openphm.finance.report import write_budgets

    _, con = open_db(db)
    chosen = _year(con, year)
    try:
        with working(f"fitting the capitation model and setting {chosen}'s budgets ..."):
            result = population_budgets(con, chosen, envelope=envelope)
    except ValueError as exc:
        fail(str(exc))
    path = write_budgets(result, out)
    practice = result["shares"]["levels"]["practice"]
    Console().print(f"{chosen}: budgets for {len(practice['units'])} practices; the model explains "
                    f"{result['fit']['person']:.0%} of the variation between people and "
                    f"{practice['r2']:.0%} between practices; on hospital spend alone "
                    f"{result['fit_hospital']['person']:.0%} and {result['fit_hospital']['practice']:.0%} "
                    f"(England's formula: 12% and 77%). Report: {path}")
