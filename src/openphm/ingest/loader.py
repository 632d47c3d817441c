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

from openphm.engine import open_engine
from openphm.engine.connection import Connection, transaction
from openphm.engine.duckdb_store import Store, ident, lit
from openphm.engine.reading import read_csv_table
from openphm.identity import store as identity_store
from openphm.ingest.readers import STAGED, RejectedFile, fhir_to_tables, stage_file, stage_frame
from openphm.ingest.validation import (
    date_column,
    known_column,
    nhs_digits_valid_sql,
    normalised_nhs_number_sql,
    parsed_date_sql,
    reason_columns_sql,
)
from openphm.sources import SOURCES, SourceSpec, source_for_path
from openphm.sources.base import KNOWN_ORGANISATIONS

log = logging.getLogger("openphm.ingest")

# A supersession that would leave fewer than this share of the period's rows in service is refused
# unless confirmed (`--replace`): a truncated or header-only file must not quietly replace a full one.
SHRINK_LIMIT = 0.5

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
CREATE TABLE IF NOT EXISTS ingest.supersession (
    happened_at TIMESTAMP, file_id INTEGER, by_file_id INTEGER, action VARCHAR, confirmed BOOLEAN, rows_out BIGINT);
"""


@dataclass
class FileResult:
    """What happened to one file."""

    path: Path
    source: str
    status: str  # loaded, unchanged, restored, rejected (unreadable), refused (would shrink a period)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] | None = None
    problem: str = ""
    superseded: list[int] | None = None


def ensure_schema(con: Connection) -> None:
    """Create the ingest, raw and reference schemas and the identity store's tables if absent."""
    con.execute(SCHEMA_SQL)
    identity_store.ensure(con)


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


def ensure_raw_table(con: Connection, spec: SourceSpec) -> None:
    cols = ", ".join(f"{ident(n)} {t}" for n, t, _ in _raw_columns(spec))
    con.execute(f"CREATE TABLE IF NOT EXISTS raw.{ident(spec.table)} ({cols})")


def _has_reference(con: Connection, table: str, column: str | None = None) -> bool:
    """Whether reference.<table> is loaded (with `column`, when one is named)."""
    return con.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'reference' "
                       "AND table_name = ? AND (? IS NULL OR column_name = ?)", [table, column, column]
                       ).fetchone()[0] > 0


_UNCHECKED: set[tuple[str, str]] = set()  # reference tables found missing (warned about once per process)


def _known_flags(con: Connection, spec: SourceSpec) -> tuple[str, frozenset[str]]:
    """Select-list items flagging whether each organisation code is in its reference table, and the
    columns checked (a column whose reference table is not loaded is not checked)."""
    items, known = "", set()
    for col in spec.columns:
        if not col.known_in:
            continue
        table, code = KNOWN_ORGANISATIONS[col.known_in]
        if not _has_reference(con, table, code):
            if (table, code) not in _UNCHECKED:
                _UNCHECKED.add((table, code))
                log.warning("organisation codes not checked: no reference.%s.%s loaded", table, code)
            continue
        items += (f", trim(s.{ident(col.name)}) IN (SELECT trim({ident(code)}) FROM reference.{ident(table)} "
                  f"WHERE {ident(code)} IS NOT NULL) AS {ident(known_column(col.name))}")
        known.add(col.name)
    return items, frozenset(known)


def _replaced_files(con: Connection, spec: SourceSpec, period: str) -> list[tuple[int, str, int]]:
    """(file_id, file name, rows loaded) of the files in service that a new file of this source and
    period would supersede: every earlier one for a snapshot source, else those of the same period."""
    where = "source = ? AND status = 'active'" + ("" if spec.snapshot else " AND period = ?")
    params = [spec.name] if spec.snapshot else [spec.name, period]
    return con.execute(f"SELECT file_id, file_name, rows_loaded FROM ingest.manifest WHERE {where} ORDER BY 1",
                       params).fetchall()


