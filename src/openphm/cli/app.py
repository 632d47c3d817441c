"""The `openphm` Typer app and what every command group shares: the console, `fail` and the
database option of the record commands. Imports no command module, so every group imports it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="OpenPHM: population health management for an ICS.")
console = Console(stderr=True)

# `--db` of the record and indicator commands (the risk, lists and audit commands say it otherwise)
DB_OPTION = typer.Option("--db", help="The analytic database (the identity store and key sit beside it).")


def fail(message: str) -> None:
    """One line on stderr and exit status 2: no traceback for a user's mistake."""
    print(f"openphm: error: {message}", file=sys.stderr)
    raise typer.Exit(2)


@contextlib.contextmanager
def working(message: str) -> Iterator[None]:
    """A spinner with `message` while long work runs, in a terminal; elsewhere (a log, a pipe, CI)
    nothing, as rich would show there, but also no refresh thread: a thread waking while DuckDB
    scans Python-held Arrow data is the likeliest cause of the one hang seen (a link in CI)."""
    if console.is_terminal:
        with console.status(message):
            yield
    else:
        yield
