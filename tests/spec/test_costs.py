"""The cost of every activity, as the record's build steps compute it from a tariff, on hand-written
rows with hand-computed costs.

The tariff (prices of 2022-23, so no uplift):

| activity | category | unit cost | trim point | units per week |
|---|---|---|---|---|
| inpatient_spell | elective | 3,000 | 5 | |
| inpatient_spell | day_case | 800 | | |
| inpatient_spell | non_elective_short_stay | 700 | | |
| inpatient_spell | non_elective_long_stay | 4,000 | 12 | |
| inpatient_spell | excess_bed_day_elective | 400 | | |
| inpatient_spell | excess_bed_day_non_elective | 350 | | |
| inpatient_spell | maternity | 2,500 | | |
| inpatient_spell | regular_day_attender | 400 | | |
| inpatient_spell | critical_care_adult / critical_care_paediatric | 2,000 / 2,500 per day | | |
| (no line for births: those rows stay uncosted, and are reported) | | | | |
| ae_attendance | 01 / 03 | 250 / 90 | | |
| outpatient_appointment | first / follow_up / did_not_attend | 200 / 120 / 0 | | |
| gp_appointment | GP / Nurse / home_visit / did_not_attend | 42 / 15 / 100 / 0 | | |
| community_contact | District Nursing | 60 | | |
| mental_health_contact | Crisis Resolution | 330 | | |
| social_care_service | Home Care (hour) | 30 | | 10 |
| social_care_service | Residential Care (week) | 800 | | |
| vcse_referral | Housing | 120 | | |

Hand-computed:
- e1, elective, 10 days: 3,000 + (10 - 5) x 400 = 5,000; e2, elective, 5 days: 3,000 (at the trim point).
- d1, elective day case: 800. n1, emergency, 1 day: 700 (short stay). n2, emergency, 20 days:
  4,000 + 8 x 350 = 6,800. n3, emergency, 2 days: 4,000. m1, maternity: 2,500. b1, birth: uncosted.
- n4, emergency, not yet discharged: the long-stay price, 4,000, with no excess days.
- Case mix, with hand-written weights (non-elective long stay EB10A: 2.0; regular day attender LD02A: 0.5):
  h1, emergency, 5 days, HRG EB10A: 4,000 x 2 = 8,000; h2, emergency, 20 days, HRG ZZ99Z (unknown to
  the weights): 4,000 + 8 x 350 = 6,800; r1, regular day attender with HRG LD02A: 400 x 0.5 = 200;
  r2, regular day attender, no HRG: 400.
- Critical care: c1, adult (born 1950), 10 days, 3 of them in critical care: 4,000 + 3 x 2,000 = 10,000;
  c2, a child (born 2015), 3 days, 2 in critical care: 4,000 + 2 x 2,500 = 9,000; c3, adult, 2 days
  with 9 critical care days recorded (a data error): only the 3 calendar days of the stay are costed,
  4,000 + 3 x 2,000 = 10,000.
- home care from 2023-01-01, ongoing, in the 2023-24 extract: 366 days (2024 is a leap year) = 52.2857 weeks
  x 10 hours x 30 = 15,685.71.
- residential care 2023-10-01 to 2024-01-01 in the 2023-24 extract: 92 days x 800 / 7 = 10,514.29.
- the same residential care in a file whose name gives no financial year: uncosted.
"""

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest

from openphm.finance.tariff import TariffError, load_tariff
from openphm.record.build import DEFAULT_SQL_DIR, compile_step, read_steps

