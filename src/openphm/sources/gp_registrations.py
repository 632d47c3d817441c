"""GP registrations: who is registered with which practice, from when to when (GP system extract)."""

from openphm.sources.base import BIRTH_EARLIEST, NHS_FIRST_DAY, Column, SourceSpec

SPEC = SourceSpec(
    name="gp_registrations",
    description="GP practice registrations with demographics (one row per registration)",
    table="gp_registrations",
    columns=(
        Column("record_id", required=True),
        Column("nhs_number", "code", True, "nhs_number", identifier=True),
        Column("given_name", identifier=True, max_length=35),
        Column("family_name", identifier=True, max_length=35),
        Column("date_of_birth", "date", True, identifier=True, earliest=BIRTH_EARLIEST),
        Column("sex", "code", True, "sex_letter", identifier=True),
        Column("ethnic_category", "code", False, "ethnic_category"),
        Column("postcode", "code", False, "postcode", identifier=True),
        Column("practice_code", "code", True, "ods_practice", known_in="practice"),
        Column("registration_start", "date", True, earliest=NHS_FIRST_DAY),
        Column("registration_end", "date"),
        Column("deregistration_reason"),
    ),
    date_column="registration_start",
    date_order=(("registration_start", "registration_end"),),
    period_pattern=r"_(\d{4}-\d{2}-\d{2})$",
    snapshot=True,
)
