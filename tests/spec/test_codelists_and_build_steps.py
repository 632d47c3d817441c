"""Code lists are well-formed data; build steps are ordered and retargeted by the runner."""

import re
from pathlib import Path

import pytest

from openphm.codelists import COLUMNS, SYSTEMS, load_codelists
from openphm.record.build import DEFAULT_SQL_DIR, BuildFailed, Step, compile_step, read_steps


def test_every_code_list_is_well_formed():
    lists = load_codelists()
    assert lists.columns == ["condition", *COLUMNS]
    assert lists["condition"].n_unique() >= 15
    for row in lists.iter_rows(named=True):
        assert row["code_system"] in SYSTEMS, row
        if row["code_system"] == "SNOMED CT":
            assert re.fullmatch(r"[0-9]{6,18}", row["code"]), row
        else:
            assert re.fullmatch(r"[A-Z]([0-9]{1,2}[0-9X]?)?", row["code"]), row
        assert row["term"] and row["source"], row
    # every condition has codes for both primary care and hospital data
    per = {c: set(lists.filter(lists["condition"] == c)["code_system"]) for c in lists["condition"].unique()}
    assert all(s == set(SYSTEMS) for s in per.values()), per


def test_steps_are_ordered_by_their_dependencies():
    order = [s.table for s in read_steps(DEFAULT_SQL_DIR)]
    assert order.index("registration") < order.index("person")
    assert len(order) == len(set(order)) == 14


def test_circular_or_missing_dependencies_are_refused(tmp_path: Path):
    (tmp_path / "a.sql").write_text("-- table: a\n-- depends: b\nSELECT 1 AS x\n")
    (tmp_path / "b.sql").write_text("-- table: b\n-- depends: a\nSELECT 1 AS x\n")
    with pytest.raises(BuildFailed, match="circular"):
        read_steps(tmp_path)
    (tmp_path / "b.sql").write_text("-- table: b\n-- depends: c\nSELECT 1 AS x\n")
    with pytest.raises(BuildFailed, match="no SQL file makes"):
        read_steps(tmp_path)


def test_references_to_the_record_point_at_the_version_being_built():
    step = Step("person", ("registration",), "SELECT r.person_id FROM record.registration AS r "
                                            "JOIN reference.organisations AS o ON o.practice_code = r.practice_code")
    sql = compile_step(step, "record_v7")
    assert sql.startswith("CREATE TABLE record_v7.person AS")
    assert "record_v7.registration AS r" in sql and "reference.organisations" in sql
    spark = compile_step(step, "record_v7", dialect="spark")
    assert "CREATE TABLE record_v7.person" in spark
