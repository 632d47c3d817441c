"""From counts by stratum to indicator values for financial years, months and rolling 12 months.

The engine gives, per financial year, numerators and denominators by level, unit, ESP2013 age
band, sex and month (events) or with no month (a population denominator, counted once at
mid-year). This module turns them into periods and values:

- financial year: every event in the year over the mid-year population (or the year's events);
- month: the month's events over the month's share of the year's population in person-years
  (population x days in month / 365.25), so a monthly rate is an annual rate and months of
  different length compare fairly; event denominators are the month's own events;
- rolling 12 months: the sums of the 12 months ending with each month (from the twelfth month on).

Standardisation: crude or none; directly standardised to ESP2013 by age band and sex (Dobson
limits, openphm.stats.dsr; not computed at the age-band level, where the crude rate is given with
PHE's count limits); indirectly standardised against the ICS (the ICS's rate in each age band and
sex in the same period gives each unit's expected count; value = observed / expected, the
observed count's limits over the expected; the denominator column holds the expected count).

Intervals follow the indicator's `confidence`: wilson for proportions; byar (exact Poisson below
10, Byar's from 10) or poisson (exact always) for the counts of rates, ratios of sums and
indirectly standardised ratios; dobson for directly standardised rates (definitions.py refuses
any other combination). Every value and limit is multiplied by the indicator's `multiplier` in
one place (`_values`).
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import polars as pl

from openphm.calendar_dates import add_months, fy_label
from openphm.measures.definitions import Measure
from openphm.stats import ESP2013, count_interval_arrays, dsr, wilson_arrays

KEYS = ["level", "unit", "period_type", "period", "period_start", "period_end"]
STRATA = ["esp_band", "sex"]
DAYS_IN_YEAR = 365.25
LIMITS = ["value", "lower95", "upper95", "lower998", "upper998"]
AGE_BAND_INTERVAL = "byar"  # a DSR's age-band rows are crude rates: PHE's count limits


def _financial_years(strata: pl.DataFrame) -> pl.DataFrame:
    fy = strata.group_by("level", "unit", "fy_start", *STRATA).agg(pl.col("numerator").sum(),
                                                                   pl.col("denominator").sum())
    starts = fy["fy_start"].unique().to_list()
    labels = pl.DataFrame({"fy_start": starts, "period": [fy_label(s.year) for s in starts],
                           "period_end": [dt.date(s.year + 1, 3, 31) for s in starts]},
                          schema={"fy_start": pl.Date, "period": pl.Utf8, "period_end": pl.Date})
    return (fy.join(labels, on="fy_start").rename({"fy_start": "period_start"})
            .with_columns(pl.lit("financial_year").alias("period_type")))


def _months(m: Measure, strata: pl.DataFrame) -> pl.DataFrame:
    """Counts by month and stratum, with population denominators spread over the year's months."""
    events = strata.filter(pl.col("month").is_not_null())
    if "population" not in m.denominator:
        return events.group_by("level", "unit", "month", *STRATA).agg(pl.col("numerator").sum(),
                                                                       pl.col("denominator").sum())
    starts = strata["fy_start"].unique().to_list()
    months = [(s, add_months(s, i)) for s in starts for i in range(12)]
    shares = pl.DataFrame({"fy_start": [s for s, _ in months], "month": [mo for _, mo in months],
                           "share": [calendar.monthrange(mo.year, mo.month)[1] / DAYS_IN_YEAR for _, mo in months]},
                          schema={"fy_start": pl.Date, "month": pl.Date, "share": pl.Float64})
    population = (strata.filter(pl.col("month").is_null()).drop("month", "numerator")
                  .join(shares, on="fy_start").with_columns((pl.col("denominator") * pl.col("share"))
                                                            .alias("denominator")))
    both = pl.concat([events.select("level", "unit", "month", *STRATA, "numerator", pl.lit(0.0).alias("denominator")),
                      population.select("level", "unit", "month", *STRATA, pl.lit(0.0).alias("numerator"),
                                        "denominator")], how="vertical_relaxed")
    return both.group_by("level", "unit", "month", *STRATA).agg(pl.col("numerator").sum(),
                                                                 pl.col("denominator").sum())


def _monthly_periods(months: pl.DataFrame) -> pl.DataFrame:
    labels = months.select("month").unique().with_columns(
        pl.col("month").dt.strftime("%Y-%m").alias("period"),
        pl.col("month").dt.month_end().alias("period_end"))
    return (months.join(labels, on="month").rename({"month": "period_start"})
            .with_columns(pl.lit("month").alias("period_type")))


def _rolling_periods(months: pl.DataFrame, fy_starts: list[dt.date]) -> pl.DataFrame:
    """Sums over the 12 months ending with each month, from the twelfth month of the first year."""
    ends = [add_months(min(fy_starts), 11 + k) for k in range(12 * (len(fy_starts) - 1) + 1)]
    windows = pl.DataFrame({"month": [add_months(e, -k) for e in ends for k in range(12)],
                            "end_month": [e for e in ends for _ in range(12)]},
                           schema={"month": pl.Date, "end_month": pl.Date})
    summed = (months.join(windows, on="month").group_by("level", "unit", "end_month", *STRATA)
              .agg(pl.col("numerator").sum(), pl.col("denominator").sum()))
    return summed.with_columns(
        pl.lit("rolling_12_months").alias("period_type"),
        ("12 months to " + pl.col("end_month").dt.strftime("%Y-%m")).alias("period"),
        pl.col("end_month").dt.offset_by("-11mo").alias("period_start"),
        pl.col("end_month").dt.month_end().alias("period_end")).drop("end_month")