def shrink_refusal(new_rows: int, replaced: list[tuple[int, str, int]], what: str) -> str | None:
    """Why replacing `replaced` by `new_rows` rows needs confirming, or None: a supersession that keeps
    fewer than SHRINK_LIMIT of the rows in service for the period (a header-only or truncated file,
    or a fragment sent under the period's name) would quietly take data out of service."""
    before = sum(r[2] for r in replaced)
    if not replaced or before == 0 or new_rows >= SHRINK_LIMIT * before:
        return None
    names = ", ".join(f"{name} (file {fid}, {rows:,} rows)" for fid, name, rows in replaced)
    return (f"{what} would replace {names} with {new_rows:,} rows, fewer than {SHRINK_LIMIT:.0%} of those in "
            "service: refused, nothing changed. If the period really is smaller now, run again with --replace")


def _quarantine_duplicates(con: Connection, spec: SourceSpec, period: str) -> None:
    """Mark `DUPLICATE_RECORD` the rows of `checked` (not otherwise quarantined) whose record id is on
    an earlier such row of the file, or in another file of the source that stays in service after
    this one loads. Built to cost little when there are none (the usual case): the repeated ids are
    found by aggregation, and the other files' ids are scanned once, probing this file's."""
    rid = ident(spec.record_id)
    other = ""
    if not spec.snapshot:
        other = (f"UNION SELECT row_number FROM ok WHERE rid IN (SELECT r.{rid} FROM raw.{ident(spec.table)} r "
                 f"JOIN ingest.manifest m ON m.file_id = r.file_id AND m.status = 'active' "
                 f"AND m.source = {lit(spec.name)} AND m.period <> {lit(period)} "
                 f"WHERE r.{rid} IN (SELECT rid FROM ok))")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE duplicate_rows AS
        WITH ok AS (SELECT row_number, trim({rid}) AS rid FROM checked WHERE reason IS NULL),
             repeated AS (SELECT rid FROM ok GROUP BY rid HAVING count(*) > 1)
        SELECT row_number FROM (SELECT row_number, row_number() OVER (PARTITION BY rid ORDER BY row_number) AS k
                                FROM ok SEMI JOIN repeated USING (rid)) WHERE k > 1
        {other}""")
    if con.execute("SELECT count(*) FROM duplicate_rows").fetchone()[0]:
        con.execute("UPDATE checked SET reason = 'DUPLICATE_RECORD', reason_column = ? "
                    "WHERE row_number IN (SELECT row_number FROM duplicate_rows)", [spec.record_id])
    con.execute("DROP TABLE duplicate_rows")


def discard_half_loaded(con: Connection) -> int:
    """Remove identity-store rows of a file whose load never reached the manifest (a process killed
    between the two commits); returns the rows removed. A file's identity rows are committed first,
    under a file id one above the manifest's highest, so any row above that id is such a remnant."""
    top = con.execute("SELECT coalesce(max(file_id), 0) FROM ingest.manifest").fetchone()[0]
    removed = identity_store.discard_files_above(con, top)
    if removed:
        log.warning("discarded %d identity rows of a load that was interrupted before it completed", removed)
    return removed


def _record_supersession(con: Connection, replaced: list[tuple[int, str, int]], by: int,
                         action: str, confirmed: bool) -> None:
    for fid, _, rows in replaced:
        con.execute("INSERT INTO ingest.supersession VALUES (now(), ?, ?, ?, ?, ?)", [fid, by, action, confirmed, rows])
    if replaced:
        con.execute(f"UPDATE ingest.manifest SET status = 'superseded', superseded_by = ? "
                    f"WHERE file_id IN ({', '.join(str(r[0]) for r in replaced)})", [by])


