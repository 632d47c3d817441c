"""Each domain rule once: a person on a date, age, age band, ethnic group, admission type, the
registration on a date, and the care home someone lives in on a date."""

import datetime as dt

import duckdb
import polars as pl
import pytest

from openphm import domain

D = dt.date


def _one(sql: str):
    return duckdb.sql(f"SELECT {sql}").fetchone()[0]


@pytest.mark.parametrize("born, on, age", [
    ((1950, 10), D(2023, 10, 1), 72),   # born in October: not yet 73 on 1 October (the defect)
    ((1950, 9), D(2023, 10, 1), 73),
    ((1950, 11), D(2023, 10, 1), 72),
    ((1950, 10), D(2023, 10, 31), 73),  # by the end of the month the birthday has passed
    ((1950, 10), D(2023, 10, 16), 73),
    ((1950, 10), D(2023, 10, 15), 72),
    ((2024, 2), D(2025, 2, 28), 1),
    ((1950, 3), D(2024, 3, 31), 74),
])
def test_age_on_a_date_from_year_and_month_of_birth(born, on, age):
    person = pl.DataFrame({"birth_year": [born[0]], "birth_month": [born[1]]})
    con = duckdb.connect()
    con.register("person", person.to_arrow())
    got = con.execute(f"SELECT {domain.age_on(on, 't')} FROM person t").fetchone()[0]
    assert got == age == domain.age_on_value(*born, on)


def test_age_on_1_october_is_right_for_every_birth_month():
    # brute force against full dates of birth: anyone born in month m of 1950 is 73 on 1 October
    # 2023 unless their birthday (any day of m) is after 1 October
    for month in range(1, 13):
        truths = {2023 - 1950 - (D(2023, month, day) > D(2023, 10, 1)) for day in range(2, 29)}
        assert truths == {domain.age_on_value(1950, month, D(2023, 10, 1))}


@pytest.mark.parametrize("age, band", [(0, "0-4"), (4, "0-4"), (5, "5-9"), (74, "70-74"), (75, "75-79"),
                                       (89, "85-89"), (90, "90+"), (104, "90+")])
def test_age_band(age, band):
    assert _one(domain.age_band(str(age))) == band == domain.age_band_value(age)


@pytest.mark.parametrize("age, band", [(0, "0-17"), (17, "0-17"), (18, "18-44"), (64, "45-64"), (65, "65-79"),
                                       (79, "65-79"), (80, "80+"), (101, "80+")])
def test_broad_age_band(age, band):
    assert _one(domain.broad_age_band(str(age))) == band == domain.broad_age_band_values([age])[0]


@pytest.mark.parametrize("code, group", [("A", "White"), ("C", "White"), ("D", "Mixed"), ("H", "Asian"),
                                         ("L", "Asian"), ("M", "Black"), ("P", "Black"), ("R", "Other"),
                                         ("S", "Other"), ("Z", "Not stated"), (None, "Not stated")])
def test_ethnic_group(code, group):
    literal = "NULL" if code is None else f"'{code}'"
    assert _one(domain.ethnic_group(literal)) == group == domain.ethnic_group_value(code)


@pytest.mark.parametrize("method, kind", [("11", "elective"), ("13", "elective"), ("21", "emergency"),
                                          ("2A", "emergency"), ("28", "emergency"), ("31", "maternity"),
                                          ("82", "birth"), ("99", "other")])
def test_admission_type(method, kind):
    assert _one(domain.admission_type(f"'{method}'")) == kind


@pytest.mark.parametrize("classification, regular", [("1", False), ("2", False), ("3", True), ("4", True),
                                                    ("5", False), (None, False)])
def test_regular_day_attender(classification, regular):
    literal = "NULL" if classification is None else f"'{classification}'"
    assert _one(domain.regular_day_attender(literal)) is regular


def test_an_elective_admission_is_planned_and_not_a_regular_attendance():
    spells = pl.DataFrame({"admission_type": ["elective", "elective", "emergency", "elective"],
                           "regular_day_attender": [False, True, False, False]})
    con = duckdb.connect()
    con.register("spells", spells.to_arrow())
    got = con.execute(f"SELECT {domain.elective_admission()} FROM spells").fetchall()
    assert [g[0] for g in got] == [True, False, False, True]
    assert domain.ACTIVITY["elective_admissions"][2] == domain.elective_admission()


def test_registered_and_alive_on_a_date_count_the_end_of_the_day():
    rows = pl.DataFrame({
        "who": ["starts that day", "ends that day", "ends next day", "starts next day", "open"],
        "registration_start": [D(2023, 10, 1), D(2020, 1, 1), D(2020, 1, 1), D(2023, 10, 2), D(2020, 1, 1)],
        "registration_end": [None, D(2023, 10, 1), D(2023, 10, 2), None, None],
        "date_of_death": [None, None, D(2023, 10, 1), None, D(2023, 10, 2)],
    }, schema_overrides={"registration_end": pl.Date, "date_of_death": pl.Date})
    on = D(2023, 10, 1)
    con = duckdb.connect()
    con.register("rows", rows.to_arrow())
    got = con.execute(f"SELECT who, {domain.registered_on(on)}, {domain.alive_on(on)} FROM rows").fetchall()
    assert dict((w, (r, a)) for w, r, a in got) == {
        "starts that day": (True, True), "ends that day": (False, True), "ends next day": (True, False),
        "starts next day": (False, True), "open": (True, True)}