D = dt.date
TARIFF = """activity,category,unit,unit_cost,trim_point_days,units_per_week,price_year,source,approximation
inpatient_spell,elective,spell,3000,5,,2022-23,hand,
inpatient_spell,day_case,spell,800,,,2022-23,hand,
inpatient_spell,non_elective_short_stay,spell,700,,,2022-23,hand,
inpatient_spell,non_elective_long_stay,spell,4000,12,,2022-23,hand,
inpatient_spell,excess_bed_day_elective,bed day,400,,,2022-23,hand,
inpatient_spell,excess_bed_day_non_elective,bed day,350,,,2022-23,hand,
inpatient_spell,maternity,spell,2500,,,2022-23,hand,
inpatient_spell,regular_day_attender,spell,400,,,2022-23,hand,
inpatient_spell,critical_care_adult,bed day,2000,,,2022-23,hand,
inpatient_spell,critical_care_paediatric,bed day,2500,,,2022-23,hand,
ae_attendance,01,attendance,250,,,2022-23,hand,
ae_attendance,03,attendance,90,,,2022-23,hand,
outpatient_appointment,first,attendance,200,,,2022-23,hand,
outpatient_appointment,follow_up,attendance,120,,,2022-23,hand,
outpatient_appointment,did_not_attend,appointment,0,,,2022-23,hand,no cost
gp_appointment,GP,appointment,42,,,2022-23,hand,
gp_appointment,Nurse,appointment,15,,,2022-23,hand,
gp_appointment,home_visit,visit,100,,,2022-23,hand,
gp_appointment,did_not_attend,appointment,0,,,2022-23,hand,
community_contact,District Nursing,contact,60,,,2022-23,hand,
mental_health_contact,Crisis Resolution,contact,330,,,2022-23,hand,
social_care_service,Home Care,hour,30,,10,2022-23,hand,
social_care_service,Residential Care,week,800,,,2022-23,hand,
vcse_referral,Housing,referral,120,,,2022-23,hand,
"""
SPELLS = [  # record_id, admission method, classification, admitted, discharged, HRG, critical care days, born
    ("e1", "11", "1", D(2023, 5, 1), D(2023, 5, 11), None, None, 1950),
    ("e2", "12", "1", D(2023, 6, 1), D(2023, 6, 6), None, None, 1950),
    ("d1", "11", "2", D(2023, 7, 1), D(2023, 7, 1), None, None, 1950),
    ("n1", "21", "1", D(2023, 8, 1), D(2023, 8, 2), None, None, 1950),
    ("n2", "21", "1", D(2023, 9, 1), D(2023, 9, 21), None, None, 1950),
    ("n3", "22", "1", D(2024, 3, 30), D(2024, 4, 1), None, None, 1950),
    ("m1", "31", "1", D(2023, 10, 1), D(2023, 10, 3), None, None, 1990),
    ("b1", "82", "1", D(2023, 10, 1), D(2023, 10, 3), None, None, 2023),
    ("n4", "21", "1", D(2024, 3, 1), None, None, None, 1950),
    ("h1", "21", "1", D(2023, 5, 1), D(2023, 5, 6), "EB10A", None, 1950),
    ("h2", "21", "1", D(2023, 6, 1), D(2023, 6, 21), "ZZ99Z", None, 1950),
    ("r1", "13", "3", D(2023, 6, 5), D(2023, 6, 5), "LD02A", None, 1950),
    ("r2", "13", "3", D(2023, 6, 7), D(2023, 6, 7), None, None, 1950),
    ("c1", "21", "1", D(2023, 7, 1), D(2023, 7, 11), None, "3", 1950),
    ("c2", "21", "1", D(2023, 7, 1), D(2023, 7, 4), None, "2", 2015),
    ("c3", "21", "1", D(2023, 8, 1), D(2023, 8, 3), None, "9", 1950),
]
SPELL_COST = {"e1": 5000, "e2": 3000, "d1": 800, "n1": 700, "n2": 6800, "n3": 4000, "m1": 2500, "b1": None,
              "n4": 4000, "h1": 8000, "h2": 6800, "r1": 200, "r2": 400, "c1": 10000, "c2": 9000, "c3": 10000}
WEIGHTS = pl.DataFrame({"category": ["non_elective_long_stay", "regular_day_attender", "elective"],
                        "hrg": ["EB10A", "LD02A", "EB10A"], "weight": [2.0, 0.5, 3.0]})


