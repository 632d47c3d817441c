"""The `openphm` Typer app and what every command group shares: the console, `fail` and the
database option of the record commands. Imports no command module, so every group imports it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="OpenPHM: population health management for an ICS.")
console = Console(stderr=True)

# `--db` of the record and indicator commands (the risk, lists and audit commands say it otherwise)
DB_OPTION = typer.Option("--db", help="The analytic database (the identity store and key sit beside it).")


# `--engine` and `--spark-master` of the commands that run the platform's SQL
ENGINE_OPTION = typer.Option("--engine", help="Where the SQL runs: duckdb (embedded, the default) or spark "
                                              "(pip install openphm[spark], with Java 17).")
SPARK_MASTER_OPTION = typer.Option("--spark-master", help="With --engine spark: the master URL (default "
                                                          "local[2], this machine; spark://HOST:7077, yarn, ...).")


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


def open_db(db: Path, engine: str = "duckdb", spark_master: str = "local[2]", must_exist: bool = True):
    """An installation's Store and a connection on `engine`; one line on stderr, not a traceback, when the
    engine is unknown or not installed, or (`must_exist`) when nothing has been loaded there yet."""
    from openphm.engine import ENGINES
    from openphm.engine.duckdb_store import Store
    from openphm.ingest.loader import open_store

    if engine not in ENGINES:
        fail(f"--engine must be one of {', '.join(ENGINES)} (got {engine!r})")
    where = db if engine == "duckdb" else Store(db).spark_dir
    if must_exist and not where.exists():
        fail(f"{where} does not exist: run `openphm ingest FOLDER --db {db}"
             f"{'' if engine == 'duckdb' else ' --engine spark'}` first")
    try:
        return open_store(db, engine, spark_master)
    except ImportError as exc:
        fail(f"--engine spark needs pyspark ({exc.name} is not installed): pip install 'openphm[spark]', "
             "with Java 17 (Debian: apt-get install openjdk-17-jre-headless)")
