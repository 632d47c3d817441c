"""An evaluation's outputs: `result.json` and a self-contained HTML report with charts, diagnostics
and a plain-words summary that says which estimate it trusts and why, and never claims more."""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from openphm.engine.files import write_private
from openphm.evaluate.run import Estimate
from openphm.evaluate.spec import POPULATIONS, EvaluationSpec
from openphm.reports.charts import BLUE, GREY, LIGHT, ORANGE, RED, H, L, W, _frame, _scale
from openphm.reports.html import page, table

OUTCOME_WORDS = {
    "emergency_admissions": "emergency admissions", "ae_attendances": "A&E attendances",
    "elective_admissions": "elective admissions", "outpatient_attendances": "outpatient attendances",
    "emergency_bed_days": "emergency bed days", "gp_appointments": "GP appointments",
    "community_contacts": "community contacts",
    "cost": "spend on health care (pounds; social care, costed by year, not included)",
}
METHOD_WORDS = {
    "staggered_did": "difference-in-differences (Callaway & Sant'Anna)",
    "synthetic_did": "synthetic difference-in-differences",
    "synthetic_control": "synthetic control",
    "matched_cohort": "matched cohort (people, propensity score)",
    "naive_before_after": "naive before-and-after",
}


def outcome_words(outcome: str) -> str:
    """An outcome in words: an activity's name, or an indicator's title."""
    if outcome.startswith("indicator:"):
        from openphm.measures.definitions import load_measures

        measure = load_measures().get(outcome[len("indicator:"):])
        return measure.title if measure else outcome
    return OUTCOME_WORDS.get(outcome, outcome)


