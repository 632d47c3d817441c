"""Mental health contacts (Mental Health Services Data Set style), with care coordination and care plans."""

from openphm.sources.base import Column, SourceSpec, provider_extract_header

SPEC = SourceSpec(
    name="mhsds",
    description="Mental Health Services Data Set contacts",
    table="mhsds",
    columns=(
        *provider_extract_header(),
        Column("contact_date", "date", True),
        Column("team_type", required=True),
        Column("care_coordinator", "code", True, "yes_no"),
        Column("care_plan_agreed_date", "date"),
    ),
    date_column="contact_date",
)