def test_the_registration_on_a_date_is_taken_whole_so_an_empty_care_home_stays_empty():
    """Someone who moves into a care home after 1 October was not living in one on 1 October, and
    someone who left a care home is not still counted in it (the arg_max defect skipped NULLs)."""
    reg = pl.DataFrame({
        "person_id": ["moves_in", "moves_in", "moved_out", "moved_out", "left_ics"],
        "practice_code": ["P1", "P2", "P2", "P1", "P1"],
        "care_home_code": [None, "CH1", "CH1", None, "CH2"],
        "registration_start": [D(2010, 1, 1), D(2023, 11, 5), D(2015, 1, 1), D(2023, 6, 1), D(2015, 1, 1)],
        "registration_end": [D(2023, 11, 5), None, D(2023, 6, 1), None, D(2023, 7, 1)],
    }, schema_overrides={"registration_end": pl.Date})
    con = duckdb.connect()
    con.register("reg", reg.to_arrow())
    sql = domain.registration_on("reg", D(2023, 10, 1), ("practice_code", "care_home_code"))
    got = {r[0]: r[1:] for r in con.execute(sql).fetchall()}
    assert got == {"moves_in": ("P1", None, True), "moved_out": ("P1", None, True),
                   "left_ics": ("P1", "CH2", False)}  # not registered on the day: the latest registration


def test_rules_by_name_in_sql_files_and_nothing_else():
    assert domain.expand_rules("SELECT {{ admission_type(a.method) }} AS k") == \
        f"SELECT {domain.admission_type('a.method')} AS k"
    for bad in ("{{ admission_type('x'); DROP TABLE t; --') }}", "{{ os_system(x) }}", "{{ age_band(x + 1) }}"):
        with pytest.raises(ValueError):
            domain.expand_rules(bad)


def test_rules_by_name_in_yaml_definitions_are_checked_as_written_out():
    """An indicator's `where` may call a rule by name; it compiles to the rule's SQL, checked like any
    condition, and the shipped emergency-admission indicators use the rule, not a copy of it."""
    from openphm.conditions import render_condition
    from openphm.measures.definitions import DefinitionError, check_filter, load_measures

    by_name = render_condition(check_filter("{{ emergency_admission() }} AND p.age >= 75", "test"))
    written = render_condition(check_filter(f"{domain.emergency_admission()} AND p.age >= 75", "test"))
    assert by_name == written == "admission_type = 'emergency' AND p.age >= 75"
    for bad in ("{{ emergency_admission(x); DROP TABLE t }}", "{{ no_such_rule() }}", "{{ emergency_admission( }}"):
        with pytest.raises(DefinitionError, match="test: "):
            check_filter(bad, "test")
    uses = {mid for mid, m in load_measures().items()
            if "emergency_admission()" in (m.data["numerator"].get("where") or "")}
    assert {"emergency_admissions_dsr", "emergency_admissions_75plus", "care_home_emergency_admissions",
            "falls_admissions_65plus", "emergency_admissions_sar"} <= uses
    assert not any("admission_type = 'emergency'" in (m.data["numerator"].get("where") or "")
                   for m in load_measures().values())


def test_age_and_registration_at_a_date_held_in_a_column_follow_the_rules_for_a_given_date():
    # every day of 2023 against every birth month, and the registration edges: the column forms agree
    # with age_on / registered_on for the same day
    days = [D(2023, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    rows = pl.DataFrame({"day": days * 12, "birth_year": [1950] * (365 * 12),
                         "birth_month": [m for m in range(1, 13) for _ in days],
                         "registration_start": [D(2023, 6, 1)] * (365 * 12),
                         "registration_end": [D(2023, 9, 30)] * (365 * 12)})
    con = duckdb.connect()
    con.register("rows", rows.to_arrow())
    got = con.execute(f"SELECT day, birth_month, {domain.age_at('day')}, {domain.registered_at('day')} "
                      "FROM rows").fetchall()
    for day, month, age, registered in got:
        assert age == domain.age_on_value(1950, month, day), (day, month)
        assert registered == (D(2023, 6, 1) <= day < D(2023, 9, 30)), day


@pytest.mark.parametrize("day", [D(2024, 3, 31), D(2024, 4, 1), D(2023, 1, 15), D(2000, 4, 1), D(1999, 12, 31)])
def test_financial_year_rule_and_its_python_twin_agree(day):
    sql = domain.financial_year("d")
    got = duckdb.sql(f"SELECT {sql} FROM (SELECT DATE '{day.isoformat()}' AS d)").fetchone()[0]
    assert got == domain.financial_year_value(day)
    assert got == (f"{day.year}-{(day.year + 1) % 100:02d}" if day.month >= 4 else
                   f"{day.year - 1}-{day.year % 100:02d}")
