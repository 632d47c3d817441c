"""Row validation as SQL, generated from a source's declared columns.

Each row gets the first rule it breaks (`reason`, `reason_column`) or none. NHS numbers are not
quarantined: `nhs_number_valid` flags whether one passes modulus 11 (NHS Data Dictionary).
"""

from __future__ import annotations

import datetime as dt

from openphm.engine.duckdb_store import ident, lit
from openphm.sources.base import FORMATS, SourceSpec


def nhs_number_valid_sql(column: str) -> str:
    """SQL: true when the value, spaces removed, is ten digits with a correct modulus-11 check digit."""
    d = f"regexp_replace(coalesce({column}, ''), '\\s', '', 'g')"
    weighted = " + ".join(f"CAST(substr({d}, {i}, 1) AS INTEGER) * {11 - i}" for i in range(1, 10))
    check = f"((11 - (({weighted}) % 11)) % 11)"
    return (f"(regexp_full_match({d}, '[0-9]{{10}}') AND "
            f"CASE WHEN regexp_full_match({d}, '[0-9]{{10}}') THEN {check} <> 10 "
            f"AND {check} = CAST(substr({d}, 10, 1) AS INTEGER) ELSE false END)")


def normalised_nhs_number_sql(column: str) -> str:
    """SQL: the digits of an NHS number (spaces removed), NULL when blank."""
    return f"nullif(regexp_replace(trim({column}), '\\s', '', 'g'), '')"


def parsed_date_sql(column: str, date_format: str) -> str:
    """SQL: the column parsed as a date in the source's format, NULL when it does not parse."""
    return f"CAST(try_strptime(trim({column}), {lit(date_format)}) AS DATE)"


def rules(spec: SourceSpec, today: dt.date) -> list[tuple[str, str, str]]:
    """(condition, reason code, column) in the order they are checked."""
    out: list[tuple[str, str, str]] = []
    for col in spec.columns:
        c = ident(col.name)
        if col.required and col.name != spec.nhs_number_column:
            out.append((f"({c} IS NULL OR trim({c}) = '')", "MISSING_REQUIRED", col.name))
    for col in spec.columns:
        c = ident(col.name)
        if col.kind == "date":
            parsed = parsed_date_sql(c, col.date_format)
            out.append((f"({c} IS NOT NULL AND trim({c}) <> '' AND {parsed} IS NULL)", "BAD_DATE", col.name))
            if col.not_future:
                out.append((f"({parsed} > DATE {lit(today.isoformat())})", "FUTURE_DATE", col.name))
        elif col.format and col.name != spec.nhs_number_column:
            out.append((f"({c} IS NOT NULL AND trim({c}) <> '' AND NOT regexp_full_match(trim({c}), "
                         f"{lit(FORMATS[col.format])}))", "BAD_CODE", col.name))
    for start, end in spec.date_order:
        s = parsed_date_sql(ident(start), spec.column(start).date_format)
        e = parsed_date_sql(ident(end), spec.column(end).date_format)
        out.append((f"({e} < {s})", "DATE_ORDER", end))
    return out


def reason_columns_sql(spec: SourceSpec, today: dt.date) -> str:
    """SQL select-list items `reason` and `reason_column` for a source's rows."""
    checks = rules(spec, today)
    reason = " ".join(f"WHEN {cond} THEN {lit(code)}" for cond, code, _ in checks)
    column = " ".join(f"WHEN {cond} THEN {lit(col)}" for cond, _, col in checks)
    if not checks:
        return "CAST(NULL AS VARCHAR) AS reason, CAST(NULL AS VARCHAR) AS reason_column"
    return f"CASE {reason} END AS reason, CASE {column} END AS reason_column"
