"""The pages: public view, sign-in, overview and case finding (variation: `variation_pages`).

Aggregates for roles without direct care go through `openphm.governance.disclosure` here, before a
template or a CSV sees them; person-level routes check the role first and audit every view and export.
"""

from __future__ import annotations

import re
import urllib.parse

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from openphm.measures.definitions import load_measures
from openphm.web import data
from openphm.web.app import render, render_aggregate
from openphm.web.security import check_csrf, current_user
from openphm.web.users import authenticate
from openphm.web.variation_pages import latest_ics_value

router = APIRouter(dependencies=[Depends(check_csrf)])
PUBLIC_MEASURES = ("emergency_admissions_dsr", "emergency_admissions_75plus", "ae_attendances",
                   "deaths_in_hospital")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _db(request: Request) -> data.Database:
    return request.app.state.db


# ---- public and sign-in ---------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
def public_view(request: Request) -> HTMLResponse:
    """The shared outcome measures for citizens and boards: ICS figures, aggregate and protected."""

    def context() -> dict:
        measures = load_measures()
        cards = []
        for mid in PUBLIC_MEASURES:
            if mid not in measures:
                continue
            latest = latest_ics_value(request, measures[mid])
            if latest is not None:
                cards.append({"measure": measures[mid], "row": latest})
        return {"cards": cards}

    return render_aggregate(request, "public.html", context)


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
    # Argon2id is deliberately slow and memory-hard: verify in the thread pool, not on the event loop,
    # so that one sign-in does not hold up every other request
    user = await run_in_threadpool(authenticate, request.app.state.db_path, username, password)
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


@router.get("/health")
def health(request: Request) -> dict:
    """For a load balancer or a benchmark: the server answers, and whether it has finished computing
    every aggregate page in advance (until then the first views of some pages are slower), and whether
    record pages read their row store yet (until then they read the database, more slowly)."""
    db = _db(request)
    return {"status": "ok", "pages_ready": db.warmed.is_set(), "records_ready": db.records.ready.is_set()}


@router.get("/whoami")
def whoami(request: Request) -> dict:
    """The signed-in user's name and role (for scripts and tests)."""
    user = current_user(request)
    return {"user": None} if user is None else {"user": user.username, "role": user.role,
                                                "scope": list(user.scope)}
