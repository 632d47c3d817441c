"""The panel an evaluation runs on: one row per unit (practice, PCN or place) and month, with the
population, and for each outcome the events and the rate per 1,000 people per month.

Read from the planning views (the National Data Opt-out applied). An event counts for the unit the
person was registered with on the event's day, when the person was in the population on that day
(aged 75 or over on that day, say); the denominator is the population registered in the middle of
the month (the 15th). Units that do not exist for the whole period (a practice that opened or
merged) are left out and listed, since the methods need a balanced panel.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from openphm.domain import ACTIVITY, age_at, registered_at
from openphm.engine.connection import Connection
from openphm.engine.duckdb_store import lit
from openphm.evaluate.spec import EvaluationSpec, SpecError, next_month

UNIT_COLUMNS = {"practice": "practice_code", "pcn": "pcn_code", "place": "place_code"}
INDICATOR = "indicator:"
SEGMENT = "segment:"


# What each outcome counts: the domain's activity (openphm.domain.ACTIVITY), and spend on health care
# by the month of the activity (record.activity_cost; a spell in its month of discharge). Social care is
# left out of `cost`: it is costed by year, not by month.
OUTCOME_SOURCES = {**ACTIVITY, "cost": ("activity_cost", "activity_date",
                                        "cost IS NOT NULL AND activity <> 'social_care_service'", "sum(cost)")}


def population_filter(population: str, day: str, person: str = "p", registration: str = "r") -> str:
    """SQL: the person is in the evaluation's population on the day held in `day` (for a segment: in
    that segment in the day's month)."""
    if population.startswith(SEGMENT):
        month = f"CAST(date_trunc('month', {day}) AS DATE)"
        return (f"EXISTS (SELECT 1 FROM planning.person_segment s WHERE s.person_id = {person}.person_id AND "
                f"s.segment = {lit(population[len(SEGMENT):])} AND s.from_month <= {month} AND "
                f"s.to_month >= {month})")
    aged = f"{age_at(day, person)} >= 75"
    home = f"{registration}.care_home_code IS NOT NULL"
    return {"everyone": "TRUE", "aged_75_plus": aged, "care_home": home,
            "aged_75_plus_or_care_home": f"({aged} OR {home})"}[population]


@dataclass
class Panel:
    """The panel (`frame`) and what was left out."""

    frame: pl.DataFrame  # unit, month, t (1, 2, ...), first_treated (t of the start, 0 if never), population,
    #                      and <outcome>_events, <outcome> (per 1,000 people per month) for each outcome
    outcomes: list[str]  # the columns of the outcomes (an indicator's without the colon)
    dropped_units: list[str]

    def name_of(self, column_name: str) -> str:
        """The spec's name for an outcome column."""
        return column_name.replace("indicator_", INDICATOR, 1) if column_name.startswith("indicator_") else column_name


def _months_frame(spec: EvaluationSpec) -> pl.DataFrame:
    months = spec.months
    return pl.DataFrame({"month": months, "t": list(range(1, len(months) + 1)),
                         "mid": [m.replace(day=15) for m in months]})


def build_panel(con: Connection, spec: EvaluationSpec) -> Panel:
    """The unit-by-month panel for `spec` (see the module's note)."""
    unit_col = UNIT_COLUMNS[spec.level]
    if spec.population.startswith(SEGMENT):
        segment = spec.population[len(SEGMENT):]
        known = con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'planning' "
                            "AND view_name = 'person_segment'").fetchone()[0]
        if not known or not con.execute("SELECT count(*) FROM planning.person_segment WHERE segment = ?",
                                        [segment]).fetchone()[0]:
            raise SpecError(f"population: no one is in segment {segment!r}: run `openphm segments run` first "
                            "(`openphm segments` lists the segments)")
    months = _months_frame(spec)
    con.register("ev_months", months.to_arrow())
    try:
        population = con.execute(f"""
            SELECT r.{unit_col} AS unit, m.month, count(DISTINCT r.person_id) AS population
            FROM planning.registration r JOIN planning.person p ON p.person_id = r.person_id
            JOIN ev_months m ON {registered_at('m.mid', 'r')}
            WHERE r.{unit_col} IS NOT NULL AND (p.date_of_death IS NULL OR p.date_of_death > m.mid)
              AND {population_filter(spec.population, 'm.mid')}
            GROUP BY 1, 2""").pl()
        first, after = spec.start, next_month(spec.end)
        events = []
        for outcome in spec.outcomes:
            if outcome.startswith(INDICATOR):
                events.append(_indicator(con, spec, outcome))
                continue
            table, date_col, where, value = OUTCOME_SOURCES[outcome]
            day = f"e.{date_col}"
            events.append(con.execute(f"""
                SELECT r.{unit_col} AS unit, CAST(date_trunc('month', {day}) AS DATE) AS month,
                       CAST({value} AS DOUBLE) AS {outcome}_events
                FROM (SELECT * FROM planning.{table} WHERE {where}) e
                JOIN planning.registration r ON r.person_id = e.person_id AND {registered_at(day, 'r')}
                JOIN planning.person p ON p.person_id = e.person_id
                WHERE {day} >= DATE '{first}' AND {day} < DATE '{after}' AND r.{unit_col} IS NOT NULL
                  AND {population_filter(spec.population, day)}
                GROUP BY 1, 2""").pl())
    finally:
        con.unregister("ev_months")
    return _assemble(spec, months, population, events)


