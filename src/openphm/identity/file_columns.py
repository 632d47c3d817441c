"""Reading a user's file of people for `openphm link-files`: its id column, which of its columns
mean what, and each value put in one form (dates in any common format, names and addresses in
capitals, postcodes spaced). Every problem is a `LinkFilesError` of one line naming the file and
the column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from openphm.engine.connection import EngineError, memory_connection
from openphm.engine.duckdb_store import lit

# A field's aliases, compared after lower-casing and turning spaces and hyphens into underscores.
FIELDS: dict[str, tuple[str, ...]] = {
    "given_name": ("given_name", "first_name", "forename", "forenames", "firstname", "given"),
    "family_name": ("family_name", "surname", "last_name", "lastname", "family"),
    "date_of_birth": ("date_of_birth", "dob", "birth_date", "birthdate", "dateofbirth", "date_birth"),
    "sex": ("sex", "gender"),
    "nhs_number": ("nhs_number", "nhs_no", "nhsnumber", "nhs"),
    "postcode": ("postcode", "post_code", "postal_code", "zip", "zip_code", "zipcode"),
    "street_number": ("street_number", "house_number", "street_no", "house_no", "building_number"),
    "address_1": ("address_1", "address1", "address_line_1", "address_line1", "addressline1", "addr1",
                  "address", "street", "street_address"),
    "address_2": ("address_2", "address2", "address_line_2", "address_line2", "addressline2", "addr2"),
    "town": ("town", "suburb", "city", "locality", "post_town", "town_city"),
    "state": ("state", "county", "region", "province"),
    "other_id": ("soc_sec_id", "ssn", "social_security_number", "national_insurance_number", "ni_number",
                 "nino", "medicare_number", "passport_number"),
}
FULL_NAME = ("full_name", "name", "client_name", "patient_name", "person_name")
# How each field is standardised and compared (see link_files.comparison).
KIND = {"given_name": "name", "family_name": "name", "date_of_birth": "date", "sex": "sex", "nhs_number": "nhs",
        "postcode": "postcode", "street_number": "code", "address_1": "text", "address_2": "text",
        "town": "place", "state": "category", "other_id": "identifier"}
# A file's own record id, found by name; `column0` is DuckDB's name for pandas' unnamed index.
ID_NAMES = ("rec_id", "record_id", "id", "row_id", "person_id", "patient_id", "client_id", "unique_id", "uid",
            "recid", "local_id", "index", "unnamed:_0", "column0", "__index_level_0__")

DATE_HINT = "YYYY-MM-DD, YYYYMMDD, dd/mm/yyyy or d Mon yyyy"
_DAY_FIRST = ("%Y-%m-%d", "%Y%m%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d %b %Y", "%d %B %Y",
              "%d-%b-%Y", "%d-%B-%Y", "%b %d %Y", "%B %d %Y")
_MONTH_FIRST = ("%Y-%m-%d", "%Y%m%d", "%m/%d/%Y", "%m-%d-%Y", "%Y/%m/%d", "%d %b %Y", "%d %B %Y", "%d-%b-%Y",
                "%b %d %Y", "%B %d %Y")
UK_POSTCODE = r"^[A-Z]{1,2}[0-9][A-Z0-9]?\s*[0-9][A-Z]{2}$"


class LinkFilesError(Exception):
    """A problem with the files given, said in one line."""


@dataclass(frozen=True)
class Field:
    """One compared field: its name in the linkage, its kind and its column in each file."""

    key: str
    kind: str
    left: str
    right: str


def norm(name: str) -> str:
    """A column name as it is matched: lower case, spaces and hyphens as underscores."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def read_table(path: Path) -> pl.DataFrame:
    """Every column of a CSV (any delimiter) or Parquet file, as text."""
    if not path.is_file():
        raise LinkFilesError(f"{path} is not a file")
    con = memory_connection(share=0.25)
    parquet = path.suffix.lower() in (".parquet", ".pq")
    sql = (f"SELECT * FROM read_parquet({lit(str(path))})" if parquet
           else f"SELECT * FROM read_csv({lit(str(path))}, all_varchar = true, header = true)")
    try:
        frame = con.execute(sql).pl()
        frame = frame.select(pl.all().cast(pl.Utf8))
    except (*EngineError, pl.exceptions.PolarsError) as exc:
        raise LinkFilesError(f"{path}: cannot be read ({str(exc).splitlines()[0][:150]})") from None
    finally:
        con.close()
    if frame.height == 0:
        raise LinkFilesError(f"{path}: has no rows")
    return frame


