"""Computing indicators from the person record into `measures.measure_result`.

For each financial year the engine builds the period's population: people registered on
1 October (mid-year), with their practice, PCN, place, age, ESP2013 age band, sex, ethnic
group, IMD quintile, care-home residence and mental health conditions on that day (`p.*` in
filters). Events are counted for that population in the period and attributed to the
person's practice on the mid-year day. Filters are compiled from their checked syntax trees by
sqlglot, never pasted as text. Intervals: Wilson for proportions, exact/Byar's for counts,
Dobson for directly standardised rates (openphm.stats). Results use planning views, so people
who opted out are excluded.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

import duckdb
import polars as pl
from sqlglot import exp

from openphm.derive.efi import efi_codes, efi_sql
from openphm.measures.definitions import Measure, check_filter, load_measures
from openphm.stats import count_limits, dsr, wilson

log = logging.getLogger("openphm.measures")

LEVEL_COLUMN = {"practice": "practice_code", "pcn": "pcn_code", "place": "place_code", "ics": "'ICS'",
                "imd_quintile": "CAST(imd_quintile AS VARCHAR)", "age_band": "age_band", "ethnicity": "ethnic_group"}
NOT_YET: set[str] = set()  # person attributes a later stage would provide


def _compile(where: str | None, table_alias: str) -> str:
    if not where:
        return "TRUE"
    tree = check_filter(where, "filter")

    def qualify(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table:
            return exp.column(node.name, table=table_alias)
        return node

    return tree.transform(qualify).sql(dialect="duckdb")


def _period_population(con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date) -> None:
    mid = dt.date(start.year, 10, 1)
    has_events = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'planning' "
                             "AND table_name = 'gp_event'").fetchone()[0] > 0
    if has_events:
        con.register("efi_codes", efi_codes().to_arrow())
        con.execute(f"CREATE OR REPLACE TEMP TABLE period_efi AS {efi_sql(mid, 'planning.gp_event')}")
        con.unregister("efi_codes")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE period_efi AS SELECT person_id, CAST(NULL AS DOUBLE) AS efi "
                    "FROM planning.person WHERE false")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE period_people AS
        WITH reg AS (
            SELECT person_id, arg_max(practice_code, registration_start) AS practice_code,
                   arg_max(pcn_code, registration_start) AS pcn_code,
                   arg_max(place_code, registration_start) AS place_code,
                   arg_max(lsoa_code, registration_start) AS lsoa_code,
                   arg_max(care_home_code, registration_start) AS care_home_code
            FROM planning.registration
            WHERE registration_start <= DATE '{mid}' AND (registration_end IS NULL OR registration_end > DATE '{mid}')
            GROUP BY person_id),
        conditions AS (
            SELECT person_id, bool_or(condition = 'smi') AS has_smi,
                   bool_or(condition IN ('smi', 'depression')) AS has_mental_health_condition
            FROM planning.condition WHERE first_date <= DATE '{mid}' GROUP BY person_id)
        SELECT r.*, p.sex,
               {mid.year} - p.birth_year - CASE WHEN p.birth_month > {mid.month} THEN 1 ELSE 0 END AS age,
               CASE WHEN p.ethnic_category IN ('A', 'B', 'C') THEN 'White'
                    WHEN p.ethnic_category IN ('D', 'E', 'F', 'G') THEN 'Mixed'
                    WHEN p.ethnic_category IN ('H', 'J', 'K', 'L') THEN 'Asian'
                    WHEN p.ethnic_category IN ('M', 'N', 'P') THEN 'Black'
                    WHEN p.ethnic_category IN ('R', 'S') THEN 'Other' ELSE 'Not stated' END AS ethnic_group,
               CAST(ceil(CAST(imd.imd_decile AS INTEGER) / 2.0) AS INTEGER) AS imd_quintile,
               r.care_home_code IS NOT NULL AS care_home_resident,
               coalesce(c.has_smi, false) AS has_smi,
               coalesce(c.has_mental_health_condition, false) AS has_mental_health_condition,
               coalesce(f.efi, 0.0) AS efi
        FROM reg r JOIN planning.person p USING (person_id)
        LEFT JOIN conditions c USING (person_id)
        LEFT JOIN period_efi f USING (person_id)
        LEFT JOIN reference.lsoa_imd2019 imd ON imd.lsoa_code = r.lsoa_code
        WHERE p.date_of_death IS NULL OR p.date_of_death > DATE '{mid}'""")
    con.execute("""CREATE OR REPLACE TEMP TABLE period_people AS SELECT *,
        CASE WHEN age >= 90 THEN '90+'
             ELSE CAST(5 * (age // 5) AS VARCHAR) || '-' || CAST(5 * (age // 5) + 4 AS VARCHAR) END AS age_band
        FROM period_people""")


