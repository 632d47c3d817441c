"""Admitted patient care spells (SUS+ APC style): ICD-10 diagnoses, admission method and source,
discharge-ready date (for delayed discharge), discharge method and destination, and, where the
extract has them, the spell's core HRG and its critical care days (for costing)."""

from openphm.sources.base import NHS_FIRST_DAY, Column, SourceSpec, provider_extract_header

DIAGNOSES = tuple(Column(f"diag_{i:02d}", "code", i == 1, "icd10") for i in range(1, 13))

SPEC = SourceSpec(
    name="apc",
    description="Admitted patient care spells from SUS",
    table="apc",
    code_system="ICD-10",
    columns=(
        *provider_extract_header(),
        Column("admission_date", "date", True, earliest=NHS_FIRST_DAY),
        Column("discharge_ready_date", "date"),
        Column("discharge_date", "date", True),
        Column("admission_method", "code", True, "admission_method"),
        Column("patient_classification", "code", True, "digit"),
        Column("discharge_method", "code", True, "digit"),
        Column("admission_source", "code", False, "two_digits"),
        Column("discharge_destination", "code", False, "two_digits"),
        Column("treatment_specialty", "code", False, "three_digits"),
        Column("spell_hrg", "code", False, "hrg"),
        Column("critical_care_days", "code", False, "day_count"),
        *DIAGNOSES,
    ),
    date_column="admission_date",
    date_order=(("admission_date", "discharge_date"), ("admission_date", "discharge_ready_date")),
)
