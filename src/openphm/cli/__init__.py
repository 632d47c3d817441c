"""The `openphm` command: one module per command group over the shared `app` (`openphm.cli.app`).

Every command group is registered here, by importing its module; the order of the imports is the
order of `openphm --help`.
"""

from __future__ import annotations

import faulthandler
import os
import sys

# the order of registration is the order of the help
# isort: off
from openphm.cli import synthetic  # generate, calibrate, demo
from openphm.cli import analysis  # variation, codelists, segments
from openphm.cli import care  # risk, lists, audit
from openphm.cli import record  # ingest, files, build, link, link-report, link-files, optout
from openphm.cli import measures  # measures
from openphm.cli import evaluate  # evaluate
from openphm.cli import finance  # costs, budgets
from openphm.cli import riskshare  # riskshare
from openphm.cli import web  # serve, users
from openphm.cli import reports  # report
# isort: on
from openphm.cli.app import app

__all__ = ["analysis", "app", "care", "evaluate", "finance", "main", "measures", "record", "reports", "riskshare",
           "synthetic", "web"]


def main() -> None:
    """Entry point for the console script."""
    from openphm.engine.duckdb_store import StoreInUse

    watchdog = os.environ.get("OPENPHM_WATCHDOG_SECONDS")
    if watchdog:
        # For unattended runs (the test suite, a scheduler): a command still running after this many
        # seconds prints every thread's Python stack to stderr and exits with status 1, so that a
        # hang is reported with where it hung instead of holding a job until its outer time limit.
        faulthandler.dump_traceback_later(float(watchdog), exit=True)
    try:
        app()
    except StoreInUse as exc:  # a second process on the same database: one line, not a traceback
        print(f"openphm: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