def _numerator_sql(m: Measure, start: dt.date, end: dt.date) -> str:
    """Per person: the numerator count (or sum, or 1 for a person meeting it)."""
    num = m.numerator
    where = _compile(num.get("where"), "t")
    if num["table"] == "person":
        # a numerator over the person: unqualified columns are the person's own (alias p)
        return f"SELECT p.person_id, 1 AS n FROM period_people p WHERE {_compile(num.get('where'), 'p')}"
    date = f"AND t.{num['date']} >= DATE '{start}' AND t.{num['date']} < DATE '{end}'" if num.get("date") else ""
    if num["table"] == "condition":
        date = f"AND t.{num['date']} < DATE '{end}'" if num.get("date") else ""  # prevalence: diagnosed by the end
    value = f"sum(t.{num['sum']})" if num.get("sum") else ("1" if num.get("persons") else "count(*)")
    agg = "max(1)" if num.get("persons") else value
    return (f"SELECT t.person_id, {agg} AS n FROM planning.{num['table']} t JOIN period_people p USING (person_id) "
            f"WHERE {where} {date} GROUP BY t.person_id")


def _denominator_sql(m: Measure, start: dt.date, end: dt.date) -> str:
    den = m.denominator
    if "population" in den:
        return f"SELECT p.person_id, 1 AS d FROM period_people p WHERE {_compile(den.get('where'), 'p')}"
    where = _compile(den.get("where"), "t")
    date = f"AND t.{den['date']} >= DATE '{start}' AND t.{den['date']} < DATE '{end}'" if den.get("date") else ""
    value = f"sum(t.{den['sum']})" if den.get("sum") else "count(*)"
    return (f"SELECT t.person_id, {value} AS d FROM planning.{den['table']} t JOIN period_people p USING (person_id) "
            f"WHERE {where} {date} GROUP BY t.person_id")


def _uses_missing_attribute(m: Measure) -> str | None:
    for part in ("numerator", "denominator"):
        where = m.data[part].get("where") or ""
        for name in NOT_YET:
            if f"p.{name}" in where:
                return name
    return None


def _intervals(m: Measure, num: float, den: float) -> tuple[float, float, float, float, float]:
    mult = m.data.get("multiplier", 1)
    if den <= 0:
        return (math.nan,) * 5
    if m.kind in ("person_proportion", "event_proportion"):
        p, lo, hi = wilson(min(num, den), den)
        _, lo9, hi9 = wilson(min(num, den), den, 0.998)
        return p * mult, lo * mult, hi * mult, lo9 * mult, hi9 * mult
    lo, hi = count_limits(num)
    lo9, hi9 = count_limits(num, 0.998)
    return tuple(x / den * mult for x in (num, lo, hi, lo9, hi9))


