"""Every shipped indicator on a small hand-written record: expected numerators and denominators,
stated as tables, for financial year 2023-24 (mid-year day 1 October 2023).

The record (all registered from 2000 at the practice shown unless stated):

| person | sex | born    | practice | place | IMD decile | notes                                        |
|--------|-----|---------|----------|-------|------------|----------------------------------------------|
| a      | F   | 1940-01 | C81001   | P1    | 1 (Core20) | 83 at mid-year; 10 frailty deficits            |
| b      | M   | 1945-11 | C81001   | P1    | 1          | 77 (birthday after 1 Oct); care-home resident  |
| c      | F   | 1980-05 | C81002   | P2    | 10         | 43; SMI, depression, asthma                    |
| d      | M   | 1990-05 | C81002   | P2    | 10         | 33; SMI diagnosed 1 Sep 2023; CKD Nov 2023     |
| e      | F   | 1930-02 | C81001   | P1    | 1          | died in hospital 1 Jun 2023: events count, not |
|        |     |         |          |       |            | in the mid-year population                     |
| f      | M   | 1955-03 | C81002   | P2    | 10         | registered only from 1 Dec 2023 (68)           |
| g      | F   | 1950-07 | C81001   | P1    | 1          | died Dec 2022, before the year: not counted    |
| h      | M   | 1935-01 | C81002   | P2    | 10         | died at home 15 Aug 2023                       |

So the mid-year population is a, b (C81001) and c, d (C81002).
"""

import datetime as dt

import duckdb
import polars as pl
import pytest

from openphm.derive.efi import efi_codes
from openphm.measures.definitions import load_measures
from openphm.measures.engine import compute_measure
from openphm.measures.population import build_period_population

D = dt.date
START, END = D(2023, 4, 1), D(2024, 4, 1)

PEOPLE = ["a", "b", "c", "d", "e", "f", "g", "h"]
PERSON = pl.DataFrame({
    "person_id": PEOPLE,
    "birth_year": [1940, 1945, 1980, 1990, 1930, 1955, 1950, 1935],
    "birth_month": [1, 11, 5, 5, 2, 3, 7, 1],
    "sex": ["F", "M", "F", "M", "F", "M", "F", "M"],
    "ethnic_category": ["A", "H", "N", "A", "A", "A", "A", "A"],
    "date_of_death": [None, None, None, None, D(2023, 6, 1), None, D(2022, 12, 1), D(2023, 8, 15)],
}, schema_overrides={"date_of_death": pl.Date})
REGISTRATION = pl.DataFrame({
    "person_id": PEOPLE,
    "practice_code": ["C81001", "C81001", "C81002", "C81002", "C81001", "C81002", "C81001", "C81002"],
    "pcn_code": ["U00001"] * 8,
    "place_code": ["P1", "P1", "P2", "P2", "P1", "P2", "P1", "P2"],
    "lsoa_code": ["L1", "L1", "L2", "L2", "L1", "L2", "L1", "L2"],
    "care_home_code": [None, "CH1", None, None, None, None, None, None],
    "registration_start": [D(2000, 1, 1)] * 5 + [D(2023, 12, 1), D(2000, 1, 1), D(2000, 1, 1)],
    "registration_end": [None, None, None, None, D(2023, 6, 1), None, D(2022, 12, 1), D(2023, 8, 15)],
}, schema_overrides={"registration_end": pl.Date, "care_home_code": pl.Utf8})
CONDITION = pl.DataFrame([
    ("a", "hypertension", D(2010, 1, 1)), ("a", "diabetes", D(2015, 1, 1)),
    ("a", "atrial_fibrillation", D(2024, 2, 1)),  # diagnosed by the year's end: counted
    ("b", "dementia", D(2020, 1, 1)), ("b", "heart_failure", D(2019, 1, 1)), ("b", "copd", D(2022, 1, 1)),
    ("b", "chd", D(2024, 5, 1)),  # after the year: not counted
    ("c", "smi", D(2015, 1, 1)), ("c", "depression", D(2018, 1, 1)), ("c", "asthma", D(2000, 1, 1)),
    ("d", "smi", D(2023, 9, 1)), ("d", "ckd", D(2023, 11, 1)),
    ("e", "chd", D(2010, 1, 1)), ("f", "diabetes", D(2010, 1, 1)),  # not in the mid-year population
], schema=["person_id", "condition", "first_date"], orient="row")
SPELL_COLUMNS = ["spell_id", "person_id", "admission_type", "admission_date", "discharge_date", "length_of_stay",
                 "delayed_days", "from_care_home", "primary_diagnosis", "died_in_hospital",
                 "readmitted_within_30_days", "readmission_index", "regular_day_attender"]
