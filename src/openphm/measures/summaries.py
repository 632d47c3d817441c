"""Inequality and opportunity from computed indicators, for each financial year.

Inequality (`measures.inequality`): for every indicator computed by IMD quintile, the slope index
of inequality across the national quintiles the ICS has (at least 3; weighted by each quintile's
denominator), the gap between the most and least deprived of them, and Core20 (IMD 2019 deciles
1-2) against the rest.

Opportunity (`measures.opportunity`): for every indicator with an `opportunity` field (lower is
better; definitions.py refuses it elsewhere), each practice's events above the best quartile of
practices (openphm.variation.opportunity), in the field's `counts` words. Standardised admission
ratios are used rather than DSRs, so the opportunity allows for age and sex: a practice's
expected admissions at the best quartile are its expected count times the best quartile's
ratio. Bed days follow `opportunity.bed_days`: per_emergency_admission, the events avoided times
the ICS's mean emergency length of stay in the year; counted, the opportunity itself (its
numerator sums bed days); none, no bed days. Pounds (`pounds`) from the record's costs
(openphm.finance): events avoided times the mean cost of an emergency spell in the year, or bed
days times the tariff's non-elective excess bed day (the marginal cost of a day in a bed); none
where the record holds no costs for the year.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from openphm.calendar_dates import fy_label
from openphm.domain import emergency_admission
from openphm.engine import table_columns, table_kind
from openphm.engine.connection import Connection
from openphm.measures.definitions import Measure
from openphm.variation import opportunity, slope_index_of_inequality

QUINTILES = ["1", "2", "3", "4", "5"]  # 1 = most deprived


def inequality_table(results: pd.DataFrame, measures: dict[str, Measure]) -> pd.DataFrame:
    """One row per indicator and financial year with the SII, the gap and Core20 against the rest."""
    years = results[results["period_type"] == "financial_year"]
    rows = []
    for (mid, period), frame in years.groupby(["measure_id", "period"]):
        if mid not in measures or "imd_quintile" not in measures[mid].levels:
            continue
        q = frame[frame["level"] == "imd_quintile"].set_index("unit").reindex(QUINTILES)
        q = q[q["value"].notna() & np.isfinite(q["value"]) & (q["denominator"] > 0)]
        # an ICS need not have all five national quintiles: the slope uses those it has (3 or more)
        sii = slope_index_of_inequality(q["value"], q["denominator"]) if len(q) >= 3 else \
            {"sii": math.nan, "lower": math.nan, "upper": math.nan, "gap": math.nan}
        core = frame[frame["level"] == "core20"].set_index("unit")["value"]
        core20, rest = core.get("Core20", math.nan), core.get("Rest", math.nan)
        rows.append({"measure_id": mid, "period": period, "quintiles": ",".join(q.index),
                     "sii": sii["sii"], "sii_lower95": sii["lower"],
                     "sii_upper95": sii["upper"], "gap_most_minus_least_deprived": sii["gap"],
                     "most_deprived_quintile": q["value"].iloc[0] if len(q) else math.nan,
                     "least_deprived_quintile": q["value"].iloc[-1] if len(q) else math.nan,
                     "core20": core20, "rest": rest, "core20_ratio": core20 / rest if rest else math.nan})
    return pd.DataFrame(rows)


def _emergency_spells(con: Connection) -> tuple[dict[str, float], dict[str, float], float]:
    """In one pass over the emergency spells, by financial year of admission: the mean length of stay and
    the mean cost of a spell; and the tariff's non-elective excess bed day. Costs are empty (NaN) where
    the build priced nothing, or the record was made before costs."""
    costed = "cost" in table_columns(con, "planning", "inpatient_spell")
    rows = con.execute(f"""
        SELECT CAST(year(admission_date - INTERVAL 3 MONTH) AS INTEGER) AS y, avg(length_of_stay),
               {'avg(cost)' if costed else 'NULL'}
        FROM planning.inpatient_spell WHERE {emergency_admission()} GROUP BY y""").fetchall()
    day = math.nan
    if costed and table_kind(con, "record", "tariff") is not None:
        found = con.execute("SELECT unit_cost FROM record.tariff WHERE activity = 'inpatient_spell' "
                            "AND category = 'excess_bed_day_non_elective'").fetchone()
        day = float(found[0]) if found else math.nan
    stay = {fy_label(y): float(v) for y, v, _ in rows}
    return stay, {fy_label(y): float(c) for y, _, c in rows if c is not None}, day


def _pounds(opportunity: pd.Series, bed_days, how: str, spell_cost: float, day_cost: float) -> tuple:
    """The opportunity in pounds, and the method's words."""
    if how == "per_emergency_admission" and math.isfinite(spell_cost):
        return opportunity * spell_cost, f"; pounds at the mean cost of an emergency spell (£{spell_cost:,.0f})"
    if how == "counted" and math.isfinite(day_cost):
        return bed_days * day_cost, f"; pounds at the tariff's excess bed day (£{day_cost:,.0f})"
    return math.nan, "; not costed (no costs in the record for the year)" if how != "none" else ""


