"""Variation pages: the indicator catalogue, one indicator (definition, funnel plot, SPC chart with the
Making Data Count icon, league table with intervals, inequality by deprivation, the opportunity), and
its results as CSV.

Every figure here comes from `openphm.measures.published.published_results`: counts protected and
values, limits, the slope index of inequality and the opportunity computed from the protected counts,
so that what a chart shows and what the CSV holds agree and neither gives an exact count back.
"""

from __future__ import annotations

import csv
import io

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from openphm.governance.disclosure import REDACTED
from openphm.measures.definitions import Measure, load_measures
from openphm.measures.published import published_results
from openphm.measures.report import funnel_chart
from openphm.measures.summaries import inequality_table, opportunity_table
from openphm.reports.charts import league_svg, spc_svg, variation_icon_svg
from openphm.reports.html import paired_bars
from openphm.variation import variation_icon, xmr
from openphm.web import data
from openphm.web.app import render_aggregate
from openphm.web.security import check_csrf, require

router = APIRouter(dependencies=[Depends(check_csrf)])
LEVELS = ("practice", "pcn", "place", "ics")
LEVEL_NAMES = {"practice": "Practices", "pcn": "PCNs", "place": "Places", "ics": "The ICS"}
CSV_COLUMNS = ["measure_id", "level", "period", "unit", "numerator", "denominator", "value", "lower95", "upper95",
               "lower998", "upper998"]
MIN_SPC_POINTS = 12


def measure_or_404(measure_id: str) -> Measure:
    """The indicator, or 404."""
    m = load_measures().get(measure_id)
    if m is None:
        raise HTTPException(status_code=404, detail="No such indicator.")
    return m


def published(db: data.Database, m: Measure, levels: tuple[str, ...],
              period_type: str = "financial_year") -> pl.DataFrame:
    """The indicator's results at `levels`, every period of a type, as they may be shown."""
    def compute() -> pl.DataFrame:
        rows = data.measure_results(db, m.id, levels, period_type)
        return published_results(rows, m) if rows.height else rows

    return db.memo(("published", m.id, levels, period_type), compute)


@router.get("/variation", response_class=HTMLResponse)
def catalogue(request: Request, q: str = "") -> HTMLResponse:
    """The indicator catalogue, searchable by words in the title or why it matters."""
    require(request)
    words = [w for w in q.lower().split() if w][:10]
    found = [m for m in load_measures().values()
             if all(w in (m.data.get("title", "") + " " + m.data.get("why_it_matters", "")).lower() for w in words)]
    return render_aggregate(request, "catalogue.html", lambda: {"q": q[:100], "measures": found})


def _spc(db: data.Database, m: Measure) -> dict | None:
    """The ICS's monthly series as an XmR chart with its variation icon (12 months or more)."""
    months = published(db, m, ("ics",), "month")
    if months.height == 0:
        return None
    months = months.filter(pl.col("value").is_not_null()).sort("period_start")
    if months.height < MIN_SPC_POINTS:
        return None
    chart = xmr(months["value"].to_numpy())
    icon = variation_icon(chart, m.polarity)
    return {"svg": spc_svg(chart, months["period"].to_list(), f"The ICS by month (XmR chart): {icon}", m.unit),
            "icon": icon, "icon_svg": variation_icon_svg(icon), "months": months.height,
            "specials": int(chart["special_cause"].sum())}


def _inequality(db: data.Database, m: Measure, period: str) -> dict | None:
    """Values by IMD quintile and the slope index of inequality, from the protected quintile counts."""
    if "imd_quintile" not in m.levels:
        return None
    rows = published(db, m, ("imd_quintile", "core20"))
    rows = rows.filter(pl.col("period") == period) if rows.height else rows
    quintiles = rows.filter(pl.col("level") == "imd_quintile").sort("unit") if rows.height else rows
    if quintiles.height < 3:
        return None
    summary = inequality_table(rows.to_pandas(), {m.id: m})
    labels = [f"Q{u}{' (most deprived)' if u == '1' else ' (least deprived)' if u == '5' else ''}"
              for u in quintiles["unit"]]
    chart = paired_bars(f"By deprivation quintile, {period} ({m.unit})", labels,
                        {"value": quintiles["value"].fill_null(0).to_list()})
    return {"rows": quintiles.rows(named=True), "chart": chart,
            "summary": None if summary.empty else summary.iloc[0].to_dict()}


