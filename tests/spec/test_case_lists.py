"""Case-finding list definitions are data, checked before they run."""

from pathlib import Path

import pytest

from openphm.lists.run import ListError, definitions_dir, load_lists


def test_shipped_lists_load():
    lists = load_lists()
    assert {"frail_high_risk_no_coordinator", "care_home_repeat_admissions", "rising_risk_multimorbidity"} <= set(lists)
    assert lists["care_home_repeat_admissions"].run_by == "pcn"


@pytest.mark.parametrize("change, message", [
    (("efi > 0.24", "frailty > 0.24"), "unknown field 'frailty'"),
    (("efi > 0.24", "efi > (SELECT 1)"), "may not use"),
    (("(eFI {efi:.2f})", "(eFI {frailty:.2f})"), "reason names unknown field 'frailty'"),
    (("run_by: practice", "run_by: ward"), "ward"),
])
def test_bad_definitions_are_refused_with_the_file_and_criterion(tmp_path: Path, change, message):
    text = (definitions_dir() / "frail_high_risk_no_coordinator.yaml").read_text()
    assert change[0] in text
    (tmp_path / "frail_high_risk_no_coordinator.yaml").write_text(text.replace(*change))
    with pytest.raises(ListError, match=message) as err:
        load_lists(tmp_path)
    assert "frail_high_risk_no_coordinator.yaml" in str(err.value)
