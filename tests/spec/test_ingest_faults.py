"""Bad files and careless operators: what ingest refuses, quarantines or restores (issue 10).

Each case is a small hand-written file and the outcome a Data Protection Officer would expect:
no period quietly taken out of service, no duplicate loaded, no implausible date, no unknown
organisation, no over-long text, and no identifier in any message.
"""

from __future__ import annotations

import csv
import logging
import subprocess
import sys

import pytest
from tests.spec.test_ingest_rules import APC, GOOD, TODAY, write_apc

from openphm.ingest.loader import ingest_file, open_store, restore_file, supersessions


@pytest.fixture
def con(tmp_path):
    return open_store(tmp_path / "db" / "openphm.duckdb")[1]


def spells(n: int, prefix: str = "APC") -> list[dict]:
    return [{**GOOD, "record_id": f"{prefix}{i}"} for i in range(1, n + 1)]


def in_service(con) -> int:
    return con.execute("SELECT count(*) FROM raw.apc a JOIN ingest.manifest m ON m.file_id = a.file_id "
                       "AND m.status = 'active'").fetchone()[0]


def reasons(con) -> list[tuple]:
    return con.execute("SELECT row_number, reason, reason_column FROM ingest.quarantine ORDER BY 1").fetchall()


# --- 3. a file that would take a period out of service -------------------------------------------

def test_a_header_only_file_for_a_loaded_period_is_refused_and_changes_nothing(tmp_path, con):
    full = write_apc(tmp_path / "a" / "apc_2023-24.csv", spells(20))
    assert ingest_file(con, full, today=TODAY).status == "loaded"
    empty = write_apc(tmp_path / "b" / "apc_2023-24.csv", [])
    result = ingest_file(con, empty, today=TODAY)
    assert result.status == "refused"
    assert "--replace" in result.problem and "20 rows" in result.problem
    assert in_service(con) == 20
    assert con.execute("SELECT count(*) FROM ingest.manifest").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM idn.identity.records").fetchone()[0] == 20


def test_a_fragment_under_another_name_for_the_same_period_is_refused(tmp_path, con):
    ingest_file(con, write_apc(tmp_path / "a" / "apc_2023-24.csv", spells(20)), today=TODAY)
    fragment = write_apc(tmp_path / "b" / "apc_resend_2023-24.csv", spells(3, "X"))
    assert ingest_file(con, fragment, today=TODAY).status == "refused"
    assert in_service(con) == 20


def test_a_confirmed_shrink_is_listed_and_the_original_can_be_restored(tmp_path, con):
    original = write_apc(tmp_path / "a" / "apc_2023-24.csv", spells(20))
    ingest_file(con, original, today=TODAY)
    smaller = write_apc(tmp_path / "b" / "apc_2023-24.csv", spells(3, "Y"))
    result = ingest_file(con, smaller, today=TODAY, replace=True)
    assert result.status == "loaded" and result.superseded == [1]
    assert in_service(con) == 3
    listed = supersessions(con)
    assert [(r[1], r[3], r[5], r[6], r[7]) for r in listed] == [(1, 2, "superseded", True, 20)]
    # sending the original again puts it back (it is not "unchanged"); shrinking back is not a shrink
    again = ingest_file(con, original, today=TODAY)
    assert again.status == "restored" and again.superseded == [2]
    assert in_service(con) == 20
    assert con.execute("SELECT file_id, status FROM ingest.manifest ORDER BY 1").fetchall() == [
        (1, "active"), (2, "superseded")]
    # an explicit restore of the smaller file is itself a shrink: refused without confirmation
    assert restore_file(con, 2).status == "refused"
    assert restore_file(con, 2, replace=True).status == "restored"
    assert in_service(con) == 3
    assert [r[5] for r in supersessions(con)] == ["superseded", "restored", "restored"]


def test_a_corrected_file_of_similar_size_supersedes_without_confirmation(tmp_path, con):
    ingest_file(con, write_apc(tmp_path / "a" / "apc_2023-24.csv", spells(20)), today=TODAY)
    corrected = write_apc(tmp_path / "b" / "apc_2023-24.csv", spells(18))
    assert ingest_file(con, corrected, today=TODAY).status == "loaded"
    assert in_service(con) == 18


# --- 5. duplicates ---------------------------------------------------------------------------------

def test_a_file_name_without_its_period_is_refused(tmp_path, con):
    ingest_file(con, write_apc(tmp_path / "a" / "apc_2021-22.csv", spells(5)), today=TODAY)
    second = write_apc(tmp_path / "a" / "apc_2021-22_v2.csv", spells(5))
    result = ingest_file(con, second, today=TODAY)
    assert result.status == "rejected" and "period" in result.problem
    assert in_service(con) == 5


def test_duplicate_record_ids_are_quarantined_within_a_file_and_across_files(tmp_path, con):
    rows = [{**GOOD, "record_id": "A"}, {**GOOD, "record_id": "A"},  # repeated: the second is quarantined
            {**GOOD, "record_id": "B", "admission_date": ""}, {**GOOD, "record_id": "B"},  # the first is bad
            {**GOOD, "record_id": "C"}]
    result = ingest_file(con, write_apc(tmp_path / "apc_2023-24.csv", rows), today=TODAY)
    assert result.rows_loaded == 3
    assert reasons(con) == [(2, "DUPLICATE_RECORD", "record_id"), (3, "MISSING_REQUIRED", "admission_date")]
    # the same spell sent again in another period's file
    later = ingest_file(con, write_apc(tmp_path / "apc_2024-25.csv", [{**GOOD, "record_id": "C"},
                                                                       {**GOOD, "record_id": "D"}]), today=TODAY)
    assert later.rows_loaded == 1 and later.reasons == {"DUPLICATE_RECORD": 1}


