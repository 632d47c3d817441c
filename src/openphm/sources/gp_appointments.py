"""GP appointments (Appointments in General Practice style)."""

from openphm.sources.base import Column, SourceSpec

SPEC = SourceSpec(
    name="gp_appointments",
    description="Appointments at GP practices",
    table="gp_appointments",
    columns=(
        Column("record_id", required=True),
        Column("nhs_number", "code", True, "nhs_number", identifier=True),
        Column("practice_code", "code", True, "ods_practice", known_in="practice"),
        Column("appointment_date", "date", True),
        Column("hcp_type", required=True),
        Column("appointment_mode", required=True),
        Column("appointment_status", required=True),
    ),
    date_column="appointment_date",
)
