"""The National Data Opt-out: one atomic change to the stored list, applied by the build to every
planning output at once, and never to direct care.

The record is a generated ICS (2,000 people, two years) ingested, linked and built, with a risk
model trained, everyone scored, segments at each April and the case-finding lists run, all
before any opt-out. Each test works on its own copy of that installation.

What is checked, and what is expected:
- an empty, blank, non-UTF-8 or invalid file: refused in one line naming the file and line, never
  the number; the stored list unchanged;
- a file that would remove most of a long list (a truncated download): refused unless asked;
- {a, b, c} replaced by {b, c, d, e}: 2 added, 1 removed, 4 people, version 2;
- an opt-out of people on a case-finding list, then a build: they are gone from planning.person,
  every planning activity view and the planning views of the risk scores, rising risk, segments
  and lists computed before it; they are still in record.person, risk.score, lists.member and
  their practice's direct-care export, and stay there when scores and lists are run again;
- a build that fails at a step, dies mid switch-over or raises mid switch-over after the list
  changed: planning.person and the planning activity views leave out the same people (the old
  build's), and the next build applies the list;
- aggregates computed before the opt-out (segments, indicators): named stale, the indicator report
  refuses them, a re-run clears it;
- `segments run` on a one-year record: runs (no `ORDER term out of range`).
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.conftest import ingest_link_build

from openphm.identity.nhs_number import check_digit
from openphm.ingest.loader import open_store
from openphm.record.build import DEFAULT_SQL_DIR, BuildFailed, build_record

OPENPHM = [sys.executable, "-c", "from openphm.cli import main; main()"]
DB = "openphm.duckdb"
ACTIVITY = ("inpatient_spell", "ae_attendance", "outpatient_appointment", "gp_appointment", "gp_event", "condition",
            "registration", "community_contact", "mental_health_contact")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*OPENPHM, *args], capture_output=True, text=True, timeout=600)


def said(result: subprocess.CompletedProcess) -> str:
    """What the command printed, with the console's line wrapping undone."""
    return " ".join(result.stdout.split())


def nhs_numbers(n: int, start: int = 900_000_001) -> list[str]:
    """`n` valid NHS numbers (not issued to anyone in the generated ICS, whose numbers start lower)."""
    out, stem = [], start
    while len(out) < n:
        digit = check_digit(f"{stem:09d}")
        if digit is not None and len(set(f"{stem:09d}{digit}")) > 1:
            out.append(f"{stem:09d}{digit}")
        stem += 1
    return out


# ---- an installation with everything computed before any opt-out ----------------------------------

@pytest.fixture(scope="module")
def installation(tmp_path_factory) -> Path:
    from openphm.lists.run import run_lists
    from openphm.risk.score import score_population
    from openphm.risk.train import train_and_report
    from openphm.segments.run import record_months, run_segments
    from openphm.synth.generate import GenerateOptions, generate_ics

    folder = tmp_path_factory.mktemp("optout")
    generate_ics(GenerateOptions(people=2_000, years=2, seed=5, out=folder / "ics"))
    con = ingest_link_build(folder / "ics", folder / "db" / DB)
    train_and_report(con, folder / "db" / "risk")
    last = con.execute("SELECT max(admission_date) FROM planning.inpatient_spell").fetchone()[0]
    score_population(con, folder / "db" / "risk", last + dt.timedelta(days=1))
    run_segments(con, months=[m for m in record_months(con) if m.month == 4])
    run_lists(con)
    con.close()
    return folder


@pytest.fixture
def db(installation: Path, tmp_path: Path) -> Path:
    """This test's own copy of the installation; returns the database path (no connection open)."""
    shutil.copytree(installation / "db", tmp_path / "db")
    return tmp_path / "db" / DB


def connect(db: Path):
    return open_store(db)[1]


