"""XmR (individuals and moving range) charts with the NHS "Making Data Count" rules.

Process limits are the mean +/- 2.66 times the mean moving range (2.66 = 3 / d2, d2 = 1.128 for
ranges of two). With screening, moving ranges of 3.267 times the mean moving range or more
(3.267 = D4 for ranges of two) are dropped once before the limits are computed. Special-cause
rules (NHS England / NHS Improvement, "Making Data Count: Strengthening your decisions", 2019):
a point beyond the limits ("outside"); 7 or more points each higher (or lower) than the one
before ("trend"); 2 of 3 consecutive points beyond two sigma on the same side ("two_in_three");
7 or more consecutive points on one side of the mean ("shift"). Where rules overlap a point
carries the first of that list. `rebase_at` recalculates mean and limits from stated points.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

RUN = 7
LIMIT_FACTOR = 2.66
SCREEN_FACTOR = 3.267


def _phase_limits(x: np.ndarray, screen: bool) -> tuple[float, float]:
    mean = float(x.mean())
    if len(x) < 2:
        return mean, 0.0
    mr = np.abs(np.diff(x))
    mr_bar = float(mr.mean())
    if screen and mr_bar > 0:
        kept = mr[mr < SCREEN_FACTOR * mr_bar]
        if len(kept):
            mr_bar = float(kept.mean())
    return mean, mr_bar


def _runs(mask: np.ndarray, length: int) -> np.ndarray:
    """Points that belong to a run of `length` or more consecutive True values."""
    out = np.zeros(len(mask), dtype=bool)
    start = None
    for i, m in enumerate([*mask, False]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            if i - start >= length:
                out[start:i] = True
            start = None
    return out


def xmr(values: Iterable[float], screen_outliers: bool = True,
        rebase_at: Sequence[int] | int | None = None) -> pd.DataFrame:
    """One row per point: value, mean, lower, upper (process limits), rule, special_cause."""
    x = np.asarray(list(values), dtype=float)
    if len(x) < 2:
        raise ValueError("an XmR chart needs at least two points")
    if np.isnan(x).any():
        raise ValueError("values must not contain missing points")
    breaks = [rebase_at] if isinstance(rebase_at, int) else list(rebase_at or [])
    if any(not 0 < b < len(x) for b in breaks):
        raise ValueError(f"rebase points must fall inside the series (1 to {len(x) - 1})")
    edges = [0, *sorted(set(breaks)), len(x)]
    mean = np.empty(len(x))
    sigma = np.empty(len(x))
    for a, b in itertools.pairwise(edges):
        m, mr_bar = _phase_limits(x[a:b], screen_outliers)
        mean[a:b] = m
        sigma[a:b] = LIMIT_FACTOR * mr_bar / 3
    upper, lower = mean + 3 * sigma, mean - 3 * sigma
    outside = (x > upper) | (x < lower)
    trend = np.zeros(len(x), dtype=bool)
    shift = np.zeros(len(x), dtype=bool)
    two_in_three = np.zeros(len(x), dtype=bool)
    for a, b in itertools.pairwise(edges):
        seg, m, s = x[a:b], mean[a:b], sigma[a:b]
        step = np.diff(seg)
        for sign in (1, -1):
            moving = np.r_[False, sign * step > 0]  # point i higher than i-1
            run = _runs(moving, RUN - 1)  # 6 rises make 7 rising points
            starts = np.flatnonzero(run & ~np.r_[False, run[:-1]])
            run = run.copy()
            run[np.clip(starts - 1, 0, None)] = True  # include the point each run rises from
            trend[a:b] |= run
            shift[a:b] |= _runs(sign * (seg - m) > 0, RUN)
            beyond = sign * (seg - m) > 2 * s
            for i in range(len(seg) - 2):
                window = beyond[i:i + 3]
                if window.sum() >= 2:
                    two_in_three[a + i:a + i + 3] |= window
    rule = np.where(outside, "outside", np.where(trend, "trend", np.where(two_in_three, "two_in_three",
                                                                           np.where(shift, "shift", ""))))
    return pd.DataFrame({"value": x, "mean": mean, "lower": lower, "upper": upper, "rule": rule,
                         "special_cause": rule != ""})


def variation_icon(chart: pd.DataFrame, polarity: str = "no_judgement") -> str:
    """The Making Data Count variation icon for an XmR chart, from its latest point: "common cause",
    or "special cause" with "improvement" or "concern" (or "neither" without a polarity) and
    "high" or "low"."""
    last = chart.iloc[-1]
    if not last["special_cause"]:
        return "common cause"
    side = "high" if last["value"] > last["mean"] else "low"
    if polarity == "no_judgement":
        return f"special cause ({side})"
    good = (side == "high") == (polarity == "higher_is_better")
    return f"special cause {'improvement' if good else 'concern'} ({side})"


def assurance_icon(chart: pd.DataFrame, target: float, polarity: str) -> str:
    """The Making Data Count assurance icon: whether the current process limits (the latest phase)
    mean the target will "consistently pass", "consistently fail", or be "hit and miss"."""
    if polarity not in ("higher_is_better", "lower_is_better"):
        raise ValueError("assurance needs a polarity: higher_is_better or lower_is_better")
    last = chart.iloc[-1]
    lower, upper = float(last["lower"]), float(last["upper"])
    if polarity == "higher_is_better":
        return "consistently pass" if lower > target else "consistently fail" if upper < target else "hit and miss"
    return "consistently pass" if upper < target else "consistently fail" if lower > target else "hit and miss"
