"""Inequality by deprivation and the opportunity in closing the gap to the best quartile.

Slope index of inequality (PHE, "Technical Guide: Calculating the slope index of inequality",
after Low & Low 2004): each deprivation group gets the midpoint of its cumulative share of the
population (ranked from most to least deprived); the indicator is regressed on that rank by
population-weighted least squares; SII = the fitted value at the most deprived end minus at the
least deprived end (so a positive SII means higher values where deprivation is higher). The
interval here is the regression's normal-theory one (PHE simulates; to confirm for small groups).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats


def slope_index_of_inequality(values: Iterable[float], population: Iterable[float],
                              most_deprived_first: bool = True, confidence: float = 0.95) -> dict[str, float]:
    """SII with limits, and the gap between the most and least deprived groups."""
    y = np.asarray(list(values), dtype=float)
    w = np.asarray(list(population), dtype=float)
    if len(y) != len(w) or len(y) < 3:
        raise ValueError("the slope index needs at least three groups with values and populations")
    if (w <= 0).any():
        raise ValueError("every group needs a positive population")
    if not most_deprived_first:
        y, w = y[::-1], w[::-1]
    share = w / w.sum()
    rank = np.cumsum(share) - share / 2  # 0 = most deprived end, 1 = least deprived end
    x = np.column_stack([np.ones_like(rank), rank])
    wx = x * w[:, None]
    beta = np.linalg.solve(x.T @ wx, wx.T @ y)
    fitted = x @ beta
    dof = len(y) - 2
    sigma2 = float((w * (y - fitted) ** 2).sum() / dof) if dof > 0 else 0.0
    cov = sigma2 * np.linalg.inv(x.T @ wx)
    se = float(np.sqrt(cov[1, 1]))
    sii = -float(beta[1])  # most deprived (rank 0) minus least deprived (rank 1)
    t = float(stats.t.ppf(1 - (1 - confidence) / 2, max(dof, 1)))
    return {"sii": sii, "lower": sii - t * se, "upper": sii + t * se, "gap": float(y[0] - y[-1])}


def opportunity(numerator: Iterable[float], denominator: Iterable[float], polarity: str = "lower_is_better",
                units: Iterable[str] | None = None) -> pd.DataFrame:
    """Events avoided (or gained) if every unit worse than the best quartile matched the best quartile.

    The best quartile is the 25th centile of unit rates when lower is better (75th when higher is
    better); a worse unit's opportunity is its numerator minus its denominator times that rate.
    """
    num = np.asarray(list(numerator), dtype=float)
    den = np.asarray(list(denominator), dtype=float)
    if polarity not in ("lower_is_better", "higher_is_better"):
        raise ValueError("polarity must be lower_is_better or higher_is_better")
    if (den <= 0).any():
        raise ValueError("every denominator must be positive")
    rate = num / den
    benchmark = float(np.percentile(rate, 25 if polarity == "lower_is_better" else 75))
    expected = den * benchmark
    gap = num - expected if polarity == "lower_is_better" else expected - num
    frame = pd.DataFrame({"unit": list(units) if units is not None else range(len(num)), "numerator": num,
                          "denominator": den, "rate": rate, "benchmark_rate": benchmark,
                          "opportunity": np.clip(gap, 0, None)})
    centile = "25th" if polarity == "lower_is_better" else "75th"
    frame.attrs["method"] = (f"each unit worse than the best quartile ({centile} centile of unit rates) brought to it; "
                             "others unchanged")
    return frame
