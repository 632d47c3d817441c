"""`openphm report board`: reports for people who read papers, not pages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openphm.cli.app import DB_OPTION, app, console, fail, open_db
from openphm.engine.connection import EngineError

report_app = typer.Typer(no_args_is_help=True, help="Reports for board papers.")
app.add_typer(report_app, name="report")


@report_app.command("board")
def board(
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("board.html"),
) -> None:
    """A self-contained board report: key measures, what changed, where variation is special cause;
    disclosure-controlled, so it may be published."""
    from openphm.reports.board import write_board_report

    _, con = open_db(db)
    try:
        path = write_board_report(con, out)
    except (ValueError, *EngineError) as exc:
        fail(f"{db}: {exc}")
    finally:
        con.close()
    console.print(f"Board report: {path}")
