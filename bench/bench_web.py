"""The web application under load: 20 clients at once on an installation of OPENPHM_BENCH_PEOPLE people
(default 1,000,000; OPENPHM_BENCH_DB to reuse a built person record; OPENPHM_BENCH_KEEP=1 keeps
the installation built).

The installation is built as `openphm demo` builds one (ingest, link, build, indicators, segments,
risk, lists), then `openphm serve` runs in its own process (uvicorn, one worker) and Debian's `wrk`
(a load generator in C, so that the clients take little of the 2 cores) keeps 20 connections busy,
each signed in as an analyst or a clinician: first each kind of page alone (the overview, the indicator
catalogue, indicator pages at every level, their CSVs, the population pages, a case-finding list,
patients' records) for OPENPHM_BENCH_WEB_SECONDS / 4 seconds (at least 15: runs of 7.5 s put a page's
95th centile up to 0.1 s away from longer runs in the same hour), then the mix for
OPENPHM_BENCH_WEB_SECONDS (default 60). Per run: requests, errors, median, 95th centile and slowest.
Goal: 95th centile under 300 ms and no errors.

Baseline, measured in the same run against the same server: the vendored stylesheet (a static file:
what the server and the clients cost with no page work at all).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

from stages import person_record, run_stage

PEOPLE = int(os.environ.get("OPENPHM_BENCH_PEOPLE", "1000000"))
SECONDS = float(os.environ.get("OPENPHM_BENCH_WEB_SECONDS", "60"))
CLIENTS = 20
PASSWORD = "bench password long enough"
GOAL_MS = 300


def _installation(work: Path) -> tuple[Path, list[str], str, str]:
    """A built installation with indicators, segments, risk scores and lists, and two web users; returns
    the database, the indicator ids, the clinician's practice and a list at it."""
    db = person_record(work, PEOPLE)
    on = ["--db", str(db)]
    reports = db.parent / "reports"
    reuse = os.environ.get("OPENPHM_BENCH_DB") and (reports / "risk" / "report.json").exists()
    for args in [] if reuse else (["measures", "run", *on], ["segments", "run", *on], ["risk", "train", *on, "--out",
                 str(reports / "risk")], ["risk", "score", *on, "--models", str(reports / "risk")],
                 ["lists", "run", *on]):
        run_stage(args)
    con = duckdb.connect(str(db), read_only=True)
    practice, list_id = con.execute("SELECT practice_code, list_id FROM lists.member GROUP BY ALL "
                                    "ORDER BY count(*) DESC LIMIT 1").fetchone()
    measures = [r[0] for r in con.execute("SELECT DISTINCT measure_id FROM measures.measure_result").fetchall()]
    con.close()
    env = {**os.environ, "OPENPHM_PASSWORD": PASSWORD}
    for name, role, scope in (("analyst", "analyst", []), ("clinician", "clinician", ["--scope", practice])):
        subprocess.run([sys.executable, "-c", "from openphm.cli import main; main()", "users", "add", name, "--role",
                        role, *scope, "--db", str(db), "--password-env", "OPENPHM_PASSWORD"], check=not reuse,
                       env=env, capture_output=True)
    return db, measures, practice, list_id


def _serve(db: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", "from openphm.cli import main; main()", "serve", "--db", str(db),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/static/openphm.css", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("openphm serve did not start: " + proc.stderr.read().decode()[-2000:])


def _wait_for_warm_up(base: str) -> float:
    """Seconds until the server reports (`/health`) that it has computed every aggregate page and made
    the record pages' row store: the clock starts on the steady state, not while the warm-up still
    shares the cores."""
    started = time.monotonic()
    while True:
        health = httpx.get(base + "/health", timeout=60).json()
        if health["pages_ready"] and health.get("records_ready", True):
            return time.monotonic() - started
        if time.monotonic() - started > 1800:
            raise RuntimeError("the server's warm-up did not finish in 30 minutes")
        time.sleep(1)


def _cookie(base: str, username: str) -> str:
    """A signed-in session's cookie header (the sign-in form, its CSRF token and the password)."""
    with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").text).group(1)
        got = client.post("/sign-in", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                            "next": "/overview"})
        if got.status_code != 303:
            raise RuntimeError(f"sign-in as {username} failed: {got.status_code}")
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def _pages(measures: list[str], practice: str, list_id: str, patients: list[str]) -> dict[str, list[str]]:
    levels = ("practice", "pcn", "place", "ics")
    return {
        "static stylesheet (baseline)": ["/static/nhsuk.min.css"],
        "overview": ["/overview"],
        "indicator catalogue": ["/variation", "/variation?q=emergency"],
        "indicator page": [f"/variation/{m}?level={lv}" for m in measures for lv in levels],
        "indicator CSV": [f"/variation/{m}/results.csv?level=practice" for m in measures],
        "population pages": ["/population/segments", "/population/risk", "/population/linkage",
                             "/population/data-quality"],
        "case-finding list (clinician)": [f"/case-finding/{list_id}/{practice}"],
        "patient record (clinician)": [f"/patient/{p}" for p in patients],
    }


# wrk's script: each request takes the next path of the list (from a random start per connection's
# thread), and the summary line gives requests, errors and latency centiles in microseconds.
WRK_SCRIPT = """
local paths = {%s}
local i = math.random(#paths)
wrk.headers["Cookie"] = "%s"
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(95), latency.max))
end
"""


