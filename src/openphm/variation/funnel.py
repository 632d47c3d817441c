"""Funnel plot limits for proportions, rates and ratios, with an optional overdispersion adjustment.

Limits are drawn at 95% and 99.8% around the target (by default the pooled value). Proportions:
normal approximation to the binomial, target +/- z sqrt(target(1 - target) / n). Rates and
ratios: exact Poisson limits of the expected count (target x denominator) divided by the
denominator. Overdispersion (Spiegelhalter DJ, "Funnel plots for comparing institutional
performance", Stat Med 2005;24:1185-202): z-scores winsorised at the 10th and 90th centiles give
phi = mean(z^2); when n phi > n - 1 the between-unit variance tau^2 = (n phi - (n - 1)) /
(sum w - sum w^2 / sum w), w = 1 / within-unit variance, widens every limit to
target +/- z sqrt(variance + tau^2) (random-effects funnel).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

KINDS = ("proportion", "rate", "ratio")


def _within_variance(kind: str, target: float, denominator: np.ndarray) -> np.ndarray:
    if kind == "proportion":
        return target * (1 - target) / denominator
    return target / denominator


def overdispersion_tau2(value: np.ndarray, target: float, variance: np.ndarray) -> float:
    """Spiegelhalter's additive random-effects variance (0 when there is no overdispersion)."""
    z = (value - target) / np.sqrt(variance)
    lo, hi = np.percentile(z, [10, 90])
    zw = np.clip(z, lo, hi)
    n = len(z)
    phi = float(np.mean(zw**2))
    if n * phi <= n - 1:
        return 0.0
    w = 1 / variance
    return float((n * phi - (n - 1)) / (w.sum() - (w**2).sum() / w.sum()))


def funnel(numerator: Iterable[float], denominator: Iterable[float], kind: str = "proportion",
           target: float | None = None, overdispersion: bool = False) -> pd.DataFrame:
    """value, lower95, upper95, lower998, upper998 and flag (low_998, low_95, within, high_95, high_998)
    for each unit. For kind "ratio" the denominator is the expected count."""
    num = np.asarray(list(numerator), dtype=float)
    den = np.asarray(list(denominator), dtype=float)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
    if len(num) != len(den) or len(num) == 0:
        raise ValueError("numerator and denominator must be non-empty and of equal length")
    if (den <= 0).any():
        raise ValueError("every denominator must be positive")
    if kind == "proportion" and ((num < 0) | (num > den)).any():
        raise ValueError("a proportion's numerator must lie between 0 and its denominator")
    value = num / den
    theta = float(num.sum() / den.sum()) if target is None else float(target)
    variance = _within_variance(kind, theta, den)
    tau2 = overdispersion_tau2(value, theta, variance) if overdispersion else 0.0
    out = {"value": value}
    for conf, label in ((0.95, "95"), (0.998, "998")):
        z = stats.norm.ppf(1 - (1 - conf) / 2)
        if kind == "proportion" or tau2 > 0:
            half = z * np.sqrt(variance + tau2)
            lo, hi = theta - half, theta + half
        else:
            expected = theta * den
            lo = stats.poisson.ppf((1 - conf) / 2, expected) / den
            hi = stats.poisson.ppf(1 - (1 - conf) / 2, expected) / den
        if kind == "proportion":
            lo, hi = np.clip(lo, 0, 1), np.clip(hi, 0, 1)
        out[f"lower{label}"], out[f"upper{label}"] = np.maximum(lo, 0), hi
    frame = pd.DataFrame(out)
    frame["flag"] = np.select(
        [frame["value"] > frame["upper998"], frame["value"] > frame["upper95"],
         frame["value"] < frame["lower998"], frame["value"] < frame["lower95"]],
        ["high_998", "high_95", "low_998", "low_95"], default="within")
    return frame
