"""Nothing written in a segmentation or list file is pasted into SQL or given to `str.format`.

Segment labels are stored exactly as written, whatever they contain (an apostrophe, or text crafted
to end the statement and run another); rules and criteria reach SQL only as checked trees, so a
comment cannot hide the rest of the query and a qualified name cannot reach another table; a
list's reason can only fill in a field's value.

The record (everyone registered at C81001 from 2000, born June 1950, so aged 73 on 1 April 2024):

| person | what is recorded                                  | segment (Bridges to Health) |
|--------|---------------------------------------------------|-----------------------------|
| a      | diabetes since 2010                               | long_term_conditions        |
| b      | an A&E attendance on 1 March 2024                 | acutely_ill (1 April 2024)  |
| c      | nothing                                           | healthy                     |

Risk scores at 1 April 2024: a 0.30 (centile 99), b 0.10 (centile 50), c 0.05 (centile 10).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from tests.spec.test_dates_on_29_february import _table

from openphm.conditions import check_condition
from openphm.derive.features import feature_names
from openphm.lists.run import ListError, definitions_dir, load_lists, run_lists
from openphm.measures.definitions import DefinitionError, check_filter
from openphm.segments.rules import Segmentation, SegmentationError, load_segmentation
from openphm.segments.rules import definitions_dir as segment_definitions
from openphm.segments.run import run_segments

D = dt.date
IDS = {"a": "00000000-0000-4000-8000-00000000000a", "b": "00000000-0000-4000-8000-00000000000b",
       "c": "00000000-0000-4000-8000-00000000000c"}
SCORED = D(2024, 4, 1)
SECRET = "root:x:0:0:secret-line"


@pytest.fixture
def record() -> duckdb.DuckDBPyConnection:
    """A hand-written planning schema, a raw table that must survive, and one risk scoring."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA planning; CREATE SCHEMA reference; CREATE SCHEMA raw; CREATE SCHEMA risk")
    people = list(IDS.values())
    n = len(people)
    _table(con, "planning.person", pl.DataFrame(
        {"person_id": people, "birth_year": [1950] * n, "birth_month": [6] * n, "sex": ["F", "M", "F"],
         "ethnic_category": ["A"] * n, "date_of_death": [None] * n}, schema_overrides={"date_of_death": pl.Date}))
    _table(con, "planning.registration", pl.DataFrame(
        {"person_id": people, "practice_code": ["C81001"] * n, "pcn_code": ["U00001"] * n, "lsoa_code": ["L1"] * n,
         "care_home_code": [None] * n, "registration_start": [D(2000, 1, 1)] * n, "registration_end": [None] * n},
        schema_overrides={"care_home_code": pl.Utf8, "registration_end": pl.Date}))
    _table(con, "planning.inpatient_spell", pl.DataFrame(
        [(IDS["c"], "elective", D(2024, 6, 1))], schema=["person_id", "admission_type", "admission_date"],
        orient="row").with_columns(pl.lit(3).alias("length_of_stay"), pl.lit(False).alias("regular_day_attender")))
    _table(con, "planning.hospital_diagnosis", pl.DataFrame(
        [(IDS["c"], D(2024, 6, 1), "Z000")], schema=["person_id", "admission_date", "code"], orient="row"))
    _table(con, "planning.condition", pl.DataFrame(
        [(IDS["a"], "diabetes", D(2010, 1, 1))], schema=["person_id", "condition", "first_date"], orient="row"))
    _table(con, "planning.gp_event", pl.DataFrame(
        [(IDS["a"], "0", D(2020, 1, 1))], schema=["person_id", "snomed_code", "event_date"], orient="row"))
    for name, date in (("ae_attendance", "arrival_date"), ("community_contact", "contact_date")):
        _table(con, f"planning.{name}", pl.DataFrame([(IDS["b"], D(2024, 3, 1))], schema=["person_id", date],
                                                     orient="row"))
    for name in ("outpatient_appointment", "gp_appointment"):
        _table(con, f"planning.{name}", pl.DataFrame([(IDS["c"], D(2024, 1, 31), True)],
                                                     schema=["person_id", "appointment_date", "attended"],
                                                     orient="row"))
    _table(con, "planning.mental_health_contact", pl.DataFrame(
        [(IDS["c"], D(2023, 3, 1), False)], schema=["person_id", "contact_date", "has_care_coordinator"],
        orient="row"))
    con.execute("CREATE TABLE reference.lsoa_imd2019 AS SELECT 'L1' AS lsoa_code, '3' AS imd_decile")
    con.execute("CREATE TABLE raw.apc AS SELECT 1 AS x")
    con.execute("CREATE TABLE risk.score (person_id UUID, as_of DATE, model VARCHAR, risk DOUBLE, centile INTEGER, "
                "reasons VARCHAR[])")
    con.executemany("INSERT INTO risk.score VALUES (?, ?, 'logistic', ?, ?, ?)",
                    [[IDS["a"], SCORED, 0.30, 99, ["diabetes"]], [IDS["b"], SCORED, 0.10, 50, []],
                     [IDS["c"], SCORED, 0.05, 10, []]])
    return con


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {f"{s}.{t}" for s, t in con.execute("SELECT table_schema, table_name FROM information_schema.tables")
            .fetchall()}