def load_staged(con: Connection, spec: SourceSpec, path: Path, digest: str, rows_read: int,
                today: dt.date, replace: bool = False, period: str | None = None) -> FileResult:
    """Validate the staged rows and load them (both databases), or leave everything as it was."""
    period = period if period is not None else (spec.period_of(path.stem) or "")
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
    known_items, known = _known_flags(con, spec)
    ensure_raw_table(con, spec)
    con.execute("DROP TABLE IF EXISTS checked")
    nhs = spec.nhs_number_column
    dates = "".join(f", {parsed_date_sql(ident(c.name), c.date_format)} AS {ident(date_column(c.name))}"
                    for c in spec.columns if c.kind == "date")
    digits = f", {normalised_nhs_number_sql(ident(nhs))} AS nhs_digits" if nhs else ""
    valid = ", " + nhs_digits_valid_sql("nhs_digits", "__nhs_int") + " AS nhs_valid_flag" if nhs else ""
    number = ", TRY_CAST(nhs_digits AS BIGINT) AS __nhs_int" if nhs else ""
    con.execute(f"""CREATE TEMP TABLE checked AS
        SELECT *, split_part(failure, '|', 1) AS reason, split_part(failure, '|', 2) AS reason_column
        FROM (SELECT *{valid}, {reason_columns_sql(spec, today, known)}
              FROM (SELECT *{number}
                    FROM (SELECT s.*, {lsoa_expr}, {home_expr}{known_items}{digits}{dates}
                          FROM {STAGED} s {lsoa_join} {home_join})))""")
    _quarantine_duplicates(con, spec, period)
    loaded, quarantined = con.execute(
        "SELECT count(*) FILTER (WHERE reason IS NULL), count(*) FILTER (WHERE reason IS NOT NULL) "
        "FROM checked").fetchone()
    if loaded + quarantined != rows_read:
        _drop_staging(con)
        raise AssertionError(f"{path.name}: {rows_read} rows read but {loaded} loaded + {quarantined} quarantined")
    replaced = _replaced_files(con, spec, period)
    refusal = None if replace else shrink_refusal(loaded, replaced, path.name)
    if refusal:
        _drop_staging(con)
        log.warning("refused %s: a supersession that shrinks the period", path.name)
        return FileResult(path, spec.name, "refused", rows_read, problem=refusal)
    discard_half_loaded(con)
    file_id = con.execute("SELECT coalesce(max(file_id), 0) + 1 FROM ingest.manifest").fetchone()[0]
    raw_cols = _raw_columns(spec)
    # 1. identity store: its own transaction (DuckDB writes one attached database per transaction).
    # If the process dies before step 2 commits, these rows sit above the manifest's highest file
    # id, and `discard_half_loaded` removes them before the next load.
    names = ", ".join(f"{lit(c)}, {ident(c)}" for c in spec.column_names)
    identity_store.add_file(con, _identity_select(spec, file_id),
                            f"SELECT {file_id}, {lit(spec.name)}, row_number, CAST(json_object({names}) AS VARCHAR) "
                            "FROM checked WHERE reason IS NOT NULL")
    # 2. analytic database: rows, quarantine, supersession and the manifest entry, all or nothing
    try:
        con.execute("BEGIN")
        select = ", ".join(expr.replace("__FILE_ID__", str(file_id)) for _, _, expr in raw_cols)
        con.execute(f"INSERT INTO raw.{ident(spec.table)} ({', '.join(ident(n) for n, _, _ in raw_cols)}) "
                    f"SELECT {select} FROM checked WHERE reason IS NULL")
        con.execute(f"INSERT INTO ingest.quarantine SELECT {file_id}, {lit(spec.name)}, row_number, reason, "
                    f"reason_column FROM checked WHERE reason IS NOT NULL")
        _record_supersession(con, replaced, file_id, "superseded", replace)
        con.execute("INSERT INTO ingest.manifest VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL, now())",
                    [file_id, spec.name, period, path.name, str(path), digest, rows_read, loaded, quarantined])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        _drop_staging(con)
        discard_half_loaded(con)
        raise
    reasons = dict(con.execute("SELECT reason, count(*) FROM checked WHERE reason IS NOT NULL GROUP BY 1 "
                               "ORDER BY 1").fetchall())
    _drop_staging(con)
    log.info("loaded %s: %d rows read, %d loaded, %d quarantined", path.name, rows_read, loaded, quarantined)
    return FileResult(path, spec.name, "loaded", rows_read, loaded, quarantined, reasons,
                      superseded=[r[0] for r in replaced])


def _drop_staging(con: Connection) -> None:
    """Drop the staging tables (they hold identifiers)."""
    con.execute(f"DROP TABLE IF EXISTS checked; DROP TABLE IF EXISTS {STAGED}")


def loaded_file(con: Connection, digest: str) -> tuple[int, str] | None:
    """(file id, status) of the latest file with these bytes in the manifest, or None."""
    return con.execute("SELECT file_id, status FROM ingest.manifest WHERE sha256 = ? ORDER BY status = 'active' DESC, "
                       "file_id DESC LIMIT 1", [digest]).fetchone()


def already_loaded(con: Connection, digest: str) -> bool:
    """Whether a file with these bytes is in the manifest."""
    return loaded_file(con, digest) is not None