def _bed_days(opportunity: pd.Series, how: str, mean_stay: float) -> tuple[pd.Series | float, str]:
    """The opportunity in bed days by the indicator's `opportunity.bed_days`, and the method's words."""
    if how == "per_emergency_admission":
        return opportunity * mean_stay, "; bed days at the ICS's mean emergency length of stay"
    if how == "counted":
        return opportunity, "; the numerator counts bed days"
    return math.nan, ""


def opportunity_table(con: Connection, results: pd.DataFrame,
                      measures: dict[str, Measure]) -> pd.DataFrame:
    """One row per indicator, financial year and practice worse than the best quartile of practices."""
    stay, spell_cost, day_cost = _emergency_spells(con)
    years = results[(results["period_type"] == "financial_year") & (results["level"] == "practice")]
    frames = []
    for (mid, period), frame in years.groupby(["measure_id", "period"]):
        m = measures.get(mid)
        if m is None or m.opportunity is None:
            continue  # definitions.py allows an opportunity only where it can be computed
        frame = frame[frame["denominator"] > 0]
        if len(frame) < 4:
            continue
        gap = opportunity(frame["numerator"], frame["denominator"], m.polarity, units=frame["unit"])
        gap = gap[gap["opportunity"] > 0].copy()
        gap["value"] = gap["rate"] * m.multiplier
        gap["best_quartile_value"] = gap["benchmark_rate"] * m.multiplier
        gap.insert(0, "measure_id", mid)
        gap.insert(1, "period", period)
        gap["counts"] = m.opportunity["counts"]
        gap["bed_days"], how = _bed_days(gap["opportunity"], m.opportunity["bed_days"], stay.get(period, math.nan))
        gap["pounds"], money = _pounds(gap["opportunity"], gap["bed_days"], m.opportunity["bed_days"],
                                       spell_cost.get(period, math.nan), day_cost)
        gap["method"] = gap.attrs["method"] + how + money
        frames.append(gap.drop(columns=["rate", "benchmark_rate"]))
    columns = ["measure_id", "period", "unit", "numerator", "denominator", "value", "best_quartile_value",
               "opportunity", "counts", "bed_days", "pounds", "method"]
    return pd.concat(frames)[columns] if frames else pd.DataFrame(columns=columns)


def write_summaries(con: Connection, results: pd.DataFrame, measures: dict[str, Measure]) -> None:
    """Replace measures.inequality and measures.opportunity from the results given."""
    for name, frame in (("inequality", inequality_table(results, measures)),
                        ("opportunity", opportunity_table(con, results, measures))):
        con.register("summary_frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE measures.{name} AS SELECT * FROM summary_frame")
        con.unregister("summary_frame")