def crude_values(totals: pl.DataFrame, method: str) -> pl.DataFrame:
    """numerator / denominator with limits by `method`: wilson for proportions, else byar or poisson."""
    num, den = totals["numerator"].to_numpy(), totals["denominator"].to_numpy()
    if method == "wilson":
        value, lo, hi = wilson_arrays(num, den)
        _, lo9, hi9 = wilson_arrays(num, den, 0.998)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            safe = np.where(den > 0, den, np.nan)
            value = num / safe
            lo, hi = (x / safe for x in count_interval_arrays(num, method))
            lo9, hi9 = (x / safe for x in count_interval_arrays(num, method, 0.998))
    return totals.with_columns(*(pl.Series(name, np.asarray(x, dtype=float)) for name, x in
                                 zip(LIMITS, (value, lo, hi, lo9, hi9), strict=True)))


def _direct(strata: pl.DataFrame, totals: pl.DataFrame) -> pl.DataFrame:
    """Directly standardised rates (per 1) with Dobson's limits."""
    weights = pl.DataFrame({"esp_band": list(ESP2013), "standard": [float(w) for w in ESP2013.values()]})
    data = strata.filter(pl.col("denominator") > 0).join(weights, on="esp_band")
    d95 = dsr(data, count="numerator", population="denominator", by=KEYS, standard="standard", per=1)
    d998 = dsr(data, count="numerator", population="denominator", by=KEYS, standard="standard", per=1,
               confidence=0.998)
    values = d95.select(*KEYS, "value", pl.col("lower").alias("lower95"), pl.col("upper").alias("upper95")).join(
        d998.select(*KEYS, pl.col("lower").alias("lower998"), pl.col("upper").alias("upper998")), on=KEYS,
        nulls_equal=True)
    return totals.join(values, on=KEYS, how="left", nulls_equal=True)


def _indirect(strata: pl.DataFrame, totals: pl.DataFrame, method: str) -> pl.DataFrame:
    """Observed / expected at the ICS's rates in each age band and sex, limits of the observed count by
    `method` (byar or poisson) over the expected; the denominator column becomes the expected count."""
    period = ["period_type", "period", "period_start", "period_end"]
    ics = (strata.filter(pl.col("level") == "ics").group_by(*period, *STRATA)
           .agg(pl.col("numerator").sum(), pl.col("denominator").sum())
           .select(*period, *STRATA, pl.when(pl.col("denominator") > 0)
                   .then(pl.col("numerator") / pl.col("denominator")).otherwise(0.0).alias("ics_rate")))
    # events in a stratum with no mid-year population (people who died or joined) have no rate
    expected = (strata.join(ics, on=[*period, *STRATA], how="left")
                .group_by(KEYS).agg((pl.col("denominator") * pl.col("ics_rate").fill_null(0.0)).sum()
                                    .alias("expected")))
    joined = totals.join(expected, on=KEYS, how="left", nulls_equal=True)
    obs, exp_ = joined["numerator"].to_numpy(), joined["expected"].fill_null(0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(exp_ > 0, exp_, np.nan)
        cols = {"value": obs / safe}
        cols["lower95"], cols["upper95"] = (x / safe for x in count_interval_arrays(obs, method))
        cols["lower998"], cols["upper998"] = (x / safe for x in count_interval_arrays(obs, method, 0.998))
    return joined.with_columns(pl.col("expected").alias("denominator"),
                               *(pl.Series(k, v) for k, v in cols.items())).drop("expected")


def _values(m: Measure, strata: pl.DataFrame) -> pl.DataFrame:
    """Values and limits by the indicator's standardisation and confidence, times its multiplier (the one
    place it is applied)."""
    totals = strata.group_by(KEYS).agg(pl.col("numerator").sum(), pl.col("denominator").sum())
    if m.standardisation == "dsr_esp2013":
        # not standardised within an age band: the crude rate, with PHE's count limits
        crude = crude_values(totals.filter(pl.col("level") == "age_band"), AGE_BAND_INTERVAL)
        direct = _direct(strata.filter(pl.col("level") != "age_band"), totals.filter(pl.col("level") != "age_band"))
        values = pl.concat([direct, crude.select(direct.columns)])
    elif m.standardisation == "isr_ics":
        values = _indirect(strata, totals, m.confidence)
    else:
        values = crude_values(totals, m.confidence)
    return values.with_columns(pl.col(c) * m.multiplier for c in LIMITS)


def measure_values(m: Measure, strata: pl.DataFrame) -> pl.DataFrame:
    """Every period the indicator declares (always its financial years) at every level, with
    values and 95% and 99.8% limits. `strata` has level, unit, fy_start, month, esp_band, sex,
    numerator, denominator."""
    parts = [_financial_years(strata)]
    if m.period in ("monthly", "rolling_12_months") and m.kind != "person_proportion":
        months = _months(m, strata)
        parts.append(_monthly_periods(months) if m.period == "monthly"
                     else _rolling_periods(months, strata["fy_start"].unique().to_list()))
    columns = [*KEYS, *STRATA, "numerator", "denominator"]
    stacked = pl.concat([p.select(columns) for p in parts if len(p)], how="vertical_relaxed")
    out = _values(m, stacked).with_columns(pl.lit(m.id).alias("measure_id"))
    return out.select("measure_id", *KEYS, "numerator", "denominator", "value", "lower95", "upper95", "lower998",
                      "upper998").sort(KEYS)