def restore_file(con: Connection, file_id: int, replace: bool = False) -> FileResult:
    """Put a superseded file back in service in place of the file(s) now in service for its period
    (its rows were kept); refused, like any supersession, if it would shrink the period sharply."""
    row = con.execute("SELECT source, period, file_name, path, status, rows_loaded FROM ingest.manifest "
                      "WHERE file_id = ?", [file_id]).fetchone()
    if row is None:
        raise ValueError(f"no file {file_id} in the manifest (`openphm files list` shows them)")
    source, period, name, path, status, rows = row
    if status == "active":
        return FileResult(Path(path), source, "unchanged")
    replaced = _replaced_files(con, SOURCES[source], period)
    refusal = None if replace else shrink_refusal(rows, replaced, f"restoring {name} (file {file_id})")
    if refusal:
        return FileResult(Path(path), source, "refused", problem=refusal)
    with transaction(con):
        _record_supersession(con, replaced, file_id, "restored", replace)
        con.execute("UPDATE ingest.manifest SET status = 'active', superseded_by = NULL WHERE file_id = ?", [file_id])
    log.info("restored %s (file %d) in place of %s", name, file_id, [r[0] for r in replaced])
    return FileResult(Path(path), source, "restored", rows_loaded=rows, superseded=[r[0] for r in replaced])


def supersessions(con: Connection) -> list[tuple]:
    """Every supersession and restoration: when, the file taken out of service, the file put in its
    place, the action, whether --replace confirmed it, and the rows taken out of service."""
    return con.execute("SELECT s.happened_at, s.file_id, old.file_name, s.by_file_id, new.file_name, s.action, "
                       "s.confirmed, s.rows_out FROM ingest.supersession s "
                       "JOIN ingest.manifest old ON old.file_id = s.file_id "
                       "JOIN ingest.manifest new ON new.file_id = s.by_file_id "
                       "ORDER BY s.happened_at, s.file_id").fetchall()


def ingest_file(con: Connection, path: Path, spec: SourceSpec | None = None,
                today: dt.date | None = None, replace: bool = False) -> FileResult:
    """Load one extract file (idempotent: the same bytes twice is a no-op; the bytes of a file that
    was superseded put that file back in service)."""
    spec = spec or source_for_path(path)
    if spec is None:
        return FileResult(path, "?", "rejected", problem=f"{path}: not a known source (expected one of "
                                                         f"{', '.join(SOURCES)} in the folder or file name)")
    if spec.period_of(path.stem) is None:
        example = "gp_registrations_2026-03-31" if spec.snapshot else f"{spec.name}_2023-24"
        return FileResult(path, spec.name, "rejected", problem=(
            f"{path}: the file name does not end with the period it covers (as in {example}{path.suffix}); "
            "refused, so that a second version cannot load beside the first. Send a corrected file under "
            "the period's own name: it supersedes the earlier one"))
    digest = sha256_of(path)
    earlier = loaded_file(con, digest)
    if earlier and earlier[1] == "active":
        log.info("unchanged %s: already loaded", path.name)
        return FileResult(path, spec.name, "unchanged")
    if earlier:
        return restore_file(con, earlier[0], replace)
    try:
        rows = stage_file(con, path, spec)
    except RejectedFile as exc:
        con.execute(f"DROP TABLE IF EXISTS {STAGED}")
        log.warning("rejected %s: %s", path.name, exc.problem)
        return FileResult(path, spec.name, "rejected", problem=str(exc))
    return load_staged(con, spec, path, digest, rows, today or dt.date.today(), replace)


def ingest_fhir_folder(con: Connection, folder: Path, today: dt.date | None = None) -> list[FileResult]:
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


def load_reference(con: Connection, folder: Path) -> list[str]:
    """Load reference files (organisations, postcode lookup, IMD deciles, care homes), replacing earlier ones."""
    loaded = []
    for path in sorted(folder.glob("*.csv")):
        read_csv_table(con, path, f"reference.{ident(path.stem)}")
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


def open_store(db: Path, engine: str = "duckdb", spark_master: str = "local[2]") -> tuple[Store, Connection]:
    """Connect to (and if need be create) an installation's databases, on DuckDB or on Spark."""
    store = Store(Path(db))
    con = open_engine(store, engine, spark_master)
    ensure_schema(con)
    return store, con
