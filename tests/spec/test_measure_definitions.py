"""Indicator definitions are valid data, their filters are safe, and their docs are current."""

from pathlib import Path

import pytest

from openphm.measures.definitions import DefinitionError, check_filter, load_measure, load_measures, render_docs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "measures"


def test_at_least_twenty_valid_definitions_including_the_required_ones():
    measures = load_measures()
    assert len(measures) >= 20
    for required in ("emergency_admissions_dsr", "emergency_admissions_75plus", "ae_attendances",
                     "ae_attendances_mental_health", "delayed_discharge_bed_days", "smi_care_coordinator",
                     "smi_care_plan", "readmissions_30_days", "elective_admissions", "first_outpatient_attendances",
                     "care_home_emergency_admissions", "falls_admissions_65plus", "deaths_in_hospital",
                     "moderate_severe_frailty", "social_prescribing_referrals", "prevalence_diabetes"):
        assert required in measures


@pytest.mark.parametrize("where, problem", [
    ("admission_type = 'emergency'; DROP TABLE person", "may not use"),
    ("admission_type = = 'x'", "does not parse"),
    ("person_id IN (SELECT person_id FROM person)", "may not use"),
    ("lower(admission_type) = 'emergency'", "may not use"),
    ("p.nhs_number = '9434765919'", "unknown person attribute"),
])
def test_unsafe_or_unknown_filters_are_refused(where, problem):
    with pytest.raises(DefinitionError, match=problem):
        check_filter(where, "test")


def test_a_broken_file_names_itself(tmp_path):
    path = tmp_path / "broken_one.yaml"
    path.write_text("id: another_id\ntitle: x\n")
    with pytest.raises(DefinitionError, match=r"broken_one\.yaml"):
        load_measure(path)


def test_generated_docs_are_current():
    pages = render_docs(load_measures())
    stale = [name for name, text in pages.items()
             if not (DOCS / name).exists() or (DOCS / name).read_text(encoding="utf-8") != text]
    extra = sorted(p.name for p in DOCS.glob("*.md") if p.name not in pages)
    assert not stale and not extra, f"run `openphm measures docs`: stale {stale}, extra {extra}"
