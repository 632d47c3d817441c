"""The evaluation spec: what a well-formed one gives, and a clear error naming the file and field for
each way one can be wrong."""

from __future__ import annotations

import datetime as dt

import pytest

from openphm.evaluate.spec import METHODS, SpecError, load_spec

GOOD = """
name: Enhanced support in care homes
intervention:
  level: practice
  starts: {C81002: 2023-04, C81005: 2023-10}
population: care_home
outcomes: [emergency_admissions, ae_attendances]
period: {start: 2021-04, end: 2026-03}
"""


def _write(tmp_path, text: str):
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_spec(tmp_path) -> None:
    spec = load_spec(_write(tmp_path, GOOD))
    assert spec.starts == {"C81002": dt.date(2023, 4, 1), "C81005": dt.date(2023, 10, 1)}
    assert spec.population == "care_home" and spec.level == "practice"
    assert len(spec.months) == 60 and spec.months[0] == dt.date(2021, 4, 1) and spec.months[-1] == dt.date(2026, 3, 1)
    assert spec.methods == list(METHODS) and "matched_cohort" in METHODS


@pytest.mark.parametrize("change, message", [
    (("outcomes: [emergency_admissions, ae_attendances]", "outcomes: [falls]"), "outcomes/0: 'falls' is not one of"),
    (("population: care_home", "population: the old"), "population: 'the old' is not one of"),
    (("C81005: 2023-10", "C81005: 2023-13"), "intervention/starts/C81005: '2023-13' does not match"),
    (("C81005: 2023-10", "C81005: 2027-01"), "intervention/starts/C81005: 2027-01 is outside the period"),
    (("C81005: 2023-10", "C81005: 2021-06"), "only 2 months before the start"),
    (("end: 2026-03", "end: 2020-03"), "period: end 2020-03 is not after start 2021-04"),
    (("level: practice", "level: ward"), "intervention/level: 'ward' is not one of"),
    (("name: Enhanced support in care homes", "nam: x"), "'nam' was unexpected|'name' is a required property"),
    (("C81002: 2023-04", "'x; DROP TABLE y': 2023-04"), "does not match"),
])
def test_each_mistake_is_named(tmp_path, change, message) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(SpecError, match=message) as info:
        load_spec(_write(tmp_path, GOOD.replace(old, new)))
    assert str(tmp_path / "spec.yaml") in str(info.value)


def test_unreadable_and_not_yaml(tmp_path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(_write(tmp_path, "name: [unclosed"))