SPELLS = pl.DataFrame([
    ("s1", "a", "emergency", D(2023, 5, 1), D(2023, 5, 11), 10, 3, False, "S720", False, True, True, False),
    ("s2", "a", "emergency", D(2023, 5, 20), D(2023, 5, 25), 5, 0, False, "I48", False, False, True, False),
    ("s3", "b", "emergency", D(2023, 12, 1), D(2023, 12, 15), 14, 7, True, "R296", False, False, True, False),
    ("s4", "b", "emergency", D(2024, 2, 1), D(2024, 2, 3), 2, 0, True, "J44", False, False, True, False),
    ("s5", "c", "emergency", D(2023, 7, 1), D(2023, 7, 2), 1, 0, False, "F20", False, False, True, False),
    ("s6", "e", "emergency", D(2023, 5, 25), D(2023, 6, 1), 7, 0, False, "I21", True, False, False, False),
    ("s7", "d", "elective", D(2023, 9, 10), D(2023, 9, 12), 2, 0, False, "K40", False, False, True, False),
    ("s8", "f", "emergency", D(2024, 1, 10), D(2024, 1, 12), 2, 0, False, "S720", False, False, True, False),
    # discharged next year
    ("s9", "a", "emergency", D(2024, 3, 28), D(2024, 4, 3), 6, 2, False, "N39", False, False, True, False),
    ("s10", "a", "emergency", D(2024, 4, 2), D(2024, 4, 4), 2, 0, False, "N39", False, False, True, False),  # next year
    # a dialysis session: not an elective admission, nor an index spell for readmissions
    ("s11", "d", "elective", D(2023, 10, 2), D(2023, 10, 2), 0, 0, False, "Z491", False, False, False, True),
], schema=SPELL_COLUMNS, orient="row")
AE = pl.DataFrame([("a", D(2023, 6, 1)), ("a", D(2023, 11, 11)), ("c", D(2024, 1, 1)), ("e", D(2023, 5, 1)),
                   ("f", D(2024, 2, 2)), ("d", D(2024, 4, 5)), ("g", D(2023, 5, 1))],
                  schema=["person_id", "arrival_date"], orient="row")
OUTPATIENT = pl.DataFrame([("a", D(2023, 6, 1), True, True), ("a", D(2023, 7, 1), False, True),
                           ("b", D(2023, 9, 1), True, False), ("c", D(2024, 3, 31), True, True),
                           ("d", D(2024, 4, 1), True, True)],
                          schema=["person_id", "appointment_date", "first_attendance", "attended"], orient="row")
MENTAL_HEALTH = pl.DataFrame([("c", D(2023, 8, 1), True, None), ("d", D(2024, 1, 5), False, D(2024, 1, 5)),
                              ("a", D(2023, 8, 1), True, None)],
                             schema={"person_id": pl.Utf8, "contact_date": pl.Date, "has_care_coordinator": pl.Boolean,
                                     "care_plan_agreed_date": pl.Date}, orient="row")
VCSE = pl.DataFrame([("a", D(2023, 5, 5)), ("c", D(2023, 10, 10)), ("c", D(2024, 1, 1)), ("f", D(2024, 3, 1))],
                    schema=["person_id", "referral_date"], orient="row")
DEATH = pl.DataFrame([("e", D(2023, 6, 1), "hospital"), ("h", D(2023, 8, 15), "home"),
                      ("g", D(2022, 12, 1), "hospital")],
                     schema=["person_id", "date_of_death", "place_of_death"], orient="row")


def _gp_events() -> pl.DataFrame:
    """a: 10 frailty deficits by mid-year (eFI 0.28, moderate); b: 8 by mid-year and a 9th after it."""
    codes = efi_codes().group_by("deficit").agg(pl.col("code").first()).sort("deficit")["code"].to_list()
    rows = [("a", D(2020, 1, 1), code) for code in codes[:10]]
    rows += [("b", D(2020, 1, 1), code) for code in codes[:8]] + [("b", D(2023, 11, 1), codes[8])]
    return pl.DataFrame(rows, schema=["person_id", "event_date", "snomed_code"], orient="row")


