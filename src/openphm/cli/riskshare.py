"""`openphm riskshare`: what a risk-share agreement between partners exposes each of them to (simulate), and
what each pays or receives for an actual year (reconcile)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from openphm.cli.app import DB_OPTION, app, fail, open_db, working

riskshare_app = typer.Typer(help="Risk share between partners: simulate an agreement, reconcile a year.",
                            no_args_is_help=True)
app.add_typer(riskshare_app, name="riskshare")

AGREEMENT_ARGUMENT = typer.Argument(help="The agreement (YAML; see src/openphm/finance/data/example_agreement.yaml).")


def _agreement(path: Path):
    from openphm.finance.agreement import AgreementError, load_agreement

    try:
        return load_agreement(path)
    except AgreementError as exc:
        fail(str(exc))


def default_base_year(con) -> str | None:
    """The latest financial year with costs whose twelve months the record covers (a year still under way
    is no base for next year); the latest with costs if none is complete."""
    from openphm.finance.spend import costed_years, year_start
    from openphm.record.coverage import covered_months

    years = costed_years(con)
    months = set(covered_months(con))
    complete = [y for y in years if dt.date(year_start(y).year + 1, 3, 1) in months]
    return (complete or years or [None])[-1]


def _written(writer, data, out: Path) -> Path:
    """`writer(data, out)`'s page, or one line naming the folder that could not be written."""
    try:
        return writer(data, out)
    except OSError as exc:
        fail(f"{out}: cannot write ({exc.strerror})")
        raise  # not reached: fail exits


@riskshare_app.command("simulate")
def simulate_command(
    agreement: Annotated[Path, AGREEMENT_ARGUMENT],
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    runs: Annotated[int, typer.Option(help="Simulated years.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the random draws (the same seed, the same result).")] = 0,
    scenario: Annotated[Path | None, typer.Option(help="A scenario (YAML; see "
                                                       "src/openphm/finance/data/example_scenario.yaml).")] = None,
    year: Annotated[str | None, typer.Option(help="The base year, e.g. 2024-25 (default: the latest complete "
                                                  "year with costs).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for result.json and riskshare.html.")] = Path("riskshare"),
    resolution: Annotated[float, typer.Option(help="Round unit costs and social care costs to this many pounds "
                                                   "before grouping people (faster, no longer exact; default 0: "
                                                   "exact).")] = 0.0,
    system_shocks: Annotated[bool, typer.Option(help="Also move each setting's spend by a system-wide change as "
                                                     "large as the record's own years varied (needs three "
                                                     "costed years).")] = True,
) -> None:
    """Simulate next year's spend from the base year's population (a bootstrap of people, Poisson variation
    of their activity) and settle each simulated year under the agreement: each partner's distribution of
    gain or loss, its chance of overspending, and the 5th, 50th and 95th percentiles."""
    from rich.progress import Progress, TimeElapsedColumn

    from openphm.finance.agreement import AgreementError
    from openphm.finance.riskshare_report import money, next_year, write_simulation
    from openphm.finance.shocks import shock_sd
    from openphm.finance.simulate import ScenarioError, load_base_year, load_scenario, simulate
    from openphm.finance.spend import costed_years

    terms = _agreement(agreement)
    if runs < 1:
        fail(f"--runs must be at least 1 (got {runs})")
    if resolution < 0:
        fail(f"--resolution must be 0 or more pounds (got {resolution})")
    chosen = None
    if scenario is not None:
        try:
            chosen = load_scenario(scenario)
        except ScenarioError as exc:
            fail(str(exc))
    _, con = open_db(db)
    base_year = year or default_base_year(con)
    if base_year is None:
        fail(f"{db}: the record has no costs: run `openphm build --db {db}` (it costs every activity)")
    if base_year not in costed_years(con):
        fail(f"--year {base_year}: the record has no costed activity that year "
             f"(costed years: {', '.join(costed_years(con)) or 'none'})")
    with working(f"reading the people and activity of {base_year} ..."):
        base = load_base_year(con, base_year)
        shocks = shock_sd(con, [y for y in costed_years(con) if y <= base_year]) if system_shocks else {}
    with Progress(*Progress.get_default_columns(), TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(f"simulating {runs:,} years", total=runs)
        try:
            result = simulate(terms, base, runs=runs, seed=seed, scenario=chosen, resolution=resolution,
                              progress=lambda done: bar.advance(task, done), shocks=shocks)
        except (AgreementError, ValueError) as exc:
            fail(str(exc))
    page = _written(write_simulation, result, out)
    console = Console()
    console.print(f"{result.runs:,} simulated years from {result.people:,} people of {base_year} "
                  f"({result.profiles:,} distinct profiles).")
    if next_year(base_year) != terms.year:
        console.print(f"Note: the agreement is for {terms.year}; the simulated year is {next_year(base_year)}.")
    for pid, s in result.partner_statistics().items():
        net = s["net"]
        console.print(f"  {pid:<12} P(overspend) {s['probability_of_overspend']:>4.0%}  net 5th/50th/95th "
                      f"{money(net['p5'])} / {money(net['p50'])} / {money(net['p95'])}")
    console.print(f"Open {page.resolve()} (result.json beside it)")


@riskshare_app.command("reconcile")
def reconcile_command(
    agreement: Annotated[Path, AGREEMENT_ARGUMENT],
    year: Annotated[str, typer.Option(help="The financial year to settle, e.g. 2025-26.")],
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    out: Annotated[Path, typer.Option(help="Folder for reconcile.json and reconcile.html.")] = Path("riskshare"),
) -> None:
    """What each partner pays or receives for an actual year under the agreement, line by line."""
    from openphm.finance.agreement import AgreementError
    from openphm.finance.riskshare_report import money, reconcile, write_reconcile
    from openphm.finance.spend import year_start

    terms = _agreement(agreement)
    try:
        year_start(year)
    except ValueError as exc:
        fail(f"--year: {exc}")
    _, con = open_db(db)
    try:
        with working(f"settling {year} ..."):
            data = reconcile(con, terms, year)
    except AgreementError as exc:
        fail(str(exc))
    page = _written(write_reconcile, data, out)
    console = Console()
    for p in data["partners"]:
        console.print(f"  {p['id']:<12} budget {money(p['budget'])}  spend {money(p['spend'])}  net {money(p['net'])}")
    console.print(f"Open {page.resolve()} (reconcile.json beside it)")
