"""`openphm report board` on the demo installation: every indicator with ICS results is in it, each
value is the one the disclosure rule gives (recomputed here from the exact counts), and each change is
called from the two years' intervals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html import escape

import duckdb
import pytest

from openphm.governance.disclosure import protect_count
from openphm.measures.definitions import load_measures


@pytest.fixture(scope="module")
def board(web_installation, tmp_path_factory):
    out = tmp_path_factory.mktemp("board") / "board.html"
    done = subprocess.run([sys.executable, "-c", "from openphm.cli import main; main()", "report", "board", "--db",
                           str(web_installation.db), "--out", str(out)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OPENPHM_WATCHDOG_SECONDS": "540"})
    assert done.returncode == 0, done.stderr[-2000:]
    with duckdb.connect(str(web_installation.db), read_only=True) as con:
        exact = con.execute("SELECT measure_id, period, period_start, numerator, denominator, value, lower95, upper95 "
                            "FROM measures.measure_result WHERE level = 'ics' AND period_type = 'financial_year' "
                            "ORDER BY measure_id, period_start").fetchall()
    return out.read_text(encoding="utf-8"), exact


def _row(html: str, title: str) -> list[str]:
    row = html.split(f">{escape(title)}</a>")[1].split("</tr>")[0]
    return [re.sub(r"<[^>]+>", "", c).strip() for c in row.split("<td>")[1:]]


def test_every_crude_indicator_shows_its_value_from_the_protected_counts(board):
    html, exact = board
    measures = load_measures()
    latest = {}
    for mid, period, _, num, den, value, lower, upper in exact:
        latest.setdefault(mid, []).append((period, num, den, value, lower, upper))
    checked = 0
    for mid, years in latest.items():
        m = measures[mid]
        cells = _row(html, m.title)
        period, num, den = years[-1][:3]
        assert cells[0] == period
        n, d = protect_count(num), protect_count(round(den))
        if m.standardisation in ("none", "crude"):
            if n is None or not d:
                assert cells[1] == "suppressed"
            else:
                assert cells[1].startswith(f"{m.multiplier * n / d:,.1f}"), (mid, cells)
                checked += 1
    assert checked >= 15


def test_a_change_is_called_only_where_the_intervals_part(board):
    html, exact = board
    by_measure = {}
    for row in exact:
        by_measure.setdefault(row[0], []).append(row)
    measures = load_measures()
    for mid, years in by_measure.items():
        cells = _row(html, measures[mid].title)
        ranges = re.findall(r"\(([-0-9.,]+) to ([-0-9.,]+)\)", cells[1])
        if len(years) < 2 or not ranges:
            continue
        lo, hi = (float(x.replace(",", "")) for x in ranges[0])
        before = float(cells[2].replace(",", "")) if cells[2] not in ("", "suppressed") else None
        if before is not None and lo <= before <= hi:  # the intervals overlap at least there
            assert cells[3] in ("no change beyond chance", "not compared (a year is suppressed)"), (mid, cells)
        now = float(cells[1].split(" ")[0].replace(",", ""))
        if cells[3].startswith("up"):
            assert before is not None and now > before and lo > before, (mid, cells)
        if cells[3].startswith("down"):
            assert before is not None and now < before and hi < before, (mid, cells)


def test_the_board_report_is_self_contained_and_has_no_small_count(board):
    html, _ = board
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    assert "Where variation is special cause" in html