# indicator, unit (a practice or the ICS), numerator, denominator
EXPECTED = """
emergency_admissions_dsr        C81001   6  2   a: s1 s2 s9, b: s3 s4, e: s6 (e died, still counted)
emergency_admissions_dsr        C81002   2  2   c: s5, f: s8 (f joined in December)
emergency_admissions_dsr        ICS      8  4
emergency_admissions_sar        C81001   6  5   expected: a 3 (ICS rate of F 80-84) + b 2 (M 75-79)
emergency_admissions_sar        C81002   2  1   expected: c 1 (F 40-44) + d 0 (M 30-34)
emergency_admissions_sar        ICS      8  6   e (F 90+) and f (M 65-69) have no mid-year stratum
emergency_admissions_75plus     C81001   6  2   a, b and e (93) are 75+
emergency_admissions_75plus     ICS      6  2
ae_attendances                  C81001   3  2   a twice, e once
ae_attendances                  C81002   2  2   c, f; d's is next year; g died before the year
ae_attendances                  ICS      5  4
ae_attendances_mental_health    C81002   1  2   c (SMI), d (SMI) has none in the year
ae_attendances_mental_health    ICS      1  2
care_home_emergency_admissions  C81001   2  1   b: s3 s4 from the care home
care_home_emergency_admissions  ICS      2  1
deaths_in_hospital              C81001   1  1   e
deaths_in_hospital              C81002   0  1   h at home
deaths_in_hospital              ICS      1  2
delayed_discharge_bed_days      C81001  10 38   s1 s2 s3 s4 s6 discharged in the year
delayed_discharge_bed_days      C81002   0  5   s5 s7 s8
delayed_discharge_bed_days      ICS     10 43
elective_admissions             C81001   0  2
elective_admissions             C81002   1  2   d: s7 (s11, a dialysis session, is no admission)
elective_admissions             ICS      1  4
falls_admissions_65plus         C81001   2  2   a: s1 (S72), b: s3 (R29.6)
falls_admissions_65plus         C81002   1  0   f (68): s8, nobody 65+ at mid-year
falls_admissions_65plus         ICS      3  2
first_outpatient_attendances    C81001   1  2   a's first; b did not attend
first_outpatient_attendances    C81002   1  2   c on 31 March; d's is next year
first_outpatient_attendances    ICS      2  4
moderate_severe_frailty         C81001   1  2   a (10/36); b has 8/36 on 1 October
moderate_severe_frailty         ICS      1  2
prevalence_asthma               C81002   1  2
prevalence_asthma               C81001   0  2
prevalence_atrial_fibrillation  C81001   1  2   diagnosed in February 2024
prevalence_chd                  C81001   0  2   b's is after the year; e is not in the population
prevalence_chd                  ICS      0  4
prevalence_ckd                  C81002   1  2
prevalence_copd                 C81001   1  2
prevalence_dementia             C81001   1  2
prevalence_depression           C81002   1  2
prevalence_diabetes             C81001   1  2
prevalence_diabetes             C81002   0  2   f joined after mid-year
prevalence_heart_failure        C81001   1  2
prevalence_hypertension         C81001   1  2
prevalence_hypertension         ICS      1  4
readmissions_30_days            C81001   1  4   s1 readmitted (s2); s6 died; s9 discharged next year
readmissions_30_days            C81002   0  3   s5, s7 (elective spells are index spells too), s8
readmissions_30_days            ICS      1  7
smi_care_coordinator            C81002   1  2   c has one; a has one but no SMI
smi_care_coordinator            ICS      1  2
smi_care_plan                   C81002   1  2   d
social_prescribing_referrals    C81001   1  2
social_prescribing_referrals    C81002   3  2   c twice, f
social_prescribing_referrals    ICS      4  4
"""


def expected_rows() -> list[tuple[str, str, float, float]]:
    rows = []
    for line in EXPECTED.strip().splitlines():
        mid, unit, num, den = line.split()[:4]
        rows.append((mid, unit, float(num), float(den)))
    return rows


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("CREATE SCHEMA planning; CREATE SCHEMA reference")
    tables = {"person": PERSON, "registration": REGISTRATION, "condition": CONDITION, "inpatient_spell": SPELLS,
              "ae_attendance": AE, "outpatient_appointment": OUTPATIENT, "mental_health_contact": MENTAL_HEALTH,
              "vcse_referral": VCSE, "death": DEATH, "gp_event": _gp_events()}
    for name, frame in tables.items():
        c.register("f", frame.to_arrow())
        c.execute(f"CREATE TABLE planning.{name} AS SELECT * FROM f")
        c.unregister("f")
    c.execute("CREATE TABLE reference.lsoa_imd2019 AS SELECT * FROM (VALUES ('L1', '1'), ('L2', '10')) "
              "t(lsoa_code, imd_decile)")
    assert build_period_population(c, START) == 4
    return c


