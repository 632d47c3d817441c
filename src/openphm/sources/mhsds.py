"""Mental health contacts (Mental Health Services Data Set style), with care coordination and care plans."""

from openphm.sources.base import Column, SourceSpec, identity_columns

SPEC = SourceSpec(
    name="mhsds",
    description="Mental Health Services Data Set contacts",
    table="mhsds",
    columns=(
        Column("record_id", required=True),
        *identity_columns(),
        Column("provider_code", "code", True, "ods_trust"),
        Column("gp_practice_code", "code", False, "ods_practice"),
        Column("contact_date", "date", True),
        Column("team_type", required=True),
        Column("care_coordinator", "code", True, "yes_no"),
        Column("care_plan_agreed_date", "date"),
    ),
    date_column="contact_date",
)
