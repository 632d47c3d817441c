"""Outpatient appointments (SUS+ outpatients style)."""

from openphm.sources.base import Column, SourceSpec, identity_columns

SPEC = SourceSpec(
    name="op",
    description="Outpatient appointments from SUS",
    table="op",
    columns=(
        Column("record_id", required=True),
        *identity_columns(),
        Column("provider_code", "code", True, "ods_trust"),
        Column("gp_practice_code", "code", False, "ods_practice"),
        Column("appointment_date", "date", True),
        Column("first_attendance", "code", True, "digit"),
        Column("attendance_status", "code", True, "digit"),
        Column("treatment_specialty", "code", False, "three_digits"),
    ),
    date_column="appointment_date",
)
