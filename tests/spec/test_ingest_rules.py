"""Ingest rules, stated as small hand-written files and the expected outcome of each row."""

import csv
import datetime as dt
from pathlib import Path

import duckdb
import pytest

from openphm.ingest.loader import ingest_file, open_store
from openphm.sources import SOURCES

TODAY = dt.date(2026, 11, 23)
APC = SOURCES["apc"]
GOOD = {"record_id": "APC1", "nhs_number": "9434765919", "date_of_birth": "1950-03-07", "sex": "2",
        "postcode": "ZX1 2AB", "provider_code": "RZA", "gp_practice_code": "C81001",
        "admission_date": "2024-01-10", "discharge_ready_date": "2024-01-12", "discharge_date": "2024-01-15",
        "admission_method": "21", "patient_classification": "1", "discharge_method": "1",
        "admission_source": "19", "discharge_destination": "19", "treatment_specialty": "300",
        "diag_01": "J189", "diag_02": "I10X"}

# (what is wrong, the changed fields, expected reason, expected column); None = loaded
CASES = [
    ("a good row", {}, None, None),
    ("an invalid NHS number is flagged, not quarantined", {"nhs_number": "9434765918"}, None, None),
    ("a missing NHS number is flagged, not quarantined", {"nhs_number": ""}, None, None),
    ("no admission date", {"admission_date": ""}, "MISSING_REQUIRED", "admission_date"),
    ("30 February", {"admission_date": "2024-02-30"}, "BAD_DATE", "admission_date"),
    ("a discharge after the day of loading", {"discharge_date": "2027-01-01"}, "FUTURE_DATE", "discharge_date"),
    ("an ICD-10 code that is not one", {"diag_01": "PNEUMONIA"}, "BAD_CODE", "diag_01"),
    ("a practice code that is not ODS", {"gp_practice_code": "12345"}, "BAD_CODE", "gp_practice_code"),
    ("a malformed postcode", {"postcode": "NOT A POSTCODE"}, "BAD_CODE", "postcode"),
    ("discharged before admitted", {"discharge_date": "2024-01-01"}, "DATE_ORDER", "discharge_date"),
]


def write_apc(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=APC.column_names)
        writer.writeheader()
        for r in rows:
            writer.writerow({c: r.get(c, "") for c in APC.column_names})
    return path


@pytest.fixture
def store(tmp_path):
    return open_store(tmp_path / "db" / "openphm.duckdb")


def test_each_row_is_loaded_or_quarantined_with_reason_row_and_column(tmp_path, store):
    _, con = store
    rows = [{**GOOD, **changes, "record_id": f"APC{i}"} for i, (_, changes, _, _) in enumerate(CASES, start=1)]
    path = write_apc(tmp_path / "extracts" / "apc" / "apc_2023-24.csv", rows)
    result = ingest_file(con, path, today=TODAY)
    expected_quarantine = {(i, reason, column) for i, (_, _, reason, column) in enumerate(CASES, start=1) if reason}
    got = set(con.execute("SELECT row_number, reason, reason_column FROM ingest.quarantine").fetchall())
    assert got == expected_quarantine
    assert result.rows_read == len(CASES) == result.rows_loaded + result.rows_quarantined
    assert result.rows_quarantined == len(expected_quarantine)
    manifest = con.execute("SELECT rows_read, rows_loaded, rows_quarantined, source, period, status "
                           "FROM ingest.manifest").fetchall()
    assert manifest == [(10, 3, 7, "apc", "2023-24", "active")]
    flags = con.execute("SELECT row_number, nhs_number_present, nhs_number_valid FROM raw.apc ORDER BY 1").fetchall()
    assert flags == [(1, True, True), (2, True, False), (3, False, False)]
    # the quarantined rows' values wait in the identity store, not the analytic database
    assert con.execute("SELECT count(*) FROM idn.identity.quarantined_rows").fetchone()[0] == 7


