"""An HTML report of every indicator: for the latest financial year a funnel plot across practices,
a league table of places, inequality by deprivation and the opportunity at the best quartile; for
indicators with months, an SPC chart of the ICS's monthly series with its Making Data Count
icons. Self-contained: no scripts or fonts fetched."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from openphm.engine.connection import Connection
from openphm.identity.optout import stale_outputs
from openphm.measures.definitions import Measure, load_measures
from openphm.reports.charts import funnel_svg, league_svg, spc_svg
from openphm.reports.html import page, paired_bars, table
from openphm.variation import funnel, variation_icon, xmr

FUNNEL_KIND = {"person_proportion": "proportion", "event_proportion": "proportion"}


def funnel_frame(m: Measure, units: pd.DataFrame) -> tuple[pd.DataFrame, float] | None:
    """A random-effects funnel of units (columns unit, numerator, denominator): the funnel's frame
    (value, limits and flag times the indicator's multiplier, with each unit and denominator) and the
    target; None for fewer than 3 units with a denominator, or a directly standardised indicator."""
    kind = "ratio" if m.standardisation == "isr_ics" else FUNNEL_KIND.get(m.kind, "rate")
    units = units[units["denominator"] > 0]
    if len(units) < 3 or m.standardisation == "dsr_esp2013":
        return None
    num = units["numerator"].clip(upper=units["denominator"]) if kind == "proportion" else units["numerator"]
    f = funnel(num, units["denominator"], kind=kind, overdispersion=True)
    f["denominator"] = units["denominator"].to_numpy()
    f["unit"] = units["unit"].to_numpy()
    for col in ("value", "lower95", "upper95", "lower998", "upper998"):
        f[col] = f[col] * m.multiplier
    return f, float(num.sum() / units["denominator"].sum()) * m.multiplier


def funnel_chart(m: Measure, units: pd.DataFrame, title: str) -> tuple[str, int, int] | None:
    """A random-effects funnel plot (SVG) of units (columns unit, numerator, denominator) with the
    number outside the 99.8% limits and the number drawn; None where `funnel_frame` gives none."""
    drawn = funnel_frame(m, units)
    if drawn is None:
        return None
    f, target = drawn
    flagged = int(f["flag"].isin(["high_998", "low_998"]).sum())
    return funnel_svg(f, f["unit"].tolist(), target, title, m.unit), flagged, len(f)


def _funnel_section(m: Measure, practices: pd.DataFrame, period: str) -> str:
    chart = funnel_chart(m, practices, f"Practices, {period} (random-effects funnel)")
    if chart is None:
        return ""
    svg, flagged, drawn = chart
    return (svg + f"<p class='note'>{flagged} of {drawn} practices outside the 99.8% limits after allowing for "
                  "overdispersion (Spiegelhalter 2005).</p>")


def _spc_section(m: Measure, results: pd.DataFrame) -> str:
    months = results[(results["measure_id"] == m.id) & (results["level"] == "ics")
                     & (results["period_type"] == "month")].sort_values("period_start")
    months = months[months["value"].notna()]
    if len(months) < 12:
        return ""
    chart = xmr(months["value"].to_numpy())
    icon = variation_icon(chart, m.polarity)
    return (spc_svg(chart, months["period"].tolist(), f"ICS by month (XmR chart): {icon}", m.unit)
            + "<p class='note'>Monthly rates are annualised (person-years in the month). Orange points are "
              "special causes: outside the limits, a shift of 7, a trend of 7, or 2 of 3 beyond 2 sigma.</p>")


def _inequality_section(m: Measure, rows: pd.DataFrame, inequality: pd.DataFrame) -> str:
    q = rows[rows["level"] == "imd_quintile"].sort_values("unit")
    ineq = inequality[inequality["measure_id"] == m.id]
    if len(q) < 3 or ineq.empty or pd.isna(ineq.iloc[0]["sii"]):
        return ""
    r = ineq.iloc[0]
    labels = [f"Q{u}{' (most deprived)' if u == '1' else ' (least)' if u == '5' else ''}" for u in q["unit"]]
    return (paired_bars(f"By IMD quintile ({m.unit})", labels, {"value": q["value"].fillna(0).tolist()})
            + f"<p>Slope index of inequality (quintiles {r['quintiles']}) {r['sii']:,.2f} "
              f"(95% CI {r['sii_lower95']:,.2f} to "
              f"{r['sii_upper95']:,.2f}); gap between the most and least deprived quintile "
              f"{r['gap_most_minus_least_deprived']:,.2f}; Core20 {r['core20']:,.2f} against {r['rest']:,.2f} "
              f"for the rest (ratio {r['core20_ratio']:,.2f}).</p>")


def _opportunity_section(m: Measure, opportunity: pd.DataFrame) -> str:
    opp = opportunity[opportunity["measure_id"] == m.id].sort_values("opportunity", ascending=False)
    if opp.empty or m.opportunity is None:
        return ""
    total, counts = opp["opportunity"].sum(), m.opportunity["counts"]
    # bed days are shown beside the events when events become bed days; when the events are bed days, once
    beds = (f" ({opp['bed_days'].sum():,.0f} bed days)"
            if m.opportunity["bed_days"] == "per_emergency_admission" and opp["bed_days"].notna().any() else "")
    if "pounds" in opp and opp["pounds"].notna().any():
        beds += f", about £{opp['pounds'].sum():,.0f}"
    head = (f"<p><strong>Opportunity:</strong> {total:,.0f} {counts} a year{beds}"
            f" if every practice worse than the best quartile matched it. Method: {opp['method'].iloc[0]}.</p>")
    rows = [[r.unit, float(r.value), float(r.best_quartile_value), float(r.opportunity)] for r in opp.head(10)
            .itertuples()]
    return head + table(["practice", "value", "best quartile", counts], rows)


def write_measures_report(con: Connection, out_dir: Path) -> Path:
    """Write indicators.html into `out_dir`; returns its path."""
    results = con.execute("SELECT * FROM measures.measure_result").df()
    if results.empty:
        raise ValueError("measures.measure_result is empty: run `openphm measures run` first")
    if "measures" in stale_outputs(con):
        raise ValueError("the indicators were computed before the National Data Opt-out set in service changed: "
                         "run `openphm measures run` again")
    inequality = con.execute("SELECT * FROM measures.inequality").df()
    opportunity = con.execute("SELECT * FROM measures.opportunity").df()
    years = results[results["period_type"] == "financial_year"]
    period = sorted(years["period"].unique())[-1]
    latest = years[years["period"] == period]
    inequality = inequality[inequality["period"] == period] if len(inequality) else inequality
    opportunity = opportunity[opportunity["period"] == period] if len(opportunity) else opportunity
    sections, summary_rows = [], []
    for mid, m in load_measures().items():
        rows = latest[latest["measure_id"] == mid]
        if rows.empty:
            continue
        ics = rows[rows["level"] == "ics"]
        if not ics.empty:
            r = ics.iloc[0]
            summary_rows.append([m.title, float(r["value"]), f"{r['lower95']:,.2f} to {r['upper95']:,.2f}", m.unit,
                                 int(r["denominator"])])
        parts = [f"<h2 id='{mid}'>{m.title}</h2><p>{m.why_it_matters}</p>",
                 _funnel_section(m, rows[rows["level"] == "practice"], period),
                 _spc_section(m, results)]
        places = rows[(rows["level"] == "place") & rows["value"].notna()]
        if len(places) >= 2:
            parts.append(league_svg(places.reset_index(drop=True), places["unit"].tolist(),
                                    f"Places, {period}, with 95% intervals", m.unit))
        parts.append(_inequality_section(m, rows, inequality))
        parts.append(_opportunity_section(m, opportunity))
        sections.append("".join(parts))
    body = (f"<p>Indicators for {period}, computed from the linked person record (people who opted out of "
            "secondary use excluded). Every figure carries its interval and denominator.</p>"
            + table(["indicator", "ICS value", "95% interval", "unit", "denominator"], summary_rows)
            + "".join(sections))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "indicators.html"
    path.write_text(page("OpenPHM indicators", body), encoding="utf-8")
    return path