def add_split_names(frame: pl.DataFrame) -> pl.DataFrame:
    """A file with only a full name gains given_name and family_name ("Ada Lovelace", "LOVELACE, Ada")."""
    names = {norm(c) for c in frame.columns}
    full = next((c for c in frame.columns if norm(c) in FULL_NAME), None)
    if full is None or names & set(FIELDS["given_name"] + FIELDS["family_name"]):
        return frame
    text = pl.col(full).str.strip_chars()
    comma = text.str.contains(",")
    before, after = text.str.split(",").list.first(), text.str.split(",").list.last().str.strip_chars()
    words = text.str.split(" ")
    return frame.with_columns(
        pl.when(comma).then(after.str.split(" ").list.first()).otherwise(words.list.first()).alias("given_name"),
        pl.when(comma).then(before).otherwise(words.list.last()).alias("family_name"))


def shown_columns(frame: pl.DataFrame) -> str:
    """A file's column names for a message, leaving out any that do not look like a name (in a file
    without a header row the "names" are a person's details)."""
    names = [c for c in frame.columns if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ .]{0,63}", c)]
    hidden = len(frame.columns) - len(names)
    return ", ".join(names) + (f" and {hidden} that do not look like column names" if hidden else "")


def find_id_column(frame: pl.DataFrame, path: Path, named: str | None) -> str | None:
    """The file's own record id column: the one named, else an obvious one (rec_id, id, record_id,
    pandas' index ...) whose values are all present and distinct; None if there is none."""
    by_norm = {norm(c): c for c in frame.columns}
    if named is not None:
        column = by_norm.get(norm(named))
        if column is None:
            raise LinkFilesError(f"{path.name} has no id column {named!r} (its columns: {shown_columns(frame)})")
        _check_unique(frame, path, column, strict=True)
        return column
    for alias in ID_NAMES:
        column = by_norm.get(alias)
        if column is not None and (alias != "column0" or frame.columns[0] == column) \
                and _check_unique(frame, path, column, strict=False):
            return column
    return None


def _check_unique(frame: pl.DataFrame, path: Path, column: str, *, strict: bool) -> bool:
    values = frame[column]
    problem = None
    if values.null_count():
        problem = f"{values.null_count():,} rows have no value"
    elif values.n_unique() < frame.height:
        row = int(values.is_duplicated().arg_true()[1]) + 1  # a row number, never the value (it may identify)
        problem = f"row {row:,} repeats an earlier row's value"
    if problem and strict:
        raise LinkFilesError(f"{path.name}: id column {column!r} does not identify rows ({problem})")
    return problem is None


def _resolve(frame: pl.DataFrame, path: Path, name: str) -> tuple[str, str | None]:
    """The column a name given by the user means in this file, and the field it is (None if no field)."""
    by_norm = {norm(c): c for c in frame.columns}
    n = norm(name)
    field = next((f for f, aliases in FIELDS.items() if n == f or n in aliases), None)
    if n in by_norm:
        return by_norm[n], field
    if field is not None:
        found = next((by_norm[a] for a in (field, *FIELDS[field]) if a in by_norm), None)
        if found is not None:
            return found, field
    raise LinkFilesError(f"{path.name} has no column {name!r} (its columns: {shown_columns(frame)})")


def choose_fields(left: pl.DataFrame, left_path: Path, right: pl.DataFrame, right_path: Path,
                  columns: list[str] | None, ids: tuple[str | None, str | None]) -> list[Field]:
    """The fields to compare: those named in `columns` (`name` or `left_name=right_name`), else every
    recognised field both files have. The id columns are never compared."""
    picked: list[tuple[str, str, str | None]] = []
    if columns:
        for entry in columns:
            lname, _, rname = entry.partition("=")
            lcol, lfield = _resolve(left, left_path, lname)
            rcol, rfield = _resolve(right, right_path, rname or lname)
            picked.append((lcol, rcol, lfield or rfield))
    else:
        for field in FIELDS:
            lcol = next((_resolve(left, left_path, a)[0] for a in FIELDS[field] if _has(left, a)), None)
            rcol = next((_resolve(right, right_path, a)[0] for a in FIELDS[field] if _has(right, a)), None)
            if lcol is not None and rcol is not None:
                picked.append((lcol, rcol, field))
    fields: list[Field] = []
    for lcol, rcol, field in picked:
        if lcol == ids[0] or rcol == ids[1]:
            continue
        key = field if field and field not in {f.key for f in fields} else _key(lcol, {f.key for f in fields})
        kind = KIND[field] if field else _guess_kind(left[lcol], right[rcol], lcol)
        fields.append(Field(key, kind, lcol, rcol))
    return fields


def _has(frame: pl.DataFrame, name: str) -> bool:
    return any(norm(c) == name for c in frame.columns)


def _key(column: str, taken: set[str]) -> str:
    key = re.sub(r"\W", "_", norm(column)).strip("_") or "column"
    key = f"c_{key}" if key[0].isdigit() or key in ("row_id", *KIND) else key
    while key in taken:
        key += "_"
    return key


