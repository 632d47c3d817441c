"""Finance and evaluation pages: spend and its concentration, fair-share budgets, risk-share simulations
and evaluations of new care models, read from the reports their commands wrote (`openphm costs`,
`openphm budgets`, `openphm riskshare simulate`, `openphm evaluate`) in the installation's reports
folder. A page says so when its report does not exist yet. Counts of people go through
`openphm.governance.disclosure`; pounds, shares and estimates are shown as the reports give them.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from openphm.governance.disclosure import protect_count
from openphm.web.app import render
from openphm.web.data import read_report
from openphm.web.security import check_csrf, require

router = APIRouter(dependencies=[Depends(check_csrf)])
MAX_REPORTS = 50  # result.json files looked at under the reports folder


def _results(reports: Path, key: str) -> list[dict]:
    """Every result.json one or two folders below `reports` whose document has `key`, newest first."""
    found = sorted([*reports.glob("*/result.json"), *reports.glob("*/*/result.json")],
                   key=lambda p: p.stat().st_mtime, reverse=True)[:MAX_REPORTS]
    docs = [(p, read_report(p)) for p in found]
    return [{"folder": p.parent.name, **d} for p, d in docs if d and key in d]


def _people(rows: list[dict]) -> list[dict]:
    return [{**r, "people": protect_count(r["people"]) if isinstance(r.get("people"), int) else None} for r in rows]


@router.get("/finance", response_class=HTMLResponse)
def finance(request: Request) -> HTMLResponse:
    """Spend per person, by setting and group, its concentration; fair-share budgets against spend."""
    require(request)
    reports: Path = request.app.state.reports
    costs = read_report(reports / "costs" / "costs.json")
    if costs:
        costs = {**costs, "people": protect_count(costs.get("people")) if isinstance(costs.get("people"), int)
                 else None, "by": {k: _people(v) for k, v in costs.get("by", {}).items()}}
    return render(request, "finance.html", {"costs": costs, "budgets": budgets_report(reports)})


def budgets_report(reports: Path) -> dict | None:
    """The budgets report with its counts of people protected (None if there is none)."""
    budgets = read_report(reports / "budgets" / "budgets.json")
    if not budgets:
        return None
    return {**budgets, "levels": {k: {**v, "units": _people(v.get("units", []))}
                                  for k, v in budgets.get("levels", {}).items()}}


@router.get("/finance/risk-share", response_class=HTMLResponse)
def risk_share(request: Request) -> HTMLResponse:
    """Each simulated agreement: per partner the probability of overspend and the spread of gain or loss."""
    require(request)
    sims = _results(request.app.state.reports, "partners")
    for s in sims:
        s["people"] = protect_count(s["people"]) if isinstance(s.get("people"), int) else None
    return render(request, "risk_share.html", {"simulations": sims})


@router.get("/evaluations", response_class=HTMLResponse)
def evaluations(request: Request) -> HTMLResponse:
    """Each evaluation of a new care model: the recommended estimate per outcome, with its interval."""
    require(request)
    return render(request, "evaluations.html", {"evaluations": evaluation_reports(request.app.state.reports)})


def evaluation_reports(reports: Path) -> list[dict]:
    """Every evaluation's result.json, newest first, with counts of people protected."""
    found = _results(reports, "recommended")
    for e in found:
        # units are organisations at the practice, PCN or place level (shown as they are); the matched
        # cohort and person-level evaluations count people (protected)
        rows = []
        for r in e.get("results", []):
            people = e.get("level") not in ("practice", "pcn", "place") or r.get("method") == "matched_cohort"
            rows.append({**r, "people": people, **{k: (protect_count(r[k]) if people else r[k])
                                                   if isinstance(r.get(k), int) else None
                                                   for k in ("n_treated", "n_control")}})
        e["results"] = rows
    return found
