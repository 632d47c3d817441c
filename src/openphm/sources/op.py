"""Outpatient appointments (SUS+ outpatients style)."""

from openphm.sources.base import Column, SourceSpec, provider_extract_header

SPEC = SourceSpec(
    name="op",
    description="Outpatient appointments from SUS",
    table="op",
    columns=(
        *provider_extract_header(),
        Column("appointment_date", "date", True),
        Column("first_attendance", "code", True, "digit"),
        Column("attendance_status", "code", True, "digit"),
        Column("treatment_specialty", "code", False, "three_digits"),
    ),
    date_column="appointment_date",
)