# --- 6, 12, 14. implausible dates, unknown organisations and codes, over-long text -----------------

@pytest.mark.parametrize(("changes", "reason", "column"), [
    ({"admission_date": "1850-01-01"}, "IMPLAUSIBLE_DATE", "admission_date"),
    ({"date_of_birth": "0001-01-01"}, "IMPLAUSIBLE_DATE", "date_of_birth"),
    ({"diag_02": "I10X" * 25_000}, "TOO_LONG", "diag_02"),
    ({"treatment_specialty": "3" * 300}, "TOO_LONG", "treatment_specialty"),
])
def test_implausible_and_over_long_values_are_quarantined(tmp_path, con, changes, reason, column):
    result = ingest_file(con, write_apc(tmp_path / "apc_2023-24.csv", [GOOD, {**GOOD, **changes, "record_id": "Z"}]),
                         today=TODAY)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    assert reasons(con) == [(2, reason, column)]


def test_a_birth_date_in_1890_or_a_spell_from_1948_still_loads(tmp_path, con):
    rows = [{**GOOD, "date_of_birth": "1890-01-01"}, {**GOOD, "record_id": "B", "admission_date": "1948-07-05"}]
    assert ingest_file(con, write_apc(tmp_path / "apc_2023-24.csv", rows), today=TODAY).rows_loaded == 2


def test_organisation_codes_not_in_the_reference_data_are_quarantined(tmp_path, con):
    con.execute("CREATE TABLE reference.providers AS SELECT * FROM (VALUES ('RZA', 'Acute trust', 'acute')) "
                "t(org_code, org_name, org_type)")
    rows = [GOOD, {**GOOD, "record_id": "ELSEWHERE", "provider_code": "RXX"}]
    result = ingest_file(con, write_apc(tmp_path / "apc_2023-24.csv", rows), today=TODAY)
    assert result.rows_loaded == 1
    assert reasons(con) == [(2, "UNKNOWN_ORGANISATION", "provider_code")]


def test_placeholder_nhs_numbers_are_flagged_invalid(tmp_path, con):
    rows = [{**GOOD, "record_id": f"P{i}", "nhs_number": n} for i, n in enumerate(
        ["0000000000", "9999999999", "9434765919"])]
    ingest_file(con, write_apc(tmp_path / "apc_2023-24.csv", rows), today=TODAY)
    assert con.execute("SELECT nhs_number_valid FROM raw.apc ORDER BY row_number").fetchall() == [
        (False,), (False,), (True,)]


# --- 7. no identifier in a message -----------------------------------------------------------------

def test_a_file_without_its_header_is_rejected_without_quoting_its_first_row(tmp_path, con, caplog):
    path = tmp_path / "apc" / "apc_2023-24.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerow([GOOD.get(c, "") for c in APC.column_names])
    with caplog.at_level(logging.DEBUG):
        result = ingest_file(con, path, today=TODAY)
    assert result.status == "rejected" and "header" in result.problem
    for value in (GOOD["nhs_number"], GOOD["date_of_birth"], GOOD["postcode"]):
        assert value not in result.problem and value not in caplog.text


def test_a_ragged_row_is_named_by_line_without_its_values(tmp_path, con):
    path = write_apc(tmp_path / "apc_2023-24.csv", [GOOD])
    with path.open("a") as fh:
        fh.write("APC9,4010232137,1931-05-04,2,ZX1 9ZZ,RZA\n")
    result = ingest_file(con, path, today=TODAY)
    assert result.status == "rejected" and "line 3 has 6 fields" in result.problem
    assert "4010232137" not in result.problem and "1931-05-04" not in result.problem


def test_a_file_with_a_byte_order_mark_loads(tmp_path, con):
    path = write_apc(tmp_path / "apc_2023-24.csv", [GOOD])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = ingest_file(con, path, today=TODAY)
    assert (result.status, result.rows_loaded) == ("loaded", 1)


# --- 13. a second process on a locked database -----------------------------------------------------

def test_a_second_process_on_a_database_in_use_gets_one_line(tmp_path, con):
    db = tmp_path / "db" / "openphm.duckdb"  # held open by the `con` fixture
    done = subprocess.run([sys.executable, "-c", "from openphm.cli import main; main()", "build", "--db", str(db)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "in use by another OpenPHM process" in done.stderr
    assert "Traceback" not in done.stderr


def test_nothing_else_in_the_folder_is_touched_by_a_refusal(tmp_path, con):
    """A refused file leaves no staging table behind (they hold identifiers)."""
    ingest_file(con, write_apc(tmp_path / "a" / "apc_2023-24.csv", spells(10)), today=TODAY)
    ingest_file(con, write_apc(tmp_path / "b" / "apc_2023-24.csv", []), today=TODAY)
    temp = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    assert temp == []
