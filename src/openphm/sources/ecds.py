"""A&E attendances (Emergency Care Data Set style)."""

from openphm.sources.base import Column, SourceSpec, provider_extract_header

SPEC = SourceSpec(
    name="ecds",
    description="Emergency Care Data Set attendances",
    table="ecds",
    columns=(
        *provider_extract_header(),
        Column("arrival_date", "date", True),
        Column("department_type", "code", True, "two_digits"),
        Column("arrival_mode"),
        Column("disposal"),
    ),
    date_column="arrival_date",
)
