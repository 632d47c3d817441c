"""The domain's rules, each defined once, named, and used by every part.

A rule is a small SQL expression (or, where Python needs the same answer, a Python twin tested
against it). SQL steps in `record/sql/` call a rule by name as `{{ rule_name(arg, ...) }}`
(`expand_rules`); Python modules call the function. The spec tests (`tests/spec/test_domain_rules.py`)
cover each rule once.

Conventions ("on a date" means at the end of that day, as ONS and NHS Digital count populations):
- registered on d: the registration started on or before d and had not ended by d
  (`registration_start <= d AND (registration_end IS NULL OR registration_end > d)`); a
  registration that ends on d belongs to the next practice from that day;
- alive on d: no death, or a death after d;
- a state known *before* a date (features with no look-ahead) is the state on the day before;
- age on d, from the year and month of birth only (the record holds no day of birth): a
  birthday in the month of d counts as reached from the 16th (the middle of the month), so on
  1 October anyone born in October is still a year younger;
- an emergency admission: admission method 2x (NHS Data Dictionary: ADMISSION METHOD);
- ethnic group: the five ONS 2001 groups from the NHS ethnic category code;
- age band: the 19 ESP2013 bands (0-4 ... 85-89, 90+);
- financial year: April to March, labelled '2021-22'.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from openphm.calendar_dates import fy_label

# ---- dates and people ----------------------------------------------------------------------------

BIRTHDAY_DAY = 16  # a birthday in the month of the date counts as reached from this day


def sql_date(d: dt.date) -> str:
    """A date literal."""
    return f"DATE '{dt.date.fromordinal(d.toordinal()).isoformat()}'"


def _col(alias: str | None, name: str) -> str:
    return f"{alias}.{name}" if alias else name


def registered_on(d: dt.date, alias: str | None = None) -> str:
    """SQL: the registration row covers the end of day `d`."""
    start, end = _col(alias, "registration_start"), _col(alias, "registration_end")
    return f"({start} <= {sql_date(d)} AND ({end} IS NULL OR {end} > {sql_date(d)}))"


def registered_at(date_sql: str, alias: str | None = None) -> str:
    """SQL: the registration row covers the end of the day held in `date_sql` (a column or expression:
    an event's date), by the same rule as `registered_on`."""
    start, end = _col(alias, "registration_start"), _col(alias, "registration_end")
    return f"({start} <= {date_sql} AND ({end} IS NULL OR {end} > {date_sql}))"


def registered_during(start: dt.date, end: dt.date, alias: str | None = None) -> str:
    """SQL: the registration overlaps [start, end) (registered at some time in the period)."""
    s, e = _col(alias, "registration_start"), _col(alias, "registration_end")
    return f"({s} < {sql_date(end)} AND ({e} IS NULL OR {e} > {sql_date(start)}))"


def alive_on(d: dt.date, alias: str | None = None) -> str:
    """SQL: the person had not died by the end of day `d`."""
    death = _col(alias, "date_of_death")
    return f"({death} IS NULL OR {death} > {sql_date(d)})"


def age_on(d: dt.date, alias: str | None = None) -> str:
    """SQL: age in whole years on `d` from birth_year and birth_month (no year differences, so every
    engine gives the same answer)."""
    year, month = _col(alias, "birth_year"), _col(alias, "birth_month")
    reached = f"{month} < {d.month}" if d.day < BIRTHDAY_DAY else f"{month} <= {d.month}"
    return f"({d.year} - {year} - CASE WHEN {reached} THEN 0 ELSE 1 END)"


def age_at(date_sql: str, alias: str | None = None) -> str:
    """SQL: age in whole years on the day held in `date_sql` (a column or expression), by the same rule
    as `age_on` (a birthday in the month counts as reached from the 16th)."""
    year, month = _col(alias, "birth_year"), _col(alias, "birth_month")
    m, day = f"month({date_sql})", f"dayofmonth({date_sql})"
    reached = f"({month} < {m} OR ({month} = {m} AND {day} >= {BIRTHDAY_DAY}))"
    return f"(year({date_sql}) - {year} - CASE WHEN {reached} THEN 0 ELSE 1 END)"


def age_on_value(birth_year: int, birth_month: int, d: dt.date) -> int:
    """Python twin of `age_on`."""
    reached = birth_month < d.month or (birth_month == d.month and d.day >= BIRTHDAY_DAY)
    return d.year - birth_year - (0 if reached else 1)


def age_band(age_sql: str) -> str:
    """SQL: the ESP2013 age band ('0-4' ... '85-89', '90+') of an age expression."""
    return (f"CASE WHEN {age_sql} >= 90 THEN '90+' ELSE CAST(5 * CAST(floor({age_sql} / 5) AS INTEGER) AS VARCHAR)"
            f" || '-' || CAST(5 * CAST(floor({age_sql} / 5) AS INTEGER) + 4 AS VARCHAR) END")


def age_band_value(age: int) -> str:
    """Python twin of `age_band`."""
    return "90+" if age >= 90 else f"{5 * (age // 5)}-{5 * (age // 5) + 4}"


# broad bands for fairness and linkage-bias breakdowns: (upper bound exclusive, label), last open
BROAD_AGE_BANDS: tuple[tuple[int | None, str], ...] = ((18, "0-17"), (45, "18-44"), (65, "45-64"), (80, "65-79"),
                                                       (None, "80+"))


def broad_age_band(age_sql: str) -> str:
    """SQL: the broad age band (0-17, 18-44, 45-64, 65-79, 80+) of an age expression."""
    whens = " ".join(f"WHEN {age_sql} < {upper} THEN '{label}'" for upper, label in BROAD_AGE_BANDS if upper)
    return f"CASE {whens} ELSE '{BROAD_AGE_BANDS[-1][1]}' END"


def broad_age_band_values(ages: ArrayLike) -> np.ndarray:
    """Python twin of `broad_age_band` over an array of ages."""
    age = np.asarray(ages, dtype=float)
    bounded = [(upper, label) for upper, label in BROAD_AGE_BANDS if upper]
    return np.select([age < upper for upper, _ in bounded], [label for _, label in bounded], BROAD_AGE_BANDS[-1][1])


# ---- ethnicity ------------------------------------------------------------------------------------

# NHS Data Dictionary ETHNIC CATEGORY (2001 census) codes by ONS group
ETHNIC_GROUPS: dict[str, tuple[str, ...]] = {
    "White": ("A", "B", "C"), "Mixed": ("D", "E", "F", "G"), "Asian": ("H", "J", "K", "L"),
    "Black": ("M", "N", "P"), "Other": ("R", "S"),
}
ETHNIC_GROUP_UNKNOWN = "Not stated"


def ethnic_group(column: str) -> str:
    """SQL: the ethnic group of an ethnic category code column."""
    whens = " ".join(f"WHEN {column} IN ({', '.join(repr(c) for c in codes)}) THEN '{group}'"
                     for group, codes in ETHNIC_GROUPS.items())
    return f"CASE {whens} ELSE '{ETHNIC_GROUP_UNKNOWN}' END"


def ethnic_group_value(code: str | None) -> str:
    """Python twin of `ethnic_group`."""
    return next((g for g, codes in ETHNIC_GROUPS.items() if code in codes), ETHNIC_GROUP_UNKNOWN)


# ---- hospital activity ----------------------------------------------------------------------------

def admission_type(method: str) -> str:
    """SQL: elective, emergency, maternity, birth or other, from an ADMISSION METHOD column."""
    return (f"CASE WHEN {method} LIKE '1%' THEN 'elective' WHEN {method} LIKE '2%' THEN 'emergency' "
            f"WHEN {method} LIKE '3%' THEN 'maternity' WHEN {method} LIKE '8%' THEN 'birth' ELSE 'other' END")


def regular_day_attender(classification: str) -> str:
    """SQL: a PATIENT CLASSIFICATION of 3 or 4: a regular day or night attender (a planned series of
    admissions for the same treatment, such as renal dialysis or chemotherapy), not an admission in
    NHS counts of elective activity."""
    return f"coalesce({classification} IN ('3', '4'), false)"


def elective_admission(alias: str | None = None) -> str:
    """SQL over record.inpatient_spell: an elective admission (ordinary or day case), regular day and
    night attenders excluded, as in NHS Digital's Hospital Admitted Patient Care Activity counts."""
    return f"{_col(alias, 'admission_type')} = 'elective' AND NOT {_col(alias, 'regular_day_attender')}"


def emergency_admission(alias: str | None = None) -> str:
    """SQL over record.inpatient_spell: the spell is an emergency admission."""
    return f"{_col(alias, 'admission_type')} = 'emergency'"


# Counts of activity a person had, by name: (record table, date column, filter, value).
ACTIVITY: dict[str, tuple[str, str, str, str]] = {
    "emergency_admissions": ("inpatient_spell", "admission_date", emergency_admission(), "count(*)"),
    "elective_admissions": ("inpatient_spell", "admission_date", elective_admission(), "count(*)"),
    "maternity_admissions": ("inpatient_spell", "admission_date", "admission_type IN ('maternity', 'birth')",
                             "count(*)"),
    "emergency_bed_days": ("inpatient_spell", "admission_date", emergency_admission(), "sum(length_of_stay)"),
    "ae_attendances": ("ae_attendance", "arrival_date", "TRUE", "count(*)"),
    "outpatient_attendances": ("outpatient_appointment", "appointment_date", "attended", "count(*)"),
    "outpatient_missed": ("outpatient_appointment", "appointment_date", "NOT attended", "count(*)"),
    "gp_appointments": ("gp_appointment", "appointment_date", "attended", "count(*)"),
    "community_contacts": ("community_contact", "contact_date", "TRUE", "count(*)"),
    "mental_health_contacts": ("mental_health_contact", "contact_date", "TRUE", "count(*)"),
}


# ---- one registration per person ------------------------------------------------------------------

def registration_on(table: str, d: dt.date, columns: tuple[str, ...], within: str = "TRUE") -> str:
    """SQL: one row per person from a registration table: the registration covering `d`, or if none
    does, the latest to start (among rows meeting `within`), with `columns` and `registered_on_date`.

    The whole row is chosen at once (a window ranking), never column by column, so a column that is
    empty on the chosen registration (no care home) stays empty rather than being taken from
    another registration."""
    cols = ", ".join(columns)
    covers = registered_on(d)
    return f"""SELECT person_id, {cols}, registered_on_date FROM (
        SELECT person_id, {cols}, bool_or({covers}) OVER (PARTITION BY person_id) AS registered_on_date,
               row_number() OVER (PARTITION BY person_id ORDER BY CASE WHEN {covers} THEN 1 ELSE 0 END DESC,
                                  registration_start DESC, registration_end DESC NULLS FIRST, {cols}) AS pick
        FROM {table} WHERE {within}) AS ranked WHERE pick = 1"""


# ---- money -----------------------------------------------------------------------------------------


def financial_year(date_sql: str) -> str:
    """SQL: the financial year (April to March) of the day held in `date_sql`, labelled as '2021-22'."""
    start = f"(year({date_sql}) - CASE WHEN month({date_sql}) < 4 THEN 1 ELSE 0 END)"
    return (f"(CAST({start} AS VARCHAR) || '-' || "
            f"lpad(CAST(({start} + 1) % 100 AS VARCHAR), 2, '0'))")


def financial_year_value(d: dt.date) -> str:
    """Python twin of `financial_year`."""
    return fy_label(d.year - (1 if d.month < 4 else 0))


# ---- rules by name, for SQL files -----------------------------------------------------------------

RULES: dict[str, Callable[..., str]] = {
    "age_band": age_band, "ethnic_group": ethnic_group, "admission_type": admission_type,
    "emergency_admission": emergency_admission, "elective_admission": elective_admission,
    "regular_day_attender": regular_day_attender, "age_at": age_at, "registered_at": registered_at,
    "financial_year": financial_year,
}
_CALL = re.compile(r"\{\{\s*(\w+)\(([^(){}]*)\)\s*\}\}")
_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def expand_rules(sql: str) -> str:
    """Replace each `{{ rule(arg, ...) }}` in a SQL file with the rule's SQL. Arguments are column
    names (letters, digits, underscores and dots); anything else is refused."""
    def call(match: re.Match) -> str:
        name, raw = match.group(1), match.group(2)
        if name not in RULES:
            raise ValueError(f"unknown rule {name!r} (rules: {', '.join(sorted(RULES))})")
        args = [a.strip() for a in raw.split(",") if a.strip()]
        if any(not _ARG.match(a) for a in args):
            raise ValueError(f"rule {name}: arguments must be column names ({raw!r})")
        return RULES[name](*args)

    expanded = _CALL.sub(call, sql)
    if "{{" in expanded or "}}" in expanded:
        raise ValueError("a rule call could not be read: write {{ rule(column, ...) }} with column names only")
    return expanded
