"""Load extract files into the analytic database and the identity store.

Per file: hash it (a file already in the manifest is a no-op); read it (or reject it whole);
validate every row; then, in one transaction per database, put identifiers into the identity
store and everything else into `raw.<source>`, quarantine the rest with reason, file, row and
column, and check rows read = rows loaded + rows quarantined before committing. A corrected
file for the same period supersedes the earlier one, which is kept for audit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from openphm.engine.duckdb_store import Store, ident, lit
from openphm.ingest.readers import STAGED, RejectedFile, fhir_to_tables, stage_file, stage_frame
from openphm.ingest.validation import (
    date_column,
    nhs_digits_valid_sql,
    normalised_nhs_number_sql,
    parsed_date_sql,
    reason_columns_sql,
)
from openphm.sources import SOURCES, SourceSpec, source_for_path

log = logging.getLogger("openphm.ingest")

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS reference;
CREATE TABLE IF NOT EXISTS ingest.manifest (
    file_id INTEGER PRIMARY KEY, source VARCHAR, period VARCHAR, file_name VARCHAR, path VARCHAR,
    sha256 VARCHAR, rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, status VARCHAR,
    superseded_by INTEGER, loaded_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS ingest.quarantine (
    file_id INTEGER, source VARCHAR, row_number BIGINT, reason VARCHAR, reason_column VARCHAR);
CREATE SCHEMA IF NOT EXISTS idn.identity;
CREATE TABLE IF NOT EXISTS idn.identity.records (
    source VARCHAR, file_id INTEGER, row_number BIGINT, record_id VARCHAR, nhs_number VARCHAR,
    nhs_number_valid BOOLEAN, given_name VARCHAR, family_name VARCHAR, date_of_birth DATE, sex VARCHAR,
    postcode VARCHAR, native_person_key VARCHAR);
CREATE TABLE IF NOT EXISTS idn.identity.quarantined_rows (
    file_id INTEGER, source VARCHAR, row_number BIGINT, row_json VARCHAR);
"""


