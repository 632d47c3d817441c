"""The population of a financial year: who is counted, where, and with which attributes.

Denominators are the mid-year population: people registered on 1 October and alive that day.
Events are counted for everyone registered at some time in the year (so the admissions and
deaths of people who died or moved away before October count, as in published rates). Each
person comes with their practice, PCN, place,
LSOA, age, ESP2013 age band, sex, ethnic group, IMD quintile (and Core20: the most deprived 20%
of England's neighbourhoods, IMD 2019 deciles 1 and 2), care-home residence, SMI and other
mental health conditions diagnosed by that day, and the electronic Frailty Index on that day.
These are the `p.*` attributes an indicator's filters may use. Events in the year are
attributed to the practice the person was registered with on the mid-year day, or if they were
not registered that day, the latest registration they had in the year.
"""

from __future__ import annotations

import datetime as dt

from openphm.derive.efi import efi_codes, efi_sql
from openphm.domain import age_band, age_on, alive_on, ethnic_group, registered_during, registration_on
from openphm.engine.connection import Connection

# how each level's unit is named in `period_people`
LEVEL_COLUMN = {"practice": "practice_code", "pcn": "pcn_code", "place": "place_code", "ics": "'ICS'",
                "imd_quintile": "CAST(imd_quintile AS VARCHAR)", "core20": "core20", "age_band": "age_band",
                "ethnicity": "ethnicity"}


def mid_year(start: dt.date) -> dt.date:
    """The day a financial year's population is taken: 1 October."""
    return dt.date(start.year, 10, 1)


def _has_table(con: Connection, schema: str, name: str) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                       [schema, name]).fetchone()[0] > 0


_REGISTRATION_COLUMNS = ("practice_code", "pcn_code", "place_code", "lsoa_code", "care_home_code")


def build_period_population(con: Connection, start: dt.date) -> int:
    """Create the temporary table `period_people` for the financial year starting `start`: everyone
    registered at some time in the year and alive at its start, with `in_population` marking the
    mid-year population (registered and alive on 1 October). Returns the mid-year population."""
    mid = mid_year(start)
    end = dt.date(start.year + 1, 4, 1)
    if _has_table(con, "planning", "gp_event"):
        con.register("efi_codes", efi_codes().to_arrow())
        con.execute(f"CREATE OR REPLACE TEMP TABLE period_efi AS {efi_sql(mid, 'planning.gp_event')}")
        con.unregister("efi_codes")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE period_efi AS SELECT person_id, CAST(NULL AS DOUBLE) AS efi "
                    "FROM planning.person WHERE false")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE period_people AS
        WITH reg AS (  -- everyone registered at some time in the year; the registration on mid-year day if any
            {registration_on("planning.registration", mid, _REGISTRATION_COLUMNS, registered_during(start, end))}),
        conditions AS (
            SELECT person_id, bool_or(condition = 'smi') AS has_smi,
                   bool_or(condition IN ('smi', 'depression')) AS has_mental_health_condition
            FROM planning.condition WHERE first_date <= DATE '{mid}' GROUP BY person_id),
        people AS (
            SELECT r.*, p.sex,
                   {age_on(mid, "p")} AS age,
                   {ethnic_group("p.ethnic_category")} AS ethnicity,
                   CAST(ceil(CAST(imd.imd_decile AS INTEGER) / 2.0) AS INTEGER) AS imd_quintile,
                   r.care_home_code IS NOT NULL AS care_home_resident,
                   coalesce(c.has_smi, false) AS has_smi,
                   coalesce(c.has_mental_health_condition, false) AS has_mental_health_condition,
                   coalesce(f.efi, 0.0) AS efi,
                   r.registered_on_date AND {alive_on(mid, "p")} AS in_population
            FROM reg r JOIN planning.person p USING (person_id)
            LEFT JOIN conditions c USING (person_id)
            LEFT JOIN period_efi f USING (person_id)
            LEFT JOIN reference.lsoa_imd2019 imd ON imd.lsoa_code = r.lsoa_code
            WHERE {alive_on(start - dt.timedelta(days=1), "p")})
        SELECT *,
               {age_band("age")} AS age_band,
               -- standardisation strata: people not recorded as male are standardised with females (the
               -- generated registers record everyone as F or M; a third stratum would add a third copy of
               -- the standard population's weights)
               CASE WHEN sex = 'M' THEN 'M' ELSE 'F' END AS sex_stratum,
               CASE WHEN imd_quintile = 1 THEN 'Core20' WHEN imd_quintile IS NULL THEN 'Unknown'
                    ELSE 'Rest' END AS core20
        FROM people""")
    return con.execute("SELECT count(*) FROM period_people WHERE in_population").fetchone()[0]


def drop_period_population(con: Connection) -> None:
    """Remove the temporary tables of a period population."""
    con.execute("DROP TABLE IF EXISTS period_people; DROP TABLE IF EXISTS period_efi")