def _text(**columns) -> dict:
    return {name: pl.lit(value, pl.Utf8) for name, value in columns.items()}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    folder = tmp_path_factory.mktemp("tariff")
    (folder / "tariff.csv").write_text(TARIFF, encoding="utf-8")
    tariff = load_tariff(folder / "tariff.csv")
    con = duckdb.connect()
    con.register("tariff_frame", tariff.lines.to_arrow())
    con.execute("CREATE TEMP TABLE tariff AS SELECT * FROM tariff_frame")
    con.register("hrg_weight", WEIGHTS.to_arrow())
    apc = pl.DataFrame(SPELLS, schema=["record_id", "admission_method", "patient_classification", "admission_date",
                                       "discharge_date", "spell_hrg", "critical_care_days", "birth_year"],
                       orient="row", schema_overrides={"discharge_date": pl.Date, "spell_hrg": pl.Utf8,
                                                       "critical_care_days": pl.Utf8})
    apc = apc.with_columns(**_text(person_id="p", discharge_method="1", diag_01="J189", provider_code=None,
                                   gp_practice_code=None, admission_source=None, discharge_destination=None,
                                   treatment_specialty=None, lsoa_code=None),
                           discharge_ready_date=pl.col("discharge_date"), birth_month=pl.lit(6))
    ecds = pl.DataFrame({"record_id": ["a1", "a2", "a3"], "department_type": ["01", "03", "02"],
                         "arrival_date": [D(2023, 5, 1)] * 3}).with_columns(
        **_text(person_id="p", provider_code=None, gp_practice_code=None, arrival_mode=None, disposal=None,
                lsoa_code=None))
    op = pl.DataFrame({"record_id": ["o1", "o2", "o3"], "first_attendance": ["1", "2", "1"],
                       "attendance_status": ["5", "6", "3"], "appointment_date": [D(2023, 5, 1)] * 3}).with_columns(
        **_text(person_id="p", provider_code=None, gp_practice_code=None, treatment_specialty=None))
    gp = pl.DataFrame({"record_id": ["g1", "g2", "g3", "g4", "g5"],
                       "hcp_type": ["GP", "Nurse", "GP", "GP", "GP"],
                       "appointment_mode": ["Face-to-Face", "Telephone", "Home Visit", "Face-to-Face", "Telephone"],
                       "appointment_status": ["Attended", "Attended", "Attended", "DNA", "Unknown"],
                       "appointment_date": [D(2023, 5, 1)] * 5}).with_columns(**_text(person_id="p",
                                                                                      practice_code="C81001"))
    csds = pl.DataFrame({"record_id": ["c1", "c2"], "team_type": ["District Nursing", "Podiatry"],
                         "contact_date": [D(2023, 5, 1)] * 2}).with_columns(
        **_text(person_id="p", provider_code=None, gp_practice_code=None, contact_location=None))
    mhsds = pl.DataFrame({"record_id": ["h1"], "team_type": ["Crisis Resolution"], "contact_date": [D(2023, 5, 1)],
                          "care_plan_agreed_date": [None]}, schema_overrides={"care_plan_agreed_date": pl.Date}
                         ).with_columns(**_text(person_id="p", provider_code=None, gp_practice_code=None,
                                                care_coordinator="N"))
    asc = pl.DataFrame({"record_id": ["s1", "s2", "s3"], "service_type": ["Home Care", "Residential Care",
                                                                          "Residential Care"],
                        "start_date": [D(2023, 1, 1), D(2023, 10, 1), D(2023, 10, 1)],
                        "end_date": [None, D(2024, 1, 1), D(2024, 1, 1)],
                        "file_period": ["2023-24", "2023-24", "latest"]},
                       schema_overrides={"end_date": pl.Date}).with_columns(**_text(person_id="p", la_code="E1"))
    vcse = pl.DataFrame({"record_id": ["v1"], "referral_reason": ["Housing"], "referral_date": [D(2023, 5, 1)]}
                        ).with_columns(**_text(person_id="p", organisation="X", referred_by="C81001"))
    for name, frame in {"apc": apc, "ecds": ecds, "op": op, "gp_appointments": gp, "csds": csds, "mhsds": mhsds,
                        "asc": asc, "vcse": vcse}.items():
        con.register(f"linked_{name}", frame.to_arrow())
    con.execute("CREATE SCHEMA record")
    wanted = {"inpatient_spell", "ae_attendance", "outpatient_appointment", "gp_appointment", "community_contact",
              "mental_health_contact", "social_care_service", "vcse_referral", "activity_cost"}
    for step in read_steps(DEFAULT_SQL_DIR):
        if step.table in wanted:
            con.execute(compile_step(step, "record"))
    return con


def _costs(con, table: str, key: str) -> dict:
    rows = con.execute(f"SELECT {key}, cost FROM record.{table}").fetchall()
    return {k: (None if c is None else float(c)) for k, c in rows}


def test_spells_cost_their_category_plus_excess_bed_days_beyond_the_trim_point(built):
    assert _costs(built, "inpatient_spell", "spell_id") == SPELL_COST