def test_same_file_twice_is_a_no_op(tmp_path, store):
    _, con = store
    path = write_apc(tmp_path / "apc" / "apc_2023-24.csv", [GOOD])
    assert ingest_file(con, path, today=TODAY).status == "loaded"
    again = ingest_file(con, path, today=TODAY)
    assert again.status == "unchanged"
    assert con.execute("SELECT count(*) FROM raw.apc").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM ingest.manifest").fetchone()[0] == 1


def test_corrected_file_supersedes_the_earlier_one_which_is_kept(tmp_path, store):
    _, con = store
    first = write_apc(tmp_path / "v1" / "apc" / "apc_2023-24.csv", [GOOD, {**GOOD, "record_id": "APC2"}])
    second = write_apc(tmp_path / "v2" / "apc" / "apc_2023-24.csv", [{**GOOD, "diag_01": "J440"}])
    ingest_file(con, first, today=TODAY)
    result = ingest_file(con, second, today=TODAY)
    assert result.superseded == [1]
    assert con.execute("SELECT file_id, status, superseded_by FROM ingest.manifest ORDER BY 1").fetchall() == [
        (1, "superseded", 2), (2, "active", None)]
    # the earlier version stays for audit; only the active one counts
    assert con.execute("SELECT count(*) FROM raw.apc").fetchone()[0] == 3
    active = con.execute("SELECT a.diag_01 FROM raw.apc a JOIN ingest.manifest m USING (file_id) "
                         "WHERE m.status = 'active'").fetchall()
    assert active == [("J440",)]


def snapshot(con: duckdb.DuckDBPyConnection) -> dict:
    tables = con.execute("SELECT database_name, schema_name, table_name FROM duckdb_tables() "
                         "WHERE NOT temporary").fetchall()
    return {f"{d}.{s}.{t}": con.execute(f'SELECT count(*) FROM "{d}"."{s}"."{t}"').fetchone()[0]
            for d, s, t in tables}


@pytest.mark.parametrize("damage, expected", [
    ("truncate", "cannot be read as apc csv"),
    ("semicolons", "is the file comma-delimited?"),
    ("wrong_columns", "wrong columns for apc (missing admission_date"),
    ("not_parquet", "cannot be read as apc parquet"),
])
def test_unreadable_file_is_rejected_whole_and_the_database_is_unchanged(tmp_path, store, damage, expected):
    _, con = store
    ingest_file(con, write_apc(tmp_path / "ok" / "apc" / "apc_2022-23.csv", [GOOD]), today=TODAY)
    before = snapshot(con)
    path = write_apc(tmp_path / "bad" / "apc" / "apc_2023-24.csv", [GOOD, {**GOOD, "record_id": "APC2"}])
    text = path.read_text()
    if damage == "truncate":
        path.write_text(text[: len(text) - 40])
    elif damage == "semicolons":
        path.write_text(text.replace(",", ";"))
    elif damage == "wrong_columns":
        path.write_text(text.replace("admission_date", "admitted_on"))
    else:
        path = path.with_suffix(".parquet")
        path.write_bytes(b"PAR1 this is not really parquet")
    result = ingest_file(con, path, today=TODAY)
    assert result.status == "rejected"
    assert str(path) in result.problem and expected in result.problem
    assert "expected" in result.problem
    assert snapshot(con) == before


def test_nhs_number_rule_in_sql_agrees_with_python(store):
    from openphm.identity.nhs_number import is_valid
    from openphm.ingest.validation import nhs_number_valid_sql

    _, con = store
    values = ["9434765919", "943 476 5919", "9434765918", "123", "", None, "abcdefghij", "4000000004",
              "4000000012", "0000000000"]
    for v in values:
        got = con.execute(f"SELECT {nhs_number_valid_sql('x')} FROM (SELECT ?::VARCHAR AS x)", [v]).fetchone()[0]
        assert bool(got) == is_valid(v), v
