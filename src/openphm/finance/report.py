"""The costs and budgets reports: JSON, CSV and a self-contained HTML page each, aggregate only.

Groups of fewer than `SMALLEST_GROUP` people are not shown (their spend would be one or two
people's care): they are counted in the totals and listed as suppressed.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

import polars as pl

from openphm.finance.spend import ADMITTED, HEALTH, HOSPITAL
from openphm.reports.html import page, paired_bars, table

SMALLEST_GROUP = 10
# Published English figures set beside the concentration of spend (docs/finance.md):
PUBLISHED_CONCENTRATION = {
    "health": ("5%", 0.50, "the top 5% of patients by cost accounted for about 50% of primary care, secondary "
                           "care and GP-prescribed drug costs (CPRD-HES, 2014/15): Dreyer, Parry, Jayatunga & "
                           "Deeny, 'A descriptive analysis of health care use by high-cost, high-need patients in "
                           "England', Health Foundation working paper 7, October 2019"),
    "admitted": ("1%", 0.32, "1% of the population accounted for 32% of public hospital spending, costed from "
                             "admitted patient care (HES APC, 2010/11-2012/13): Kelly, Stoye & Vera-Hernandez, "
                             "'Public hospital spending in England: evidence from National Health Service "
                             "administrative records', IFS working paper W15/21, 2015"),
}


def _suppressed(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    small = frame.filter(pl.col("people") < SMALLEST_GROUP)
    return frame.filter(pl.col("people") >= SMALLEST_GROUP), len(small)


def _money(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"£{x:,.0f}"


def lorenz_svg(curves: dict[str, list[float]], title: str) -> str:
    """Lorenz curves: share of spend (y) on the least costly share of people (x), with the diagonal."""
    w, h, left, bottom, top = 520, 420, 55, 45, 15
    colours = ["#005eb8", "#007f3b", "#ed8b00"]
    xs = lambda p: left + p * (w - left - 10)  # noqa: E731
    ys = lambda s: top + (1 - s) * (h - top - bottom)  # noqa: E731
    parts = [f"<svg role='img' viewBox='0 0 {w} {h}' width='520' xmlns='http://www.w3.org/2000/svg'>"
             f"<title>{escape(title)}</title>",
             f"<line x1='{xs(0)}' y1='{ys(0)}' x2='{xs(1)}' y2='{ys(1)}' stroke='#aeb7bd' stroke-dasharray='4'/>"]
    for t in range(0, 101, 20):
        parts.append(f"<text x='{xs(t / 100):.0f}' y='{h - bottom + 16}' font-size='11' "
                     f"text-anchor='middle'>{t}%</text><text x='{left - 5}' y='{ys(t / 100) + 4:.0f}' "
                     f"font-size='11' text-anchor='end'>{t}%</text>")
    for i, (name, points) in enumerate(curves.items()):
        if not points:
            continue
        path = " ".join(f"{xs(k / 100):.1f},{ys(v):.1f}" for k, v in enumerate(points))
        parts.append(f"<polyline fill='none' stroke='{colours[i % 3]}' stroke-width='2' points='{path}'/>"
                     f"<text x='{left + 10}' y='{top + 16 + 16 * i}' font-size='12' fill='{colours[i % 3]}'>"
                     f"{escape(name)}</text>")
    parts.append(f"<text x='{(left + w) / 2:.0f}' y='{h - 8}' font-size='12' text-anchor='middle'>people, "
                 "least costly first</text></svg>")
    return f"<figure><figcaption><strong>{escape(title)}</strong></figcaption>{''.join(parts)}</figure>"


def write_costs(summary: dict, per_segment: pl.DataFrame, out: Path) -> Path:
    """costs.json, one CSV per breakdown, and costs.html, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    year, con = summary["year"], summary["concentration"]
    shown: dict[str, pl.DataFrame] = {}
    hidden: dict[str, int] = {}
    for name, frame in summary["by"].items():
        shown[name], hidden[name] = _suppressed(frame)
        shown[name].write_csv(out / f"spend_by_{name}.csv")
    summary["by_setting"].write_csv(out / "spend_by_setting.csv")
    segments, _ = _suppressed(per_segment) if len(per_segment) else (per_segment, 0)
    if len(segments):
        segments.write_csv(out / "spend_per_person_by_segment_and_year.csv")
    document = {
        "year": year, "people": summary["people"], "population_spend": summary["population_spend"],
        "spend_per_person": summary["spend_per_person"], "other_spend": summary["other_spend"],
        "concentration": {k: {"top": v["top"], "gini": v["gini"], "lorenz": v["lorenz"]} for k, v in con.items()},
        "published": {k: {"top": t, "share": s, "source": src} for k, (t, s, src) in PUBLISHED_CONCENTRATION.items()},
        "by_setting": summary["by_setting"].to_dicts(),
        "by": {k: v.to_dicts() for k, v in shown.items()}, "suppressed_groups": hidden,
        "smallest_group_shown": SMALLEST_GROUP,
    }
    (out / "costs.json").write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    (out / "costs.html").write_text(_costs_html(summary, shown, hidden, segments), encoding="utf-8")
    return out / "costs.html"


