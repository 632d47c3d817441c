"""`openphm demo` (what `make demo` runs), small: every stage runs and the opt-out is applied."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import duckdb


def test_demo_applies_the_synthetic_opt_out_and_says_where_everything_is(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-c", "from openphm.cli import main; main()", "demo", "--people", "3000",
                           "--out", str(out)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "COLUMNS": "400", "OPENPHM_WATCHDOG_SECONDS": "840"})
    assert done.returncode == 0, done.stderr[-3000:]
    listed = (out / "synthetic-ics" / "optout" / "national_data_opt_out.txt").read_text().split()
    said = re.search(r"National Data Opt-out: ([\d,]+) NHS numbers on the list; ([\d,]+) people left out of planning",
                     done.stdout)
    assert said, done.stdout[-3000:]
    assert int(said.group(1).replace(",", "")) == len(set(listed)) > 0
    con = duckdb.connect(str(out / "openphm.duckdb"), read_only=True)
    everyone, planning, opted_out = con.execute(
        "SELECT (SELECT count(*) FROM record.person), (SELECT count(*) FROM planning.person), "
        "(SELECT count(*) FROM record.opted_out)").fetchone()
    assert everyone - planning == opted_out == int(said.group(2).replace(",", "")) > 0
    assert re.search(r"Spend in \d{4}-\d{2}: open .*costs\.html - £[\d,]+ a person", done.stdout), done.stdout[-3000:]
    for report in ("indicators.html", "linkage.json", "risk/report.html", "costs/costs.html", "budgets/budgets.html"):
        assert (out / "reports" / report).is_file()