def _segmentation(tmp_path: Path, change: tuple[str, str] | None = None, label: str | None = None) -> Path:
    """The shipped segmentation with one rule changed, or the last segment's label replaced."""
    data = yaml.safe_load((segment_definitions() / "bridges_to_health.yaml").read_text())
    if change:
        hits = [s for s in data["segments"] if s["rule"] == change[0]]
        assert len(hits) == 1
        hits[0]["rule"] = change[1]
    if label is not None:
        data["segments"][-1]["label"] = label
    path = tmp_path / "segmentation.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ---- segment labels: stored as text ---------------------------------------------------------------

def test_a_label_with_an_apostrophe_runs_and_is_stored_exactly(record, tmp_path: Path):
    seg = load_segmentation(_segmentation(tmp_path, label="Children's and young people's health"))
    assert run_segments(record, seg, months=[D(2024, 4, 1), D(2025, 4, 1)]) == 2
    labels = dict(record.execute("SELECT segment, label FROM segments.definition").fetchall())
    assert labels["healthy"] == "Children's and young people's health"
    assert labels["frailty"] == "Frailty"
    got = dict(record.execute("SELECT CAST(person_id AS VARCHAR), segment FROM segments.person_segment "
                              "WHERE from_month = DATE '2024-04-01'").fetchall())
    assert got == {IDS["a"]: "long_term_conditions", IDS["b"]: "acutely_ill", IDS["c"]: "healthy"}


@pytest.mark.parametrize("label", [
    "x'); DROP TABLE raw.apc; --",
    "x')) t(segment, position, label); DROP TABLE raw.apc; --",  # well formed: the old code dropped raw.apc
    "x')) t(segment, position, label); CREATE TABLE main.leak AS SELECT * FROM read_csv('{secret}'); --",
])
def test_a_label_crafted_to_inject_is_stored_as_text_and_nothing_is_run(record, tmp_path: Path, label: str):
    secret = tmp_path / "passwd"
    secret.write_text(SECRET + "\n")
    label = label.format(secret=secret)
    before = _tables(record)
    run_segments(record, load_segmentation(_segmentation(tmp_path, label=label)), months=[D(2024, 4, 1),
                                                                                       D(2025, 4, 1)])
    assert record.execute("SELECT label FROM segments.definition WHERE segment = 'healthy'").fetchone()[0] == label
    assert record.execute("SELECT x FROM raw.apc").fetchall() == [(1,)]
    assert _tables(record) - before == {f"segments.{t}" for t in ("definition", "person_segment", "size", "activity",
                                                                  "transition")}


