"""Intervals for proportions, counts, rates and means (PHE Technical Guide: Confidence Intervals)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

SMALL_COUNT = 10  # below this, exact Poisson limits; from this, Byar's approximation


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (got {confidence})")
    return float(stats.norm.ppf(1 - (1 - confidence) / 2))


def wilson(numerator: float, denominator: float, confidence: float = 0.95) -> tuple[float, float, float]:
    """Proportion with Wilson score limits: (proportion, lower, upper)."""
    if denominator <= 0:
        raise ValueError(f"the denominator must be positive (got {denominator})")
    if numerator < 0 or numerator > denominator:
        raise ValueError(f"the numerator must be between 0 and the denominator (got {numerator} of {denominator})")
    z = _z(confidence)
    n, p = float(denominator), numerator / denominator
    centre = 2 * n * p + z * z
    spread = z * math.sqrt(z * z + 4 * n * p * (1 - p))
    scale = 2 * (n + z * z)
    return p, max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def poisson_exact_limits(count: float, confidence: float = 0.95) -> tuple[float, float]:
    """Exact limits for a Poisson count from the chi-squared distribution (lower 0 for a zero count)."""
    alpha = 1 - confidence
    lower = 0.0 if count == 0 else float(stats.chi2.ppf(alpha / 2, 2 * count) / 2)
    upper = float(stats.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2)
    return lower, upper


def byar_limits(count: float, confidence: float = 0.95) -> tuple[float, float]:
    """Byar's approximation to the exact Poisson limits of a count."""
    z = _z(confidence)
    o = float(count)
    lower = o * (1 - 1 / (9 * o) - z / (3 * math.sqrt(o))) ** 3 if o > 0 else 0.0
    upper = (o + 1) * (1 - 1 / (9 * (o + 1)) + z / (3 * math.sqrt(o + 1))) ** 3
    return lower, upper


def count_limits(count: float, confidence: float = 0.95) -> tuple[float, float]:
    """Limits of a count: exact below 10, Byar's from 10 (PHE's convention)."""
    if count < 0:
        raise ValueError(f"a count cannot be negative (got {count})")
    return poisson_exact_limits(count, confidence) if count < SMALL_COUNT else byar_limits(count, confidence)


def rate(count: float, denominator: float, per: float = 100_000,
         confidence: float = 0.95) -> tuple[float, float, float]:
    """Crude rate per `per` with Poisson limits: (rate, lower, upper)."""
    if denominator <= 0:
        raise ValueError(f"the denominator must be positive (got {denominator})")
    lower, upper = count_limits(count, confidence)
    return count / denominator * per, lower / denominator * per, upper / denominator * per


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean with Student's t limits: (mean, lower, upper)."""
    x = np.asarray(list(values), dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        raise ValueError(f"a mean's interval needs at least two values (got {len(x)})")
    m = float(x.mean())
    half = float(stats.t.ppf(1 - (1 - confidence) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - half, m + half


def wilson_arrays(numerator, denominator, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`wilson` over arrays (for many units at once): proportions, lowers, uppers; NaN where the
    denominator is not positive."""
    num = np.asarray(numerator, dtype=float)
    n = np.asarray(denominator, dtype=float)
    z = _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, np.minimum(num, n) / n, np.nan)
        centre = 2 * n * p + z * z
        spread = z * np.sqrt(z * z + 4 * n * p * (1 - p))
        scale = 2 * (n + z * z)
        return p, np.clip((centre - spread) / scale, 0, 1), np.clip((centre + spread) / scale, 0, 1)


def _counts(counts) -> np.ndarray:
    o = np.asarray(counts, dtype=float)
    if (o < 0).any():
        raise ValueError("a count cannot be negative")
    return o


def poisson_exact_arrays(counts, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """`poisson_exact_limits` over an array of counts: exact limits whatever the count."""
    o, alpha = _counts(counts), 1 - confidence
    _z(confidence)  # checks the confidence
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = np.where(o > 0, stats.chi2.ppf(alpha / 2, 2 * o) / 2, 0.0)
    return lower, stats.chi2.ppf(1 - alpha / 2, 2 * o + 2) / 2


def count_limits_arrays(counts, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """`count_limits` over an array of counts: exact below 10, Byar's from 10."""
    o = _counts(counts)
    z = _z(confidence)
    exact_lo, exact_hi = poisson_exact_arrays(o, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        byar_lo = np.where(o > 0, o * (1 - 1 / (9 * o) - z / (3 * np.sqrt(o))) ** 3, 0.0)
        byar_hi = (o + 1) * (1 - 1 / (9 * (o + 1)) + z / (3 * np.sqrt(o + 1))) ** 3
    small = o < SMALL_COUNT
    return np.where(small, exact_lo, byar_lo), np.where(small, exact_hi, byar_hi)


COUNT_METHODS = {"byar": count_limits_arrays, "poisson": poisson_exact_arrays}


def count_interval_arrays(counts, method: str, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Limits of an array of counts by an indicator's `confidence`: "byar" (PHE's convention, exact
    below 10 and Byar's from 10) or "poisson" (exact always)."""
    if method not in COUNT_METHODS:
        raise ValueError(f"no count interval {method!r}; expected one of {sorted(COUNT_METHODS)}")
    return COUNT_METHODS[method](counts, confidence)
