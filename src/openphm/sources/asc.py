"""Adult social care services (council client-level data): often without an NHS number."""

from openphm.sources.base import BIRTH_EARLIEST, Column, SourceSpec

SPEC = SourceSpec(
    name="asc",
    description="Council adult social care services (long-term support)",
    table="asc",
    columns=(
        Column("record_id", required=True),
        Column("la_code", "code", True, "la_code", known_in="local_authority"),
        Column("la_person_id", required=True, identifier=True),
        Column("nhs_number", "code", False, "nhs_number", identifier=True),
        Column("given_name", identifier=True, max_length=35),
        Column("family_name", identifier=True, max_length=35),
        Column("date_of_birth", "date", True, identifier=True, earliest=BIRTH_EARLIEST),
        Column("sex", "code", True, "sex_letter", identifier=True),
        Column("postcode", "code", False, "postcode", identifier=True),
        Column("service_type", required=True),
        Column("start_date", "date", True),
        Column("end_date", "date"),
    ),
    date_column="start_date",
    native_person_key="la_person_id",
    date_order=(("start_date", "end_date"),),
)
