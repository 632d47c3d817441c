"""Computing indicators from the person record into `measures.measure_result`.

For each financial year the engine builds the year's population (measures.population), then
for each indicator counts, per person, the numerator and denominator events by month in the
year (or once, for a population denominator or a count of people), and sums them by every
declared level's unit, ESP2013 age band and sex. measures.periods turns those counts into
financial years, months and rolling 12 months with their intervals and standardisation.
Filters are compiled from their checked syntax trees by sqlglot, never pasted as text.
Results use the planning views, so people who opted out are excluded. A full run records the
opt-out set it was computed under; once a build changes that set the results are stale
(openphm.identity.optout.stale_outputs) and the report refuses them until they are computed again.

`measure_result` columns: measure_id, period_type (financial_year, month, rolling_12_months),
period (label), period_start, period_end, level, unit, numerator, denominator, value, lower95,
upper95, lower998, upper998.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import polars as pl
from sqlglot import exp

from openphm.engine.connection import Connection, transaction
from openphm.identity.optout import stamp
from openphm.measures.definitions import Measure, check_filter, load_measures
from openphm.measures.periods import measure_values
from openphm.measures.population import LEVEL_COLUMN, build_period_population, drop_period_population
from openphm.measures.summaries import write_summaries
from openphm.record.coverage import covered_years

log = logging.getLogger("openphm.measures")


def _compile(where: str | None, table_alias: str) -> str:
    if not where:
        return "TRUE"
    tree = check_filter(where, "filter")

    def qualify(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table:
            return exp.column(node.name, table=table_alias)
        return node

    return tree.transform(qualify).sql(dialect="duckdb")


def _events_sql(part: dict, value: str, start: dt.date, end: dt.date) -> str:
    """Per person and month (or once per person when counting people): `value` over a table's rows."""
    where = _compile(part.get("where"), "t")
    date_col = part.get("date")
    if part["table"] == "condition":  # prevalence: diagnosed by the end of the year
        window = f"AND t.{date_col} < DATE '{end}'" if date_col else ""
    else:
        window = f"AND t.{date_col} >= DATE '{start}' AND t.{date_col} < DATE '{end}'" if date_col else ""
    if part.get("persons") or not date_col:
        month, agg = "CAST(NULL AS DATE)", "1.0"
    else:
        month, agg = f"CAST(date_trunc('month', t.{date_col}) AS DATE)", value
    group = "t.person_id" if agg == "1.0" else "t.person_id, 2"
    return (f"SELECT t.person_id, {month} AS month, {agg} AS v FROM planning.{part['table']} t "
            f"JOIN period_people p USING (person_id) WHERE {where} {window} GROUP BY {group}")


def _numerator_sql(m: Measure, start: dt.date, end: dt.date) -> str:
    """Per person (and month for events): the numerator count, sum, or 1 for a person meeting it."""
    num = m.numerator
    if num["table"] == "person":  # unqualified columns are the person's own
        return (f"SELECT p.person_id, CAST(NULL AS DATE) AS month, 1.0 AS v FROM period_people p "
                f"WHERE {_compile(num.get('where'), 'p')}")
    value = f"sum(t.{num['sum']})" if num.get("sum") else "count(*)"
    return _events_sql(num, value, start, end)


def _denominator_sql(m: Measure, start: dt.date, end: dt.date) -> str:
    """Per person and month: the denominator events (a population denominator is `_population_strata`)."""
    den = m.denominator
    value = f"sum(t.{den['sum']})" if den.get("sum") else "count(*)"
    return _events_sql(den, value, start, end)


def _aggregate(con: Connection, rows_sql: str, levels: list[str], restrict: str) -> pl.DataFrame:
    """Sum per-person rows (person_id, month, n, d) by each level's unit, month, age band and sex."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE measure_rows AS
        SELECT {', '.join(f"CAST({LEVEL_COLUMN[lv]} AS VARCHAR) AS lv_{lv}" for lv in levels)},
               p.age_band AS esp_band, p.sex_stratum AS sex, r.month, r.n, r.d
        FROM ({rows_sql}) r JOIN period_people p USING (person_id) WHERE {restrict}""")
    selects = " UNION ALL ".join(
        f"SELECT '{lv}' AS level, lv_{lv} AS unit, month, esp_band, sex, sum(n) AS numerator, sum(d) AS denominator "
        f"FROM measure_rows GROUP BY ALL" for lv in levels)
    frame = con.execute(selects).pl()
    con.execute("DROP TABLE measure_rows")
    return frame.with_columns(pl.col("numerator").cast(pl.Float64), pl.col("denominator").cast(pl.Float64),
                              pl.col("month").cast(pl.Date))


