"""Directly and indirectly standardised rates.

DSR: sum over age bands of (weight x count / population) / sum of weights, with Dobson's
limits: DSR + sqrt(var(DSR) / O) x (O_limit - O), where O is the total count, var(DSR) =
sum(w^2 O_i / n_i^2) / (sum w)^2, and O's limits are exact below 10 and Byar's from 10. Not
computed (NaN) when a group's total count is under 10 (PHE convention).
ISR: observed / expected, with the observed count's limits divided by the expected.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from openphm.stats.intervals import count_limits, count_limits_arrays

# European Standard Population 2013 (Eurostat 2013), 19 bands, summing to 100,000.
ESP2013: dict[str, int] = {
    "0-4": 5000, "5-9": 5500, "10-14": 5500, "15-19": 5500, "20-24": 6000, "25-29": 6000, "30-34": 6500,
    "35-39": 7000, "40-44": 7000, "45-49": 7000, "50-54": 7000, "55-59": 6500, "60-64": 6000, "65-69": 5500,
    "70-74": 5000, "75-79": 4000, "80-84": 2500, "85-89": 1500, "90+": 1000,
}


def _to_polars(frame) -> tuple[pl.DataFrame, bool]:
    if isinstance(frame, pl.DataFrame):
        return frame, False
    return pl.from_pandas(frame), True


def _back(frame: pl.DataFrame, was_pandas: bool):
    return frame.to_pandas() if was_pandas else frame


def dsr(frame, count: str = "count", population: str = "population", by: str | list[str] | None = None,
        standard: str = "esp2013", per: float = 100_000, confidence: float = 0.95):
    """Directly standardised rate per group with Dobson limits: columns value, lower, upper (and the
    group columns, total count and population). `standard="esp2013"` needs an `ageband` column of
    ESP2013 bands; otherwise `standard` names a column holding each row's standard population."""
    data, was_pandas = _to_polars(frame)
    groups = [by] if isinstance(by, str) else list(by or [])
    if standard == "esp2013":
        if "ageband" not in data.columns:
            raise ValueError("standard='esp2013' needs an 'ageband' column with bands 0-4, 5-9, ..., 85-89, 90+")
        unknown = set(data["ageband"].cast(pl.Utf8).unique()) - set(ESP2013)
        if unknown:
            raise ValueError(f"unknown age bands {sorted(unknown)}; expected the 19 ESP2013 bands")
        data = data.with_columns(pl.col("ageband").cast(pl.Utf8).replace_strict(ESP2013, return_dtype=pl.Float64)
                                 .alias("__w"))
    else:
        if standard not in data.columns:
            raise ValueError(f"no standard population column {standard!r}")
        data = data.with_columns(pl.col(standard).cast(pl.Float64).alias("__w"))
    if (data[population] <= 0).any():
        raise ValueError("every row needs a positive population (a zero denominator has no rate)")
    data = data.with_columns((pl.col(count).cast(pl.Float64)).alias("__o"), pl.col(population).cast(pl.Float64)
                             .alias("__n"))
    agg = (data.group_by(groups, maintain_order=True) if groups else data.group_by(pl.lit(1).alias("__all"))).agg(
        pl.col("__o").sum().alias("count"), pl.col("__n").sum().alias("population"),
        ((pl.col("__w") * pl.col("__o") / pl.col("__n")).sum() / pl.col("__w").sum()).alias("__dsr"),
        ((pl.col("__w") ** 2 * pl.col("__o") / pl.col("__n") ** 2).sum() / pl.col("__w").sum() ** 2).alias("__var"))
    o = agg["count"].to_numpy()
    d = agg["__dsr"].to_numpy()
    var = agg["__var"].to_numpy()
    lo, hi = count_limits_arrays(o, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.sqrt(var / o)
        computed = o >= 10
        value = np.where(computed, d * per, np.nan)
        lower = np.where(computed, (d + step * (lo - o)) * per, np.nan)
        upper = np.where(computed, (d + step * (hi - o)) * per, np.nan)
    out = agg.drop("__dsr", "__var", "__all", strict=False).with_columns(
        pl.Series("value", value), pl.Series("lower", lower), pl.Series("upper", upper))
    return _back(out, was_pandas)


def isr(frame, observed: str = "observed", expected: str = "expected", by: str | list[str] | None = None,
        confidence: float = 0.95):
    """Indirectly standardised ratio (sum observed / sum expected) per group, with exact limits below 10
    observed and Byar's from 10: columns value, lower, upper."""
    data, was_pandas = _to_polars(frame)
    groups = [by] if isinstance(by, str) else list(by or [])
    grouped = data.group_by(groups, maintain_order=True) if groups else data.group_by(pl.lit(1).alias("__all"))
    agg = grouped.agg(pl.col(observed).cast(pl.Float64).sum().alias("observed"),
                      pl.col(expected).cast(pl.Float64).sum().alias("expected"))
    if (agg["expected"] <= 0).any():
        raise ValueError("every group needs a positive expected count")
    rows = [(o / e, *(x / e for x in count_limits(o, confidence))) for o, e in
            agg.select("observed", "expected").iter_rows()]
    out = agg.drop("__all", strict=False).with_columns(
        pl.Series("value", [r[0] for r in rows]), pl.Series("lower", [r[1] for r in rows]),
        pl.Series("upper", [r[2] for r in rows]))
    return _back(out, was_pandas)
