"""Community health contacts (Community Services Data Set style)."""

from openphm.sources.base import Column, SourceSpec, provider_extract_header

SPEC = SourceSpec(
    name="csds",
    description="Community Services Data Set contacts",
    table="csds",
    columns=(
        *provider_extract_header(),
        Column("contact_date", "date", True),
        Column("team_type", required=True),
        Column("contact_location"),
    ),
    date_column="contact_date",
)
