"""The two DuckDB files of an OpenPHM installation and the secret key beside them.

- the analytic database (`--db`, default openphm.duckdb): pseudonymised records only;
- the identity store (`<db>-identity.duckdb`): NHS numbers, names, dates of birth and
  postcodes, for linkage and direct-care re-identification only;
- the pseudonymisation key (`<db>-secrets/pseudonym.key`), created on first use, readable by
  the owner only, never written to either database or to a log.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlglot import exp


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


def ident(name: str) -> str:
    """A SQL identifier, quoted by sqlglot for DuckDB."""
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def lit(value: str) -> str:
    """A SQL string literal, escaped by sqlglot."""
    return exp.Literal.string(value).sql("duckdb")


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
    def model_dir(self) -> Path:
        """Where the trained linkage model is saved, beside the database."""
        return self.db.with_name(self.db.stem + "-models")

    def key(self) -> bytes:
        """The secret key for keyed hashing, created (32 random bytes, mode 600) on first use."""
        path = self.key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path.parent, 0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
        return path.read_bytes()

    def connect(self, identity: bool = True) -> duckdb.DuckDBPyConnection:
        """A connection to the analytic database with the identity store attached as `idn`."""
        self.db.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.db), config=duckdb_config())
        if identity:
            con.execute(f"ATTACH {lit(str(self.identity_db))} AS idn")
        return con
