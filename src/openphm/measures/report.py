"""An HTML report of every indicator for the latest year: a funnel plot across practices, a league
table of places with intervals, and the ICS figure. Self-contained: no scripts or fonts fetched."""

from __future__ import annotations

from pathlib import Path

import duckdb

from openphm.measures.definitions import load_measures
from openphm.reports.charts import funnel_svg, league_svg
from openphm.reports.html import page, table
from openphm.variation import funnel


def write_measures_report(con: duckdb.DuckDBPyConnection, out_dir: Path) -> Path:
    """Write indicators.html into `out_dir`; returns its path."""
    results = con.execute("SELECT * FROM measures.measure_result").df()
    if results.empty:
        raise ValueError("measures.measure_result is empty: run `openphm measures run` first")
    period = sorted(results["period"].unique())[-1]
    latest = results[results["period"] == period]
    sections = []
    summary_rows = []
    for mid, m in load_measures().items():
        rows = latest[latest["measure_id"] == mid]
        if rows.empty:
            continue
        ics = rows[rows["level"] == "ics"]
        if not ics.empty:
            r = ics.iloc[0]
            summary_rows.append([m.title, float(r["value"]), f"{r['lower95']:,.2f} to {r['upper95']:,.2f}", m.unit,
                                 int(r["denominator"])])
        parts = [f"<h2 id='{mid}'>{m.title}</h2><p>{m.why_it_matters}</p>"]
        practices = rows[rows["level"] == "practice"]
        kind = {"person_proportion": "proportion", "event_proportion": "proportion"}.get(m.kind, "rate")
        if len(practices) >= 3 and m.standardisation != "dsr_esp2013" and (practices["denominator"] > 0).all():
            num = practices["numerator"].clip(upper=practices["denominator"]) if kind == "proportion" \
                else practices["numerator"]
            f = funnel(num, practices["denominator"], kind=kind, overdispersion=True)
            f["denominator"] = practices["denominator"].to_numpy()
            mult = m.data.get("multiplier", 1)
            for col in ("value", "lower95", "upper95", "lower998", "upper998"):
                f[col] = f[col] * mult
            target = float(num.sum() / practices["denominator"].sum()) * mult
            parts.append(funnel_svg(f, practices["unit"].tolist(), target,
                                    f"Practices, {period} (random-effects funnel)", m.unit))
        places = rows[rows["level"] == "place"]
        if len(places) >= 2:
            parts.append(league_svg(places.reset_index(drop=True), places["unit"].tolist(),
                                    f"Places, {period}, with 95% intervals", m.unit))
        sections.append("".join(parts))
    body = (f"<p>Indicators for {period}, computed from the linked person record (people who opted out of "
            "secondary use excluded). Every figure carries its interval and denominator.</p>"
            + table(["indicator", "ICS value", "95% interval", "unit", "denominator"], summary_rows)
            + "".join(sections))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "indicators.html"
    path.write_text(page("OpenPHM indicators", body), encoding="utf-8")
    return path
