"""The pages: public view, sign-in, overview, variation (catalogue, indicator, CSV) and case finding.

Aggregates for roles without direct care go through `openphm.governance.disclosure` here, before a
template or a CSV sees them; person-level routes check the role first and audit every view and export.
"""

from __future__ import annotations

import csv
import io
import re
import urllib.parse

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from openphm.governance.disclosure import REDACTED, protect_frame
from openphm.lists.run import DIRECT_CARE, EXPORT_COLUMNS, ListError, identified_list
from openphm.measures.definitions import load_measures
from openphm.measures.report import funnel_chart
from openphm.web import data
from openphm.web.app import render
from openphm.web.security import check_csrf, current_user, require
from openphm.web.users import authenticate

router = APIRouter(dependencies=[Depends(check_csrf)])
LEVELS = ("practice", "pcn", "place", "ics")
PUBLIC_MEASURES = ("emergency_admissions_dsr", "emergency_admissions_75plus", "ae_attendances",
                   "deaths_in_hospital")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _db(request: Request) -> data.Database:
    return request.app.state.db


def _protected_results(request: Request, measure_id: str, level: str) -> pl.DataFrame:
    """An indicator's results at a level, counts protected, the value recomputed from them."""
    m = load_measures().get(measure_id)
    if m is None or level not in LEVELS:
        raise HTTPException(status_code=404, detail="No such indicator or level.")
    rows = data.measure_results(_db(request), measure_id, level)
    if rows.height == 0:
        return rows
    protected = protect_frame(rows, ["numerator", "denominator"],
                              {"value": ("numerator", "denominator", float(m.multiplier))},
                              within=["period"] if level != "ics" else ())
    return protected


# ---- public and sign-in ---------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
def public_view(request: Request) -> HTMLResponse:
    """The shared outcome measures for citizens and boards: ICS figures, aggregate and protected."""
    measures = load_measures()
    cards = []
    for mid in PUBLIC_MEASURES:
        if mid not in measures:
            continue
        rows = _protected_results(request, mid, "ics")
        if rows.height:
            latest = rows.sort("period_start").row(-1, named=True)
            cards.append({"measure": measures[mid], "row": latest})
    return render(request, "public.html", {"cards": cards})


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "/overview") -> HTMLResponse:
    """The sign-in form."""
    return render(request, "sign_in.html", {"next": _safe_next(next), "error": None})