def listed_people(con, n: int = 3) -> list[tuple[str, str, str, str]]:
    """(person_id, NHS number, list, practice) of `n` people on a case-finding list who were scored,
    segmented and have hospital spells and GP appointments."""
    return [tuple(map(str, r)) for r in con.execute(f"""
        SELECT DISTINCT ON (m.person_id) CAST(m.person_id AS VARCHAR), k.nhs_number, m.list_id, m.practice_code
        FROM lists.member m JOIN idn.identity.person_key k USING (person_id)
        WHERE k.nhs_number IS NOT NULL
          AND m.person_id IN (SELECT person_id FROM risk.score)
          AND m.person_id IN (SELECT person_id FROM segments.person_segment)
          AND m.person_id IN (SELECT person_id FROM record.inpatient_spell)
          AND m.person_id IN (SELECT person_id FROM record.gp_appointment)
        ORDER BY m.person_id LIMIT {int(n)}""").fetchall()]


def ids_in(con, table: str, ids: list[str], where: str = "TRUE") -> set[str]:
    """Which of `ids` are in `table` (rows meeting `where`)."""
    rows = con.execute(f"SELECT DISTINCT CAST(person_id AS VARCHAR) FROM {table} WHERE {where} AND "
                       f"CAST(person_id AS VARCHAR) IN ({', '.join('?' for _ in ids)})", ids).fetchall()
    return {r[0] for r in rows}


