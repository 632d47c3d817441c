"""The web application in real headless Chromium (Debian's, driven by Playwright): each role signs
in; an analyst sees a funnel plot and downloads a protected CSV; a clinician exports their own
practice's list and is refused another's; every count in the public view is 0, or a multiple of 5 of
at least 10, or suppressed. Screenshots of each main page go to `tests/artefacts/` (or
$OPENPHM_ARTEFACTS)."""

from __future__ import annotations

import csv
import io
import os
import socket
import threading
import time
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

from openphm.governance.disclosure import REDACTED  # noqa: E402
from openphm.web.app import create_app  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery"
ARTEFACTS = Path(os.environ.get("OPENPHM_ARTEFACTS", Path(__file__).parents[1] / "artefacts"))
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test "
                                                                 "installs it)")


@pytest.fixture(scope="module")
def server(web_installation):
    app = create_app(web_installation.db)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", web_installation
    srv.should_exit = True
    thread.join(10)
    app.state.db.close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _shot(page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def _sign_in(browser, base: str, username: str):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(f"{base}/sign-in")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/overview")
    assert f"Signed in as {username}" in page.inner_text("body")
    return context, page


def test_the_public_view_shows_only_protected_counts(server, browser):
    base, _ = server
    page = browser.new_page()
    page.goto(base + "/")
    _shot(page, "public")
    counts = page.eval_on_selector_all("[data-count]", "els => els.map(e => e.dataset.count)")
    assert counts
    shown = [int(c) for c in counts if c != REDACTED]
    assert all(v == 0 or (v >= 10 and v % 5 == 0) for v in shown), shown
    visible = page.eval_on_selector_all("[data-count]", "els => els.map(e => e.innerText)")
    assert all(t.replace(",", "").isdigit() or t.startswith("*") for t in visible)
    page.close()


@pytest.mark.parametrize("username", ["ada", "ann", "cat", "bob"])
def test_each_role_signs_in_and_sees_its_pages(server, browser, username):
    base, _ = server
    context, page = _sign_in(browser, base, username)
    _shot(page, f"overview-{username}")
    nav = page.inner_text("header")
    assert ("Case finding" in nav) == (username == "cat")
    context.close()


def test_an_analyst_sees_a_funnel_plot_and_downloads_a_protected_csv(server, browser):
    base, _ = server
    context, page = _sign_in(browser, base, "ann")
    page.goto(f"{base}/variation")
    _shot(page, "variation")
    page.get_by_label("Search indicators").fill("elective")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Elective admissions").first.click()
    assert page.locator("figure svg circle").count() >= 3
    _shot(page, "indicator")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download every year at this level (CSV)").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows
    for r in rows:
        for col in ("numerator", "denominator"):
            assert r[col] == REDACTED or (int(r[col]) == 0 or (int(r[col]) >= 10 and int(r[col]) % 5 == 0))
    context.close()


def test_a_clinician_exports_their_own_list_and_is_refused_another_practice(server, browser):
    base, installation = server
    own, other = installation.practices
    context, page = _sign_in(browser, base, "cat")
    page.goto(f"{base}/case-finding")
    _shot(page, "case-finding")
    page.locator(f"a[href$='/{own}']").first.click()
    _shot(page, "case-list")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export for the MDT (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert rows and all(len(r["nhs_number"]) == 10 for r in rows)
    list_id = page.url.rstrip("/").split("/")[-2]
    response = page.goto(f"{base}/case-finding/{list_id}/{other}")
    assert response.status == 403
    assert "outside your direct-care scope" in page.inner_text("main")
    page.goto(f"{base}/case-finding/{list_id}/{own}")
    page.locator("a[href^='/patient/']").first.click()
    assert "Who has seen this record" in page.inner_text("main") and "viewed this record" in page.inner_text("main")
    _shot(page, "patient-record")
    context.close()


MAIN_PAGES = {"population-segments": "/population/segments", "population-risk": "/population/risk",
              "population-linkage": "/population/linkage", "population-data-quality": "/population/data-quality",
              "finance": "/finance", "risk-share": "/finance/risk-share", "evaluations": "/evaluations"}


def test_an_analyst_walks_the_main_pages_and_filters_an_indicator_by_year(server, browser):
    base, _ = server
    context, page = _sign_in(browser, base, "ann")
    for name, path in MAIN_PAGES.items():
        response = page.goto(base + path)
        assert response.status == 200, path
        assert page.locator("h1").count() == 1
        _shot(page, name)
    page.goto(f"{base}/variation/emergency_admissions_75plus")
    years = page.eval_on_selector_all("#period option", "els => els.map(e => e.value)")
    assert len(years) >= 2
    page.get_by_label("Financial year").select_option(years[-1])
    page.get_by_label("Level").select_option("pcn")
    page.get_by_role("button", name="Show").click()
    assert f"period={years[-1]}" in page.url and "level=pcn" in page.url
    assert f"PCNs, {years[-1]}" in page.inner_text("main")
    assert page.locator("svg[aria-label*='cause']").count() == 1  # the Making Data Count icon
    _shot(page, "indicator-filtered")
    context.close()


def test_the_pages_can_be_used_from_the_keyboard(server, browser):
    base, _ = server
    page = browser.new_page()
    page.goto(base + "/sign-in")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.textContent")
    assert "Skip to main content" in focused
    page.keyboard.press("Enter")
    assert page.url.endswith("#maincontent")
    for _ in range(30):  # the sign-in form is reachable by Tab alone, and labelled
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "username":
            break
    assert page.evaluate("() => document.activeElement.labels[0].textContent").strip() == "User name"
    page.close()


def test_health_says_when_every_aggregate_page_has_been_computed(server):
    """`/health` (for a load balancer or the benchmark) answers at once, without sign-in, and reports
    the warm-up's end and the record pages' row store; it carries no figure."""
    import json
    import urllib.request

    base, _ = server
    deadline = time.monotonic() + 600
    while True:
        with urllib.request.urlopen(f"{base}/health", timeout=30) as got:
            body = json.loads(got.read())
        assert body["status"] == "ok" and set(body) == {"status", "pages_ready", "records_ready"}
        if (body["pages_ready"] and body["records_ready"]) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert body["pages_ready"] is True and body["records_ready"] is True