def _concentration_words(con: dict) -> str:
    rows = []
    for scope, label in (("all", "All health and social care"), ("health", "Health care only"),
                         ("hospital", "Hospital care only"), ("admitted", "Admitted patient care only")):
        c = con[scope]
        published = PUBLISHED_CONCENTRATION.get(scope)
        ref = f"published: {published[1]:.0%} on the top {published[0]}" if published else ""
        rows.append([label, *(f"{c['top'].get(k, math.nan):.1%}" for k in ("1%", "5%", "20%")),
                     f"{c['gini']:.2f}", ref])
    return table(["spend", "top 1% of people", "top 5%", "top 20%", "Gini", "English figure"], rows)


def _costs_html(summary: dict, shown: dict, hidden: dict, segments: pl.DataFrame) -> str:
    year, con = summary["year"], summary["concentration"]
    settings = summary["by_setting"]
    parts = [f"<p>Financial year {escape(year)}: {summary['people']:,} people registered with a practice on "
             f"1 April, whose care cost {_money(summary['population_spend'])} "
             f"({_money(summary['spend_per_person'])} a person). Care of people not registered on 1 April "
             f"(born, arrived or unregistered) cost a further {_money(summary['other_spend'])}. People with a "
             "National Data Opt-out are not included.</p>",
             "<h2>Where the money goes</h2>",
             table(["setting", "registered population", "others", "total", "share"],
                   [[r["setting"], _money(r["population_spend"]), _money(r["other_spend"]),
                     _money(r["total_spend"]), f"{r['share_of_spend']:.1%}"] for r in settings.iter_rows(named=True)],
                   numeric={1, 2, 3, 4}),
             "<h2>How concentrated spend is</h2>",
             f"<p>A few people account for much of the spend: the costliest 5% of people account for "
             f"{con['all']['top'].get('5%', math.nan):.0%} of it.</p>",
             _concentration_words(con),
             lorenz_svg({"all": con["all"]["lorenz"], "health care": con["health"]["lorenz"],
                         "hospital care": con["hospital"]["lorenz"]}, "Share of spend on the least costly people"),
             f"<p class='note'>Health care: {', '.join(HEALTH)}. Hospital care: {', '.join(HOSPITAL)}. "
             f"Admitted patient care: {', '.join(ADMITTED)}. "
             + " ".join(f"{escape(src)}." for _, _, src in PUBLISHED_CONCENTRATION.values()) + "</p>"]
    titles = {"segment": "By population segment (on 1 April)", "age_band": "By age band",
              "imd_quintile": "By deprivation (IMD 2019 quintile; 1 = most deprived)", "practice": "By practice",
              "pcn": "By primary care network", "place": "By place"}
    for name, title in titles.items():
        frame = shown[name]
        parts.append(f"<h2>{escape(title)}</h2>")
        if name in ("age_band", "imd_quintile", "segment") and len(frame):
            parts.append(paired_bars(f"Spend per person, {title.lower()}", [str(g) for g in frame["group"]],
                                     {"spend per person (£)": frame["spend_per_person"].to_list()}))
        parts.append(table(["group", "people", "spend", "per person", "share"],
                           [[str(r["group"]), f"{r['people']:,}", _money(r["spend"]), _money(r["spend_per_person"]),
                             f"{r['share_of_spend']:.1%}"] for r in frame.iter_rows(named=True)], numeric={1, 2, 3, 4}))
        if hidden[name]:
            parts.append(f"<p class='note'>{hidden[name]} group(s) of fewer than {SMALLEST_GROUP} people not "
                         "shown.</p>")
    if len(segments):
        parts.append("<h2>Spend per person by segment and year</h2>")
        parts.append(table(["year", "segment", "people", "per person"],
                           [[r["year"], str(r["group"]), f"{r['people']:,}", _money(r["spend_per_person"])]
                            for r in segments.iter_rows(named=True)], numeric={2, 3}))
    return page(f"Spend on health and care, {year}", "".join(parts))