def _opportunity(db: data.Database, m: Measure, practices: pl.DataFrame) -> dict | None:
    """What matching the best quartile of practices would be worth, from the protected practice counts."""
    if m.opportunity is None or practices.height < 4:
        return None
    shown = practices.filter(pl.col("numerator").is_not_null() & pl.col("denominator").is_not_null())
    with db.cursor() as cur:
        gap = opportunity_table(cur, shown.to_pandas(), {m.id: m})
    if gap.empty:
        return None
    money = gap["pounds"].sum() if gap["pounds"].notna().any() else None
    beds = gap["bed_days"].sum() if gap["bed_days"].notna().any() else None
    top = gap.sort_values("opportunity", ascending=False).head(10)
    return {"total": float(gap["opportunity"].sum()), "counts": m.opportunity["counts"], "bed_days": beds,
            "pounds": money, "method": str(gap["method"].iloc[0]), "practices": len(gap),
            "top": top[["unit", "value", "best_quartile_value", "opportunity"]].to_dict("records")}


@router.get("/variation/{measure_id}", response_class=HTMLResponse)
def indicator(request: Request, measure_id: str, level: str = "practice", period: str = "") -> HTMLResponse:
    """One indicator at a level and financial year (default: the latest)."""
    require(request)
    m = measure_or_404(measure_id)
    if level not in LEVELS:
        raise HTTPException(status_code=404, detail="No such level.")
    return render_aggregate(request, "indicator.html",
                            lambda: indicator_context(request.app.state.db, m, level, period))


def indicator_context(db: data.Database, m: Measure, level: str, period: str = "") -> dict:
    """What the indicator page shows at a level and financial year (default: the latest), computed once."""
    rows = published(db, m, (level,))
    periods = sorted(set(rows["period"].to_list())) if rows.height else []
    period = period if period in periods else (periods[-1] if periods else "")
    return db.memo(("indicator", m.id, level, period), lambda: _indicator(db, m, level, period, periods, rows))


def _indicator(db: data.Database, m: Measure, level: str, period: str, periods: list[str],
               rows: pl.DataFrame) -> dict:
    context: dict = {"m": m, "level": level, "levels": LEVELS, "level_names": LEVEL_NAMES, "period": period,
                     "periods": periods, "rows": [], "chart": "", "league": "", "spc": None, "inequality": None,
                     "opportunity": None}
    if periods:
        latest = rows.filter(pl.col("period") == period).sort("value", descending=True, nulls_last=True)
        context["rows"] = latest.rows(named=True)
        shown = latest.filter(pl.col("denominator").is_not_null() & (pl.col("denominator") > 0)
                              & pl.col("numerator").is_not_null())
        if level != "ics" and m.standardisation in ("none", "crude", "isr_ics"):
            drawn = funnel_chart(m, shown.select("unit", "numerator", "denominator").to_pandas(),
                                 f"{LEVEL_NAMES[level]}, {period}")
            context["chart"] = drawn[0] if drawn else ""
        with_values = latest.filter(pl.col("value").is_not_null() & pl.col("lower95").is_not_null())
        if level in ("pcn", "place") and with_values.height >= 2:
            context["league"] = league_svg(with_values.to_pandas(), with_values["unit"].to_list(),
                                           f"{LEVEL_NAMES[level]}, {period}, with 95% intervals", m.unit)
        context["spc"] = _spc(db, m)
        context["inequality"] = _inequality(db, m, period)
        if level == "practice":
            context["opportunity"] = _opportunity(db, m, latest)
    return context


def _cell(value: object) -> object:
    return REDACTED if value is None else f"{value:.4f}" if isinstance(value, float) else value


@router.get("/variation/{measure_id}/results.csv")
def indicator_csv(request: Request, measure_id: str, level: str = "practice") -> Response:
    """Every financial year's results at a level, as CSV, as published (redacted cells say so)."""
    require(request)
    m = measure_or_404(measure_id)
    if level not in LEVELS:
        raise HTTPException(status_code=404, detail="No such level.")
    db = request.app.state.db

    def written() -> str:
        rows = published(db, m, (level,))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for r in (rows.rows(named=True) if rows.height else []):
            writer.writerow([measure_id, level, r["period"], r["unit"], *(_cell(r[c]) for c in CSV_COLUMNS[4:])])
        return out.getvalue()

    return Response(db.page(("csv", m.id, level), written), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{measure_id}_{level}.csv"'})


def latest_ics_value(request: Request, m: Measure) -> dict | None:
    """The indicator's latest financial year for the whole ICS, as published (for the public view)."""
    rows = published(request.app.state.db, m, ("ics",))
    return rows.sort("period_start").row(-1, named=True) if rows.height else None