def compute_measure(con: duckdb.DuckDBPyConnection, m: Measure, start: dt.date, end: dt.date) -> pl.DataFrame:
    """One indicator for one period at every level it declares (period population must be built)."""
    rows = con.execute(f"""
        WITH num AS ({_numerator_sql(m, start, end)}), den AS ({_denominator_sql(m, start, end)}),
        joined AS (
            SELECT p.*, coalesce(num.n, 0) AS n, coalesce(den.d, 0) AS d
            FROM period_people p LEFT JOIN num USING (person_id) LEFT JOIN den USING (person_id)
            WHERE den.person_id IS NOT NULL)  -- the numerator counts only within the denominator
        SELECT {', '.join(f"{LEVEL_COLUMN[lv]} AS {lv}" for lv in m.levels)}, age_band AS esp_band,
               sum(n) AS numerator, sum(d) AS denominator
        FROM joined GROUP BY ALL""").pl()
    out = []
    for level in m.levels:
        grouped = rows.group_by(level, "esp_band").agg(pl.col("numerator").sum(), pl.col("denominator").sum())
        totals = grouped.group_by(level).agg(pl.col("numerator").sum(), pl.col("denominator").sum())
        std = None
        if m.standardisation == "dsr_esp2013" and level != "age_band":
            std = dsr(grouped.rename({"esp_band": "ageband", "numerator": "count", "denominator": "population"})
                      .filter(pl.col("population") > 0), by=level, per=m.data.get("multiplier", 100_000))
            std998 = dsr(grouped.rename({"esp_band": "ageband", "numerator": "count", "denominator": "population"})
                         .filter(pl.col("population") > 0), by=level, per=m.data.get("multiplier", 100_000),
                         confidence=0.998)
        for unit, num, den in totals.select(level, "numerator", "denominator").iter_rows():
            if std is not None:
                r = std.filter(pl.col(level) == unit).row(0, named=True)
                r9 = std998.filter(pl.col(level) == unit).row(0, named=True)
                values = (r["value"], r["lower"], r["upper"], r9["lower"], r9["upper"])
            else:
                values = _intervals(m, float(num), float(den))
            out.append({"measure_id": m.id, "period": f"{start.year}-{(start.year + 1) % 100:02d}", "level": level,
                        "unit": None if unit is None else str(unit), "numerator": float(num),
                        "denominator": float(den), "value": values[0], "lower95": values[1], "upper95": values[2],
                        "lower998": values[3], "upper998": values[4]})
    return pl.DataFrame(out, schema_overrides={"unit": pl.Utf8})


def financial_years(con: duckdb.DuckDBPyConnection) -> list[dt.date]:
    """Starts of the financial years the record covers (by GP registrations and hospital spells)."""
    lo, hi = con.execute("SELECT min(admission_date), max(admission_date) FROM record.inpatient_spell").fetchone()
    if lo is None:
        return []
    first = lo.year if lo.month >= 4 else lo.year - 1
    last = hi.year if hi.month >= 4 else hi.year - 1
    return [dt.date(y, 4, 1) for y in range(first, last + 1)]


def run_measures(con: duckdb.DuckDBPyConnection, only: list[str] | None = None) -> dict[str, str]:
    """Compute every indicator (or `only` these) for every financial year into measures.measure_result.
    Returns the ids skipped with the reason."""
    measures = load_measures()
    chosen = {k: v for k, v in measures.items() if not only or k in only}
    unknown = set(only or []) - set(measures)
    if unknown:
        raise ValueError(f"unknown indicator(s): {', '.join(sorted(unknown))}")
    skipped = {mid: f"needs p.{name}, which a later stage provides" for mid, m in chosen.items()
               if (name := _uses_missing_attribute(m))}
    frames = []
    for start in financial_years(con):
        end = dt.date(start.year + 1, 4, 1)
        _period_population(con, start, end)
        for mid, m in chosen.items():
            if mid not in skipped:
                frames.append(compute_measure(con, m, start, end))
    con.execute("DROP TABLE IF EXISTS period_people; DROP TABLE IF EXISTS period_efi")
    result = pl.concat(frames) if frames else pl.DataFrame()
    con.execute("CREATE SCHEMA IF NOT EXISTS measures")
    con.register("measure_frame", result.to_arrow())
    con.execute("BEGIN")
    if only:
        con.execute("CREATE TABLE IF NOT EXISTS measures.measure_result AS SELECT * FROM measure_frame LIMIT 0")
        con.execute("DELETE FROM measures.measure_result WHERE measure_id IN (SELECT DISTINCT measure_id "
                    "FROM measure_frame)")
        con.execute("INSERT INTO measures.measure_result SELECT * FROM measure_frame")
    else:
        con.execute("CREATE OR REPLACE TABLE measures.measure_result AS SELECT * FROM measure_frame")
    con.execute("COMMIT")
    con.unregister("measure_frame")
    log.info("computed %d indicators (%d skipped)", len(chosen) - len(skipped), len(skipped))
    return skipped