@pytest.fixture(scope="module")
def results(con) -> dict[str, pl.DataFrame]:
    return {mid: compute_measure(con, m, START, END) for mid, m in load_measures().items()}


def year(result: pl.DataFrame, level: str) -> pl.DataFrame:
    return result.filter((pl.col("level") == level) & (pl.col("period_type") == "financial_year"))


def test_every_shipped_indicator_has_expectations():
    assert {r[0] for r in expected_rows()} == set(load_measures())


@pytest.mark.parametrize("mid, unit, numerator, denominator", expected_rows(),
                         ids=[f"{r[0]}-{r[1]}" for r in expected_rows()])
def test_numerator_and_denominator(results, mid, unit, numerator, denominator):
    level = "ics" if unit == "ICS" else "practice"
    got = year(results[mid], level).filter(pl.col("unit") == unit)
    assert len(got) == 1, f"{mid}: no single {unit} row in {year(results[mid], level)}"
    assert (got["numerator"][0], got["denominator"][0]) == pytest.approx((numerator, denominator))


def test_units_with_no_one_in_the_denominator_or_numerator_have_no_row(results):
    assert year(results["care_home_emergency_admissions"], "practice")["unit"].to_list() == ["C81001"]
    assert year(results["smi_care_coordinator"], "practice")["unit"].to_list() == ["C81002"]


def test_values_and_the_other_levels(results):
    ics = year(results["emergency_admissions_75plus"], "ics").row(0, named=True)
    assert ics["value"] == pytest.approx(3000.0)  # 6 per 2 people, per 1,000
    sar = year(results["emergency_admissions_sar"], "practice").sort("unit")
    assert sar["value"].to_list() == pytest.approx([120.0, 200.0])  # observed / expected x 100
    core20 = year(results["ae_attendances"], "core20").sort("unit")
    assert core20.select("unit", "numerator", "denominator").rows() == [("Core20", 3.0, 2.0), ("Rest", 2.0, 2.0)]
    quintiles = year(results["ae_attendances"], "imd_quintile").sort("unit")
    assert quintiles.select("unit", "numerator").rows() == [("1", 3.0), ("5", 2.0)]
    ethnicity = year(results["social_prescribing_referrals"], "ethnicity").sort("unit")
    assert ethnicity.select("unit", "numerator", "denominator").rows() == [("Asian", 0.0, 1.0), ("Black", 2.0, 1.0),
                                                                           ("White", 2.0, 2.0)]
    places = year(results["readmissions_30_days"], "place").sort("unit")
    assert places.select("unit", "numerator", "denominator").rows() == [("P1", 1.0, 4.0), ("P2", 0.0, 3.0)]
    # a proportion's value is a percentage with Wilson limits around it
    smi = year(results["smi_care_coordinator"], "ics").row(0, named=True)
    assert smi["value"] == pytest.approx(50.0) and smi["lower95"] < 50 < smi["upper95"]
    # the DSR is not computed below 10 events (PHE convention)
    assert year(results["emergency_admissions_dsr"], "ics")["value"].is_nan().all()


def test_months_and_rolling_twelve_months(results):
    months = results["emergency_admissions_dsr"].filter((pl.col("period_type") == "month")
                                                        & (pl.col("level") == "ics"))
    assert len(months) == 12
    may = months.filter(pl.col("period") == "2023-05").row(0, named=True)
    assert may["numerator"] == 3  # s1, s2, s6
    assert may["denominator"] == pytest.approx(4 * 31 / 365.25)  # person-years in May
    assert months["numerator"].sum() == 8
    rolling = results["readmissions_30_days"].filter(pl.col("period_type") == "rolling_12_months")
    ics = rolling.filter(pl.col("level") == "ics").row(0, named=True)
    assert (ics["period"], ics["numerator"], ics["denominator"]) == ("12 months to 2024-03", 1.0, 7.0)