# ---- rules and criteria: checked trees, rendered ---------------------------------------------------

def _case(seg: Segmentation) -> list[str]:
    """The segment of a baby, someone frail and someone with nothing recorded, from seg.case_sql()."""
    rows = []
    for values in ({"age": 0.0}, {"efi": 0.3}, {}):
        row = dict.fromkeys(feature_names(), 0.0) | {"age": 50.0} | values
        rows.append(row)
    con = duckdb.connect()
    con.register("f", pl.DataFrame(rows).to_arrow())
    return [r[0] for r in con.execute(f"SELECT {seg.case_sql()} FROM f").fetchall()]


@pytest.mark.parametrize("rule", [
    "efi > 0.24 OR has_dementia = 1 OR hfrs > 15 OR care_home_resident = 1 --",
    "efi > 0.24 OR has_dementia = 1 OR hfrs > 15 OR care_home_resident = 1 -- THEN 'x' END, 1 AS y --",
    "efi > 0.24 /* hidden */ OR has_dementia = 1 OR hfrs > 15 OR care_home_resident = 1",
])
def test_a_comment_in_a_rule_has_no_effect(tmp_path: Path, rule: str):
    frailty = "efi > 0.24 OR has_dementia = 1 OR hfrs > 15 OR care_home_resident = 1"
    seg = load_segmentation(_segmentation(tmp_path, change=(frailty, rule)))
    assert "--" not in seg.case_sql() and "/*" not in seg.case_sql() and "hidden" not in seg.case_sql()
    assert _case(seg) == ["maternal_and_infant", "frailty", "healthy"]


def test_a_qualified_name_or_a_second_statement_in_a_rule_is_refused(tmp_path: Path):
    for rule, message in [("raw.apc.age > 1", "qualified name raw.apc.age is not allowed"),
                          ("f.age > 1", "qualified name f.age is not allowed"),
                          ('"raw"."apc".efi > 0.24', "is not allowed"),
                          ("efi > 0.24; DROP TABLE raw.apc", "may not use")]:
        path = _segmentation(tmp_path, change=(
            "efi > 0.24 OR has_dementia = 1 OR hfrs > 15 OR care_home_resident = 1", rule))
        with pytest.raises(SegmentationError, match=re.escape(message)) as err:
            load_segmentation(path)
        assert "segmentation.yaml segment frailty" in str(err.value) and "\n" not in str(err.value)


def test_a_segmentation_made_by_hand_is_checked_before_it_reaches_sql():
    seg = Segmentation("hand", "By hand", [{"id": "all", "label": "All", "description": "Everyone at all.",
                                            "rule": "TRUE THEN 'x' END; DROP TABLE raw.apc; SELECT CASE WHEN TRUE"}])
    with pytest.raises(SegmentationError, match="hand segment all"):
        seg.case_sql()


def test_indicator_filters_refuse_other_tables_but_keep_the_person_alias():
    assert check_filter("p.age >= 65 AND admission_type = 'emergency'", "f") is not None
    for bad in ("raw.apc.x = 1", "t.admission_type = 'emergency'", "x.y.p.age = 1"):
        with pytest.raises(DefinitionError, match="qualified name"):
            check_filter(bad, "f")
    tree = check_condition("a = 1 -- OR TRUE\n/* c */", None, "f", ValueError)
    assert tree.sql(dialect="duckdb") == "a = 1"


# ---- lists: criteria and reasons -------------------------------------------------------------------

LIST = """id: older_people
title: Older people with a high enough risk
purpose: A list written for this test, to check what reaches SQL and reasons.
run_by: practice
criteria:
- rule: {rule}
  reason: '{reason}'
- rule: risk_centile > 40 /* keep a and b */
  reason: risk {{risk:.0%}} (centile {{risk_centile:,.0f}})
owner: tests
next_review: '2030-01-01'
"""


