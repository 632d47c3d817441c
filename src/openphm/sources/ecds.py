"""A&E attendances (Emergency Care Data Set style)."""

from openphm.sources.base import Column, SourceSpec, identity_columns

SPEC = SourceSpec(
    name="ecds",
    description="Emergency Care Data Set attendances",
    table="ecds",
    columns=(
        Column("record_id", required=True),
        *identity_columns(),
        Column("provider_code", "code", True, "ods_trust"),
        Column("gp_practice_code", "code", False, "ods_practice"),
        Column("arrival_date", "date", True),
        Column("department_type", "code", True, "two_digits"),
        Column("arrival_mode"),
        Column("disposal"),
    ),
    date_column="arrival_date",
)