def write_budgets(result: dict, out: Path) -> Path:
    """budgets.json, one CSV per level and budgets.html, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    shares = result["shares"]
    document = {"fit_year": result["fit_year"], "budget_year": result["budget_year"],
                "envelope": shares["envelope"], "r2": {"in_sample": result["fit"],
                                                       "hospital_spend_in_sample": result["fit_hospital"],
                                                       "person_out_of_sample": shares["r2_person_out_of_sample"],
                                                       **{f"{lv}_out_of_sample": v["r2"]
                                                          for lv, v in shares["levels"].items()}},
                "published_r2": result["published"],
                "coefficients": result["model"].coefficient_table().to_dicts(), "levels": {}}
    parts = [f"<p>Fair-share budgets for {escape(result['budget_year'])}: a capitation model fitted on "
             f"{escape(result['fit_year'])} (each person's cost from their age and sex, deprivation, long-term "
             f"conditions, frailty and care-home residence on 1 April) gives each person an expected cost; a "
             f"practice's fair share is its people's expected costs, scaled so that the budgets add up to "
             f"{_money(shares['envelope'])}.</p>", "<h2>How well the model explains spend</h2>",
             table(["level", f"R² in {result['fit_year']} (fitted)", f"R² in {result['budget_year']} (new year)",
                    "England's person-based formula (Dixon et al. 2011)"],
                   [["person", f"{result['fit']['person']:.1%}", f"{shares['r2_person_out_of_sample']:.1%}",
                     f"{result['published']['person']:.0%}"],
                    *[[lv, f"{result['fit'][lv]:.1%}", f"{shares['levels'][lv]['r2']:.1%}",
                       f"{result['published'][lv]:.0%}" if lv in result["published"] else "—"]
                      for lv in ("practice", "pcn", "place")]]),
             f"<p>The same model fitted on hospital spend alone (admissions, A&amp;E and outpatients: what "
             f"England's person-based formula modelled) explains {result['fit_hospital']['person']:.1%} of the "
             f"variation between people and {result['fit_hospital']['practice']:.1%} between practices "
             f"(England's: {result['published']['person']:.0%} and {result['published']['practice']:.0%}).</p>",
             "<p class='note'>A person's cost is mostly chance (an accident, a sudden illness), so no model "
             "explains much of it at person level; summed over a practice's thousands of people, chance "
             "averages out and the model explains most of the difference between practices.</p>"]
    for level, data in shares["levels"].items():
        units, hidden = _suppressed(data["units"])
        units.write_csv(out / f"budgets_by_{level}.csv")
        document["levels"][level] = {"r2": data["r2"], "units": units.to_dicts(), "suppressed": hidden}
        flagged = units.filter(pl.col("verdict") != "within chance")
        parts.append(f"<h2>By {escape(level)}</h2><p>{len(flagged)} of {len(units)} spent more or less than their "
                     "fair share by more than chance alone would give (beyond the 95% limits).</p>")
        parts.append(table(["unit", "people", "fair share", "actual spend", "difference", "z", "verdict"],
                           [[str(r["unit"]), f"{r['people']:,}", _money(r["fair_share"]), _money(r["actual_spend"]),
                             _money(r["difference"]), f"{r['z']:+.2f}", r["verdict"]]
                            for r in units.iter_rows(named=True)], numeric={1, 2, 3, 4, 5}))
    (out / "budgets.json").write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    (out / "budgets.html").write_text(page(f"Population budgets, {result['budget_year']}", "".join(parts)),
                                      encoding="utf-8")
    return out / "budgets.html"