def _population_strata(con: Connection, where: str, cache: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The mid-year population meeting `where`, by every level (computed once per year and filter)."""
    if where not in cache:
        cache[where] = _aggregate(con, "SELECT person_id, CAST(NULL AS DATE) AS month, 0.0 AS n, 1.0 AS d "
                                       "FROM period_people", list(LEVEL_COLUMN), f"p.in_population AND {where}")
    return cache[where]


def measure_strata(con: Connection, m: Measure, start: dt.date, end: dt.date,
                   cache: dict[str, pl.DataFrame] | None = None) -> pl.DataFrame:
    """Numerators and denominators of one indicator in one year (period population built) by level,
    unit, month, ESP2013 age band and sex. For proportions and ratios a person's numerator counts
    only if they are in the denominator; a rate counts the events of everyone registered in the
    year over the mid-year population. `cache` keeps population denominators for the year."""
    den = m.denominator
    numerator = f"SELECT person_id, month, v AS n, 0.0 AS d FROM ({_numerator_sql(m, start, end)})"
    if "population" in den:
        where = _compile(den.get("where"), "p")
        restrict = "TRUE" if m.kind == "event_rate" else f"p.in_population AND {where}"
        population = _population_strata(con, where, {} if cache is None else cache)
        frame = pl.concat([_aggregate(con, numerator, m.levels, restrict),
                           population.filter(pl.col("level").is_in(m.levels))], how="vertical_relaxed")
    else:
        denominator = _denominator_sql(m, start, end)
        rows = (f"WITH den AS ({denominator}) {numerator} WHERE person_id IN (SELECT person_id FROM den) "
                "UNION ALL SELECT person_id, month, 0.0 AS n, v AS d FROM den")
        frame = _aggregate(con, rows, m.levels, "TRUE")
    return frame.with_columns(pl.lit(start).alias("fy_start"))


def compute_measure(con: Connection, m: Measure, start: dt.date, end: dt.date) -> pl.DataFrame:
    """One indicator for one financial year (period population built) at every level it declares:
    the year and, for monthly or rolling indicators, the year's months."""
    return measure_values(m, measure_strata(con, m, start, end))


def financial_years(con: Connection) -> list[dt.date]:
    """Starts of the financial years the data really cover (openphm.record.coverage: years of hospital
    spells sent, not stretched by a stray date)."""
    return covered_years(con, "record.inpatient_spell")


def compute_measures(con: Connection, measures: dict[str, Measure],
                     progress: Callable[[str], None] | None = None) -> pl.DataFrame:
    """Every given indicator for every financial year the record covers, as one frame."""
    strata: dict[str, list[pl.DataFrame]] = {mid: [] for mid in measures}
    for start in financial_years(con):
        end = dt.date(start.year + 1, 4, 1)
        n = build_period_population(con, start)
        log.info("financial year %s: %d people in the mid-year population", start.year, n)
        cache: dict[str, pl.DataFrame] = {}
        for mid, m in measures.items():
            strata[mid].append(measure_strata(con, m, start, end, cache))
            if progress:
                progress(mid)
    drop_period_population(con)
    frames = [measure_values(measures[mid], pl.concat(parts, how="vertical_relaxed"))
              for mid, parts in strata.items() if parts]
    return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()


def run_measures(con: Connection, only: list[str] | None = None,
                 progress: Callable[[str], None] | None = None) -> pl.DataFrame:
    """Compute every indicator (or `only` these) into measures.measure_result; returns the new rows.
    With `only`, other indicators' rows are kept."""
    measures = load_measures()
    unknown = set(only or []) - set(measures)
    if unknown:
        raise ValueError(f"unknown indicator(s): {', '.join(sorted(unknown))}")
    chosen = {k: v for k, v in measures.items() if not only or k in only}
    result = compute_measures(con, chosen, progress)
    if result.is_empty():
        raise ValueError("the person record has no hospital spells to date a period: run `openphm build` first")
    con.execute("CREATE SCHEMA IF NOT EXISTS measures")
    con.register("measure_frame", result.to_arrow())
    with transaction(con):
        exists = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'measures' "
                             "AND table_name = 'measure_result' AND column_name = 'period_type'").fetchone()[0]
        if only and exists:
            con.execute("DELETE FROM measures.measure_result WHERE measure_id IN (SELECT DISTINCT measure_id "
                        "FROM measure_frame)")
            con.execute("INSERT INTO measures.measure_result SELECT * FROM measure_frame")
        else:
            con.execute("CREATE OR REPLACE TABLE measures.measure_result AS SELECT * FROM measure_frame")
            stamp(con, "measures")  # every indicator now computed under the opt-out set in service
    con.unregister("measure_frame")
    write_summaries(con, con.execute("SELECT * FROM measures.measure_result").df(), measures)
    log.info("computed %d indicators", len(chosen))
    return result