def population_words(population: str) -> str:
    """The population in words."""
    if population.startswith("segment:"):
        return f"the people in the {population[len('segment:'):].replace('_', ' ')} segment"
    return POPULATIONS[population]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pct(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "not estimable"
    return f"{abs(x) * 100:.1f}% {'fewer' if x < 0 else 'more'}"


def in_words(e: Estimate, outcome: str) -> str:
    """One sentence for an estimate: the change and its interval, or no clear change."""
    what = outcome_words(outcome)
    if not np.isfinite(e.estimate):
        return f"{_sentence(what)}: the effect could not be estimated."
    if e.ci_low <= 0 <= e.ci_high:
        return (f"{_sentence(what)}: no clear change. The best estimate is {_pct(e.estimate)} than expected, "
                f"but anything from {_pct(e.ci_low)} to {_pct(e.ci_high)} is consistent with the data.")
    return (f"{_sentence(what)}: {_pct(e.estimate)} than would have been expected without the care model "
            f"(95% interval {_pct(e.ci_low)} to {_pct(e.ci_high)}).")


def result_json(spec: EvaluationSpec, result: dict[str, Any], dropped: list[str]) -> dict:
    """The machine-readable result."""
    return {
        "name": spec.name, "population": spec.population, "level": spec.level,
        "period": {"start": f"{spec.start:%Y-%m}", "end": f"{spec.end:%Y-%m}"},
        "intervention": {code: f"{m:%Y-%m}" for code, m in sorted(spec.starts.items())},
        "results": [e.as_json(spec.population) for e in result["estimates"]],
        "recommended": {o: {"method": m, "why": why} for o, (m, why) in result["recommended"].items()},
        "units_left_out": dropped, "problems": result["problems"],
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def event_study_svg(by: pd.DataFrame, title: str) -> str:
    """Effects by months since the start, with their simultaneous 95% band; a zero line."""
    e = by["e"].to_numpy(dtype=float)
    lo = float(min(by["ci_low"].min(), 0))
    hi = float(max(by["ci_high"].max(), 0))
    xs = _scale(e.min() - 0.5, e.max() + 0.5, L, W - 10)
    ys = _scale(lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05, H - 45, 20)
    body = [f"<line x1='{L}' x2='{W - 10}' y1='{ys(0):.1f}' y2='{ys(0):.1f}' stroke='{GREY}'/>",
            f"<line x1='{xs(-0.5):.1f}' x2='{xs(-0.5):.1f}' y1='20' y2='{H - 45}' stroke='{LIGHT}' "
            "stroke-dasharray='4 3'/>"]
    for row in by.itertuples():
        colour = ORANGE if row.e < 0 else BLUE
        body.append(f"<line x1='{xs(row.e):.1f}' x2='{xs(row.e):.1f}' y1='{ys(row.ci_low):.1f}' "
                    f"y2='{ys(row.ci_high):.1f}' stroke='{colour}' stroke-width='2'/>"
                    f"<circle cx='{xs(row.e):.1f}' cy='{ys(row.att):.1f}' r='3.5' fill='{colour}'>"
                    f"<title>{int(row.e)} months from the start: {row.att:,.3f} ({row.ci_low:,.3f} to "
                    f"{row.ci_high:,.3f})</title></circle>")
    ticks = np.unique(np.linspace(e.min(), e.max(), min(9, len(e))).round())
    return _frame(title, "months since the start (before: orange, from the start: blue)",
                  "effect per 1,000 a month", "".join(body), xs, ys, ticks, np.linspace(lo, hi, 5))


def series_svg(series: pd.DataFrame, start: int, title: str) -> str:
    """The adopters' rate and their synthetic comparison, month by month; the start marked."""
    t = series["time"].to_numpy(dtype=float)
    values = series[["treated", "synthetic"]].to_numpy(dtype=float)
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    xs = _scale(t.min(), t.max(), L, W - 10)
    ys = _scale(lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05, H - 45, 20)
    body = [f"<line x1='{xs(start - 0.5):.1f}' x2='{xs(start - 0.5):.1f}' y1='20' y2='{H - 45}' stroke='{RED}' "
            "stroke-dasharray='4 3'><title>the start</title></line>"]
    for col, colour, dash in (("synthetic", GREY, "5 3"), ("treated", BLUE, "")):
        pts = " ".join(f"{xs(a):.1f},{ys(b):.1f}" for a, b in zip(t, series[col], strict=True))
        body.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' stroke-dasharray='{dash}' "
                    f"points='{pts}'><title>{'adopters' if col == 'treated' else 'synthetic comparison'}"
                    "</title></polyline>")
    return _frame(title, "month of the evaluation (adopters: blue; synthetic comparison: grey dashes)",
                  "per 1,000 a month", "".join(body), xs, ys, np.linspace(t.min(), t.max(), 6).round(),
                  np.linspace(lo, hi, 5))


def report_html(spec: EvaluationSpec, result: dict[str, Any], n_units: int) -> str:
    """The whole report page."""
    starts = sorted(set(spec.starts.values()))
    where = f"{len(spec.starts)} {spec.level}{'s' if len(spec.starts) != 1 else ''}"
    if spec.list_id:
        question = (f"Did the care given to the members of the case-finding list {escape(spec.list_id)} at {where} "
                    f"from {starts[0]:%B %Y} change their activity? Compared with similar members of the same "
                    f"list at other practices, matched person by person, up to {spec.end:%B %Y}.")
    else:
        question = (f"Did the care model at {where} (starting {', '.join(f'{m:%B %Y}' for m in starts)}) change "
                    f"activity for {escape(population_words(spec.population))}? Compared with "
                    f"{n_units - len(spec.starts)} {spec.level}s that had not adopted it, {spec.start:%B %Y} to "
                    f"{spec.end:%B %Y}. Rates are per 1,000 people in the population per month.")
    parts = [f"<p>{escape(spec.description)}</p>" if spec.description else "", f"<p>{question}</p>",
             "<h2>Summary</h2>"]
    by_outcome: dict[str, list[Estimate]] = {}
    for e in result["estimates"]:
        by_outcome.setdefault(e.outcome, []).append(e)
    for outcome, found in by_outcome.items():
        method, why = result["recommended"][outcome]
        chosen = next((e for e in found if e.method == method), None)
        parts.append(f"<h3>{escape(_sentence(outcome_words(outcome)))}</h3>")
        if chosen:
            parts.append(f"<p><strong>{escape(in_words(chosen, outcome))}</strong> Method: "
                         f"{escape(METHOD_WORDS[method])}. {escape(why)}</p>")
        else:
            parts.append(f"<p class='bad'>{escape(why)}</p>")
        naive = next((e for e in found if e.method == "naive_before_after"), None)
        if naive and chosen and np.isfinite(naive.estimate) and np.isfinite(chosen.estimate):
            gap = (naive.estimate - chosen.estimate) * 100
            parts.append(f"<p class='note'>The naive before-and-after comparison says {_pct(naive.estimate)}: "
                         f"{abs(gap):.1f} percentage points {'more' if gap < 0 else 'less'} of a reduction than the "
                         "trusted estimate. It has no comparison group, so it counts as the care model's effect "
                         "whatever was already changing at the adopting practices (they chose to join, and may "
                         "already have been on their way down or up).</p>")
    parts.append("<h2>Every estimate</h2>")
    rows = [[outcome_words(e.outcome), METHOD_WORDS[e.method], _pct(e.estimate),
             f"{_pct(e.ci_low)} to {_pct(e.ci_high)}", "" if not np.isfinite(e.p_value) else f"{e.p_value:.3f}",
             str(e.n_treated), str(e.n_control), _verdict(e)] for e in result["estimates"]]
    parts.append(table(["outcome", "method", "estimate", "95% interval", "p", "adopters", "comparison", "check"],
                       rows))
    parts.append("<h2>Diagnostics</h2>")
    for e in result["estimates"]:
        title = f"{outcome_words(e.outcome)}: {METHOD_WORDS[e.method]}"
        if "event_study" in e.charts:
            parts.append(event_study_svg(e.charts["event_study"], f"{title}: effect by months since the start "
                                         "(before the start, the effects should be near zero)"))
        if "balance" in e.charts:
            b = e.charts["balance"]
            parts.append(f"<h3>{escape(title)}: balance (standardised mean differences; under 0.1 is balanced)</h3>")
            parts.append(table(["covariate", "before matching", "after matching"],
                               [[r.covariate.replace("_", " "), float(r.smd_before), float(r.smd_after)]
                                for r in b.itertuples()]))
        for start, series in e.charts.get("series", []):
            parts.append(series_svg(series, start, f"{title}: adopters from month {start} and their comparison"))
    for problem in result["problems"]:
        parts.append(f"<p class='bad'>Not run: {escape(problem)}</p>")
    return page(f"Evaluation: {spec.name}", "".join(parts))


def _verdict(e: Estimate) -> str:
    d = e.diagnostics
    if e.method == "staggered_did":
        return (f"pre-trends {'parallel' if d['parallel_pre_trends'] else 'DIFFER'} (p = "
                f"{d['pretrend_p_value']})")
    if e.method == "matched_cohort":
        return (f"balance {'good' if d['balanced'] else 'POOR'} (largest standardised difference "
                f"{d['max_abs_smd_after_matching']:.2f})")
    if e.method in ("synthetic_did", "synthetic_control"):
        few = ("" if d["reliable_interval"]
               else f"; only {d['distinct_placebo_assignments']} placebo draws: interval UNRELIABLE")
        return (f"pre-period fit {'good' if d['good_pre_period_fit'] else 'POOR'} (misfit "
                f"{d['pre_period_misfit_to_noise']:.2f} times the noise){few}")
    return "no comparison group"


def write_outputs(out: Path, spec: EvaluationSpec, result: dict[str, Any], dropped: list[str],
                  n_units: int) -> tuple[Path, Path]:
    """result.json and report.html in `out` (owner-only, as every output with small numbers may be)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "result.json", out / "report.html"
    write_private(json_path, json.dumps(result_json(spec, result, dropped), indent=2) + "\n")
    write_private(html_path, report_html(spec, result, n_units))
    return json_path, html_path
