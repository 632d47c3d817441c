"""The web application under load: 20 clients at once on an installation of OPENPHM_BENCH_PEOPLE people
(default 1,000,000; OPENPHM_BENCH_DB to reuse a built person record; OPENPHM_BENCH_KEEP=1 keeps
the installation built).

The installation is built as `openphm demo` builds one (ingest, link, build, indicators, segments,
risk, lists), then `openphm serve` runs in its own process (uvicorn, one worker) and 20 client
threads each sign in as an analyst or a clinician and request a mix of pages for OPENPHM_BENCH_WEB_SECONDS
(default 60): the overview, the indicator catalogue, indicator pages at every level, their CSVs, the
population pages, a case-finding list and patients' records. Per page: requests, median and 95th
centile latency. Goal: 95th centile under 300 ms.

Baseline, measured in the same run against the same server: the vendored stylesheet (a static file:
what the server and the clients cost with no page work at all).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import httpx
import numpy as np

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


def _client(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").text).group(1)
    got = client.post("/sign-in", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                        "next": "/overview"})
    if got.status_code != 303:
        raise RuntimeError(f"sign-in as {username} failed: {got.status_code}")
    return client


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


def _load(base: str, pages: dict[str, list[str]]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {k: [] for k in pages}
    errors: list[str] = []
    lock = threading.Lock()
    clients = [_client(base, "clinician" if i % 4 == 0 else "analyst") for i in range(CLIENTS)]  # signed in first
    stop = time.perf_counter() + SECONDS

    def worker(i: int) -> None:
        clinician = i % 4 == 0
        client = clients[i]
        rng = random.Random(i)
        kinds = [k for k in pages if clinician == k.endswith("(clinician)") or k.startswith("static")]
        while time.perf_counter() < stop:
            kind = rng.choice(kinds)
            path = rng.choice(pages[kind])
            start = time.perf_counter()
            got = client.get(path)
            elapsed = time.perf_counter() - start
            with lock:
                if got.status_code != 200:
                    errors.append(f"{path}: {got.status_code}")
                timings[kind].append(elapsed)
        client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[:3]}")
    return timings


def run() -> str:
    work = Path(tempfile.mkdtemp(prefix="openphm-bench-web-"))
    try:
        db, measures, practice, list_id = _installation(work)
        con = duckdb.connect(str(db), read_only=True)
        patients = [r[0] for r in con.execute("SELECT CAST(person_id AS VARCHAR) FROM lists.member WHERE "
                                              "practice_code = ? LIMIT 50", [practice]).fetchall()]
        people = con.execute("SELECT count(*) FROM record.person").fetchone()[0]
        con.close()
        server, base = _serve(db)
        try:
            timings = _load(base, _pages(measures, practice, list_id, patients))
        finally:
            server.terminate()
            server.wait(30)
    finally:
        if os.environ.get("OPENPHM_BENCH_KEEP"):
            print(f"kept the installation in {work}", file=sys.stderr)
        elif not os.environ.get("OPENPHM_BENCH_DB"):
            shutil.rmtree(work, ignore_errors=True)
    lines = []
    for kind, seconds in timings.items():
        if not seconds:
            continue
        ms = np.array(seconds) * 1000
        p95 = float(np.percentile(ms, 95))
        lines.append(f"| {kind} | {len(ms):,} | {np.median(ms):,.0f} ms | {p95:,.0f} ms | "
                     f"{'yes' if p95 < GOAL_MS else 'no'} |")
    total = sum(len(s) for s in timings.values())
    return (f"{CLIENTS} clients at once for {SECONDS:.0f} s on {people:,} people (`openphm serve`, one uvicorn "
            f"worker, on this 2-core machine with the clients); {total:,} requests, {total / SECONDS:,.0f} a second. "
            f"Goal: 95th centile under {GOAL_MS} ms. Baseline: the static stylesheet, served by the same process "
            "under the same load.\n\n| page | requests | median | 95th centile | under the goal |\n"
            "|---|---|---|---|---|\n"
            + "\n".join(lines) + "\n")


if __name__ == "__main__":
    print(run())
