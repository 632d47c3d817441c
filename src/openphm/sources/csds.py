"""Community health contacts (Community Services Data Set style)."""

from openphm.sources.base import Column, SourceSpec, identity_columns

SPEC = SourceSpec(
    name="csds",
    description="Community Services Data Set contacts",
    table="csds",
    columns=(
        Column("record_id", required=True),
        *identity_columns(),
        Column("provider_code", "code", True, "ods_trust"),
        Column("gp_practice_code", "code", False, "ods_practice"),
        Column("contact_date", "date", True),
        Column("team_type", required=True),
        Column("contact_location"),
    ),
    date_column="contact_date",
)