def test_attendances_appointments_contacts_and_referrals_cost_their_line(built):
    assert _costs(built, "ae_attendance", "attendance_id") == {"a1": 250, "a2": 90, "a3": None}
    assert _costs(built, "outpatient_appointment", "appointment_id") == {"o1": 200, "o2": 120, "o3": 0}
    # a status of 'Unknown' is costed as held; a home visit by its own line
    assert _costs(built, "gp_appointment", "appointment_id") == {"g1": 42, "g2": 15, "g3": 100, "g4": 0, "g5": 42}
    assert _costs(built, "community_contact", "contact_id") == {"c1": 60, "c2": None}
    assert _costs(built, "mental_health_contact", "contact_id") == {"h1": 330}
    assert _costs(built, "vcse_referral", "referral_id") == {"v1": 120}


def test_social_care_costs_the_weeks_inside_its_extracts_year(built):
    assert _costs(built, "social_care_service", "service_id") == {
        "s1": pytest.approx(366 / 7 * 10 * 30, abs=0.005), "s2": pytest.approx(92 * 800 / 7, abs=0.005), "s3": None}


def test_activity_cost_holds_every_row_once_with_its_year_and_the_uncosted_are_null(built):
    rows = built.execute("SELECT activity, activity_id, financial_year, setting, cost_category, cost "
                         "FROM record.activity_cost").fetchall()
    assert len(rows) == len(SPELLS) + 3 + 3 + 5 + 2 + 1 + 3 + 1
    by_id = {r[1]: r for r in rows}
    assert by_id["n3"][2] == "2024-25"  # discharged 1 April 2024
    assert by_id["n4"][2] == "2023-24"  # not discharged: the admission's year
    assert by_id["s3"][2] is None and by_id["s1"][2] == "2023-24"
    assert by_id["e1"][3] == "Elective and day-case admissions" and by_id["n1"][3] == "Non-elective admissions"
    uncosted = sorted((a, c) for a, i, _, _, c, cost in rows if cost is None)
    assert uncosted == [("ae_attendance", "02"), ("community_contact", "Podiatry"),
                        ("inpatient_spell", "birth"), ("social_care_service", "Residential Care")]
    total = sum(float(r[5]) for r in rows if r[5] is not None)
    assert total == pytest.approx(sum(v for v in SPELL_COST.values() if v) + 340 + 320 + 42 + 15 + 100 + 42 + 60
                                  + 330 + 120 + 366 / 7 * 300 + 92 * 800 / 7, abs=0.02)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.csv"
    path.write_text(text, encoding="utf-8")
    return path


HEADER = "activity,category,unit,unit_cost,trim_point_days,units_per_week,price_year,source,approximation\n"


@pytest.mark.parametrize("line, message", [
    ("inpatient_spell,elective,spell,-5,,,2022-23,hand,", "line 2, column unit_cost"),
    ("inpatient_spell,elective,spell,abc,,,2022-23,hand,", "line 2, column unit_cost: 'abc' is not a number"),
    ("inpatient_spell,elective,spell,10,2.5,,2022-23,hand,", "line 2, column trim_point_days"),
    ("theatre,elective,spell,10,,,2022-23,hand,", "line 2, column activity"),
    ("inpatient_spell,surgery,spell,10,,,2022-23,hand,", "line 2, column category: 'surgery'"),
    ("inpatient_spell,elective,spell,10,,,22/23,hand,", "line 2, column price_year"),
    ("inpatient_spell,elective,spell,10,,,2022-23,,", "line 2, column source"),
    ("inpatient_spell,elective,spell,10,,,2022-23,hand,,extra", "line 2 has more fields than the header"),
])
def test_a_bad_tariff_line_is_named_by_file_line_and_column(tmp_path, line, message):
    with pytest.raises(TariffError, match=message):
        load_tariff(_write(tmp_path, HEADER + line + "\n"))


def test_a_line_twice_or_an_unknown_price_year_is_refused(tmp_path):
    twice = HEADER + "ae_attendance,01,a,1,,,2022-23,h,\nae_attendance,01,a,2,,,2022-23,h,\n"
    with pytest.raises(TariffError, match="line 3 prices ae_attendance '01' again"):
        load_tariff(_write(tmp_path, twice))
    with pytest.raises(TariffError, match="no cost inflation index for 1990-91"):
        load_tariff(_write(tmp_path, HEADER + "ae_attendance,01,a,1,,,1990-91,h,\n"))
    with pytest.raises(TariffError, match="lacks column"):
        load_tariff(_write(tmp_path, "activity,category\nae_attendance,01\n"))