def _list(folder: Path, rule: str = "age >= 70", reason: str = "aged {age:.0f}") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "older_people.yaml"
    path.write_text(LIST.format(rule=rule, reason=reason.replace("'", "''")))
    return path


def test_a_list_criterion_ending_in_a_comment_runs_and_reasons_fill_in(record, tmp_path: Path, monkeypatch):
    _list(tmp_path / "lists", rule="age >= 70 --")
    monkeypatch.setattr("openphm.lists.run.definitions_dir", lambda: tmp_path / "lists")
    run_lists(record)
    got = record.execute("SELECT CAST(person_id AS VARCHAR), rank, reasons FROM lists.member ORDER BY rank").fetchall()
    assert got == [(IDS["a"], 1, ["aged 73", "risk 30% (centile 99)"]),
                   (IDS["b"], 2, ["aged 73", "risk 10% (centile 50)"])]
    assert record.execute("SELECT x FROM raw.apc").fetchall() == [(1,)]


def test_two_models_scored_on_one_day_list_each_person_once(record, tmp_path: Path, monkeypatch):
    _list(tmp_path / "lists")
    monkeypatch.setattr("openphm.lists.run.definitions_dir", lambda: tmp_path / "lists")
    record.execute("INSERT INTO risk.score SELECT person_id, as_of, 'lightgbm', risk / 2, centile, reasons "
                   "FROM risk.score")
    with pytest.raises(ListError, match=r"2 models on .*choose one with --model"):
        run_lists(record)
    run_lists(record, model="lightgbm")
    got = record.execute("SELECT CAST(person_id AS VARCHAR), rank, reasons[2] FROM lists.member "
                         "ORDER BY rank").fetchall()
    assert got == [(IDS["a"], 1, "risk 15% (centile 99)"), (IDS["b"], 2, "risk 5% (centile 50)")]


def test_a_list_criterion_naming_another_table_is_refused(tmp_path: Path):
    for rule, message in [("raw.apc.age >= 70", "qualified name raw.apc.age is not allowed"),
                          ("list_people.age >= 70", "qualified name list_people.age is not allowed"),
                          ("age >= 70) OR (TRUE", "does not parse")]:
        _list(tmp_path, rule=rule)
        with pytest.raises(ListError, match=re.escape(message)) as err:
            load_lists(tmp_path)
        assert str(err.value).startswith("older_people.yaml criterion 1: ") and "\n" not in str(err.value)


def test_a_reason_that_does_more_than_name_a_field_is_refused_at_load(tmp_path: Path):
    for reason in ("aged {age.__class__.__mro__}", "aged {age[0]}", "aged {age!r}", "aged {age!s:.0f}",
                   "aged {age:{efi}}", "aged {age:>10000}", "aged {}", "aged {0}", "aged {age", "aged } {age}"):
        _list(tmp_path, reason=reason)
        with pytest.raises(ListError) as err:
            load_lists(tmp_path)
        assert str(err.value).startswith("older_people.yaml criterion 1: the reason"), reason
        assert "\n" not in str(err.value)


def test_shipped_reasons_still_render():
    from openphm.lists.reasons import parse_reason  # here, so the other tests run on code without it

    lists = load_lists(definitions_dir())
    row = dict.fromkeys(feature_names(), 2.0) | {"efi": 0.3125, "risk": 0.234, "risk_centile": 97.0, "age": 80.4}
    got = [t.render(row) for _, t in lists["frail_high_risk_no_coordinator"].checked()]
    assert got == ["moderate or severe frailty (eFI 0.31)",
                   "risk of an emergency admission in the next 12 months in the top 5% (23%)",
                   "no care coordinator recorded in the last 12 months"]
    got = [t.render(row) for _, t in lists["rising_risk_multimorbidity"].checked()]
    assert got[:2] == ["2 long-term conditions", "aged 80"]
    assert parse_reason("{{age}} is {age:,.1f}, {efi}", {"age", "efi"}).render({"age": 1234.56, "efi": None}) == \
        "{age} is 1,234.6, unknown"
