"""The JSON API under `/api/v1`, with its OpenAPI description at `/api/v1/openapi.json`.

The same governance as the pages: a bearer token (`openphm tokens create`) speaks for a user with
their role and scope, or no token for the public; every aggregate comes through
`openphm.measures.published` or `openphm.governance.disclosure`; person-level routes need a
direct-care role within scope and are audited before anything is sent. Errors are RFC 9457 problem
details (`application/problem+json`). Each token (or, without one, each client address) may make
`RATE_PER_MINUTE` requests a minute; beyond that, 429 with Retry-After.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from typing import Annotated, Any

import polars as pl
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from openphm.governance.disclosure import protect_frame
from openphm.lists.run import DIRECT_CARE, EXPORT_COLUMNS, ListError, identified_list
from openphm.measures.definitions import load_measures
from openphm.web import data
from openphm.web.tokens import TokenHolder, token_holder
from openphm.web.variation_pages import published

RATE_PER_MINUTE = 600
MAX_PAGE = 1000
LEVELS = ("practice", "pcn", "place", "ics", "age_band", "sex", "imd_quintile", "core20", "ethnic_group")
PERIOD_TYPES = ("financial_year", "month", "rolling_12_months")


class Indicator(BaseModel):
    """An indicator in the catalogue."""

    id: str
    title: str
    unit: str
    kind: str
    standardisation: str
    polarity: str
    levels: list[str]
    why_it_matters: str


class ResultRow(BaseModel):
    """One published result: counts protected (null = suppressed), values from the protected counts."""

    period_type: str
    period: str
    level: str
    unit: str
    numerator: int | None
    denominator: float | None
    value: float | None
    lower95: float | None
    upper95: float | None
    lower998: float | None
    upper998: float | None


class ResultsPage(BaseModel):
    """A page of results, with the total and the offset of the next page (null on the last)."""

    items: list[ResultRow]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class SegmentSize(BaseModel):
    """People in a segment in a month (protected; null = suppressed)."""

    month: str
    segment: str
    people: int | None


class ListSize(BaseModel):
    """How many people are on a list at a practice (direct care: exact)."""

    list_id: str
    practice_code: str
    people: int


class ListMember(BaseModel):
    """A person on a case-finding list, for direct care."""

    nhs_number: str | None
    practice_code: str
    rank: int
    risk: float | None
    reasons: str | None
    risk_factors: str | None
    as_of: str


class FileQuality(BaseModel):
    """A file received, with its rows (protected)."""

    source: str
    period: str | None
    file_name: str
    status: str
    rows_read: int | None
    rows_loaded: int | None
    rows_quarantined: int | None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str


def _problem_response(description: str) -> dict:
    return {"description": description, "model": Problem, "content": {"application/problem+json": {}}}


ERRORS = {401: _problem_response("The bearer token is unknown, expired or revoked"),
          403: _problem_response("The token's role or scope does not allow this"),
          404: _problem_response("No such indicator, level, list or report"),
          422: _problem_response("A parameter is not valid"),
          429: _problem_response("Too many requests from this token (see Retry-After)")}


class _Limiter:
    """A fixed one-minute window per key (token id or client address)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute, self.lock, self.windows = per_minute, threading.Lock(), {}

    def allow(self, key: str) -> tuple[bool, int]:
        now = time.monotonic()
        with self.lock:
            start, count = self.windows.get(key, (now, 0))
            if now - start >= 60:
                start, count = now, 0
            self.windows[key] = (start, count + 1)
            return count + 1 <= self.per_minute, max(1, int(60 - (now - start)))


def problem(status: int, title: str, detail: str, headers: dict | None = None) -> JSONResponse:
    """An RFC 9457 problem details response."""
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail},
                        status_code=status, media_type="application/problem+json", headers=headers)


