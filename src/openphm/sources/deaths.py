"""Death registrations (civil registration deaths, ONS/PCMD style)."""

from openphm.sources.base import Column, SourceSpec, identity_columns

SPEC = SourceSpec(
    name="deaths",
    description="Civil registrations of death",
    table="deaths",
    code_system="ICD-10",
    columns=(
        Column("record_id", required=True),
        *identity_columns(names=True),
        Column("date_of_death", "date", True),
        Column("place_of_death"),
        Column("underlying_cause", "code", False, "icd10"),
    ),
    date_column="date_of_death",
)