def _safe_next(target: str) -> str:
    """Only a path on this site (no scheme, no host, no '//')."""
    parsed = urllib.parse.urlsplit(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/overview"
    return target


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """Check the password; on success start a fresh session (no fixation) and go on."""
    form = await request.form()
    username, password = str(form.get("username", ""))[:64], str(form.get("password", ""))[:1024]
    user = authenticate(request.app.state.db_path, username, password)
    if user is None:
        return render(request, "sign_in.html", {"next": _safe_next(str(form.get("next", "/overview"))),
                                                "error": "The user name or password is wrong, or the account is "
                                                         "locked for 15 minutes after 5 wrong passwords."},
                      status=401)
    request.session.clear()
    request.session["user"] = user.username
    return RedirectResponse(_safe_next(str(form.get("next", "/overview"))), status_code=303)


@router.post("/sign-out")
def sign_out(request: Request) -> RedirectResponse:
    """End the session."""
    request.session.clear()
    return RedirectResponse("/", status_code=303)


# ---- overview -------------------------------------------------------------------------------------

@router.get("/overview", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    """Population pyramid (protected) and data freshness."""
    require(request)
    db = _db(request)
    on = data.population_date(db)
    pyramid = data.population_pyramid(db, on) if on else pl.DataFrame()
    if pyramid.height:
        pyramid = protect_frame(pyramid, ["people"])
    return render(request, "overview.html", {"on": on, "pyramid": pyramid.rows(named=True) if pyramid.height else [],
                                             "build": data.latest_build(db)})


# ---- variation ------------------------------------------------------------------------------------

@router.get("/variation", response_class=HTMLResponse)
def catalogue(request: Request, q: str = "") -> HTMLResponse:
    """The indicator catalogue, searchable by words in the title or why it matters."""
    require(request)
    words = [w for w in q.lower().split() if w][:10]
    found = [m for m in load_measures().values()
             if all(w in (m.data.get("title", "") + " " + m.data.get("why_it_matters", "")).lower() for w in words)]
    return render(request, "catalogue.html", {"q": q[:100], "measures": found})


@router.get("/variation/{measure_id}", response_class=HTMLResponse)
def indicator(request: Request, measure_id: str, level: str = "practice") -> HTMLResponse:
    """One indicator: definition, funnel plot of the latest year (protected counts), league table."""
    require(request)
    rows = _protected_results(request, measure_id, level)
    m = load_measures()[measure_id]
    chart, latest, period = "", [], None
    if rows.height:
        period = rows.sort("period_start")["period"][-1]
        latest = rows.filter(pl.col("period") == period).sort("value", descending=True, nulls_last=True)
        shown = latest.filter(pl.col("denominator").is_not_null() & (pl.col("denominator") > 0)
                              & pl.col("numerator").is_not_null())
        if level != "ics" and m.standardisation == "crude":
            label = level.upper() if level == "pcn" else level.title()
            drawn = funnel_chart(m, shown.select("unit", "numerator", "denominator").to_pandas(),
                                 f"{label}s, {period}")
            chart = drawn[0] if drawn else ""
        latest = latest.rows(named=True)
    return render(request, "indicator.html", {"m": m, "level": level, "levels": LEVELS, "period": period,
                                              "rows": latest, "chart": chart})


@router.get("/variation/{measure_id}/results.csv")
def indicator_csv(request: Request, measure_id: str, level: str = "practice") -> Response:
    """Every period's results at a level, as CSV, counts protected (redacted cells say so)."""
    require(request)
    rows = _protected_results(request, measure_id, level)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["measure_id", "level", "period", "unit", "numerator", "denominator", "value"])
    for r in rows.rows(named=True):
        writer.writerow([measure_id, level, r["period"], r["unit"],
                         REDACTED if r["numerator"] is None else r["numerator"],
                         REDACTED if r["denominator"] is None else r["denominator"],
                         "" if r["value"] is None else f"{r['value']:.4f}"])
    name = f"{measure_id}_{level}.csv"
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# ---- case finding (direct care) --------------------------------------------------------------------

@router.get("/case-finding", response_class=HTMLResponse)
def case_finding(request: Request) -> HTMLResponse:
    """The lists at the clinician's own practices, with how many people are on each."""
    user = require(request, direct_care=True)
    practices = data.practices_of(_db(request), user.scope)
    sizes = data.list_sizes(_db(request), practices)
    return render(request, "case_finding.html", {"sizes": sizes.rows(named=True) if sizes.height else [],
                                                 "practices": sorted(practices)})


def _own_practice(request: Request, list_id: str, practice: str):
    user = require(request, direct_care=True)
    if not (_CODE.match(list_id) and _CODE.match(practice)):
        raise HTTPException(status_code=404, detail="No such list or practice.")
    if practice not in data.practices_of(_db(request), user.scope):
        raise HTTPException(status_code=403, detail="That practice is outside your direct-care scope.")
    return user


@router.get("/case-finding/{list_id}/{practice}", response_class=HTMLResponse)
def case_list(request: Request, list_id: str, practice: str) -> HTMLResponse:
    """One of the clinician's practice lists, with NHS numbers and reasons; the view is audited."""
    user = _own_practice(request, list_id, practice)
    db = _db(request)
    try:
        with db.cursor() as cur:
            rows = identified_list(cur, db.store, list_id, practice, DIRECT_CARE, f"web:{user.username}", "list_view")
    except ListError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    people = [dict(zip(EXPORT_COLUMNS, r, strict=True)) for r in rows]
    return render(request, "case_list.html", {"list_id": list_id, "practice": practice, "people": people})


@router.get("/case-finding/{list_id}/{practice}/export.csv")
def case_list_csv(request: Request, list_id: str, practice: str) -> Response:
    """The list as CSV for the MDT; the export is audited before it is sent."""
    user = _own_practice(request, list_id, practice)
    db = _db(request)
    try:
        with db.cursor() as cur:
            rows = identified_list(cur, db.store, list_id, practice, DIRECT_CARE, f"web:{user.username}",
                                   "list_export")
    except ListError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{list_id}_{practice}.csv"',
                             "Cache-Control": "no-store"})


@router.get("/whoami")
def whoami(request: Request) -> dict:
    """The signed-in user's name and role (for scripts and tests)."""
    user = current_user(request)
    return {"user": None} if user is None else {"user": user.username, "role": user.role,
                                                "scope": list(user.scope)}