def _wrk(base: str, cookie: str, paths: list[str], clients: int, seconds: float, folder: Path) -> subprocess.Popen:
    """wrk (Debian's package: a C load generator, so the clients cost the 2 cores little) with `clients`
    connections, each a client sending its next request as soon as the last is answered."""
    script = folder / f"paths-{len(list(folder.iterdir()))}.lua"
    script.write_text(WRK_SCRIPT % (", ".join(f'"{p}"' for p in paths), cookie))
    return subprocess.Popen(["wrk", "-t1", f"-c{clients}", f"-d{seconds:.0f}s", "--timeout", "30s", "-s", str(script),
                             base], stdout=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> tuple[int, int, float, float, float]:
    """(requests, errors, median ms, 95th centile ms, slowest ms) from a finished wrk."""
    out, _ = proc.communicate(timeout=600)
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {out[-1000:]}")
    n, status_errors, socket_errors, p50, p95, top = (int(x) for x in line.split()[1:])
    return n, status_errors + socket_errors, p50 / 1000, p95 / 1000, top / 1000


def _each_alone() -> float:
    """Seconds each kind of page runs alone."""
    return max(15.0, SECONDS / 4)


def _load(base: str, pages: dict[str, list[str]], folder: Path) -> list[tuple]:
    """Every page kind alone under CLIENTS clients, then the mix: 15 analysts on the aggregate pages and
    5 clinicians on the person-level pages at the same time. Rows: (what, clients, wrk's result)."""
    cookies = {"analyst": _cookie(base, "analyst"), "clinician": _cookie(base, "clinician")}
    for kind, paths in pages.items():  # every path answers 200 before the clock starts
        who = "clinician" if kind.endswith("(clinician)") else "analyst"
        for path in paths:
            got = httpx.get(base + path, headers={"Cookie": cookies[who]}, timeout=600)
            if got.status_code != 200:
                raise RuntimeError(f"{path}: {got.status_code} for the {who}")
    rows = []
    each = _each_alone()
    for kind, paths in pages.items():
        who = "clinician" if kind.endswith("(clinician)") else "analyst"
        rows.append((kind, CLIENTS, _result(_wrk(base, cookies[who], paths, CLIENTS, each, folder))))
    aggregate = [p for k, ps in pages.items() if not k.endswith("(clinician)") for p in ps]
    personal = [p for k, ps in pages.items() if k.endswith("(clinician)") for p in ps]
    mixed = [_wrk(base, cookies["analyst"], aggregate, 15, SECONDS, folder),
             _wrk(base, cookies["clinician"], personal, 5, SECONDS, folder)]
    rows.append(("mix: analysts on every aggregate page", 15, _result(mixed[0])))
    rows.append(("mix: clinicians on lists and records, at the same time", 5, _result(mixed[1])))
    return rows


def run() -> str:
    if shutil.which("wrk") is None:
        raise RuntimeError("the web benchmark needs wrk: apt-get install wrk (make bench does)")
    work = Path(tempfile.mkdtemp(prefix="openphm-bench-web-"))
    try:
        db, measures, practice, list_id = _installation(work)
        con = duckdb.connect(str(db), read_only=True)
        patients = [r[0] for r in con.execute("SELECT CAST(person_id AS VARCHAR) FROM lists.member WHERE "
                                              "practice_code = ? ORDER BY person_id LIMIT 200", [practice]).fetchall()]
        people = con.execute("SELECT count(*) FROM record.person").fetchone()[0]
        con.close()
        server, base = _serve(db)
        warm_up = _wait_for_warm_up(base)
        scripts = Path(tempfile.mkdtemp(prefix="openphm-wrk-"))
        try:
            rows = _load(base, _pages(measures, practice, list_id, patients), scripts)
        finally:
            server.terminate()
            server.wait(30)
            shutil.rmtree(scripts, ignore_errors=True)
    finally:
        if os.environ.get("OPENPHM_BENCH_KEEP"):
            print(f"kept the installation in {work}", file=sys.stderr)
        elif not os.environ.get("OPENPHM_BENCH_DB"):
            shutil.rmtree(work, ignore_errors=True)
    lines = [f"| {what} | {clients} | {n:,} | {errors} | {p50:,.0f} ms | {p95:,.0f} ms | {top:,.0f} ms | "
             f"{'yes' if p95 < GOAL_MS and not errors else 'no'} |"
             for what, clients, (n, errors, p50, p95, top) in rows]
    return (f"{CLIENTS} clients at once on {people:,} people (`openphm serve`, one uvicorn worker, on this 2-core "
            "machine with the load generator). Load: Debian's `wrk`, one thread, each connection a client that "
            "sends its next request when the last is answered, signed in as an analyst or a clinician. First "
            f"each kind of page alone under {CLIENTS} clients for {_each_alone():.0f} s, then for {SECONDS:.0f} s "
            "the mix: 15 analysts cycling through every "
            "aggregate page while 5 clinicians open case-finding lists and patients' records (each an audited "
            f"view). Goal: 95th centile under {GOAL_MS} ms and no errors. Baseline: the static stylesheet, "
            f"served by the same process. The clock starts once the server reports (`/health`) that it has "
            f"computed every aggregate page in advance, which took {warm_up:,.0f} s after it started; "
            "patients' records cycle through 200 people at the clinician's practice.\n\n"
            "| pages | clients | requests | errors | median | 95th centile | slowest | meets the goal |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    print(run())
