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
from openphm.web import app as web_app  # noqa: E402
from openphm.web import record_store  # noqa: E402
from openphm.web.app import create_app  # noqa: E402
from openphm.web.users import MAX_FAILURES, add_user, remove_user, set_role  # noqa: E402

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


def test_a_page_rendered_once_still_carries_each_sessions_own_token_and_name(app):
    """Aggregate pages are rendered once and kept (`render_aggregate`): a second session of the same user,
    and another user, each get their own CSRF token (which signs them out) and their own name."""
    first, second, board = _signed_in(app, "ann"), _signed_in(app, "ann"), _signed_in(app, "bob")
    tokens = {}
    for name, client in (("first", first), ("second", second), ("board", board)):
        page = client.get("/variation/elective_admissions?level=pcn")
        assert page.status_code == 200
        tokens[name] = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert ("Signed in as <strong>bob</strong>" in page.text) == (name == "board")
        assert web_app._CSRF_MARK not in page.text  # the stand-in never leaves the server
    assert len(set(tokens.values())) == 3
    assert first.post("/sign-out", data={"csrf_token": tokens["second"]}).status_code == 403
    for name, client in (("first", first), ("second", second), ("board", board)):
        assert client.post("/sign-out", data={"csrf_token": tokens[name]}).status_code == 303


def test_a_role_changed_or_a_user_removed_takes_effect_on_the_next_request(app, web_installation):
    """The users file is read through connections each worker thread keeps open: a change made by
    `openphm users` while the server runs must still be seen at once."""
    add_user(web_installation.db, "dee", "clinician", PASSWORD, (web_installation.practices[0],))
    client = _signed_in(app, "dee")
    assert client.get("/case-finding").status_code == 200
    set_role(web_installation.db, "dee", "board")
    assert client.get("/case-finding").status_code == 403
    assert client.get("/overview").status_code == 200
    remove_user(web_installation.db, "dee")
    assert client.get("/overview").status_code == 303  # signed out: to the sign-in page


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
        person = app.state.db.frame("SELECT CAST(person_id AS VARCHAR) AS p FROM record.person "
                                    "WHERE practice_code = ? LIMIT 1", [own])["p"][0]
        for path in ("/case-finding", f"/case-finding/frailty_mdt/{own}",
                     f"/case-finding/frailty_mdt/{own}/export.csv", f"/patient/{person}"):
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


def _get_routes(app) -> list[str]:
    """Every GET route of the application that shows aggregates (person-level routes, with a list, a
    practice or a person in the path, are walked by the 403 test), with every indicator and level."""
    from fastapi.routing import APIRoute

    def routes(container):  # FastAPI keeps an included router whole, as `original_router`
        for route in container:
            inner = getattr(route, "original_router", None)
            yield from routes(inner.routes) if inner is not None else [route]

    paths = []
    for route in routes(app.routes):
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
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
    paths = _get_routes(app)
    assert len(paths) > 100 and {"/population/segments", "/population/risk", "/finance", "/evaluations"} <= set(paths)
    for path in paths:
        got = client.get(path)
        assert got.status_code in (200, 303, 403, 404), (path, got.status_code)
        if got.headers.get("content-type", "").startswith("text/csv"):
            standardised = load_measures()[path.split("/")[2]].standardisation
            for r in csv.DictReader(io.StringIO(got.text)):
                # an indirectly standardised ratio's denominator is its expected count, not a count of people
                for col in ("numerator",) if standardised == "isr_ics" else ("numerator", "denominator"):
                    assert r[col] == REDACTED or not small_counts([int(r[col])]), (path, r)
        else:
            assert not _protected_counts_only(got.text), path


def test_every_value_in_a_downloaded_csv_agrees_with_its_protected_counts(app):
    """Crude indicators: value = numerator / denominator x multiplier from the CSV's own (protected)
    cells, inside its interval, so no value carries the exact count."""
    client = _signed_in(app, "ann")
    checked = 0
    for mid, m in load_measures().items():
        if m.standardisation not in ("none", "crude"):
            continue
        got = client.get(f"/variation/{mid}/results.csv?level=practice")
        for r in csv.DictReader(io.StringIO(got.text)):
            if REDACTED in (r["numerator"], r["denominator"]) or int(r["denominator"]) == 0:
                assert r["value"] in (REDACTED, ""), (mid, r)
                continue
            value = float(r["value"])
            assert value == pytest.approx(m.multiplier * int(r["numerator"]) / int(r["denominator"]), abs=1e-3)
            assert float(r["lower95"]) <= value + 1e-3 and value <= float(r["upper95"]) + 1e-3
            checked += 1
    assert checked > 100


