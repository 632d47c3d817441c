"""Spend: each person's cost in a financial year, where it goes, and how concentrated it is.

The people are those registered with an ICS practice and alive at the start of the year (1 April),
with what was known of them then (openphm.derive.features: age, sex, deprivation, conditions,
frailty, care home): the same people a population budget is set for. Their cost is every costed
activity of theirs in the year (`planning.activity_cost`, so nobody with a National Data Opt-out
is included), by setting. Spend on activity of people not in that population (born, registered
or arrived in the year, or never registered) is reported beside it, so the totals reconcile with
the record.

Concentration: people ranked by cost, the share of spend on the top 1%, 5% and 20%, the Lorenz
curve and the Gini coefficient, for all spend, for health care only (no social care or social
prescribing) and for hospital care only (admissions, A&E and outpatients), the last two to set
beside the published English figures (docs/finance.md).
"""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import polars as pl

from openphm.calendar_dates import fy_label
from openphm.derive.features import CONDITIONS, build_features
from openphm.domain import age_band_value
from openphm.engine import table_kind
from openphm.engine.connection import Connection
from openphm.record.coverage import covered_years

SETTINGS = ("Non-elective admissions", "Elective and day-case admissions", "Maternity and births", "A&E",
            "Outpatients", "General practice", "Community health", "Mental health", "Adult social care",
            "Social prescribing")
HEALTH = SETTINGS[:8]
HOSPITAL = SETTINGS[:5]
ADMITTED = SETTINGS[:3]  # admitted patient care: what the published concentration of hospital spend counts
SCOPES = {"health": HEALTH, "hospital": HOSPITAL, "admitted": ADMITTED}  # concentration beside "all" settings
TOP_SHARES = (0.01, 0.05, 0.20)
PEOPLE_TABLE = "finance_people"


def year_start(year: str) -> dt.date:
    """1 April of a financial year given as '2023-24'."""
    if not re.fullmatch(r"\d{4}-\d{2}", year or "") or (int(year[:4]) + 1) % 100 != int(year[5:]):
        raise ValueError(f"a financial year is written like 2023-24 (got {year!r})")
    return dt.date(int(year[:4]), 4, 1)


def costed_years(con: Connection) -> list[str]:
    """Financial years the data cover (openphm.record.coverage: not a year holding only the discharges of
    the last spells) with costed activity in the record, oldest first."""
    if table_kind(con, "planning", "activity_cost") is None:
        return []
    rows = con.execute("SELECT DISTINCT financial_year FROM planning.activity_cost "
                       "WHERE cost IS NOT NULL AND financial_year IS NOT NULL ORDER BY 1").fetchall()
    covered = {fy_label(d.year) for d in covered_years(con)}
    return [r[0] for r in rows if r[0] in covered]


def _segments_on(con: Connection, day: dt.date) -> pl.DataFrame | None:
    if table_kind(con, "planning", "person_segment") is None:
        return None
    month = day.replace(day=1)
    return con.execute("SELECT person_id, segment FROM planning.person_segment "
                       "WHERE from_month <= ? AND to_month >= ?", [month, month]).pl()


