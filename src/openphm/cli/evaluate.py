"""`openphm evaluate`: did a new care model change outcomes, against a counterfactual."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from openphm.cli.app import DB_OPTION, app, fail, open_db, working
from openphm.engine.connection import EngineError


@app.command("evaluate")
def evaluate(
    spec_file: Annotated[Path, typer.Argument(help="The evaluation spec (YAML): intervention, outcomes, "
                                                   "population, period and methods.")],
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    out: Annotated[Path, typer.Option(help="Folder for result.json and report.html.")] = Path("evaluation"),
) -> None:
    """Estimate the care model's effect by difference-in-differences for staggered adoption, synthetic
    control and synthetic difference-in-differences, beside the naive before-and-after; write
    result.json and report.html, and say which estimate to trust and why."""
    from openphm.evaluate.panel import build_panel
    from openphm.evaluate.report import in_words, write_outputs
    from openphm.evaluate.run import evaluate_panel, evaluate_people
    from openphm.evaluate.spec import SpecError, load_spec

    try:
        spec = load_spec(spec_file)
    except SpecError as exc:
        fail(str(exc))
    _, con = open_db(db)
    if not con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'planning' "
                       "AND view_name = 'person'").fetchone()[0]:
        fail(f"{db} has no person record yet: run `openphm build --db {db}` first")
    try:
        if spec.list_id:  # an intervention on people: no panel
            if not con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'planning' "
                               "AND view_name = 'list_member'").fetchone()[0]:
                fail(f"{db} has no case-finding lists yet: run `openphm lists run --db {db}` first")
            if not con.execute("SELECT count(*) FROM planning.list_member WHERE list_id = ?",
                               [spec.list_id]).fetchone()[0]:
                fail(f"{spec_file}: intervention/list: no list {spec.list_id!r} in {db} (`openphm lists run`)")
            with working("matching people"):
                result = evaluate_people(con, spec)
            dropped, n_units = [], len(spec.starts) + 1
        else:
            with working("building the panel"):
                panel = build_panel(con, spec)
            with working("estimating"):
                result = evaluate_panel(panel, spec, con=con)
            dropped, n_units = panel.dropped_units, panel.frame["unit"].n_unique()
        _, html_path = write_outputs(out, spec, result, dropped, n_units)
    except SpecError as exc:
        fail(f"{spec_file}: {exc}")
    except (ValueError, *EngineError) as exc:
        fail(str(exc).splitlines()[0])
    finally:
        con.close()
    console = Console()
    for outcome, (method, why) in result["recommended"].items():
        chosen = next((e for e in result["estimates"] if e.outcome == outcome and e.method == method), None)
        console.print(in_words(chosen, outcome) if chosen else f"{outcome}: {why}")
    for problem in result["problems"]:
        console.print(f"[yellow]not run:[/] {problem}")
    console.print(f"Report: open {html_path.resolve()} (result.json beside it)")
