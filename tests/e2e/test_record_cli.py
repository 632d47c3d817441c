"""`openphm ingest`, `build`, `link-report`, `optout` and `link-files` as a user runs them."""

import json
import subprocess
import sys

OPENPHM = [sys.executable, "-c", "from openphm.cli import main; main()"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*OPENPHM, *args], capture_output=True, text=True, timeout=600)


def test_ingest_build_report_and_opt_out(tmp_path):
    ics, db = tmp_path / "ics", tmp_path / "db" / "openphm.duckdb"
    assert run("generate", "--people", "2500", "--years", "2", "--out", str(ics), "--quiet").returncode == 0
    result = run("ingest", str(ics), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "Ingest summary" in result.stdout and "Linked in" in result.stdout
    again = run("ingest", str(ics), "--db", str(db), "--no-link")
    assert again.returncode == 0 and "Ingest summary" in again.stdout
    result = run("build", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "record.person" in result.stdout
    result = run("measures", "run", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "measures.measure_result" in result.stdout and "not computed" not in result.stdout
    result = run("measures", "report", "--db", str(db), "--out", str(tmp_path / "reports"))
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "reports" / "indicators.html").read_text()
    assert html.count("<svg") >= 20 and "Emergency admissions per 100,000" in html
    assert "<script" not in html and "https://" not in html
    result = run("measures", "run", "--db", str(db), "--only", "no_such_indicator")
    assert result.returncode != 0 and "unknown indicator(s): no_such_indicator" in result.stderr
    report = tmp_path / "report.json"
    result = run("link-report", "--db", str(db), "--truth", str(ics / "truth"), "--out", str(report))
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["accuracy_by_overall"][0]["f1"] > 0.99
    assert {r["source"] for r in data["link_rate_by_source"]} >= {"apc", "vcse", "asc"}

    bad = tmp_path / "optout.txt"
    bad.write_text("9434765919\n1234567890\n")
    result = run("optout", str(bad), "--db", str(db))
    assert result.returncode != 0
    assert result.stderr.strip() == f"openphm: error: {bad}: line 2 is not a valid NHS number (1 invalid lines); " \
                                    "nothing loaded"


def test_errors_are_one_line(tmp_path):
    result = run("build", "--db", str(tmp_path / "missing.duckdb"))
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "run `openphm ingest" in result.stderr
    result = run("ingest", str(tmp_path / "nowhere"), "--db", str(tmp_path / "x.duckdb"))
    assert result.returncode != 0 and "is not a folder of extracts" in result.stderr
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("colour,size\nred,1\n")
    b.write_text("colour,size\nblue,2\n")
    result = run("link-files", str(a), str(b), "--out", str(tmp_path / "links.csv"))
    assert result.returncode != 0
    assert "share fewer than two identifying columns" in result.stderr
    assert "Traceback" not in result.stderr


def test_link_files_finds_the_same_people(tmp_path):
    left, right = tmp_path / "left.csv", tmp_path / "right.csv"
    people = [("Ada", "Lovelace", "1951-12-10", "ZX1 2AB"), ("Alan", "Turing", "1962-06-23", "ZX2 3CD"),
              ("Grace", "Hopper", "1946-12-09", "ZY4 5EF"), ("Mary", "Seacole", "1955-11-23", "ZX9 9GH")]
    filler = [(f"Person{i}", f"Surname{i % 37}", f"19{40 + i % 50}-0{1 + i % 9}-1{i % 9}", f"ZW{i % 20} 1AA")
              for i in range(300)]
    left.write_text("first_name,surname,dob,postcode\n" + "\n".join(",".join(p) for p in people + filler) + "\n")
    typo = [("Ada", "Lovelace", "10/12/1951", "zx12ab"), ("Alan", "Turring", "23/06/1962", "ZX2 3CD"),
            ("Grace", "Hopper", "09/12/1946", "ZY4 5EF")]
    right.write_text("name,date_of_birth,postcode\n" + "\n".join(f"{g} {f},{d},{p}" for g, f, d, p in typo) + "\n")
    out = tmp_path / "links.csv"
    result = run("link-files", str(right), str(left), "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()[1:]
    pairs = {(int(x.split(",")[0]), int(x.split(",")[1])) for x in lines}
    assert pairs == {(1, 1), (2, 2), (3, 3)}
