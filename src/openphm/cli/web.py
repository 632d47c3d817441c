"""`openphm serve` (the web application) and `openphm users` (who may sign in to it)."""

from __future__ import annotations

import getpass
import os
import sys
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
    # A thread back from DuckDB or SQLite waits for the GIL up to the switch interval (5 ms by default)
    # while others run Python: a record page makes some fifteen such calls, so among many cheap page
    # views it waited more than it worked. At 1 ms, measured on 1.26 million people with 15 analysts and
    # 5 clinicians at once, the clinicians' 95th centile fell from 0.38 s to 0.27 s, the analysts' the same.
    sys.setswitchinterval(0.001)
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


tokens_app = typer.Typer(no_args_is_help=True, help="API tokens for scripts and patient access.")
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    expires: Annotated[str, typer.Option(help="Last day the token works (YYYY-MM-DD, at most a year ahead).")],
    user: Annotated[str | None, typer.Option(help="The web user the token speaks for (their role and scope).")] = None,
    patient: Annotated[str | None, typer.Option(help="A patient's NHS number: a patient-access token that reads "
                                                     "only their own record (FHIR).")] = None,
    db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb"),
) -> None:
    """Make a token; it is printed once and only its hash is kept."""
    import datetime as dt

    from openphm.engine.duckdb_store import Store
    from openphm.identity.nhs_number import is_valid
    from openphm.identity.pseudonym import as_uuid, person_ids
    from openphm.web.tokens import create_token
    from openphm.web.users import UserError

    try:
        day = dt.date.fromisoformat(expires)
    except ValueError:
        fail(f"--expires {expires[:20]!r} is not a date (YYYY-MM-DD)")
    person_id = None
    if patient is not None:
        number = patient.replace(" ", "")
        if not is_valid(number):
            fail("--patient is not a valid NHS number (10 digits with a right check digit)")
        store = Store(db)
        if not store.key_file.exists():
            fail(f"{db}: no pseudonymisation key beside it (run `openphm ingest` first)")
        person_id = as_uuid(person_ids(store.key(), [f"nhs:{number}"])[0])
    try:
        token_id, token = create_token(db, day, user, person_id)
    except UserError as exc:
        fail(str(exc))
    Console().print(f"Token {token_id} (keep it secret; it is not shown again):")
    print(token)


@tokens_app.command("revoke")
def tokens_revoke(token_id: str, db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb")) -> None:
    """Revoke a token by its id."""
    from openphm.web.tokens import revoke_token
    from openphm.web.users import UserError

    try:
        revoke_token(db, token_id)
    except UserError as exc:
        fail(str(exc))
    Console().print(f"Token {token_id} revoked.")


@tokens_app.command("list")
def tokens_list(db: Annotated[Path, DB_OPTION] = Path("openphm.duckdb")) -> None:
    """Every token: id, for whom, made, expires, revoked."""
    from openphm.web.tokens import list_tokens

    table = Table(title="API tokens")
    for col in ("id", "for", "created", "expires", "revoked"):
        table.add_column(col)
    for t in list_tokens(db):
        table.add_row(t["token_id"], t["for"], t["created_at"][:16], t["expires_at"][:10], (t["revoked_at"] or "")[:16])
    Console().print(table)
