"""The web application on a small demo installation: roles, sign-in, CSRF, lock-out, security
headers, audit of person-level views, and disclosure control at every exit (every route walked)."""

from __future__ import annotations

import csv
import io
import re

import polars as pl
import pytest

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from openphm.governance.disclosure import REDACTED, protect_count, small_counts  # noqa: E402
from openphm.measures.definitions import load_measures  # noqa: E402
from openphm.web.app import create_app  # noqa: E402
from openphm.web.users import MAX_FAILURES  # noqa: E402

PASSWORD = "correct horse battery"  # the users' password (tests/e2e/conftest.py)
COUNT = re.compile(r'data-count="([^"]+)"(?: data-kind="([^"]+)")?')


@pytest.fixture(scope="module")
def app(web_installation):
    application = create_app(web_installation.db)
    application.state.test_practices = web_installation.practices
    yield application
    application.state.db.close()


def _client(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


def _csrf(client: TestClient, path: str = "/sign-in") -> str:
    page = client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _signed_in(app, username: str) -> TestClient:
    client = _client(app)
    got = client.post("/sign-in", data={"username": username, "password": PASSWORD, "next": "/overview",
                                        "csrf_token": _csrf(client)})
    assert got.status_code == 303 and got.headers["location"] == "/overview", got.text[:500]
    return client


def _protected_counts_only(text: str) -> list[str]:
    """Counts on a page that a role without direct care must not see: any non-protected count."""
    bad = []
    for value, kind in COUNT.findall(text):
        if kind == "direct-care":
            bad.append(f"direct-care count {value}")
        elif value != REDACTED and small_counts([int(value)]):
            bad.append(value)
    return bad


def test_the_public_view_needs_no_sign_in_and_shows_only_protected_counts(app):
    page = _client(app).get("/")
    assert page.status_code == 200
    counts = COUNT.findall(page.text)
    assert counts, "the public view shows the shared measures with their counts"
    assert not _protected_counts_only(page.text)
    shown = [int(v) for v, _ in counts if v != REDACTED]
    assert all(v == 0 or (v >= 10 and v % 5 == 0) for v in shown)


def test_every_response_carries_the_security_headers(app):
    for path in ("/", "/sign-in", "/static/nhsuk.min.css"):
        headers = _client(app).get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "http" not in csp and "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"


def test_the_stylesheet_loads_nothing_from_elsewhere(app):
    css = _client(app).get("/static/nhsuk.min.css").text
    assert "@font-face" not in css
    assert not re.search(r"url\((?![\"']?data:)", css)


def test_signing_in_needs_the_form_token_and_a_right_password(app):
    client = _client(app)
    refused = client.post("/sign-in", data={"username": "ann", "password": PASSWORD, "next": "/overview"})
    assert refused.status_code == 403  # no CSRF token
    wrong = client.post("/sign-in", data={"username": "ann", "password": "not it at all", "csrf_token": _csrf(client)})
    assert wrong.status_code == 401
    assert "user" not in client.get("/whoami").json() or client.get("/whoami").json()["user"] is None
    # an off-site `next` is not followed
    got = client.post("/sign-in", data={"username": "ann", "password": PASSWORD, "next": "https://evil.example/",
                                        "csrf_token": _csrf(client)})
    assert got.status_code == 303 and got.headers["location"] == "/overview"
    cookie = got.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_an_account_locks_after_repeated_wrong_passwords(app):
    client = _client(app)
    for _ in range(MAX_FAILURES):
        assert client.post("/sign-in", data={"username": "lou", "password": "wrong password!",
                                             "csrf_token": _csrf(client)}).status_code == 401
    locked = client.post("/sign-in", data={"username": "lou", "password": PASSWORD, "csrf_token": _csrf(client)})
    assert locked.status_code == 401  # the right password is refused while locked


def test_signing_out_needs_the_token_too(app):
    client = _signed_in(app, "ann")
    assert client.post("/sign-out").status_code == 403
    assert client.post("/sign-out", data={"csrf_token": _csrf(client, "/overview")}).status_code == 303
    assert client.get("/whoami").json()["user"] is None


def test_pages_need_a_sign_in(app):
    for path in ("/overview", "/variation", "/case-finding"):
        got = _client(app).get(path)
        assert got.status_code == 303 and got.headers["location"].startswith("/sign-in")


def test_an_analyst_sees_a_funnel_plot_and_downloads_a_protected_csv_equal_to_the_exact_counts_protected(app):
    client = _signed_in(app, "ann")
    page = client.get("/variation/elective_admissions?level=practice")
    assert page.status_code == 200 and "<svg" in page.text and "<circle" in page.text
    assert not _protected_counts_only(page.text)
    got = client.get("/variation/elective_admissions/results.csv?level=practice")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert rows
    exact = app.state.db.frame("SELECT period, unit, numerator, denominator FROM measures.measure_result WHERE "
                               "measure_id = 'elective_admissions' AND level = 'practice' "
                               "AND period_type = 'financial_year'")
    by_key = {(p, u): (n, d) for p, u, n, d in exact.iter_rows()}
    redacted_cells = 0
    for r in rows:
        n, d = by_key[(r["period"], r["unit"])]
        for shown, value in ((r["numerator"], n), (r["denominator"], d)):
            if shown == REDACTED:
                redacted_cells += 1
                # redacted: small, or the second cell redacted in its period so the first cannot be recovered
                assert protect_count(value) is None or value >= 8
            else:
                assert int(shown) == protect_count(value)


def test_roles_without_direct_care_get_403_on_every_person_level_route(app):
    own, _ = app.state.test_practices
    for name in ("ann", "bob", "ada"):
        client = _signed_in(app, name)
        for path in ("/case-finding", f"/case-finding/frailty_mdt/{own}",
                     f"/case-finding/frailty_mdt/{own}/export.csv"):
            assert client.get(path).status_code == 403, (name, path)


def _audit(app) -> pl.DataFrame:
    return app.state.db.frame("SELECT action, outcome, stated_user, details FROM audit.log ORDER BY seq")


def test_a_clinician_sees_and_exports_their_own_practice_list_and_every_access_is_audited(app):
    own, other = app.state.test_practices
    list_id = app.state.db.frame("SELECT list_id FROM lists.member WHERE practice_code = ? LIMIT 1",
                                 [own])["list_id"][0]
    client = _signed_in(app, "cat")
    before = _audit(app).height
    page = client.get(f"/case-finding/{list_id}/{own}")
    assert page.status_code == 200
    exported = client.get(f"/case-finding/{list_id}/{own}/export.csv")
    assert exported.status_code == 200 and exported.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    members = app.state.db.frame("SELECT count(*) AS n FROM lists.member WHERE list_id = ? AND practice_code = ?",
                                 [list_id, own])["n"][0]
    assert len(rows) == members and all(re.fullmatch(r"\d{10}", r["nhs_number"]) for r in rows)
    assert client.get(f"/case-finding/{list_id}/{other}/export.csv").status_code == 403
    assert client.get(f"/case-finding/{list_id}/{other}").status_code == 403
    log = _audit(app).slice(before)
    assert log.select("action", "outcome", "stated_user").rows() == [
        ("list_view", "allowed", "web:cat"), ("list_export", "allowed", "web:cat")]
    assert all(f'"people": {members}' in d or f'"people":{members}' in d for d in log["details"])


def _get_routes() -> list[str]:
    """Every GET route of the pages (their router; FastAPI keeps an included router whole)."""
    from openphm.web.pages import router

    paths = []
    for route in router.routes:
        if "GET" not in getattr(route, "methods", set()) or route.path.startswith("/static"):
            continue
        if "{measure_id}" in route.path:
            for mid in load_measures():
                for level in ("practice", "pcn", "place", "ics"):
                    paths.append(route.path.replace("{measure_id}", mid) + f"?level={level}")
        elif "{" not in route.path:
            paths.append(route.path)
    return paths


@pytest.mark.parametrize("who", [None, "bob", "ann"])
def test_no_route_gives_a_role_without_direct_care_an_unprotected_count(app, who):
    client = _client(app) if who is None else _signed_in(app, who)
    paths = _get_routes()
    assert len(paths) > 50
    for path in paths:
        got = client.get(path)
        assert got.status_code in (200, 303, 403, 404), (path, got.status_code)
        if got.headers.get("content-type", "").startswith("text/csv"):
            for r in csv.DictReader(io.StringIO(got.text)):
                for col in ("numerator", "denominator"):
                    assert r[col] == REDACTED or not small_counts([int(r[col])]), (path, r)
        else:
            assert not _protected_counts_only(got.text), path