def person_costs(con: Connection, year: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(people, unattributed): one row per person registered and alive on 1 April of `year`, with
    what was known of them then and their cost in the year by setting (`cost`, and one column per
    setting); and the year's spend by setting on activity of anybody else."""
    start = year_start(year)
    if table_kind(con, "planning", "activity_cost") is None:
        raise ValueError("the record has no costs: run `openphm build` (it costs every activity)")
    build_features(con, start, table=PEOPLE_TABLE, activity={"emergency_admissions_12m"})
    # a practice's place: the one its registrations name (the latest, should a practice ever move)
    people = con.execute(f"""SELECT f.person_id, f.practice_code, f.pcn_code, pl.place_code, f.sex, f.age, f.male,
                                    f.imd_quintile, f.care_home_resident, f.efi, f.cms, f.condition_count,
                                    {', '.join(f'f.has_{c}' for c in CONDITIONS)}
                             FROM {PEOPLE_TABLE} f
                             LEFT JOIN (SELECT practice_code, max_by(place_code, registration_start) AS place_code
                                        FROM planning.registration GROUP BY 1) pl USING (practice_code)""").pl()
    costs = con.execute("""SELECT person_id, setting, sum(cost) AS cost FROM planning.activity_cost
                           WHERE financial_year = ? AND cost IS NOT NULL GROUP BY 1, 2""", [year]).pl()
    costs = costs.with_columns(pl.col("cost").cast(pl.Float64), pl.col("person_id").cast(pl.Utf8))
    people = people.with_columns(pl.col("person_id").cast(pl.Utf8))
    wide = (costs.filter(pl.col("person_id").is_in(people["person_id"].implode()))
            .pivot(on="setting", index="person_id", values="cost"))
    for setting in SETTINGS:
        if setting not in wide.columns:
            wide = wide.with_columns(pl.lit(0.0).alias(setting))
    people = (people.join(wide.select("person_id", *SETTINGS), on="person_id", how="left")
              .with_columns([pl.col(s).fill_null(0.0) for s in SETTINGS])
              .with_columns(pl.sum_horizontal(*SETTINGS).alias("cost"),
                            pl.col("age").map_elements(lambda a: age_band_value(int(a)), return_dtype=pl.Utf8)
                            .alias("age_band"),
                            pl.col("imd_quintile").cast(pl.Int32).cast(pl.Utf8).alias("imd_quintile_label")))
    segments = _segments_on(con, start)
    if segments is not None:
        segments = segments.with_columns(pl.col("person_id").cast(pl.Utf8))
        people = people.join(segments, on="person_id", how="left").with_columns(
            pl.col("segment").fill_null("(no segment)"))
    else:
        people = people.with_columns(pl.lit("(segments not run)").alias("segment"))
    others = (costs.filter(~pl.col("person_id").is_in(people["person_id"].implode()))
              .group_by("setting").agg(pl.col("cost").sum(), pl.len().alias("people")))
    return people, others


def concentration(costs: np.ndarray) -> dict:
    """Shares of spend on the costliest 1%, 5% and 20% of people, the Gini coefficient and the
    Lorenz curve (101 points: the share of spend on the least costly p% of people, p = 0..100).
    The top share counts ceil(p x people) people."""
    values = np.sort(np.asarray(costs, dtype=float))
    n, total = len(values), float(values.sum())
    if n == 0 or total <= 0:
        return {"people": n, "total": total, "top": {}, "gini": math.nan, "lorenz": []}
    top = {f"{int(p * 100)}%": float(values[n - math.ceil(p * n):].sum() / total) for p in TOP_SHARES}
    cumulative = np.concatenate([[0.0], np.cumsum(values)]) / total
    points = np.linspace(0, 1, 101)
    lorenz = np.interp(points * n, np.arange(n + 1), cumulative)
    # Gini from the sorted values (the mean absolute difference over twice the mean)
    ranks = np.arange(1, n + 1)
    gini = float((2 * np.sum(ranks * values)) / (n * total) - (n + 1) / n)
    return {"people": n, "total": total, "top": top, "gini": gini,
            "lorenz": [round(float(x), 6) for x in lorenz]}


def breakdown(people: pl.DataFrame, by: str) -> pl.DataFrame:
    """People, spend, spend per person and share of spend by one column (segment, age_band, ...)."""
    total = float(people["cost"].sum()) or math.nan
    return (people.group_by(by).agg(pl.len().alias("people"), pl.col("cost").sum().alias("spend"))
            .with_columns((pl.col("spend") / pl.col("people")).alias("spend_per_person"),
                          (pl.col("spend") / total).alias("share_of_spend"))
            .rename({by: "group"})
            # age bands in age order ("5-9" before "10-14"), anything else alphabetically
            .with_columns(pl.col("group").cast(pl.Utf8).str.extract(r"^(\d+)", 1).cast(pl.Int32).alias("_order"))
            .sort("_order", "group", nulls_last=True).drop("_order"))


def by_setting(people: pl.DataFrame, others: pl.DataFrame) -> pl.DataFrame:
    """Spend by setting: on the year's population, on anybody else, and both."""
    other = dict(zip(others["setting"].to_list(), others["cost"].to_list(), strict=True)) if len(others) else {}
    rows = [{"setting": s, "population_spend": float(people[s].sum()), "other_spend": float(other.get(s, 0.0))}
            for s in SETTINGS]
    frame = pl.DataFrame(rows).with_columns((pl.col("population_spend") + pl.col("other_spend")).alias("total_spend"))
    return frame.with_columns((pl.col("total_spend") / pl.col("total_spend").sum()).alias("share_of_spend"))


def spend_summary(con: Connection, year: str) -> dict:
    """Everything the costs report shows for one financial year (and its `people`, for reuse)."""
    people, others = person_costs(con, year)
    costs = people["cost"].to_numpy()
    levels = {"segment": "segment", "age_band": "age_band", "imd_quintile": "imd_quintile_label",
              "practice": "practice_code", "pcn": "pcn_code", "place": "place_code"}
    return {
        "year": year, "people": len(people), "population_spend": float(costs.sum()),
        "spend_per_person": float(costs.mean()) if len(costs) else math.nan,
        "other_spend": float(others["cost"].sum()) if len(others) else 0.0,
        "concentration": {"all": concentration(costs), **{
            scope: concentration(people.select(pl.sum_horizontal(*settings)).to_series().to_numpy())
            for scope, settings in SCOPES.items()}},
        "by_setting": by_setting(people, others),
        "by": {name: breakdown(people, column) for name, column in levels.items()},
        "people_frame": people,
    }


def cost_per_segment_by_year(con: Connection, years: list[str],
                             known: dict[str, pl.DataFrame] | None = None) -> pl.DataFrame:
    """Spend per person by segment (on 1 April) for each year (`known`: years' people already read)."""
    frames = []
    for year in years:
        people = (known or {}).get(year)
        if people is None:
            people, _ = person_costs(con, year)
        frames.append(breakdown(people, "segment").with_columns(pl.lit(year).alias("year")))
    return pl.concat(frames).select("year", "group", "people", "spend", "spend_per_person") if frames else \
        pl.DataFrame()
