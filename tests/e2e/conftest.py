"""A small demo installation with a web user of each role, shared by the web tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class WebInstallation:
    """The demo's database, and two practices with lists: the clinician's own and another."""

    db: Path
    practices: tuple[str, str]


@pytest.fixture(scope="session")
def web_installation(tmp_path_factory) -> WebInstallation:
    """`openphm demo --people 3000`, then users ada (admin), ann and lou (analysts), cat (clinician at
    the practice with the most people on lists) and bob (board), all with PASSWORD."""
    import duckdb

    from openphm.web.users import add_user

    out = tmp_path_factory.mktemp("web") / "demo"
    done = subprocess.run([sys.executable, "-c", "from openphm.cli import main; main()", "demo", "--people", "3000",
                           "--out", str(out)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OPENPHM_WATCHDOG_SECONDS": "840"})
    assert done.returncode == 0, done.stderr[-3000:]
    db = out / "openphm.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        busiest = [r[0] for r in con.execute("SELECT practice_code FROM lists.member GROUP BY 1 "
                                             "ORDER BY count(*) DESC, 1 LIMIT 2").fetchall()]
    for name, role, scope in (("ada", "admin", ()), ("ann", "analyst", ()), ("cat", "clinician", (busiest[0],)),
                              ("bob", "board", ()), ("lou", "analyst", ())):
        add_user(db, name, role, PASSWORD, scope)
    return WebInstallation(db, (busiest[0], busiest[1]))
