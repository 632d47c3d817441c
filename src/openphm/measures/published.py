"""Indicator results as they may leave OpenPHM for anyone without a direct-care role.

`measures.measure_result` holds exact counts and values computed from them. Before a page, a CSV, a
chart, the API or the board report shows them to an analyst, a board member or the public, this module
applies `openphm.governance.disclosure` (counts of 1-7 redacted, others rounded to 5, secondary
suppression within a period) and then makes every value and limit agree with what is shown, so that no
exact count can be worked back out of a rate or an interval:

- crude rates and proportions: the value and both intervals are recomputed from the protected
  numerator and denominator, by the indicator's own interval method (`periods.crude_values`);
- directly standardised rates (ESP2013): the standardised value is kept (it is a weighted sum of
  age-specific rates and gives no count back), and Dobson's limits are recomputed around it with the
  protected count: Dobson's limits are value + s x (L(O) - O) and value + s x (U(O) - O) with one step
  s = sqrt(var / O), so s = (upper - lower) / (U(O) - L(O)) from the exact limits, and the published
  limits use L and U of the protected count. Redacted with the count. A DSR's age-band rows are crude
  rates and are treated as such;
- indirectly standardised ratios: the expected count is not a count of people (it is the ICS's rates
  applied to the unit's population) and is shown to one decimal place; the ratio and its limits are
  recomputed from the protected observed count over it.

Values and limits of standardised indicators are rounded to one decimal place of the indicator's unit.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from openphm.governance.disclosure import protect_frame
from openphm.measures.definitions import Measure
from openphm.measures.periods import AGE_BAND_INTERVAL, LIMITS, crude_values
from openphm.stats import count_interval_arrays

COUNTS = ("numerator", "denominator")
PAIRS = (("lower95", "upper95", 0.95), ("lower998", "upper998", 0.998))


def _recomputed_crude(rows: pl.DataFrame, method: str, multiplier: float) -> pl.DataFrame:
    """Values and limits from the (already protected) counts; null where a count is redacted."""
    if rows.height == 0:
        return rows
    shown = rows.filter(pl.col("numerator").is_not_null() & pl.col("denominator").is_not_null())
    hidden = rows.filter(pl.col("numerator").is_null() | pl.col("denominator").is_null())
    computed = crude_values(shown.drop(LIMITS).with_columns(pl.col(c).cast(pl.Float64) for c in COUNTS), method)
    computed = computed.with_columns(*(pl.col(c) * multiplier for c in LIMITS),
                                     *(pl.col(c).cast(rows.schema[c]) for c in COUNTS))
    hidden = hidden.with_columns(pl.lit(None, pl.Float64).alias(c) for c in LIMITS)
    return pl.concat([computed.select(rows.columns), hidden.select(rows.columns)], how="vertical_relaxed")


def _recomputed_direct(rows: pl.DataFrame, exact_numerator: np.ndarray) -> pl.DataFrame:
    """Dobson's limits about the exact DSR with the protected count (see the module's docstring)."""
    o, shown = exact_numerator, rows["numerator"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    out = {}
    for lo_col, hi_col, confidence in PAIRS:
        lo, hi = rows[lo_col].fill_null(np.nan).to_numpy(), rows[hi_col].fill_null(np.nan).to_numpy()
        lo_o, hi_o = count_interval_arrays(o, "byar", confidence)
        lo_s, hi_s = count_interval_arrays(np.nan_to_num(shown), "byar", confidence)
        value = rows["value"].fill_null(np.nan).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            step = (hi - lo) / (hi_o - lo_o)
            out[lo_col] = np.where(np.isnan(shown), np.nan, value + step * (lo_s - shown))
            out[hi_col] = np.where(np.isnan(shown), np.nan, value + step * (hi_s - shown))
    hide = rows["numerator"].is_null() | rows["denominator"].is_null()
    return rows.with_columns(
        pl.when(hide).then(None).otherwise(pl.col("value")).round(1).alias("value"),
        *(pl.Series(k, v).fill_nan(None).round(1) for k, v in out.items()))


def _recomputed_indirect(rows: pl.DataFrame, method: str, multiplier: float) -> pl.DataFrame:
    """Observed (protected) over expected, with the observed count's limits."""
    obs = rows["numerator"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    expected = rows["denominator"].cast(pl.Float64).fill_null(0.0).to_numpy()
    cols = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(expected > 0, expected, np.nan)
        cols["value"] = obs / safe
        for lo_col, hi_col, confidence in PAIRS:
            lo, hi = count_interval_arrays(np.nan_to_num(obs), method, confidence)
            cols[lo_col], cols[hi_col] = np.where(np.isnan(obs), np.nan, lo / safe), np.where(np.isnan(obs),
                                                                                              np.nan, hi / safe)
    return rows.with_columns(*(pl.Series(k, v * multiplier).fill_nan(None).round(1) for k, v in cols.items()))


def published_results(rows: pl.DataFrame, m: Measure, within: tuple[str, ...] = ("level", "period")) -> pl.DataFrame:
    """`rows` of measures.measure_result for the indicator `m` (any levels and periods), as they may be
    shown without a direct-care role: counts protected, values and limits recomputed from them. A
    redacted cell is null. `within` groups the cells whose total is published (secondary suppression)."""
    if rows.height == 0:
        return rows
    rows = rows.with_row_index("_order")
    within = tuple(c for c in within if c in rows.columns)
    multiplier = float(m.multiplier)
    if m.standardisation == "isr_ics":
        protected = protect_frame(rows, ["numerator"], within=within)
        protected = protected.with_columns(pl.col("denominator").cast(pl.Float64).round(1))
        out = _recomputed_indirect(protected, m.confidence, multiplier)
    elif m.standardisation == "dsr_esp2013":
        protected = protect_frame(rows, COUNTS, within=within)
        bands = protected.filter(pl.col("level") == "age_band")
        direct = protected.filter(pl.col("level") != "age_band")
        exact = rows.filter(pl.col("level") != "age_band")["numerator"].cast(pl.Float64).to_numpy()
        out = pl.concat([_recomputed_direct(direct, exact),
                         _recomputed_crude(bands, AGE_BAND_INTERVAL, multiplier)], how="vertical_relaxed")
    else:
        protected = protect_frame(rows, COUNTS, within=within)
        out = _recomputed_crude(protected, m.confidence, multiplier)
    return out.sort("_order").drop("_order")
