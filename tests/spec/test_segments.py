"""Bridges to Health segments: rules as data, first rule wins, everyone in exactly one segment."""

from pathlib import Path

import duckdb
import polars as pl
import pytest

from openphm.derive.features import feature_names
from openphm.segments.rules import SegmentationError, load_segmentation

# hand-made features: each row says which segment it must fall in, and why
PEOPLE = [
    ("cancer with 2 emergency admissions, also frail", {"has_cancer": 1, "emergency_admissions_12m": 2, "efi": 0.3},
     "short_period_of_decline"),
    ("cancer with 1 emergency admission: not declining; LTC", {"has_cancer": 1, "emergency_admissions_12m": 1,
                                                               "condition_count": 1}, "long_term_conditions"),
    ("moderate frailty", {"efi": 0.25, "condition_count": 3}, "frailty"),
    ("care-home resident", {"care_home_resident": 1}, "frailty"),
    ("COPD with an emergency admission", {"has_copd": 1, "emergency_admissions_12m": 1, "condition_count": 1},
     "limited_reserve"),
    ("COPD, no admission", {"has_copd": 1, "condition_count": 1}, "long_term_conditions"),
    ("learning disability", {"has_learning_disability": 1, "condition_count": 1}, "stable_serious_disability"),
    ("a baby", {"age": 0}, "maternal_and_infant"),
    ("recent maternity admission", {"age": 30, "maternity_admissions_9m": 1}, "maternal_and_infant"),
    ("A&E last month, no conditions", {"age": 40, "ae_attendances_3m": 1}, "acutely_ill"),
    ("nothing recorded", {"age": 40}, "healthy"),
]


def test_each_person_takes_the_first_segment_whose_rule_holds():
    seg = load_segmentation()
    rows = []
    for _, values, _ in PEOPLE:
        row = dict.fromkeys(feature_names(), 0.0)
        row["age"] = 50.0
        row.update({k: float(v) for k, v in values.items()})
        rows.append(row)
    con = duckdb.connect()
    con.register("f", pl.DataFrame(rows).to_arrow())
    got = [r[0] for r in con.execute(f"SELECT {seg.case_sql()} FROM f").fetchall()]
    assert got == [expected for _, _, expected in PEOPLE]
    assert {s["id"] for s in seg.segments} == {expected for _, _, expected in PEOPLE}  # every segment reachable


def test_bad_segmentations_are_refused_with_the_file_and_segment(tmp_path: Path):
    good = load_segmentation()
    text = (Path(__file__).resolve().parents[2] / "src" / "openphm" / "segments" / "definitions"
            / "bridges_to_health.yaml").read_text()
    cases = {
        "unknown feature": (text.replace("efi > 0.24", "frailty_score > 0.24"), "unknown feature 'frailty_score'"),
        "a function": (text.replace("efi > 0.24", "abs(efi) > 0.24"), "may not use"),
        "no catch-all": (text.replace("rule: 'TRUE'", "rule: age > 0"), "last segment's rule must be TRUE"),
        "missing description": (text.replace("  description: Everyone else.\n", ""), "description"),
    }
    for name, (changed, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.yaml"
        path.write_text(changed)
        with pytest.raises(SegmentationError, match=message):
            load_segmentation(path)
    assert len(good.segments) == 8