@dataclass
class FileResult:
    """What happened to one file."""

    path: Path
    source: str
    status: str  # loaded, unchanged, rejected
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] | None = None
    problem: str = ""
    superseded: list[int] | None = None


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ingest, raw and reference schemas and the identity tables if absent."""
    con.execute(SCHEMA_SQL)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sex_sql(spec: SourceSpec) -> str:
    if "sex" not in spec.column_names:
        return "CAST(NULL AS VARCHAR)"
    s = "upper(trim(sex))"
    return f"CASE WHEN {s} IN ('1', 'M') THEN 'M' WHEN {s} IN ('2', 'F') THEN 'F' ELSE 'U' END"


def _postcode_sql(spec: SourceSpec) -> str:
    if "postcode" not in spec.column_names:
        return "CAST(NULL AS VARCHAR)"
    squeezed = "upper(regexp_replace(trim(postcode), '\\s', '', 'g'))"
    return f"CASE WHEN length({squeezed}) >= 5 THEN substr({squeezed}, 1, length({squeezed}) - 3) || ' ' || " \
           f"right({squeezed}, 3) END"


def _identity_select(spec: SourceSpec, file_id: int) -> str:
    cols = spec.column_names
    dob = ident(date_column("date_of_birth")) if "date_of_birth" in cols else "CAST(NULL AS DATE)"
    nhs = spec.nhs_number_column
    if "client_name" in cols:
        given = "nullif(split_part(trim(client_name), ' ', 1), '')"
        family = "nullif(regexp_extract(trim(client_name), '([^ ]+)$', 1), '')"
    else:
        given = "trim(given_name)" if "given_name" in cols else "CAST(NULL AS VARCHAR)"
        family = "trim(family_name)" if "family_name" in cols else "CAST(NULL AS VARCHAR)"
    native = ident(spec.native_person_key) if spec.native_person_key else "CAST(NULL AS VARCHAR)"
    return (f"SELECT {lit(spec.name)}, {file_id}, row_number, {ident(spec.record_id)}, "
            f"{'nhs_digits' if nhs else 'CAST(NULL AS VARCHAR)'}, "
            f"{'nhs_valid_flag' if nhs else 'false'}, {given}, {family}, {dob}, "
            f"{_sex_sql(spec)}, {_postcode_sql(spec)}, {native} FROM checked WHERE reason IS NULL")


def _raw_columns(spec: SourceSpec) -> list[tuple[str, str, str]]:
    """(name, type, select expression) of the analytic copy: no identifiers, dates typed, and derived
    birth year and month, sex, LSOA and NHS-number flags in place of the identifiers."""
    out: list[tuple[str, str, str]] = [("file_id", "INTEGER", "__FILE_ID__"), ("row_number", "BIGINT", "row_number")]
    for col in spec.columns:
        if col.identifier:
            continue
        if col.kind == "date":
            out.append((col.name, "DATE", ident(date_column(col.name))))
        else:
            out.append((col.name, "VARCHAR", f"nullif(trim({ident(col.name)}), '')"))
    names = spec.column_names
    if "date_of_birth" in names:
        dob = ident(date_column("date_of_birth"))
        out += [("birth_year", "SMALLINT", f"year({dob})"), ("birth_month", "TINYINT", f"month({dob})")]
    if "sex" in names:
        out.append(("sex", "VARCHAR", _sex_sql(spec)))
    if "postcode" in names:
        out.append(("lsoa_code", "VARCHAR", "lsoa_code"))
        out.append(("care_home_code", "VARCHAR", "care_home_code"))
    nhs = spec.nhs_number_column
    if nhs:
        out.append(("nhs_number_present", "BOOLEAN", "nhs_digits IS NOT NULL"))
        out.append(("nhs_number_valid", "BOOLEAN", "nhs_valid_flag"))
    return out


def ensure_raw_table(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    cols = ", ".join(f"{ident(n)} {t}" for n, t, _ in _raw_columns(spec))
    con.execute(f"CREATE TABLE IF NOT EXISTS raw.{ident(spec.table)} ({cols})")


def _has_reference(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'reference' "
                       "AND table_name = ?", [table]).fetchone()[0] > 0


def load_staged(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path, digest: str, rows_read: int,
                today: dt.date) -> FileResult:
    """Validate the staged rows and load them (both databases), or leave everything as it was."""
    period = spec.period_of(path.stem) or ""
    lsoa_join = ""
    lsoa_expr = "CAST(NULL AS VARCHAR) AS lsoa_code"
    if "postcode" in spec.column_names and _has_reference(con, "postcode_lsoa"):
        lsoa_join = ("LEFT JOIN (SELECT postcode_key AS ref_key, lsoa_code AS ref_lsoa FROM reference.postcode_lsoa) "
                     "ref ON ref.ref_key = upper(regexp_replace(trim(s.postcode), '\\s', '', 'g'))")
        lsoa_expr = "ref.ref_lsoa AS lsoa_code"
    home_join, home_expr = "", "CAST(NULL AS VARCHAR) AS care_home_code"
    if "postcode" in spec.column_names and _has_reference(con, "care_homes"):
        home_join = ("LEFT JOIN (SELECT upper(replace(postcode, ' ', '')) AS home_key, any_value(care_home_code) AS "
                     "home_code FROM reference.care_homes GROUP BY 1) ch ON ch.home_key = "
                     "upper(regexp_replace(trim(s.postcode), '\\s', '', 'g'))")
        home_expr = "ch.home_code AS care_home_code"
    con.execute("DROP TABLE IF EXISTS checked")
    nhs = spec.nhs_number_column
    dates = "".join(f", {parsed_date_sql(ident(c.name), c.date_format)} AS {ident(date_column(c.name))}"
                    for c in spec.columns if c.kind == "date")
    digits = f", {normalised_nhs_number_sql(ident(nhs))} AS nhs_digits" if nhs else ""
    valid = ", " + nhs_digits_valid_sql("nhs_digits") + " AS nhs_valid_flag" if nhs else ""
    con.execute(f"""CREATE TEMP TABLE checked AS
        SELECT *, split_part(failure, '|', 1) AS reason, split_part(failure, '|', 2) AS reason_column
        FROM (SELECT *{valid}, {reason_columns_sql(spec, today)}
              FROM (SELECT s.*, {lsoa_expr}, {home_expr}{digits}{dates} FROM {STAGED} s {lsoa_join} {home_join}))""")
    file_id = con.execute("SELECT coalesce(max(file_id), 0) + 1 FROM ingest.manifest").fetchone()[0]
    ensure_raw_table(con, spec)
    raw_cols = _raw_columns(spec)
    # 1. identity store (its own transaction: DuckDB writes one attached database per transaction)
    con.execute("BEGIN")
    con.execute(f"INSERT INTO idn.identity.records {_identity_select(spec, file_id)}")
    names = ", ".join(f"{lit(c)}, {ident(c)}" for c in spec.column_names)
    con.execute(f"INSERT INTO idn.identity.quarantined_rows SELECT {file_id}, {lit(spec.name)}, row_number, "
                f"CAST(json_object({names}) AS VARCHAR) FROM checked WHERE reason IS NOT NULL")
    con.execute("COMMIT")
    try:
        con.execute("BEGIN")
        select = ", ".join(expr.replace("__FILE_ID__", str(file_id)) for _, _, expr in raw_cols)
        con.execute(f"INSERT INTO raw.{ident(spec.table)} ({', '.join(ident(n) for n, _, _ in raw_cols)}) "
                    f"SELECT {select} FROM checked WHERE reason IS NULL")
        con.execute(f"INSERT INTO ingest.quarantine SELECT {file_id}, {lit(spec.name)}, row_number, reason, "
                    f"reason_column FROM checked WHERE reason IS NOT NULL")
        loaded, quarantined = con.execute(
            "SELECT count(*) FILTER (WHERE reason IS NULL), count(*) FILTER (WHERE reason IS NOT NULL) "
            "FROM checked").fetchone()
        if loaded + quarantined != rows_read:
            raise AssertionError(f"{path}: {rows_read} rows read but {loaded} loaded + {quarantined} quarantined")
        where = (f"source = {lit(spec.name)} AND status = 'active'" if spec.snapshot
                 else f"source = {lit(spec.name)} AND period = {lit(period)} AND status = 'active'")
        superseded = [r[0] for r in con.execute(f"SELECT file_id FROM ingest.manifest WHERE {where}").fetchall()]
        con.execute(f"UPDATE ingest.manifest SET status = 'superseded', superseded_by = {file_id} WHERE {where}")
        con.execute("INSERT INTO ingest.manifest VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL, now())",
                    [file_id, spec.name, period, path.name, str(path), digest, rows_read, loaded, quarantined])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        con.execute(f"DROP TABLE IF EXISTS checked; DROP TABLE IF EXISTS {STAGED}")
        con.execute(f"DELETE FROM idn.identity.records WHERE file_id = {file_id}")
        con.execute(f"DELETE FROM idn.identity.quarantined_rows WHERE file_id = {file_id}")
        raise
    reasons = dict(con.execute("SELECT reason, count(*) FROM checked WHERE reason IS NOT NULL GROUP BY 1 "
                               "ORDER BY 1").fetchall())
    con.execute(f"DROP TABLE IF EXISTS checked; DROP TABLE IF EXISTS {STAGED}")  # they hold identifiers
    log.info("loaded %s: %d rows read, %d loaded, %d quarantined", path.name, rows_read, loaded, quarantined)
    return FileResult(path, spec.name, "loaded", rows_read, loaded, quarantined, reasons, superseded=superseded)


def already_loaded(con: duckdb.DuckDBPyConnection, digest: str) -> bool:
    """Whether a file with these bytes is in the manifest."""
    return con.execute("SELECT count(*) FROM ingest.manifest WHERE sha256 = ?", [digest]).fetchone()[0] > 0


def ingest_file(con: duckdb.DuckDBPyConnection, path: Path, spec: SourceSpec | None = None,
                today: dt.date | None = None) -> FileResult:
    """Load one extract file (idempotent: the same bytes twice is a no-op)."""
    spec = spec or source_for_path(path)
    if spec is None:
        return FileResult(path, "?", "rejected", problem=f"{path}: not a known source (expected one of "
                                                         f"{', '.join(SOURCES)} in the folder or file name)")
    digest = sha256_of(path)
    if already_loaded(con, digest):
        log.info("unchanged %s: already loaded", path.name)
        return FileResult(path, spec.name, "unchanged")
    try:
        rows = stage_file(con, path, spec)
    except RejectedFile as exc:
        con.execute(f"DROP TABLE IF EXISTS {STAGED}")
        log.warning("rejected %s: %s", path.name, exc.problem)
        return FileResult(path, spec.name, "rejected", problem=str(exc))
    return load_staged(con, spec, path, digest, rows, today or dt.date.today())


def ingest_fhir_folder(con: duckdb.DuckDBPyConnection, folder: Path, today: dt.date | None = None) -> list[FileResult]:
    """Load GP data sent as FHIR R4 NDJSON, as the three GP sources."""
    digest = hashlib.sha256(b"".join(sha256_of(p).encode() for p in sorted(folder.glob("*.ndjson")))).hexdigest()
    label = folder / "gp_fhir"
    if already_loaded(con, digest):
        return [FileResult(label, "gp_fhir", "unchanged")]
    try:
        tables = fhir_to_tables(folder)
    except RejectedFile as exc:
        return [FileResult(exc.path, "gp_fhir", "rejected", problem=str(exc))]
    results = []
    for name, frame in tables.items():
        spec = SOURCES[name]
        rows = stage_frame(con, frame, spec)
        virtual = folder / f"{name}_fhir"
        results.append(load_staged(con, spec, virtual, f"{digest}:{name}", rows, today or dt.date.today()))
    con.execute("UPDATE ingest.manifest SET sha256 = ? WHERE sha256 = ?", [digest, f"{digest}:gp_registrations"])
    return results


def load_reference(con: duckdb.DuckDBPyConnection, folder: Path) -> list[str]:
    """Load reference files (organisations, postcode lookup, IMD deciles, care homes), replacing earlier ones."""
    loaded = []
    for path in sorted(folder.glob("*.csv")):
        table = ident(path.stem)
        con.execute(f"CREATE OR REPLACE TABLE reference.{table} AS SELECT * FROM read_csv({lit(str(path))}, "
                    "header = true, all_varchar = true)")
        loaded.append(path.stem)
    if "postcode_lsoa" in loaded:
        con.execute("CREATE OR REPLACE TABLE reference.postcode_lsoa AS SELECT *, "
                    "upper(regexp_replace(postcode, '\\s', '', 'g')) AS postcode_key FROM reference.postcode_lsoa")
    return loaded


def extract_files(folder: Path) -> list[Path]:
    """The extract files below `folder` (or its extracts/ subfolder), in a stable order."""
    base = folder / "extracts" if (folder / "extracts").is_dir() else folder
    files = [p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in (".csv", ".parquet")]
    return sorted(files, key=lambda p: (list(SOURCES).index(s.name) if (s := source_for_path(p)) else 99, str(p)))


def open_store(db: Path) -> tuple[Store, duckdb.DuckDBPyConnection]:
    """Connect to (and if need be create) an installation's databases."""
    store = Store(Path(db))
    con = store.connect()
    ensure_schema(con)
    return store, con
