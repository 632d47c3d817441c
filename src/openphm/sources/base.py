"""What a source extract looks like: its columns, their types and roles, and validation rules.

Each source module declares one `SourceSpec`. Rules are data, checked in SQL by
`openphm.ingest.validation`: a row breaking a rule is quarantined with the rule's reason
code and the column; an NHS number failing modulus 11 is flagged, not quarantined, because
linkage can still place the record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Formats a value must match (after trimming), by name. Sources cite the standard.
FORMATS: dict[str, str] = {
    # ODS codes: GP practice (letter + 5 digits), NHS trust (R + 2 alphanumerics), PCN (U + 5 digits).
    "ods_practice": r"^[A-Z][0-9]{5}$",
    "ods_trust": r"^R[A-Z0-9]{2}$",
    "la_code": r"^E0[0-9]{7}$",
    # UK postcode, outward and inward parts (BS 7666), any case, with or without the space.
    "postcode": r"^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}$",
    # ICD-10 four characters without the dot (NHS Digital HES convention, X-padded).
    "icd10": r"^[A-Z][0-9]{2}[0-9X]$",
    # SNOMED CT concept identifiers: 6 to 18 digits.
    "snomed": r"^[0-9]{6,18}$",
    "nhs_number": r"^[0-9]{3} ?[0-9]{3} ?[0-9]{4}$",
    "sex_code": r"^[0-9]$",
    "sex_letter": r"^[MFUI]$",
    "admission_method": r"^([1-2][0-9A-D]|3[1-2]|8[1-3])$",
    "digit": r"^[0-9]$",
    "two_digits": r"^[0-9]{1,2}$",
    "three_digits": r"^[0-9]{3}$",
    # Healthcare Resource Groups (HRG4+, such as EB12E) and other national currencies (IVF01).
    "hrg": r"^[A-Z]{2}[A-Z0-9]{1,6}$",
    # A count of days within a spell (critical care days): 0 to 999.
    "day_count": r"^[0-9]{1,3}$",
    "ethnic_category": r"^([A-HJ-NPRSZ]|99)$",
    "yes_no": r"^[YN]$",
}

# Reason codes, the same in every source.
REASONS = {
    "MISSING_REQUIRED": "a required field is empty",
    "BAD_DATE": "a date that does not parse in the source's date format",
    "FUTURE_DATE": "a date after the day of loading",
    "BAD_CODE": "a code that is not well formed for its code system",
    "DATE_ORDER": "an end date before its start date",
    "IMPLAUSIBLE_DATE": "a date before the column's earliest plausible date (stated in the source specification)",
    "TOO_LONG": "a value longer than the column allows",
    "UNKNOWN_ORGANISATION": "an organisation code that is not in the reference organisations",
    "DUPLICATE_RECORD": "a record id already loaded (earlier in this file, or in another file in service)",
}

# The earliest plausible date of each kind of date column, unless a column states its own: birth dates
# from 1890 (nobody alive in England was born earlier), GP histories from 1900, registrations and
# hospital spells from the NHS's first day (5 July 1948), other contacts from 1990 (before the
# electronic national datasets). A date before these is a typing or default-value error (01/01/1850,
# 0001-01-01), and would stretch stays and analysis periods across centuries.
NHS_FIRST_DAY = "1948-07-05"
DEFAULT_EARLIEST = "1990-01-01"
BIRTH_EARLIEST = "1890-01-01"
GP_HISTORY_EARLIEST = "1900-01-01"

# Longest value a text or code column takes: 255 characters unless the column says otherwise
# (names: the NHS Data Dictionary's PERSON GIVEN NAME and PERSON FAMILY NAME are an35).
DEFAULT_MAX_LENGTH = 255

# Reference tables an organisation code must be in (`Column.known_in`): reference table, its code column.
KNOWN_ORGANISATIONS = {
    "practice": ("organisations", "practice_code"),
    "provider": ("providers", "org_code"),
    "local_authority": ("providers", "org_code"),
}


@dataclass(frozen=True)
class Column:
    """One column of a source extract."""

    name: str
    kind: str = "text"  # text, date, int, code
    required: bool = False
    format: str | None = None  # a key of FORMATS
    date_format: str = "%Y-%m-%d"
    identifier: bool = False  # goes to the identity store, never to analytic tables
    not_future: bool = True
    earliest: str = DEFAULT_EARLIEST  # dates: the earliest plausible value (ISO); earlier ones are quarantined
    max_length: int = DEFAULT_MAX_LENGTH  # characters, after trimming
    known_in: str | None = None  # a key of KNOWN_ORGANISATIONS: the code must be in that reference table

    def __post_init__(self) -> None:
        if self.format and self.format not in FORMATS:
            raise ValueError(f"column {self.name}: unknown format {self.format}")
        if self.kind not in ("text", "date", "int", "code"):
            raise ValueError(f"column {self.name}: unknown kind {self.kind}")
        if self.known_in and self.known_in not in KNOWN_ORGANISATIONS:
            raise ValueError(f"column {self.name}: unknown reference {self.known_in}")


@dataclass(frozen=True)
class SourceSpec:
    """A source dataset: the files it sends and what each row holds."""

    name: str
    description: str
    table: str  # raw table name in the analytic database
    columns: tuple[Column, ...]
    code_system: str | None = None
    date_column: str | None = None  # the activity date, for periods and checks
    nhs_number_column: str | None = "nhs_number"
    native_person_key: str | None = None  # a source's own person id (e.g. a council's)
    date_order: tuple[tuple[str, str], ...] = ()  # (start, end) pairs that must be ordered
    record_id: str = "record_id"
    period_pattern: str = r"_(\d{4}-\d{2}(?:-\d{2})?)$"
    snapshot: bool = False  # each file is a full refresh that supersedes every earlier one
    extra: dict = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        """Column names in the order the source sends them."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """One column by name."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def period_of(self, stem: str) -> str | None:
        """The period a file covers, from its name (e.g. apc_2023-24 -> 2023-24)."""
        m = re.search(self.period_pattern, stem)
        return m.group(1) if m else None


def identity_columns(*, names: bool = False, full_name: bool = False, dob_format: str = "%Y-%m-%d",
                     nhs: bool = True, nhs_required: bool = False, sex_format: str = "sex_code",
                     postcode_required: bool = False) -> tuple[Column, ...]:
    """The identifying columns most sources carry, in their usual order."""
    cols: list[Column] = []
    if nhs:
        cols.append(Column("nhs_number", "code", nhs_required, "nhs_number", identifier=True))
    if names:
        cols += [Column("given_name", identifier=True, max_length=35),
                 Column("family_name", identifier=True, max_length=35)]
    if full_name:
        cols.append(Column("client_name", required=True, identifier=True, max_length=71))
    cols.append(Column("date_of_birth", "date", True, date_format=dob_format, identifier=True,
                       earliest=BIRTH_EARLIEST))
    if sex_format:
        cols.append(Column("sex", "code", True, sex_format, identifier=True))
    cols.append(Column("postcode", "code", postcode_required, "postcode", identifier=True))
    return tuple(cols)


def provider_extract_header() -> tuple[Column, ...]:
    """The leading columns of an NHS provider's extract (SUS, ECDS, CSDS, MHSDS): record id, the
    patient's identifiers, the provider and the registered practice."""
    return (Column("record_id", required=True), *identity_columns(),
            Column("provider_code", "code", True, "ods_trust", known_in="provider"),
            Column("gp_practice_code", "code", False, "ods_practice"))
