"""Person features at an index date, from the record, with no look-ahead.

Everyone registered with an ICS practice and alive on the index date gets one row. Every feature
uses only information dated before the index date (events strictly earlier; scores taken the
day before), so a model trained on them cannot see the future. The same features feed the
population segments, the risk models and their plain-words explanations (FEATURES).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from openphm.calendar_dates import add_months
from openphm.codelists import load_codelists
from openphm.derive.cms import cms_sql, register_cms_tables, unregister_cms_tables
from openphm.derive.efi import efi_codes, efi_sql
from openphm.derive.hfrs import hfrs_sql, hfrs_weights
from openphm.domain import ACTIVITY, age_on, alive_on, emergency_admission, ethnic_group, registered_on, registration_on
from openphm.engine.connection import Connection

REGISTRATION_COLUMNS = ("practice_code", "pcn_code", "lsoa_code", "care_home_code")
CONDITIONS = ("asthma", "atrial_fibrillation", "autism", "cancer", "chd", "ckd", "copd", "dementia", "depression",
              "diabetes", "epilepsy", "heart_failure", "hypertension", "hypothyroidism", "learning_disability",
              "osteoporosis", "pad", "parkinsons", "rheumatoid_arthritis", "smi", "stroke_tia")

# months of history per activity: long windows estimate a person's own level of use, short ones recent change
WINDOWS = {"emergency_admissions": (3, 6, 12, 24, 36), "ae_attendances": (3, 12, 24, 36), "maternity_admissions": (9,),
           "emergency_bed_days": (12, 36), "outpatient_attendances": (12, 36), "gp_appointments": (12, 36),
           "community_contacts": (12, 36), "mental_health_contacts": (12, 36), "elective_admissions": (12, 36)}

# plain words for explanations: feature -> a template filled with the value
FEATURES: dict[str, str] = {
    "age": "aged {v:.0f}", "male": "male", "imd_quintile": "IMD quintile {v:.0f}",
    "care_home_resident": "lives in a care home", "efi": "electronic Frailty Index {v:.2f}",
    "hfrs": "Hospital Frailty Risk Score {v:.1f}", "cms": "Cambridge Multimorbidity Score {v:.2f}",
    "condition_count": "{v:.0f} long-term conditions", "polypharmacy": "polypharmacy recorded",
    "days_since_emergency_admission": "last emergency admission {v:.0f} days ago",
    "imd_decile": "IMD decile {v:.0f}",
    "has_care_coordinator": "has a care coordinator",
    "practice_admission_ratio": "registered with a practice whose emergency admissions are {v:.2f} times expected",
    **{f"has_{c}": c.replace("_", " ") for c in CONDITIONS},
}
WORDS = {"emergency_admissions": "emergency admission(s)", "elective_admissions": "planned admission(s)",
         "maternity_admissions": "maternity admission(s)", "emergency_bed_days": "days in hospital after emergencies",
         "ae_attendances": "A&E attendance(s)", "outpatient_attendances": "outpatient appointment(s) attended",
         "outpatient_missed": "outpatient appointment(s) missed", "gp_appointments": "GP appointment(s)",
         "community_contacts": "community health contact(s)", "mental_health_contacts": "mental health contact(s)"}
for _name in ACTIVITY:
    for _months in WINDOWS.get(_name, (12,)):
        FEATURES[f"{_name}_{_months}m"] = "{v:.0f} " + WORDS[_name] + f" in the last {_months} months"


def feature_names() -> list[str]:
    """The model features, in a fixed order."""
    return list(FEATURES)


def build_features(con: Connection, as_of: dt.date, schema: str = "planning",
                   table: str = "features", activity: set[str] | None = None) -> int:
    """Create temporary table `table`: one row per person registered and alive on `as_of`, with
    person_id, practice_code, pcn_code, sex, ethnic_group and every feature (or, of the activity
    counts, only those named in `activity`: segmenting needs few). Returns the rows."""
    if schema not in ("record", "planning"):
        raise ValueError("schema must be record or planning")
    day_before = as_of - dt.timedelta(days=1)
    con.register("efi_codes", efi_codes().to_arrow())
    con.register("hfrs_w", hfrs_weights().to_arrow())
    register_cms_tables(con, "general")
    polypharmacy = load_codelists("frailty_deficit").filter(pl.col("deficit") == "polypharmacy")["code"].to_list()
    tables: dict[str, list[str]] = {}
    earliest: dict[str, dt.date] = {}
    outputs = []
    for name, (tbl, date_col, where, value) in ACTIVITY.items():
        for months in WINDOWS.get(name, (12,)):
            if activity is not None and f"{name}_{months}m" not in activity | {"emergency_admissions_12m"}:
                continue  # (the practice ratio below always needs the 12-month emergency admissions)
            since = add_months(as_of, -months)
            earliest[tbl] = min(earliest.get(tbl, since), since)
            tables.setdefault(tbl, []).append(
                f"{value} FILTER (WHERE {where} AND {date_col} >= DATE '{since}') AS {name}_{months}m")
            outputs.append(f"CAST(coalesce({name}_{months}m, 0) AS DOUBLE) AS {name}_{months}m")
    date_of = {tbl: date_col for tbl, date_col, _, _ in ACTIVITY.values()}
    activity_ctes = "".join(
        f", act_{tbl} AS (SELECT person_id, {', '.join(aggs)} FROM {schema}.{tbl} "
        f"WHERE {date_of[tbl]} >= DATE '{earliest[tbl]}' AND {date_of[tbl]} < DATE '{as_of}' GROUP BY person_id)"
        for tbl, aggs in tables.items())
    activity_joins = " ".join(f"LEFT JOIN act_{tbl} USING (person_id)" for tbl in tables)
    has = ", ".join(f"coalesce(bool_or(condition = '{c}'), false) AS has_{c}" for c in CONDITIONS)
    codes = ", ".join(f"'{c}'" for c in polypharmacy) or "''"
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            WITH base AS (  -- the registration on the day before: what was known at the start of as_of
                SELECT b.person_id, b.practice_code, b.pcn_code, b.lsoa_code, b.care_home_code
                FROM ({registration_on(f"{schema}.registration", day_before, REGISTRATION_COLUMNS,
                                       registered_on(day_before))}) AS b
                JOIN {schema}.person p USING (person_id) WHERE {alive_on(day_before, "p")}),
            conditions AS (SELECT person_id, {has}, count(DISTINCT condition) AS condition_count
                           FROM {schema}.condition WHERE first_date < DATE '{as_of}' GROUP BY person_id),
            cms AS ({cms_sql(day_before, schema, "general")}),
            efi AS ({efi_sql(day_before, f'{schema}.gp_event')}),
            hfrs AS ({hfrs_sql(day_before, f'{schema}.hospital_diagnosis')}),
            poly AS (SELECT DISTINCT person_id FROM {schema}.gp_event
                     WHERE snomed_code IN ({codes}) AND event_date < DATE '{as_of}'),
            coordinated AS (SELECT DISTINCT person_id FROM {schema}.mental_health_contact
                            WHERE has_care_coordinator AND contact_date < DATE '{as_of}'
                              AND contact_date >= DATE '{add_months(as_of, -12)}'),
            last_emergency AS (SELECT person_id, max(admission_date) AS last_date FROM {schema}.inpatient_spell
                               WHERE {emergency_admission()} AND admission_date < DATE '{as_of}'
                               GROUP BY person_id){activity_ctes}
            SELECT b.person_id, b.practice_code, b.pcn_code, p.sex,
                   {ethnic_group("p.ethnic_category")} AS ethnic_group,
                   CAST({age_on(day_before, "p")} AS DOUBLE) AS age,
                   CAST(p.sex = 'M' AS DOUBLE) AS male,
                   CAST(coalesce(ceil(CAST(imd.imd_decile AS INTEGER) / 2.0), 3) AS DOUBLE) AS imd_quintile,
                   CAST(coalesce(CAST(imd.imd_decile AS INTEGER), 5) AS DOUBLE) AS imd_decile,
                   CAST(b.care_home_code IS NOT NULL AS DOUBLE) AS care_home_resident,
                   coalesce(f.efi, 0.0) AS efi, coalesce(h.hfrs, 0.0) AS hfrs, coalesce(m.cms, 0.0) AS cms,
                   CAST(coalesce(c.condition_count, 0) AS DOUBLE) AS condition_count,
                   CAST(y.person_id IS NOT NULL AS DOUBLE) AS polypharmacy,
                   CAST(cc.person_id IS NOT NULL AS DOUBLE) AS has_care_coordinator,
                   CAST(coalesce(date_diff('day', le.last_date, DATE '{as_of}'), 3650) AS DOUBLE)
                       AS days_since_emergency_admission,
                   {', '.join(f'CAST(coalesce(c.has_{c}, false) AS DOUBLE) AS has_{c}' for c in CONDITIONS)},
                   {', '.join(outputs)}
            FROM base b JOIN {schema}.person p USING (person_id)
            LEFT JOIN conditions c USING (person_id) LEFT JOIN cms m USING (person_id)
            LEFT JOIN efi f USING (person_id) LEFT JOIN hfrs h USING (person_id)
            LEFT JOIN poly y USING (person_id) LEFT JOIN coordinated cc USING (person_id)
            LEFT JOIN last_emergency le USING (person_id) {activity_joins}
            LEFT JOIN reference.lsoa_imd2019 imd ON imd.lsoa_code = b.lsoa_code""")
    finally:
        for name in ("efi_codes", "hfrs_w"):
            con.unregister(name)
        unregister_cms_tables(con)
    add_practice_admission_ratio(con, table)
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def add_practice_admission_ratio(con: Connection, table: str) -> None:
    """Add `practice_admission_ratio` to `table` (one row per person: age, practice_code,
    emergency_admissions_12m): the practice's emergency admissions in the last 12 months against
    those expected from the ICS's rates by five-year age band (an indirectly standardised ratio),
    practice-level context for each person; 1.0 for a practice with no one expected."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        -- five-year bands 0-4, 5-9, ..., 90+ (as ESP2013): floor, which both engines agree on (DuckDB's
        -- `age // 5` on a DOUBLE age is a plain division, and the cast then rounded: bands were centred
        -- on multiples of five)
        WITH banded AS (SELECT *, least(CAST(floor(age / 5) AS INTEGER), 18) AS band FROM {table}),
        rates AS (SELECT band, avg(emergency_admissions_12m) AS rate FROM banded GROUP BY band),
        ratio AS (SELECT practice_code, sum(b.emergency_admissions_12m) / greatest(sum(r.rate), 1e-9) AS ratio
                  FROM banded b JOIN rates r USING (band) GROUP BY practice_code)
        SELECT t.*, coalesce(x.ratio, 1.0) AS practice_admission_ratio
        FROM {table} t LEFT JOIN ratio x USING (practice_code)""")