def test_a_standardised_rate_is_shown_as_computed_and_redacted_with_its_count(app):
    exact = app.state.db.frame("SELECT period, unit, numerator, value FROM measures.measure_result WHERE measure_id = "
                               "'emergency_admissions_dsr' AND level = 'ics' AND period_type = 'financial_year'")
    shown = {r["period"]: r for r in csv.DictReader(io.StringIO(
        _signed_in(app, "bob").get("/variation/emergency_admissions_dsr/results.csv?level=ics").text))}
    assert set(shown) == set(exact["period"])
    for period, _, numerator, value in exact.iter_rows():
        assert int(shown[period]["numerator"]) == protect_count(numerator)
        assert float(shown[period]["value"]) == pytest.approx(round(value, 1), abs=1e-9)


def test_the_indicator_page_has_its_spc_chart_icon_inequality_and_a_period_filter(app):
    client = _signed_in(app, "ann")
    periods = sorted(app.state.db.frame("SELECT DISTINCT period FROM measures.measure_result WHERE period_type = "
                                        "'financial_year'")["period"].to_list())
    page = client.get(f"/variation/emergency_admissions_75plus?level=practice&period={periods[0]}").text
    assert f'<option value="{periods[0]}" selected>' in page and f"Practices, {periods[0]}" in page
    assert "XmR chart" in page and "openphm-icon" in page and "Inequality by deprivation" in page
    assert re.search(r"aria-label='(common cause|special cause[^']*)'", page)
    place = client.get("/variation/emergency_admissions_75plus?level=place").text
    assert "with 95% intervals" in place or place.count("nhsuk-table__row") < 4  # a league table with 2+ places


def test_segment_sizes_shown_are_the_exact_sizes_protected(app):
    exact = app.state.db.frame("SELECT s.segment, d.label, s.people FROM segments.size s JOIN segments.definition d "
                               "USING (segment) WHERE month = (SELECT max(month) FROM segments.size)")
    page = _signed_in(app, "bob").get("/population/segments").text
    assert not _protected_counts_only(page)
    table = page.split("People in each segment")[1].split("</table>")[0]
    expected = {label: protect_count(people) for _, label, people in exact.iter_rows()}
    if sum(v is None for v in expected.values()) == 1:  # a lone redaction takes the next smallest with it
        expected[min((v, k) for k, v in expected.items() if v)[1]] = None
    for label, want in expected.items():
        row = table.split(f">{label}<")[1].split("</tr>")[0]
        assert COUNT.search(row).group(1) == (REDACTED if want is None else str(want)), label


def test_the_risk_model_card_shows_the_validation_report(app, web_installation):
    import json

    report = json.loads((web_installation.db.parent / "reports" / "risk" / "report.json").read_text())
    page = _signed_in(app, "ann").get("/population/risk").text
    best = report["models"][report["best_model"]]
    assert f"{best['auroc']:.3f}" in page and f"{best['calibration_slope']:.3f}" in page
    assert not _protected_counts_only(page)


def test_a_clinician_reads_a_record_in_scope_and_sees_who_has_seen_it(app):
    own, other = app.state.test_practices
    db = app.state.db
    mine = db.frame("SELECT CAST(person_id AS VARCHAR) AS p FROM record.person WHERE practice_code = ? "
                    "ORDER BY person_id LIMIT 1", [own])["p"][0]
    theirs = db.frame("SELECT CAST(person_id AS VARCHAR) AS p FROM record.person WHERE practice_code = ? "
                      "ORDER BY person_id LIMIT 1", [other])["p"][0]
    client = _signed_in(app, "cat")
    before = _audit(app).height
    first = client.get(f"/patient/{mine}")
    second = client.get(f"/patient/{mine}")
    assert first.status_code == 200 and second.status_code == 200
    conditions = db.frame("SELECT condition FROM record.condition WHERE CAST(person_id AS VARCHAR) = ?", [mine])
    for c in conditions["condition"]:
        assert c.replace("_", " ") in second.text
    seen = second.text.split("Who has seen this record")[1]
    assert seen.count("viewed this record") >= 2 and "web:cat" in seen
    assert client.get(f"/patient/{theirs}").status_code == 403
    assert client.get("/patient/not-a-person").status_code == 404
    log = _audit(app).slice(before)
    assert log.select("action", "outcome").rows() == [("record_view", "allowed")] * 2 + [("record_view", "refused")]
    assert all(mine in d for d in log["details"][:2]) and theirs in log["details"][2]