def _guess_kind(left: pl.Series, right: pl.Series, name: str) -> str:
    values = pl.concat([left, right]).drop_nulls().str.strip_chars()
    if "date" in norm(name) or norm(name).endswith("dob"):
        return "date"
    digits = values.str.replace_all(r"[\s\-/]", "").str.contains(r"^\d+$").mean() or 0.0
    return "identifier" if digits >= 0.8 else "text"


def parse_dates(values: pl.Series, path: Path, column: str) -> pl.Series:
    """Dates of any common format as YYYY-MM-DD text. Day-first unless only month-first reads.
    Dates of a recognisable shape that are not real dates (19650231) are kept as YYYY-MM-DD text,
    so one-character differences still count. Raises if most values cannot be read."""
    text = (values.str.strip_chars().str.replace_all(r"[,\s]+", " ")
            .str.replace(r"^(\d{4}-\d{2}-\d{2})[T ].*$", "${1}")
            .str.replace(r"^(\S+) \d{1,2}:\d{2}(:\d{2})?(\.\d+)?$", "${1}"))
    text = pl.Series(values.name, text).replace("", None)
    present = text.drop_nulls().len()
    if present == 0:
        return pl.Series(values.name, [None] * values.len(), dtype=pl.Utf8)
    best = None
    for formats in (_DAY_FIRST, _MONTH_FIRST):
        parsed = pl.select(pl.coalesce([text.str.to_date(f, strict=False) for f in formats])).to_series()
        if best is None or parsed.null_count() < best.null_count():
            best = parsed
    assert best is not None
    shaped = (text.str.replace(r"^(\d{4})(\d{2})(\d{2})$", "${1}-${2}-${3}")
              .str.replace(r"^(\d{2})[/.\-](\d{2})[/.\-](\d{4})$", "${3}-${2}-${1}"))
    keep = shaped.str.contains(r"^\d{4}-\d{2}-\d{2}$").fill_null(False)
    unread = best.is_null() & text.is_not_null() & ~keep
    if unread.sum() > 0.5 * present:
        row = int(unread.arg_true()[0]) + 1  # a row number, never the value: a date of birth identifies
        raise LinkFilesError(f"{path.name}: column {column!r} has dates that cannot be read (e.g. row {row:,}; "
                             f"{present - unread.sum():,} of {present:,} read); use {DATE_HINT}")
    iso = best.dt.to_string("%Y-%m-%d")
    return pl.select(pl.when(iso.is_not_null()).then(iso).when(keep).then(shaped).otherwise(None)
                     .alias(values.name)).to_series()


def looks_uk_postcode(*series: pl.Series) -> bool:
    """True if most postcodes in every file look like UK ones (so unit, sector and district compare)."""
    for s in series:
        values = s.drop_nulls().str.strip_chars().str.to_uppercase()
        if values.len() == 0 or (values.str.contains(UK_POSTCODE).mean() or 0.0) < 0.5:
            return False
    return True


def standardise(frame: pl.DataFrame, path: Path, fields: list[Field], side: str, uk_postcodes: bool) -> pl.DataFrame:
    """row_id and one column per field (named by its key), each value in one form; empty values null."""
    out = [pl.Series("row_id", range(1, frame.height + 1))]
    for f in fields:
        column = f.left if side == "left" else f.right
        raw = frame[column].str.strip_chars().replace("", None)
        if f.kind == "date":
            out.append(parse_dates(raw, path, column).alias(f.key))
            continue
        out.append(pl.DataFrame({"v": raw}).select(_expr(f.kind, pl.col("v"), uk_postcodes).alias(f.key))
                   .to_series())
    return pl.DataFrame(out)


def _expr(kind: str, col: pl.Expr, uk_postcodes: bool) -> pl.Expr:
    upper = col.str.to_uppercase()
    if kind in ("name", "text", "place", "category"):
        cleaned = upper.str.replace_all(r"[^\w\s'\-]", " ").str.replace_all(r"\s+", " ").str.strip_chars()
        return pl.when(cleaned.str.len_chars() > 0).then(cleaned)
    if kind == "postcode":
        squeezed = upper.str.replace_all(r"\s", "")
        if uk_postcodes:
            return (pl.when(squeezed.str.len_chars() >= 5)
                    .then(squeezed.str.slice(0, squeezed.str.len_chars() - 3) + " " + squeezed.str.slice(-3)))
        return squeezed
    if kind == "sex":
        s = upper.str.slice(0, 1)
        return pl.when(s.is_in(["1", "M"])).then(pl.lit("M")).when(s.is_in(["2", "F"])).then(pl.lit("F"))
    # nhs, code and identifier: no spaces, hyphens or slashes
    return upper.str.replace_all(r"[\s\-/]", "")
