"""What a risk-share agreement exposes each partner to: the simulation's result.json and a self-contained
HTML page (an inline SVG histogram of each partner's net position, the 5th, 50th and 95th percentiles
marked, and what they mean in words); and the reconciliation of an actual year, line by line."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict
from html import escape
from pathlib import Path

import numpy as np

from openphm.finance.agreement import Agreement, AgreementError, settle, with_baseline_budgets
from openphm.finance.simulate import SimulationResult
from openphm.finance.spend import SETTINGS, costed_years, year_start
from openphm.reports.html import page, table

BLUE, GREY, ORANGE, GREEN, RED, LIGHT = "#005eb8", "#768692", "#ed8b00", "#007f3b", "#d5281b", "#e8edee"
W, H, L, B, T = 760, 300, 20, 64, 30
HISTOGRAM_BINS = 40


def money(x: float) -> str:
    """£1.2m, £340k, £900 (sign kept)."""
    if x is None or not math.isfinite(x):
        return "—"
    sign, x = ("-" if x < 0 else ""), abs(x)
    if x >= 1e6:
        return f"{sign}£{x / 1e6:,.1f}m"
    return f"{sign}£{x / 1e3:,.0f}k" if x >= 1e4 else f"{sign}£{x:,.0f}"


def position(x: float) -> str:
    """A net position in words: 'a £1.2m loss', 'a £300k gain', 'break-even'."""
    return "break-even" if round(x) == 0 else f"a {money(abs(x))} {'loss' if x > 0 else 'gain'}"


def next_year(year: str) -> str:
    """The financial year after one given as '2024-25'."""
    start = year_start(year).year + 1
    return f"{start}-{(start + 1) % 100:02d}"


def histogram_svg(values: np.ndarray, title: str) -> str:
    """A histogram of net positions (positive = a loss) with zero and the 5th, 50th, 95th percentiles marked."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(lo, hi))
    xs = lambda v: L + (v - lo) / (hi - lo) * (W - 2 * L)  # noqa: E731
    top = counts.max() or 1
    parts = [f"<svg role='img' viewBox='0 0 {W} {H}' width='100%' xmlns='http://www.w3.org/2000/svg'>"
             f"<title>{escape(title)}</title>"]
    for c, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
        h = (H - B - T) * c / top
        colour = RED if a >= 0 else GREEN if b <= 0 else GREY
        parts.append(f"<rect x='{xs(a):.1f}' y='{H - B - h:.1f}' width='{max(xs(b) - xs(a) - 1, 0.5):.1f}' "
                     f"height='{h:.1f}' fill='{colour}' opacity='0.75'><title>{money(a)} to {money(b)}: {c} "
                     f"simulated years</title></rect>")
    parts.append(f"<line x1='{L}' x2='{W - L}' y1='{H - B}' y2='{H - B}' stroke='{GREY}'/>")
    if lo < 0 < hi:
        parts.append(f"<line x1='{xs(0):.1f}' x2='{xs(0):.1f}' y1='{T - 10}' y2='{H - B}' stroke='#212b32'/>"
                     f"<text x='{xs(0):.1f}' y='{T - 14}' font-size='11' text-anchor='middle'>break-even</text>")
    for q, label, below in ((5, "5th", 30), (50, "50th", 44), (95, "95th", 30)):  # staggered: labels may be close
        v = float(np.percentile(values, q))
        parts.append(f"<line x1='{xs(v):.1f}' x2='{xs(v):.1f}' y1='{T}' y2='{H - B + below - 10}' stroke='{BLUE}' "
                     f"stroke-dasharray='4 3'/><text x='{xs(v):.1f}' y='{H - B + below}' font-size='11' "
                     f"text-anchor='middle' fill='{BLUE}'>{label}: {money(v)}</text>")
    for v in np.linspace(lo, hi, 5):
        parts.append(f"<text x='{xs(v):.1f}' y='{H - B + 14}' font-size='10' text-anchor='middle' "
                     f"fill='{GREY}'>{money(v)}</text>")
    parts.append(f"<text x='{W / 2:.0f}' y='{H - 4}' font-size='12' text-anchor='middle'>net position "
                 "(gain to the left of break-even in green, loss to the right in red)</text></svg>")
    return f"<figure><figcaption><strong>{escape(title)}</strong></figcaption>{''.join(parts)}</figure>"


