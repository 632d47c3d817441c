"""GP coded events: diagnoses and findings recorded in primary care (SNOMED CT)."""

from openphm.sources.base import GP_HISTORY_EARLIEST, Column, SourceSpec

SPEC = SourceSpec(
    name="gp_events",
    description="Coded clinical events from GP systems",
    table="gp_events",
    code_system="SNOMED CT",
    columns=(
        Column("record_id", required=True),
        Column("nhs_number", "code", True, "nhs_number", identifier=True),
        Column("practice_code", "code", True, "ods_practice", known_in="practice"),
        Column("event_date", "date", True, earliest=GP_HISTORY_EARLIEST),
        Column("snomed_code", "code", True, "snomed"),
    ),
    date_column="event_date",
)