def _indicator(con: Connection, spec: EvaluationSpec, outcome: str) -> pl.DataFrame:
    """A shipped indicator's monthly results at the evaluation's level: its numerator as the events and
    its value (in the indicator's own unit) as the outcome."""
    measure = outcome[len(INDICATOR):]
    found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'measures' "
                        "AND table_name = 'measure_result'").fetchone()[0]
    rows = con.execute("SELECT CAST(unit AS VARCHAR) AS unit, CAST(period_start AS DATE) AS month, "
                       f"CAST(numerator AS DOUBLE) AS {column(outcome)}_events, CAST(value AS DOUBLE) AS "
                       f"{column(outcome)}_value FROM measures.measure_result WHERE measure_id = ? "
                       "AND period_type = 'month' AND level = ? AND period_start >= ? AND period_start <= ?",
                       [measure, spec.level, spec.start, spec.end]).pl() if found else pl.DataFrame()
    if rows.height == 0:
        raise SpecError(f"outcomes: {outcome}: no monthly results at {spec.level} level for the period; the "
                        f"indicator must be monthly and computed first (`openphm measures run`)")
    return rows


def column(outcome: str) -> str:
    """The panel's column for an outcome (an indicator's id without its prefix's colon)."""
    return outcome.replace(":", "_")


def _assemble(spec: EvaluationSpec, months: pl.DataFrame, population: pl.DataFrame,
              events: list[pl.DataFrame]) -> Panel:
    n_months = months.height
    population = population.with_columns(pl.col("month").cast(pl.Date), pl.col("unit").cast(pl.Utf8))
    complete = (population.filter(pl.col("population") > 0).group_by("unit").agg(pl.len().alias("n"))
                .filter(pl.col("n") == n_months)["unit"])
    everyone = sorted(population["unit"].unique().to_list())
    missing = sorted(set(spec.starts) - set(everyone))
    if missing:
        raise SpecError(f"intervention/starts: {', '.join(missing[:5])} {'is' if len(missing) == 1 else 'are'} "
                        f"not {'a ' + spec.level if len(missing) == 1 else spec.level + 's'} with anyone in the "
                        f"population in the record")
    kept = set(complete.to_list())
    dropped = [u for u in everyone if u not in kept]
    gone = sorted(set(spec.starts) & set(dropped))
    if gone:
        raise SpecError(f"intervention/starts: {', '.join(gone[:5])} did not exist for the whole period "
                        f"({spec.start:%Y-%m} to {spec.end:%Y-%m}): shorten the period")
    t_of = dict(zip(months["month"].to_list(), months["t"].to_list(), strict=True))
    starts = pl.DataFrame({"unit": list(spec.starts), "first_treated": [t_of[m] for m in spec.starts.values()]},
                          schema={"unit": pl.Utf8, "first_treated": pl.Int64})
    frame = (population.filter(pl.col("unit").is_in(list(kept)))
             .join(months.select("month", "t"), on="month")
             .join(starts, on="unit", how="left").with_columns(pl.col("first_treated").fill_null(0)))
    for outcome, counts in zip(spec.outcomes, events, strict=True):
        name = column(outcome)
        counts = counts.with_columns(pl.col("month").cast(pl.Date), pl.col("unit").cast(pl.Utf8))
        frame = (frame.join(counts, on=["unit", "month"], how="left")
                 .with_columns(pl.col(f"{name}_events").fill_null(0.0)))
        if outcome.startswith(INDICATOR):  # the indicator's own value; a unit-month it has none for is left out
            frame = frame.rename({f"{name}_value": name})
        else:
            frame = frame.with_columns((pl.col(f"{name}_events") / pl.col("population") * 1000).alias(name))
    indicators = [column(o) for o in spec.outcomes if o.startswith(INDICATOR)]
    if indicators:
        incomplete = frame.filter(pl.any_horizontal(pl.col(c).is_null() for c in indicators))["unit"].unique()
        if set(incomplete.to_list()) & set(spec.starts):
            raise SpecError(f"outcomes: an indicator has no value for some months of "
                            f"{', '.join(sorted(set(incomplete.to_list()) & set(spec.starts))[:5])}")
        frame = frame.filter(~pl.col("unit").is_in(incomplete.to_list()))
        dropped = sorted(set(dropped) | set(incomplete.to_list()))
    if frame.filter(pl.col("first_treated") == 0)["unit"].n_unique() == 0 and spec.control_group == "nevertreated":
        raise SpecError("every unit adopted the care model: there is no never-treated comparison group")
    return Panel(frame.sort("unit", "t"), [column(o) for o in spec.outcomes], dropped)
