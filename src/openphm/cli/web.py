"""`openphm serve` (the web application) and `openphm users` (who may sign in to it)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from openphm.cli.app import DB_OPTION, app, fail

users_app = typer.Typer(help="Web users: add, remove, list, set a role.", no_args_is_help=True)
app.add_typer(users_app, name="users")

SCOPE_OPTION = typer.Option("--scope", help="Clinicians: a practice (A81001) or PCN (U12345) code they give direct "
                                            "care in; repeat for more.")


@app.command()
def serve(
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default; put a TLS proxy in "
                                           "front of anything else).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    reports: Annotated[Path | None, typer.Option(help="Folder of the reports the pages show (risk/report.json, "
                                                      "costs/, budgets/, riskshare/, evaluation/); default: "
                                                      "`reports` beside the database.")] = None,
) -> None:
    """Run the web application over the analytic database."""
    import uvicorn

    from openphm.web.app import create_app

    if not db.exists():
        fail(f"{db}: no database here (run `openphm demo` or `openphm ingest` and `openphm build` first)")
    uvicorn.run(create_app(db, reports), host=host, port=port, log_level="warning", access_log=False)


def _password(env: str | None) -> str:
    if env:
        value = os.environ.get(env)
        if not value:
            fail(f"the environment variable {env} is empty")
        return value
    first = getpass.getpass("Password (12 characters or more): ")
    if getpass.getpass("Again: ") != first:
        fail("the passwords differ")
    return first


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="The user name (lower case).")],
    role: Annotated[str, typer.Option(help="admin, analyst, clinician or board.")],
    scope: Annotated[list[str] | None, SCOPE_OPTION] = None,
    password_env: Annotated[str | None, typer.Option(help="Read the password from this environment variable "
                                                          "(for scripts); else it is asked for.")] = None,
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
) -> None:
    """Add a user who may sign in to the web application."""
    from openphm.web.users import UserError, add_user

    try:
        user = add_user(db, username, role, _password(password_env), tuple(scope or ()))
    except UserError as exc:
        fail(str(exc))
    Console().print(f"Added {user.username} ({user.role}{': ' + ', '.join(user.scope) if user.scope else ''}).")


@users_app.command("remove")
def users_remove(username: str, db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb")) -> None:
    """Remove a user (their audit entries stay)."""
    from openphm.web.users import UserError, remove_user

    try:
        remove_user(db, username)
    except UserError as exc:
        fail(str(exc))
    Console().print(f"Removed {username}.")


@users_app.command("set-role")
def users_set_role(
    username: str,
    role: Annotated[str, typer.Option(help="admin, analyst, clinician or board.")],
    scope: Annotated[list[str] | None, SCOPE_OPTION] = None,
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
) -> None:
    """Change a user's role (and a clinician's scope)."""
    from openphm.web.users import UserError, set_role

    try:
        user = set_role(db, username, role, tuple(scope or ()))
    except UserError as exc:
        fail(str(exc))
    Console().print(f"{user.username} is now {user.role}{': ' + ', '.join(user.scope) if user.scope else ''}.")


@users_app.command("list")
def users_list(db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb")) -> None:
    """Every user, role, scope and whether they are locked out."""
    from openphm.web.users import list_users

    table = Table(title="Web users")
    for col in ("user", "role", "scope", "locked out"):
        table.add_column(col)
    for user, locked in list_users(db):
        table.add_row(user.username, user.role, ", ".join(user.scope), "yes" if locked else "")
    Console().print(table)