def holder(request: Request) -> TokenHolder | None:
    """The token's holder (None: the public); 401 for a token that is unknown, expired or revoked; 429
    beyond the rate limit."""
    header = request.headers.get("authorization", "")
    found = None
    if header:
        scheme, _, token = header.partition(" ")
        found = token_holder(request.app.state.db_path, token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise HTTPException(status_code=401, detail="The bearer token is unknown, expired or revoked.",
                                headers={"WWW-Authenticate": "Bearer"})
    key = found.token_id if found else f"ip:{request.client.host if request.client else '-'}"
    allowed, retry = request.app.state.limiter.allow(key)
    if not allowed:
        raise HTTPException(status_code=429, detail=f"More than {RATE_PER_MINUTE} requests a minute.",
                            headers={"Retry-After": str(retry)})
    return found


Holder = Annotated[TokenHolder | None, Depends(holder)]


def _direct_care(who: TokenHolder | None) -> TokenHolder:
    if who is None or who.user is None or not who.user.direct_care:
        raise HTTPException(status_code=403, detail="Person-level data are for direct care: this token's role "
                                                    "does not include it.")
    return who


def create_api(database: data.Database, db_path, reports) -> FastAPI:
    """The API application (mounted at /api/v1 by `openphm.web.app.create_app`)."""
    api = FastAPI(title="OpenPHM API", version="1", docs_url=None, redoc_url=None, responses=ERRORS,
                  description="Indicators, segments, the risk model card, data quality and (direct care only) "
                              "case-finding lists. Aggregates are disclosure-controlled: counts of 1-7 null, "
                              "others rounded to 5. Authenticate with `Authorization: Bearer <token>`.")
    api.state.db, api.state.db_path, api.state.reports = database, db_path, reports
    api.openapi = lambda: _problems_as_problem_json(api)  # type: ignore[method-assign]
    api.state.limiter = _Limiter(RATE_PER_MINUTE)

    @api.exception_handler(StarletteHTTPException)
    async def http_problem(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {401: "Unauthorised", 403: "Forbidden", 404: "Not found", 429: "Too many requests"}
        return problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail),
                       getattr(exc, "headers", None))

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return problem(422, "Invalid request", f"{where}: {first.get('msg', 'invalid')}")

    @api.get("/indicators", response_model=list[Indicator])
    def indicators(_: Holder) -> list[Indicator]:
        """The indicator catalogue."""
        return [Indicator(id=m.id, title=m.title, unit=m.unit, kind=m.kind, standardisation=m.standardisation,
                          polarity=m.polarity, levels=list(m.levels), why_it_matters=m.why_it_matters)
                for m in load_measures().values()]

    @api.get("/indicators/{measure_id}", response_model=dict[str, Any])
    def indicator(measure_id: str, _: Holder) -> dict[str, Any]:
        """One indicator's whole definition, as declared."""
        m = load_measures().get(measure_id)
        if m is None:
            raise HTTPException(status_code=404, detail=f"No indicator {measure_id[:64]!r}.")
        return m.data

    @api.get("/indicators/{measure_id}/results", response_model=ResultsPage,
             responses={200: {"content": {"text/csv": {}}}})
    def results(measure_id: str, _: Holder, level: Annotated[str, Query(max_length=32)] = "practice",
                period_type: Annotated[str, Query(max_length=32)] = "financial_year",
                period: Annotated[str | None, Query(max_length=32)] = None,
                unit: Annotated[str | None, Query(max_length=64)] = None,
                limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100, offset: Annotated[int, Query(ge=0)] = 0,
                format: Annotated[str, Query(pattern="^(json|csv)$")] = "json"):
        """An indicator's published results at a level and period type, filtered and paged; `format=csv`
        for CSV (every matching row, no paging)."""
        m = load_measures().get(measure_id)
        if m is None:
            raise HTTPException(status_code=404, detail=f"No indicator {measure_id[:64]!r}.")
        if level not in LEVELS or period_type not in PERIOD_TYPES:
            raise HTTPException(status_code=404, detail="No such level or period type.")
        rows = published(database, m, (level,), period_type)
        if rows.height:
            rows = rows.with_columns(pl.col("numerator").cast(pl.Int64), pl.col("denominator").cast(pl.Float64))
        if rows.height and period:
            rows = rows.filter(pl.col("period") == period)
        if rows.height and unit:
            rows = rows.filter(pl.col("unit") == unit)
        if format == "csv":
            return _csv(rows, f"{measure_id}_{level}.csv")
        items = rows.slice(offset, limit).rows(named=True) if rows.height else []
        total = rows.height
        return ResultsPage(items=[ResultRow(**{k: r[k] for k in ResultRow.model_fields}) for r in items], total=total,
                           limit=limit, offset=offset, next_offset=offset + limit if offset + limit < total else None)

    @api.get("/segments", response_model=list[SegmentSize])
    def segments(_: Holder) -> list[SegmentSize]:
        """People in each segment each month (protected)."""
        from openphm.web.population_pages import segment_shares

        sizes = segment_shares(database)
        return [SegmentSize(month=str(r["month"]), segment=r["segment"], people=r["people"])
                for r in sizes.rows(named=True)] if sizes.height else []

    @api.get("/risk/model-card", response_model=dict[str, Any])
    def risk_model_card(_: Holder) -> dict[str, Any]:
        """The risk model's card, with every count protected (as on the page)."""
        from openphm.web.population_pages import risk_card

        report = data.read_report(reports / "risk" / "report.json")
        if not report or "best_model" not in report:
            raise HTTPException(status_code=404, detail="No risk model has been trained here yet.")
        return risk_card(report)

    @api.get("/data-quality", response_model=list[FileQuality])
    def data_quality(_: Holder) -> list[FileQuality]:
        """Every file received, with rows read, loaded and quarantined (protected)."""
        files = database.frame("SELECT source, period, file_name, status, rows_read, rows_loaded, rows_quarantined "
                               "FROM ingest.manifest ORDER BY source, period, loaded_at")
        if files.height == 0:
            return []
        shown = protect_frame(files, ["rows_read", "rows_loaded", "rows_quarantined"])
        return [FileQuality(**r) for r in shown.rows(named=True)]

    @api.get("/evaluations", response_model=list[dict[str, Any]])
    def evaluations(_: Holder) -> list[dict[str, Any]]:
        """Every evaluation report (`openphm evaluate`), counts of people protected, as the page shows."""
        from openphm.web.finance_pages import evaluation_reports

        return evaluation_reports(reports)

    @api.get("/budgets", response_model=dict[str, Any])
    def budgets(_: Holder) -> dict[str, Any]:
        """The fair-share budgets (`openphm budgets`), counts of people protected."""
        from openphm.web.finance_pages import budgets_report

        found = budgets_report(reports)
        if found is None:
            raise HTTPException(status_code=404, detail="No budgets have been computed here yet.")
        return found

    @api.get("/lists", response_model=list[ListSize])
    def lists(who: Holder) -> list[ListSize]:
        """The case-finding lists at the token user's practices (direct care only)."""
        user = _direct_care(who).user
        sizes = data.list_sizes(database, data.practices_of(database, user.scope))
        return [ListSize(**r) for r in sizes.rows(named=True)] if sizes.height else []

    @api.get("/lists/{list_id}/{practice}", response_model=list[ListMember])
    def list_members(list_id: Annotated[str, PathParam(max_length=64)],
                     practice: Annotated[str, PathParam(max_length=16)], who: Holder) -> list[ListMember]:
        """One list at one of the user's practices, with NHS numbers (direct care; audited first)."""
        user = _direct_care(who)
        if practice not in data.practices_of(database, user.user.scope):
            raise HTTPException(status_code=403, detail="That practice is outside this token's direct-care scope.")
        try:
            with database.cursor() as cur:
                rows = identified_list(cur, database.store, list_id, practice, DIRECT_CARE, user.name, "list_view")
        except ListError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        return [ListMember(**{**dict(zip(EXPORT_COLUMNS, r, strict=True)), "as_of": str(r[-1])}) for r in rows]

    return api


def _problems_as_problem_json(api: FastAPI) -> dict:
    """The OpenAPI description with every error response as application/problem+json only (FastAPI
    puts a response model under application/json)."""
    if api.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        spec = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
        for path in spec["paths"].values():
            for operation in path.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if "application/problem+json" in content and "application/json" in content:
                        content["application/problem+json"] = content.pop("application/json")
        api.openapi_schema = spec
    return api.openapi_schema


def _csv(rows: pl.DataFrame, name: str) -> Response:
    out = io.StringIO()
    columns = list(ResultRow.model_fields)
    writer = csv.writer(out)
    writer.writerow(columns)
    for r in rows.rows(named=True) if rows.height else []:
        writer.writerow(["" if r[c] is None else r[c] for c in columns])
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
