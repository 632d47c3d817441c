"""The board report: one self-contained HTML page of the key measures for board papers.

For each indicator, the ICS's latest financial year beside the year before, whether it changed beyond
chance, the Making Data Count variation icon of its monthly series, and the practices whose latest
year is special-cause variation on a funnel plot (outside the 99.8% limits after allowing for
overdispersion). Everything comes from `openphm.measures.published.published_results`, so the page
carries no count below 8 and no exact count, and may go to a public board meeting.

"Changed beyond chance": the two years' 95% intervals do not overlap. This is conservative (two
intervals can overlap when the difference is significant at 5%), says so on the page, and works the
same for crude, directly and indirectly standardised indicators.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path

import polars as pl

from openphm.engine.connection import Connection
from openphm.measures.definitions import Measure, load_measures
from openphm.measures.published import published_results
from openphm.measures.report import funnel_frame
from openphm.reports.charts import spc_svg, variation_icon_svg
from openphm.reports.html import page
from openphm.variation import variation_icon, xmr

MIN_SPC_POINTS = 12


def _change(latest: dict, previous: dict | None, m: Measure) -> str:
    """In words: up, down or no change beyond chance, with better or worse where the indicator has a
    preferred direction."""
    if previous is None:
        return "no earlier year to compare"
    if None in (latest["value"], previous["value"], latest["lower95"], previous["upper95"]):
        return "not compared (a year is suppressed)"
    if latest["lower95"] > previous["upper95"]:
        direction = "up"
    elif latest["upper95"] < previous["lower95"]:
        direction = "down"
    else:
        return "no change beyond chance"
    if m.polarity == "no_judgement" or m.polarity not in ("higher_is_better", "lower_is_better"):
        return direction
    better = (direction == "up") == (m.polarity == "higher_is_better")
    return f"{direction} ({'better' if better else 'worse'})"


def _special_practices(m: Measure, practices: pl.DataFrame) -> tuple[list[str], list[str]]:
    """Practices above and below the 99.8% funnel limits (crude and indirectly standardised indicators)."""
    shown = practices.filter(pl.col("numerator").is_not_null() & pl.col("denominator").is_not_null())
    drawn = funnel_frame(m, shown.select("unit", pl.col("numerator").cast(pl.Float64),
                                         pl.col("denominator").cast(pl.Float64)).to_pandas())
    if drawn is None:
        return [], []
    f = drawn[0]
    return f.loc[f["flag"] == "high_998", "unit"].tolist(), f.loc[f["flag"] == "low_998", "unit"].tolist()


def _fmt(v: float | None) -> str:
    return "suppressed" if v is None else f"{v:,.1f}"


def _measure_section(m: Measure, results: pl.DataFrame) -> tuple[list[str], str] | None:
    rows = results.filter(pl.col("measure_id") == m.id)
    years = rows.filter((pl.col("level") == "ics") & (pl.col("period_type") == "financial_year"))
    if years.height == 0:
        return None
    years = published_results(years, m).sort("period_start").rows(named=True)
    latest, previous = years[-1], (years[-2] if len(years) > 1 else None)
    months = rows.filter((pl.col("level") == "ics") & (pl.col("period_type") == "month"))
    icon, chart = "", ""
    if months.height:
        months = published_results(months, m).filter(pl.col("value").is_not_null()).sort("period_start")
        if months.height >= MIN_SPC_POINTS:
            spc = xmr(months["value"].to_numpy())
            icon = variation_icon(spc, m.polarity)
            if icon.startswith("special"):
                chart = spc_svg(spc, months["period"].to_list(), f"{m.title}: the ICS by month ({icon})", m.unit)
    practices = rows.filter((pl.col("level") == "practice") & (pl.col("period") == latest["period"])
                            & (pl.col("period_type") == "financial_year"))
    high, low = _special_practices(m, published_results(practices, m)) if practices.height else ([], [])
    interval = ("" if latest["lower95"] is None else f" ({latest['lower95']:,.1f} to {latest['upper95']:,.1f})")
    row = [f"<a href='#{escape(m.id)}'>{escape(m.title)}</a>", escape(latest["period"]),
           f"{_fmt(latest['value'])}{interval}", _fmt(previous["value"]) if previous else "",
           escape(_change(latest, previous, m)),
           (variation_icon_svg(icon) + " " + escape(icon)) if icon else "fewer than 12 months"]
    notes = []
    if high or low:
        notes.append(f"<p>Practices with special-cause variation in {escape(latest['period'])}: "
                     f"{len(high)} above ({escape(', '.join(high)) or 'none'}) and {len(low)} below "
                     f"({escape(', '.join(low)) or 'none'}) the 99.8% limits.</p>")
    if chart or notes:
        detail = (f"<h3 id='{escape(m.id)}'>{escape(m.title)}</h3><p>{escape(m.why_it_matters)}</p>"
                  + chart + "".join(notes))
    else:
        detail = ""
    return row, detail


def write_board_report(con: Connection, out: Path) -> Path:
    """Write the board report to `out` (an .html file); returns its path."""
    results = con.execute("SELECT measure_id, level, unit, period_type, period, period_start, numerator, denominator, "
                          "value, lower95, upper95, lower998, upper998 FROM measures.measure_result").pl()
    if results.height == 0:
        raise ValueError("there are no indicator results: run `openphm measures run` first")
    table_rows, details = [], []
    for m in load_measures().values():
        section = _measure_section(m, results)
        if section is None:
            continue
        table_rows.append(section[0])
        if section[1]:
            details.append(section[1])
    head = "".join(f"<th>{h}</th>" for h in ("Indicator", "Year", "ICS value (95% interval)", "Year before",
                                             "Change", "Latest month"))
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in table_rows)
    today = dt.date.today().isoformat()
    html = (f"<p>Key measures of the integrated care system, from the linked person record (people who opted "
            f"out of secondary use excluded), made {today}. Counts of 1 to 7 are suppressed and all others "
            "rounded to the nearest 5, and every value is computed from the rounded counts, so this report may "
            "be published.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            "<p class='note'>A change is shown only where the two years' 95% intervals do not overlap (a "
            "conservative test). The icon is NHS England's Making Data Count variation icon for the latest "
            "month of the ICS's monthly series (XmR chart: a point outside the limits, a run of 7, a trend "
            "of 7, or 2 of 3 beyond two sigma).</p>"
            + ("<h2>Where variation is special cause</h2>" + "".join(details) if details else
               "<h2>Where variation is special cause</h2><p>Nowhere this period.</p>"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page("OpenPHM board report", html), encoding="utf-8")
    return out
