"""The OpenPHM web application: `create_app(db)` gives a FastAPI app over one installation.

Server-rendered pages (Jinja2, autoescaped) in the NHS.UK design system's markup, with its CSS
vendored (`static/nhsuk.min.css`, no web fonts, no CDN) and no script at all yet. Routes are in
`openphm.web.pages` (one group per page area); protections in `openphm.web.security`; what pages
read in `openphm.web.data`. Every count shown to a role without direct care goes through
`openphm.governance.disclosure`, and is marked in the page (`data-count`) so that a test can check
every exit.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from openphm.governance.disclosure import REDACTED
from openphm.web.data import Database
from openphm.web.security import SecurityHeaders, csrf_token, current_user, session_secret

WEB = Path(str(resources.files("openphm.web")))
log = logging.getLogger("openphm.web")
SESSION_HOURS = 8
# stands in for the session's CSRF token in a cached page; swapped for the real token on every response
_CSRF_MARK = "csrf-" + secrets.token_hex(16)


def count_html(value: int | None, protected: bool = True) -> Markup:
    """A count as shown: marked with `data-count` (for the disclosure test), 'suppressed' when
    redacted; `protected=False` only for direct-care pages (exact counts of the user's own patients)."""
    if value is None:
        return Markup(f'<span class="openphm-count" data-count="{REDACTED}">'
                      '<span aria-hidden="true">*</span><span class="nhsuk-u-visually-hidden">'
                      'suppressed: fewer than 8</span></span>')
    kind = "protected" if protected else "direct-care"
    return Markup(f'<span class="openphm-count" data-count="{int(value)}" data-kind="{kind}">{int(value):,}</span>')


class _PageEnvironment(jinja2.Environment):
    """Jinja's environment, but `row.name` on a dict looks the key up first. Pages pass rows as dicts,
    and Jinja tries the attribute first, raising and catching an AttributeError per cell: a sixth of a
    record page's time holding the interpreter lock under load (measured with py-spy). A key that is
    also a dict method's name (items, get, ...) now gives the value: the pages' rows have none."""

    def getattr(self, obj: object, attribute: str) -> object:
        """`obj.attribute` in a template: a dict's item first, else as Jinja does it."""
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def templates() -> Jinja2Templates:
    """The page templates, with the count filter."""
    # autoescaped, as Jinja2Templates makes its own; the package's own files: not checked for changes
    env = _PageEnvironment(loader=jinja2.FileSystemLoader(str(WEB / "templates")), autoescape=True,
                           auto_reload=False)
    t = Jinja2Templates(env=env)
    t.env.filters["count"] = count_html
    t.env.globals["redacted"] = REDACTED
    return t


def create_app(db: Path, reports: Path | None = None) -> FastAPI:
    """The application for the installation whose analytic database is `db`, showing the reports in
    `reports` (default: the `reports` folder beside the database, as `openphm demo` writes it)."""
    from openphm.web import care_pages, finance_pages, pages, population_pages, variation_pages
    from openphm.web.api import create_api
    from openphm.web.fhir import create_fhir

    database = Database(Path(db))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        warm = threading.Thread(target=warm_up, args=(database,), name="openphm-warm-up", daemon=True)
        warm.start()
        yield
        database.stop = True
        warm.join(60)
        database.close()

    app = FastAPI(title="OpenPHM", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.db_path = Path(db)
    app.state.db = database
    app.state.reports = Path(reports) if reports else Path(db).parent / "reports"
    app.state.templates = templates()
    app.add_middleware(SessionMiddleware, secret_key=session_secret(Path(db)), session_cookie="openphm_session",
                       max_age=SESSION_HOURS * 3600, same_site="strict", https_only=False)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(WEB / "static")), name="static")
    app.mount("/api/v1", create_api(database, Path(db), app.state.reports))
    app.mount("/fhir", create_fhir(database, Path(db)))
    app.include_router(pages.router)
    app.include_router(variation_pages.router)
    app.include_router(population_pages.router)
    app.include_router(care_pages.router)
    app.include_router(finance_pages.router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        if exc.status_code == 401:
            return HTMLResponse(status_code=303, headers={"Location": f"/sign-in?next={request.url.path}"})
        return render(request, "error.html", {"status": exc.status_code, "detail": exc.detail},
                      status=exc.status_code)

    return app


def warm_up(database: Database) -> None:
    """Compute every aggregate page once, in the background, as the server starts: the overview, the
    population pages and each indicator at each level for its latest year, so that the first person to
    open a page does not wait for it. A failure here only means that page is computed on first use."""
    from openphm.measures.definitions import load_measures
    from openphm.web import population_pages, variation_pages

    pages = (population_pages.overview_context, population_pages.segments_context,
             population_pages.linkage_context, population_pages.data_quality_context)
    jobs = [lambda page=page: page(database) for page in pages]
    jobs += [lambda m=m, level=level: variation_pages.indicator_context(database, m, level)
             for m in load_measures().values() for level in variation_pages.LEVELS]
    started = time.monotonic()
    for job in jobs:
        if database.stop:
            return
        try:
            job()
        except Exception:  # a page that fails here fails again, visibly, when it is opened
            log.warning("warm-up: a page could not be computed in advance", exc_info=False)
    database.warmed.set()
    log.info("warm-up: %d aggregate pages computed in %.0f s", len(jobs), time.monotonic() - started)
    try:  # then the record pages' row store (found, or made in a minute or so); without it they read DuckDB
        with database.cursor() as cur:
            database.records.make(cur, stopping=lambda: database.stop)
    except Exception:
        log.warning("the record pages' row store could not be made; record pages read the database", exc_info=False)


def render(request: Request, template: str, context: dict, status: int = 200) -> HTMLResponse:
    """A page, with the signed-in user and the CSRF token for its forms."""
    user = current_user(request)
    base = {"request": request, "user": user, "csrf_token": csrf_token(request), "path": request.url.path}
    return request.app.state.templates.TemplateResponse(request, template, {**base, **context}, status_code=status)


def render_aggregate(request: Request, template: str, context: Callable[[], dict]) -> HTMLResponse:
    """An aggregate page, rendered once per address (path and query) and user for the life of the
    server (`Database.page`: the data cannot change while it serves), with the session's CSRF token
    put in on each response. Only for pages whose content depends on nothing but the address, the
    database and who is signed in; never for person-level pages."""
    user = current_user(request)
    who = (user.username, user.role, tuple(user.scope)) if user else None
    key = ("page", template, request.url.path, request.url.query, who)

    def compute() -> str:
        base = {"request": request, "user": user, "csrf_token": _CSRF_MARK, "path": request.url.path}
        return request.app.state.templates.get_template(template).render({**base, **context()})

    html = request.app.state.db.page(key, compute)
    return HTMLResponse(html.replace(_CSRF_MARK, csrf_token(request)))
