"""The two DuckDB files of an OpenPHM installation and the secret key beside them.

- the analytic database (`--db`, default openphm.duckdb): pseudonymised records only;
- the identity store (`<db>-identity.duckdb`): NHS numbers, names, dates of birth and
  postcodes, for linkage and direct-care re-identification only;
- the pseudonymisation key (`<db>-secrets/pseudonym.key`), created on first use, readable by
  the owner only, never written to either database or to a log.

All of them are the owner's only: files 600 and the secrets and models folders 700, set
explicitly whatever the umask and tightened again on every connection. DuckDB creates its
write-ahead logs (`.wal`) and spill folders itself, again after every checkpoint, and takes no
mode for them, so a process that connects to a store also adds 077 to its umask.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlglot import exp

from openphm.engine.duckdb_connection import DuckDBConnection
from openphm.engine.files import make_private, owner_only_umask, private_dir


def duckdb_config(share: float = 0.35, in_memory: bool = False) -> dict[str, str]:
    """DuckDB settings: a memory limit (OPENPHM_MEMORY_LIMIT, default a share of this machine's
    memory) beyond which DuckDB spills to disk instead of growing, so that a build keeps to its
    budget on a shared machine. An in-memory database spills to the system's temporary folder
    (DuckDB's default would be `.tmp` in the working directory)."""
    limit = os.environ.get("OPENPHM_MEMORY_LIMIT")
    if not limit:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        limit = f"{max(1, int(total * share / 1024**3))}GB"
    config = {"memory_limit": limit, "preserve_insertion_order": "true"}
    if in_memory:
        config["temp_directory"] = str(Path(tempfile.gettempdir()) / f"openphm-duckdb-{os.getpid()}")
    return config


def quiet_unless_watched(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB's own progress bar (queries over two seconds) only where someone watches a terminal,
    not in logs and pipes."""
    con.execute(f"SET enable_progress_bar = {str(sys.stdout.isatty()).lower()}")


def ident(name: str) -> str:
    """A SQL identifier, quoted by sqlglot for DuckDB."""
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def lit(value: str) -> str:
    """A SQL string literal, escaped by sqlglot."""
    return exp.Literal.string(value).sql("duckdb")


class StoreInUse(Exception):  # noqa: N818
    """Another process holds the database (DuckDB allows one writing process per file)."""


def _in_use(path: Path, exc: duckdb.Error) -> StoreInUse:
    pid = re.search(r"\(PID (\d+)\)", str(exc))
    holder = f" (process {pid.group(1)})" if pid else ""
    return StoreInUse(f"{path} is in use by another OpenPHM process{holder}: wait for it to finish, "
                      "or stop it, then run this again")


@dataclass(frozen=True)
class Store:
    """Paths of one installation."""

    db: Path

    @property
    def identity_db(self) -> Path:
        """The identity store."""
        return self.db.with_name(self.db.stem + "-identity.duckdb")

    @property
    def key_file(self) -> Path:
        """The pseudonymisation key."""
        return self.db.with_name(self.db.stem + "-secrets") / "pseudonym.key"

    @property
    def spark_dir(self) -> Path:
        """The Spark store (`--engine spark`): its warehouse and, in local mode, its catalogue."""
        return self.db.with_name(self.db.stem + "-spark")

    @property
    def model_dir(self) -> Path:
        """Where the trained linkage model is saved, beside the database."""
        return self.db.with_name(self.db.stem + "-models")

    def key(self) -> bytes:
        """The secret key for keyed hashing, created (32 random bytes, mode 600) on first use."""
        path = self.key_file
        if not path.exists():
            private_dir(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
        return path.read_bytes()

    def private_paths(self) -> list[Path]:
        """Every file and folder of the store that must be the owner's only (whether or not it exists)."""
        dbs = [self.db, self.identity_db]
        return [*dbs, *(d.with_name(d.name + suffix) for d in dbs for suffix in (".wal", ".tmp")),
                self.key_file.parent, self.key_file,
                self.model_dir, *(self.model_dir.glob("*") if self.model_dir.is_dir() else [])]

    def protect(self) -> None:
        """Make the store's existing files 600 and its folders 700 (see the module's note)."""
        make_private(*self.private_paths())

    def connect(self, identity: bool = True) -> DuckDBConnection:
        """A connection to the analytic database with the identity store attached as `idn`."""
        self.db.parent.mkdir(parents=True, exist_ok=True)
        owner_only_umask()
        try:
            con = duckdb.connect(str(self.db), config=duckdb_config())
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise _in_use(self.db, exc) from None
            raise
        quiet_unless_watched(con)
        if identity:
            try:
                con.execute(f"ATTACH {lit(str(self.identity_db))} AS idn")
            except duckdb.IOException as exc:
                con.close()
                if "lock" in str(exc).lower():
                    raise _in_use(self.identity_db, exc) from None
                raise
            except duckdb.BinderException as exc:
                # a second connection in the same process shares the database instance, and with
                # it the identity store attached by the first
                if "already attached" not in str(exc):
                    raise
        self.protect()
        return DuckDBConnection(con)
