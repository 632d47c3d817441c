"""Direct-care pages: case-finding lists for the clinician's own practices, their CSV export for the
MDT, and a person's record with who has seen it.

Only a clinician reaches these (`require(direct_care=True)`), and only for practices in their scope.
Every view or export of identifiable data writes an audit entry naming the people shown (their
pseudonyms) before anything is sent; a refusal for a practice outside the scope is audited too.
People who opted out of secondary use are still here: the National Data Opt-out covers planning and
research, not direct care.
"""

from __future__ import annotations

import csv
import io
import re

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from openphm import audit_access
from openphm.identity.pseudonym import PERSON_ID
from openphm.lists.run import DIRECT_CARE, EXPORT_COLUMNS, LIST_ORDERS, ListError, identified_list
from openphm.web import data, record_store
from openphm.web.app import render
from openphm.web.security import check_csrf, require

router = APIRouter(dependencies=[Depends(check_csrf)])
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ACCESSES_SHOWN = 50  # the latest views of a record listed on it (the page says how many there are in all)
ACCESSES_COUNTED = 1000  # counted exactly up to here ("more than 1,000" beyond: counting all reads the whole index)
PAGE_SIZE = 100  # people on one page of a case-finding list (the CSV export has everyone)


def _db(request: Request) -> data.Database:
    return request.app.state.db


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


def _identified(request: Request, list_id: str, practice: str, action: str, **page: object) -> list[tuple]:
    user = _own_practice(request, list_id, practice)
    db = _db(request)
    try:
        with db.cursor() as cur:
            return identified_list(cur, db.store, list_id, practice, DIRECT_CARE, f"web:{user.username}", action,
                                   with_person_id=True, **page)
    except ListError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


@router.get("/case-finding/{list_id}/{practice}", response_class=HTMLResponse)
def case_list(request: Request, list_id: str, practice: str, sort: str = "rank", page: int = 1) -> HTMLResponse:
    """One page of one of the clinician's practice lists (PAGE_SIZE people), with NHS numbers and reasons,
    sorted by rank or risk; the view is audited, naming the people on the page."""
    sort = sort if sort in LIST_ORDERS else "rank"
    _own_practice(request, list_id, practice)
    sizes = data.list_sizes(_db(request), {practice})
    total = sum(r["people"] for r in sizes.rows(named=True) if r["list_id"] == list_id) if sizes.height else 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = _identified(request, list_id, practice, "list_view", order=sort, limit=PAGE_SIZE,
                       offset=(page - 1) * PAGE_SIZE)
    people = [dict(zip((*EXPORT_COLUMNS, "person_id"), r, strict=True)) for r in rows]
    return render(request, "case_list.html", {"list_id": list_id, "practice": practice, "people": people,
                                              "sort": sort, "page": page, "pages": pages, "total": total,
                                              "first": (page - 1) * PAGE_SIZE + 1})


@router.get("/case-finding/{list_id}/{practice}/export.csv")
def case_list_csv(request: Request, list_id: str, practice: str) -> Response:
    """The list as CSV for the MDT; the export is audited before it is sent."""
    rows = _identified(request, list_id, practice, "list_export")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows(r[:-1] for r in rows)
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{list_id}_{practice}.csv"',
                             "Cache-Control": "no-store"})


@router.get("/patient/{person_id}", response_class=HTMLResponse)
def patient(request: Request, person_id: str) -> HTMLResponse:
    """A person's linked record for their clinician: conditions, risk and its reasons, recent hospital
    activity, and every recorded view of their identifiable data (this one included)."""
    user = require(request, direct_care=True)
    if not PERSON_ID.match(person_id):
        raise HTTPException(status_code=404, detail="No such person.")
    db = _db(request)
    with db.cursor() as cur:  # one cursor for the request
        person = data.identified_person(db, person_id, cur)
        if person is None or person["practice_code"] not in data.practices_of(db, user.scope):
            data.record_access(db, "record_view", person_id, DIRECT_CARE, f"web:{user.username}",
                               refused_because="outside the user's scope", cur=cur)
            raise HTTPException(status_code=403, detail="That person is not registered at a practice in your "
                                                        "direct-care scope.")
        data.record_access(db, "record_view", person_id, DIRECT_CARE, f"web:{user.username}", cur=cur)
        latest, seen = audit_access.accesses_of(cur, db.store, person_id, latest=ACCESSES_SHOWN,
                                                count_up_to=ACCESSES_COUNTED)
        accesses = [{"at": e.logged_at[:19].replace("T", " "), "who": e.stated_user or e.actor, "action": e.action,
                     "outcome": e.outcome} for e in latest]
        record = _record(db, cur, person_id)
    return render(request, "patient.html", {"person": person, "record": record, "accesses": accesses,
                                            "accesses_in_all": seen,
                                            "accesses_counted": ACCESSES_COUNTED})


def _record(db: data.Database, cur, person_id: str) -> dict[str, list[dict]]:
    """What the record page shows of a person's record: conditions, latest risk, recent activity."""
    return {name: record_store.rows_of(db.records, cur, name, person_id)
            for name in ("conditions", "risk", "spells", "ae", "outpatients")}