def stored_list(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT nhs_number FROM idn.identity.optout").fetchall()}


# ---- the file and the stored list -----------------------------------------------------------------

def test_a_bad_file_is_refused_naming_the_file_and_line_never_the_number(tmp_path: Path):
    from openphm.identity.optout import OptoutError, read_optout_file

    good = nhs_numbers(3)
    wrong = good[1][:-1] + str((int(good[1][-1]) + 1) % 10)  # check digit broken
    cases = {
        "empty.txt": (b"", "holds no NHS numbers"),
        "blank.txt": (b"\n  \n\t\n", "holds no NHS numbers"),
        "latin1.txt": (f"{good[0]}\n{good[1]}\n".encode() + b"caf\xe9\n", "line 3 is not UTF-8 text"),
        "invalid.txt": (f"{good[0]}\n\n{wrong}\n{good[2]}\nabc\n".encode(), "line 3 is not a valid NHS number "
                                                                            "(2 invalid lines)"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(OptoutError) as err:
            read_optout_file(path)
        text = str(err.value)
        assert message in text and str(path) in text and "nothing loaded" in text, text
        assert "\n" not in text and wrong not in text and not any(n in text for n in good)
    for missing in (tmp_path / "nowhere.txt", tmp_path):
        with pytest.raises(OptoutError, match="is not a file"):
            read_optout_file(missing)
    spaced = tmp_path / "spaced.txt"
    spaced.write_text(f"\ufeff{good[0][:3]} {good[0][3:6]} {good[0][6:]}\n{good[1]}\r\n\n{good[0]}\n",
                      encoding="utf-8")
    assert read_optout_file(spaced) == good[:2]  # a BOM, spaced numbers, CRLF, blanks and repeats


@pytest.mark.parametrize("content", ["", "\n\n", "9434765919\n1234567890\n", "bad-bytes"])
def test_a_refused_file_leaves_the_stored_list_as_it_was(db: Path, tmp_path: Path, content: str):
    first = nhs_numbers(5)
    kept = tmp_path / "kept.txt"
    kept.write_text("\n".join(first) + "\n")
    result = run("optout", str(kept), "--db", str(db))
    assert result.returncode == 0, result.stderr
    bad = tmp_path / "bad.txt"
    if content == "bad-bytes":
        bad.write_bytes(b"\xff\xfe" + first[0].encode())
    else:
        bad.write_text(content)
    result = run("optout", str(bad), "--db", str(db))
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"openphm: error: {bad}")
    assert not any(n in result.stderr for n in first)
    con = connect(db)
    assert stored_list(con) == set(first)
    assert con.execute("SELECT max(version) FROM idn.identity.optout_meta").fetchone()[0] == 1
    con.close()


def test_a_replacement_says_what_it_added_and_removed(db: Path, tmp_path: Path):
    from openphm.identity.optout import OptoutError, replace_optout, status

    a, b, c, d, e = nhs_numbers(5)
    con = connect(db)
    first = replace_optout(con, [a, b, c])
    assert (first.added, first.removed, first.total, first.version) == (3, 0, 3, 1)
    second = replace_optout(con, [b, c, d, e, e])
    assert (second.added, second.removed, second.total, second.version) == (2, 1, 4, 2)
    assert stored_list(con) == {b, c, d, e}
    assert status(con).list_version == 2 and status(con).pending  # no build has applied it yet
    with pytest.raises(OptoutError, match="empty"):
        replace_optout(con, [])
    assert stored_list(con) == {b, c, d, e}
    con.close()
    path = tmp_path / "list.txt"
    path.write_text(f"{a}\n{b}\n")
    result = run("optout", str(path), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "Opt-out list: 2 people (1 added, 3 removed)" in said(result)
    assert "Run `openphm build`" in said(result)
    result = run("optout", str(path), "--db", str(db), "--build")  # the same list, applied at once
    assert result.returncode == 0, result.stderr
    assert "Opt-out list: 2 people (0 added, 0 removed); 0 of them are people in this record" in said(result)
    assert "0 people left out of every planning output" in said(result)  # numbers no one in the ICS has
    assert "segments run" not in said(result)  # the opted-out set did not change: nothing to run again


def test_a_file_that_would_remove_most_of_a_long_list_is_refused_unless_asked(db: Path, tmp_path: Path):
    numbers = nhs_numbers(120)
    full, cut = tmp_path / "full.txt", tmp_path / "cut.txt"
    full.write_text("\n".join(numbers) + "\n")
    cut.write_text("\n".join(numbers[:10]) + "\n")  # a truncated download
    assert run("optout", str(full), "--db", str(db)).returncode == 0
    result = run("optout", str(cut), "--db", str(db))
    assert result.returncode != 0 and "would remove 110 of the 120 people" in result.stderr
    assert "--allow-large-removal" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    con = connect(db)
    assert len(stored_list(con)) == 120
    con.close()
    result = run("optout", str(cut), "--db", str(db), "--allow-large-removal")
    assert result.returncode == 0 and "10 people (0 added, 110 removed)" in said(result)


# ---- reaching every planning output, and not direct care ------------------------------------------

def test_opted_out_people_leave_every_planning_output_computed_before_and_stay_for_direct_care(
        db: Path, tmp_path: Path):
    con = connect(db)
    chosen = listed_people(con)
    assert len(chosen) == 3
    ids = [c[0] for c in chosen]
    assert ids_in(con, "risk.score", ids) == set(ids)  # computed before the opt-out, with them in
    others = [r[0] for r in con.execute("SELECT nhs_number FROM idn.identity.person_key WHERE nhs_number IS NOT NULL "
                                        "ORDER BY md5(nhs_number) LIMIT 100").fetchall()]  # about 5% of people
    con.close()
    path = tmp_path / "optout.txt"
    path.write_text("\n".join(others + [c[1] for c in chosen]) + "\n")
    result = run("optout", str(path), "--db", str(db))
    assert result.returncode == 0, result.stderr
    result = run("build", "--db", str(db))
    assert result.returncode == 0, result.stderr

    con = connect(db)
    opted = {r[0] for r in con.execute("SELECT CAST(person_id AS VARCHAR) FROM link.opted_out").fetchall()}
    assert set(ids) <= opted and len(opted) >= 0.03 * con.execute("SELECT count(*) FROM record.person").fetchone()[0]
    # planning: nobody opted out, whenever the output was computed
    assert not ids_in(con, "planning.person", ids)
    for table in ACTIVITY:
        assert not ids_in(con, f"planning.{table}", list(opted)), table
    for view in ("risk_score", "risk_rising", "person_segment", "list_member"):
        assert not ids_in(con, f"planning.{view}", list(opted)), view
    members = con.execute("SELECT count(*) FROM lists.member WHERE person_id NOT IN "
                          "(SELECT person_id FROM link.opted_out)").fetchone()[0]
    assert con.execute("SELECT sum(people) FROM planning.list_size").fetchone()[0] == members
    # direct care: everyone
    assert ids_in(con, "record.person", ids) == set(ids)
    assert con.execute("SELECT count(*) FROM record.person WHERE national_data_opt_out").fetchone()[0] == len(opted)
    assert ids_in(con, "record.inpatient_spell", ids) == set(ids)
    assert ids_in(con, "risk.score", ids) == set(ids) and ids_in(con, "lists.member", ids) == set(ids)
    con.close()
    _, number, list_id, practice = chosen[0]
    out = tmp_path / "export.csv"
    result = run("lists", "export", list_id, "--practice", practice, "--out", str(out), "--purpose", "direct_care",
                 "--db", str(db))
    assert result.returncode == 0, result.stderr
    with out.open(newline="") as f:
        exported = {r["nhs_number"] for r in csv.DictReader(f)}
    assert number in exported


def test_scoring_and_lists_run_after_the_opt_out_keep_them_for_direct_care_only(db: Path, tmp_path: Path):
    from openphm.identity.optout import replace_optout, stale_outputs
    from openphm.lists.run import run_lists
    from openphm.risk.score import score_population
    from openphm.segments.run import record_months, run_segments

    con = connect(db)
    chosen = listed_people(con, 2)
    ids = [c[0] for c in chosen]
    members = "SELECT list_id, practice_code, CAST(person_id AS VARCHAR), rank FROM lists.member ORDER BY ALL"
    lists_before = con.execute(members).fetchall()
    replace_optout(con, [c[1] for c in chosen])
    build_record(con)
    assert stale_outputs(con) == ["segments"]
    con.execute("DELETE FROM risk.score")
    as_of = con.execute("SELECT max(as_of) FROM lists.member").fetchone()[0]
    score_population(con, db.parent / "risk", as_of)  # scored again, on the same day, after the opt-out
    run_lists(con)
    assert ids_in(con, "risk.score", ids) == set(ids) and ids_in(con, "lists.member", ids) == set(ids)
    assert con.execute(members).fetchall() == lists_before  # the same lists, the same ranks: direct care
    assert not ids_in(con, "planning.risk_score", ids) and not ids_in(con, "planning.list_member", ids)
    run_segments(con, months=[m for m in record_months(con) if m.month == 4])
    assert stale_outputs(con) == []
    assert not ids_in(con, "segments.person_segment", ids)  # segments are planning: computed without them
    con.close()


def test_indicators_computed_before_the_opt_out_are_refused_until_run_again(db: Path):
    from openphm.identity.optout import replace_optout, stale_outputs, stamp
    from openphm.measures.report import write_measures_report

    con = connect(db)
    con.execute("CREATE SCHEMA IF NOT EXISTS measures")
    con.execute("CREATE OR REPLACE TABLE measures.measure_result AS SELECT 'x' AS measure_id")
    stamp(con, "measures")
    assert stale_outputs(con) == []
    replace_optout(con, [listed_people(con, 1)[0][1]])
    build_record(con)
    assert stale_outputs(con) == ["measures", "segments"]
    with pytest.raises(ValueError, match="computed before the National Data Opt-out set in service changed"):
        write_measures_report(con, db.parent / "reports")
    stamp(con, "measures")  # as `openphm measures run` does
    assert stale_outputs(con) == ["segments"]
    build_record(con)  # the same list again: the same set, so nothing more to run
    assert stale_outputs(con) == ["segments"]
    con.close()


# ---- a build that does not finish -----------------------------------------------------------------

def agree(con, ids: list[str]) -> bool:
    """planning.person and each planning activity view leave out the same ones of `ids`."""
    in_person = ids_in(con, "planning.person", ids)
    with_spells = ids_in(con, "record.inpatient_spell", ids)
    with_appointments = ids_in(con, "record.gp_appointment", ids)
    return (ids_in(con, "planning.inpatient_spell", ids) == in_person & with_spells
            and ids_in(con, "planning.gp_appointment", ids) == in_person & with_appointments)


def _change_list(db: Path, numbers: list[str], tmp_path: Path) -> None:
    path = tmp_path / "optout.txt"
    path.write_text("\n".join(numbers) + "\n")
    result = run("optout", str(path), "--db", str(db))
    assert result.returncode == 0, result.stderr


def test_a_build_failing_at_a_step_after_the_list_changed_keeps_planning_consistent(db: Path, tmp_path: Path):
    con = connect(db)
    chosen = listed_people(con)
    ids = [c[0] for c in chosen]
    version = con.execute("SELECT max(version) FROM ingest.builds WHERE status = 'succeeded'").fetchone()[0]
    con.close()
    _change_list(db, [c[1] for c in chosen], tmp_path)
    broken = tmp_path / "sql"
    shutil.copytree(DEFAULT_SQL_DIR, broken)
    (broken / "zz_broken.sql").write_text("-- table: broken\n-- depends: person\nSELECT no_such_column "
                                          "FROM record.person\n")
    con = connect(db)
    with pytest.raises(BuildFailed):
        build_record(con, broken)
    assert con.execute("SELECT max(version) FROM ingest.builds WHERE status = 'succeeded'").fetchone()[0] == version
    assert agree(con, ids) and ids_in(con, "planning.person", ids) == set(ids)  # the old build, whole
    build_record(con)
    assert agree(con, ids) and not ids_in(con, "planning.person", ids)
    con.close()


DIE_MID_SWITCH = """
import os, sys
from pathlib import Path
from openphm.ingest.loader import open_store
from openphm.record.build import build_record

class Dying:
    '''The connection, until the switch-over has moved some planning views: then the process dies.'''
    def __init__(self, con):
        self._con = con
    def __getattr__(self, name):
        return getattr(self._con, name)
    def execute(self, sql, *args):
        if 'VIEW planning."inpatient_spell"' in sql:
            {action}
        return self._con.execute(sql, *args)

store, con = open_store(Path(sys.argv[1]))
build_record(Dying(con))
"""


def test_a_build_killed_mid_switch_over_leaves_the_old_consistent_state(db: Path, tmp_path: Path):
    con = connect(db)
    chosen = listed_people(con)
    ids = [c[0] for c in chosen]
    con.close()
    _change_list(db, [c[1] for c in chosen], tmp_path)
    script = DIE_MID_SWITCH.replace("{action}", "os._exit(9)")
    killed = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, text=True, timeout=600)
    assert killed.returncode == 9, killed.stderr
    con = connect(db)
    assert agree(con, ids) and ids_in(con, "planning.person", ids) == set(ids)
    build_record(con)
    assert agree(con, ids) and not ids_in(con, "planning.person", ids)
    con.close()


def test_a_build_raising_mid_switch_over_rolls_back_to_the_old_consistent_state(db: Path, tmp_path: Path):
    con = connect(db)
    chosen = listed_people(con)
    ids = [c[0] for c in chosen]
    con.close()
    _change_list(db, [c[1] for c in chosen], tmp_path)
    script = DIE_MID_SWITCH.replace("{action}", "import duckdb; raise duckdb.IOException('disk full')")
    failed = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, text=True, timeout=600)
    assert failed.returncode != 0 and "BuildFailed" in failed.stderr and "disk full" in failed.stderr
    con = connect(db)
    assert agree(con, ids) and ids_in(con, "planning.person", ids) == set(ids)
    con.close()


# ---- segments on a one-year record ---------------------------------------------------------------

def test_segments_run_on_a_one_year_record(tmp_path: Path):
    from openphm.synth.generate import GenerateOptions, generate_ics

    generate_ics(GenerateOptions(people=1_000, years=1, seed=3, out=tmp_path / "ics"))
    ingest_link_build(tmp_path / "ics", tmp_path / "db" / DB).close()
    result = run("segments", "run", "--db", str(tmp_path / "db" / DB))
    assert result.returncode == 0, result.stderr
    assert "12 months segmented" in result.stdout and "Traceback" not in result.stderr
    con = connect(tmp_path / "db" / DB)
    assert con.execute("SELECT count(*) FROM segments.transition").fetchone()[0] == 0  # one April: no pairs
    assert con.execute("SELECT count(DISTINCT year_start) FROM segments.activity").fetchone()[0] == 1
    con.close()


# ---- the generated list ---------------------------------------------------------------------------

def test_the_generated_ics_carries_a_realistic_opt_out_list(installation: Path):
    import polars as pl

    from openphm.identity.nhs_number import is_valid

    numbers = (installation / "ics" / "optout" / "national_data_opt_out.txt").read_text().split()
    people = pl.read_csv(installation / "ics" / "truth" / "people.csv", schema_overrides={"nhs_number": pl.Utf8})
    true = set(people["nhs_number"].str.zfill(10))
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert all(is_valid(n) for n in numbers) and set(numbers) <= true
    assert 0.035 < len(numbers) / len(true) < 0.075  # about 5% (SHARE)