def result_json(result: SimulationResult) -> dict:
    """Everything the simulation found, as JSON-ready data."""
    scenario = None
    if result.scenario is not None:
        scenario = {"name": result.scenario.name, "description": result.scenario.description,
                    "age_years": result.scenario.age_years, "changes": [asdict(c) for c in result.scenario.changes]}
    return {"agreement": result.agreement.name, "agreement_year": result.agreement.year,
            "base_year": result.base_year, "simulated_year": next_year(result.base_year), "runs": result.runs,
            "seed": result.seed, "scenario": scenario, "people": result.people, "profiles": result.profiles,
            "unit_cost_bins": result.bins, "uncosted_rows": result.uncosted_rows,
            "system_shock_sd_by_setting": result.shocks,
            "terms": {"corridor": result.agreement.corridor, "loss_share": result.agreement.loss_share,
                      "gain_share": result.agreement.gain_share, "residual": result.agreement.residual,
                      "caps": {p.id: p.cap for p in result.agreement.partners if p.cap is not None}},
            "partners": result.partner_statistics(),
            "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "method": "bootstrap of the base year's people with Poisson variation of their activity by setting "
                      "(social care by the bootstrap only); sampled exactly by profiles (openphm.finance.simulate)"}


def write_simulation(result: SimulationResult, out: Path) -> Path:
    """result.json and riskshare.html in `out`; returns the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    data = result_json(result)
    (out / "result.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    stats = data["partners"]
    rows = [[s["name"], money(s["budget"]), money(s["expected_spend"]), f"{s['probability_of_overspend']:.0%}",
             f"{s['probability_of_loss']:.0%}", money(s["net"]["p5"]), money(s["net"]["p50"]),
             money(s["net"]["p95"])] for s in stats.values()]
    body = [f"<p>{escape(result.agreement.name)}: {result.runs:,} simulated years of {next_year(result.base_year)} "
            f"from the {result.people:,} people of {result.base_year} (seed {result.seed})"
            f"{'; scenario: ' + escape(result.scenario.name) if result.scenario else ''}.</p>",
            "<p class='note'>Each simulated year draws the population again with replacement and varies each "
            "person's activity as chance would (a Poisson count at their own rate)"
            + (", and moves each setting's spend by a system-wide change as large as the record's own years "
               "varied (" + escape(", ".join(f"{k} ±{v:.1%}" for k, v in result.shocks.items())) + ")"
               if result.shocks else
               ", so the spread is what chance alone gives a population of this size: it leaves out prices, "
               "policy and epidemics")
            + ". A net position is what the partner bears after the risk share: positive is a loss, negative a "
            "gain.</p>",
            table(["partner", "budget", "expected spend", "P(overspend)", "P(net loss)", "5th percentile",
                   "median", "95th percentile"], rows, numeric={1, 2, 3, 4, 5, 6, 7})]
    for q, (pid, s) in enumerate(stats.items()):
        net = s["net"]
        body.append(f"<h2>{escape(s['name'])}</h2><p>In 9 of 10 simulated years the net position of "
                    f"{escape(s['name'])} lies between {position(net['p5'])} and {position(net['p95'])}; the median is "
                    f"{position(net['p50'])}. It overspends its budget of {money(s['budget'])} in "
                    f"{s['probability_of_overspend']:.0%} of years and ends with a net loss in "
                    f"{s['probability_of_loss']:.0%}. It bears {escape(', '.join(s['bears']))}.</p>")
        body.append(histogram_svg(result.settlement["net"][q], f"{s['name']} ({pid}): net position"))
    if result.uncosted_rows:
        body.append(f"<p class='note'>{result.uncosted_rows:,} activity rows of {result.base_year} have no "
                    "cost (no tariff line) and are left out.</p>")
    path = out / "riskshare.html"
    path.write_text(page(f"Risk share: {result.agreement.name}", "".join(body)), encoding="utf-8")
    return path


def spend_by_setting(con, year: str) -> tuple[dict[str, float], int]:
    """All costed spend in a financial year by setting (everyone in the record), and the uncosted rows."""
    rows = con.execute("""SELECT setting, CAST(sum(cost) AS DOUBLE), count(*) FILTER (WHERE cost IS NULL)
                          FROM planning.activity_cost WHERE financial_year = ? GROUP BY setting""", [year]).fetchall()
    spend = {s: 0.0 for s in SETTINGS} | {s: float(c or 0.0) for s, c, _ in rows}
    return spend, sum(u for _, _, u in rows)


def reconcile(con, agreement: Agreement, year: str) -> dict:
    """What each partner pays or receives for an actual year, line by line ('baseline' budgets from the
    year before)."""
    years = costed_years(con)
    if year not in years:
        raise AgreementError(f"--year {year}: the record has no costed activity that year "
                             f"(costed years: {', '.join(years) or 'none'})")
    base_year = None
    if agreement.needs_baseline:
        base_year = f"{year_start(year).year - 1}-{year_start(year).year % 100:02d}"
        if base_year not in years:
            raise AgreementError(f"{agreement.name}: a 'baseline' budget needs the spend of {base_year}, "
                                 "which the record has no costs for")
        agreement = with_baseline_budgets(agreement, spend_by_setting(con, base_year)[0])
    spend, uncosted = spend_by_setting(con, year)
    settled = settle(agreement, {p.id: sum(spend[s] for s in p.bears) for p in agreement.partners})
    partners = []
    for p in agreement.partners:
        s = settled[p.id]
        partners.append({"id": p.id, "name": p.name, "budget": s.budget,
                         "spend_by_setting": {b: spend[b] for b in p.bears}, "spend": s.spend,
                         "variance": s.variance, "own_share": s.own_share, "excess": s.excess,
                         "lines": [asdict(line) for line in s.lines], "cap": s.cap, "cut_by_cap": s.cut_by_cap,
                         "residual": s.residual, "net": s.net})
    unborne = {s: v for s, v in spend.items() if v and not any(s in p.bears for p in agreement.partners)}
    return {"agreement": agreement.name, "year": year, "budgets_from": base_year, "corridor": agreement.corridor,
            "partners": partners, "total_variance": sum(x["variance"] for x in partners),
            "total_net": sum(x["net"] for x in partners), "spend_borne_by_nobody": unborne,
            "uncosted_rows": uncosted}


def write_reconcile(data: dict, out: Path) -> Path:
    """reconcile.json and reconcile.html in `out`; returns the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "reconcile.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    names = {p["id"]: p["name"] for p in data["partners"]}
    budgets = f"are the spend of {data['budgets_from']} plus growth" if data["budgets_from"] else "are as agreed"
    body = [f"<p>{escape(data['agreement'])}, {data['year']}: every costed activity of the year, by the setting "
            f"that bears it. Budgets {budgets}; the corridor is {data['corridor']:.1%} of each budget. Positive "
            "amounts are paid (a loss), negative received (a gain).</p>",
            table(["partner", "budget", "spend", "variance", "within the corridor", "net"],
                  [[p["name"], money(p["budget"]), money(p["spend"]), money(p["variance"]), money(p["own_share"]),
                    money(p["net"])] for p in data["partners"]], numeric={1, 2, 3, 4, 5})]
    for p in data["partners"]:
        rows = [[f"spend: {s}", money(v)] for s, v in p["spend_by_setting"].items()]
        rows += [["total spend", money(p["spend"])], ["budget", money(p["budget"])],
                 ["variance (spend - budget)", money(p["variance"])],
                 ["own share (within the corridor)", money(p["own_share"])]]
        for line in p["lines"]:
            what = "overspend" if line["kind"] == "overspend" else "underspend"
            capped = abs(line["before_cap"] - line["amount"]) > 0.5
            cut = f" (cut from {money(line['before_cap'])} by the cap)" if capped else ""
            rows.append([f"{line['share']:.0%} of {names[line['of_partner']]}'s {what} beyond the corridor{cut}",
                         money(line["amount"])])
        if p["residual"]:
            rows.append(["what other partners' caps leave over (residual partner)", money(p["residual"])])
        rows.append(["net: what it bears", money(p["net"])])
        body.append(f"<h2>{escape(p['name'])}</h2>" + table(["line", "amount"], rows, numeric={1}))
    if data["spend_borne_by_nobody"]:
        body.append("<p class='note'>Spend in settings no partner bears: " + escape(", ".join(
            f"{s} {money(v)}" for s, v in data["spend_borne_by_nobody"].items())) + ".</p>")
    if data["uncosted_rows"]:
        body.append(f"<p class='note'>{data['uncosted_rows']:,} activity rows have no cost and are left out.</p>")
    path = out / "reconcile.html"
    path.write_text(page(f"Risk share reconciliation: {data['agreement']}, {data['year']}", "".join(body)),
                    encoding="utf-8")
    return path