def test_a_clinician_scoped_to_a_pcn_reaches_every_practice_in_it_and_no_other(app, web_installation):
    own, _ = app.state.test_practices
    db = app.state.db
    pcn = db.frame("SELECT any_value(pcn_code) AS pcn FROM record.registration WHERE practice_code = ?",
                   [own])["pcn"][0]
    in_pcn = set(db.frame("SELECT DISTINCT practice_code FROM record.registration WHERE pcn_code = ?",
                          [pcn])["practice_code"])
    outside = db.frame("SELECT practice_code FROM lists.member WHERE practice_code NOT IN (SELECT practice_code FROM "
                       "record.registration WHERE pcn_code = ?) GROUP BY 1 ORDER BY 1 LIMIT 1", [pcn])
    add_user(web_installation.db, "pam", "clinician", PASSWORD, (pcn,))
    client = _signed_in(app, "pam")
    for _ in range(2):  # the PCN's practices are looked up once, then kept: the same answer both times
        page = client.get("/case-finding")
        assert page.status_code == 200 and all(p in page.text for p in in_pcn)
    list_id = db.frame("SELECT list_id FROM lists.member WHERE practice_code = ? LIMIT 1", [own])["list_id"][0]
    assert client.get(f"/case-finding/{list_id}/{own}").status_code == 200
    assert outside.height  # a practice in another PCN (the demo's PCNs are of one practice each)
    assert client.get(f"/case-finding/{list_id}/{outside['practice_code'][0]}").status_code == 403
    remove_user(web_installation.db, "pam")


def test_the_record_page_reads_the_same_from_its_row_store(app):
    """The SQLite copy the server makes as it starts (openphm.web.record_store) against DuckDB: the same
    page for a person with much activity, and the same rows, typed the same, for a sample of people."""
    own, _ = app.state.test_practices
    db = app.state.db
    busiest = db.frame("SELECT CAST(person_id AS VARCHAR) AS p FROM record.outpatient_appointment "
                       "WHERE practice_code = ? GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1", [own])["p"][0]
    client = _signed_in(app, "cat")
    before = client.get(f"/patient/{busiest}").text.split("Who has seen this record")[0]
    assert not db.records.ready.is_set()
    with db.cursor() as cur:
        db.records.make(cur)
    assert db.records.ready.is_set()
    after = client.get(f"/patient/{busiest}").text.split("Who has seen this record")[0]
    assert after == before and after.count("specialty") >= 10
    sample = db.frame("SELECT CAST(person_id AS VARCHAR) AS p FROM record.person USING SAMPLE 200 ROWS "
                      "(reservoir, 7)")["p"].to_list()
    never_made = record_store.RecordStore(db.records.folder / "unused")
    with db.cursor() as cur:
        for person_id in [*sample, busiest]:
            for name in record_store.KINDS:
                stored = record_store.rows_of(db.records, cur, name, person_id)
                read = record_store.rows_of(never_made, cur, name, person_id)
                assert stored == read and [list(map(type, r.values())) for r in stored] == \
                    [list(map(type, r.values())) for r in read], (name, person_id)


def test_a_list_view_audits_which_people_were_shown(app):
    own, _ = app.state.test_practices
    db = app.state.db
    list_id = db.frame("SELECT list_id FROM lists.member WHERE practice_code = ? LIMIT 1", [own])["list_id"][0]
    members = set(db.frame("SELECT CAST(person_id AS VARCHAR) AS p FROM lists.member WHERE list_id = ? AND "
                           "practice_code = ?", [list_id, own])["p"])
    client = _signed_in(app, "cat")
    page = client.get(f"/case-finding/{list_id}/{own}?sort=risk")
    assert page.status_code == 200
    import json

    details = json.loads(_audit(app)["details"][-1])
    assert set(details["person_ids"].split()) == members and details["people"] == len(members)
    risks = [float(x) for x in re.findall(r'nhsuk-table__cell--numeric">([0-9.]+)<', page.text)]
    assert risks == sorted(risks, reverse=True) and len(risks) == len(members)
