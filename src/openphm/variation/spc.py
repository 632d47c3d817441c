"""XmR (individuals and moving range) charts with the NHS "Making Data Count" rules, flagging
special cause exactly as NHSRplotthedots 0.2.2 (NHS-R Community; `R/ptd_spc_standard.R` and
`R/ptd_calculate_point_type.R`) does, point for point.

Each phase (the whole series, or the stretches between `rebase_at` points) is worked out on its
own. Its mean is the mean of its values; its mean moving range the mean of the absolute
differences between consecutive values. With `screen_outliers`, moving ranges of 3.267 times
that mean or more (3.267 = D4 for ranges of two) are dropped once and the mean moving range is
recomputed. Process limits are mean +/- 2.66 x mean moving range (2.66 = 3 / d2, d2 = 1.128);
"near" limits (two sigma) are mean +/- 2 x (2.66 / 3) x mean moving range.

Rules, all within a phase (NHS England / NHS Improvement, "Making Data Count: Strengthening your
decisions", 2019, as coded by NHSRplotthedots):

- "outside": a point above the upper or below the lower process limit.
- "trend": every point of 7 or more consecutive points each strictly higher (or each strictly
  lower) than the one before; an equal value breaks the run.
- "two_in_three": a point beyond a near limit but inside the process limits, in some window of 3
  consecutive points of which at least 2 are such points and all 3 lie strictly on the same side
  of the mean. Points beyond the process limits do not count towards the 2, a point on the other
  side of the mean (or on it) spoils the window, and only the near-limit points are flagged.
- "shift": every point of 7 or more consecutive points strictly on the same side of the mean (a
  point on the mean breaks the run).

A point carries the first rule of that list that it meets. Its `side` is +1 (high) or -1 (low):
for "outside", "two_in_three" and "shift" the side of the mean it lies on; for "trend" the
direction of the trend, taken from the step to the next point when that point is also part of a
trend and otherwise from the step from the previous point (a flat step counts as decreasing, as
in NHSRplotthedots). `point_type` then follows NHSRplotthedots: "special_cause_improvement" or
"special_cause_concern" given a polarity, "special_cause_neutral_high" / "_low" without one, and
"common_cause" for points no rule flags.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

RUN = 7
LIMIT_FACTOR = 2.66
NEAR_FACTOR = 2 * (LIMIT_FACTOR / 3)
SCREEN_FACTOR = 3.267
DIRECTIONS = {"higher_is_better": 1, "lower_is_better": -1, "no_judgement": 0}


def _mean(x: np.ndarray) -> float:
    return math.fsum(x) / len(x)


def _phase_limits(x: np.ndarray, screen: bool) -> tuple[float, float]:
    """The phase's mean and mean moving range (after screening, if asked)."""
    mean = _mean(x)
    if len(x) < 2:
        return mean, 0.0
    mr = np.abs(np.diff(x))
    mr_bar = _mean(mr)
    if screen:
        kept = mr[mr < SCREEN_FACTOR * mr_bar]
        mr_bar = _mean(kept) if len(kept) else 0.0  # none kept only when every range is 0
    return mean, mr_bar


def _members(starts: np.ndarray, width: int, n: int) -> np.ndarray:
    """Points covered by some window of `width` points whose start is marked in `starts`."""
    if len(starts) == 0:
        return np.zeros(n, dtype=bool)
    return np.convolve(starts.astype(int), np.ones(width, dtype=int))[:n] > 0


def _windows(mask: np.ndarray, width: int) -> np.ndarray:
    """For each window start, whether all `width` values from there are True."""
    if len(mask) < width:
        return np.zeros(0, dtype=bool)
    return sliding_window_view(mask, width).all(axis=1)


def _phase_rules(y: np.ndarray, mean: float, mr_bar: float) -> tuple[np.ndarray, np.ndarray]:
    """Rule label and side (+1 high / increasing, -1 low / decreasing, 0 none) of each point."""
    n = len(y)
    upper, lower = mean + LIMIT_FACTOR * mr_bar, mean - LIMIT_FACTOR * mr_bar
    near_upper, near_lower = mean + NEAR_FACTOR * mr_bar, mean - NEAR_FACTOR * mr_bar
    rel = np.sign(y - mean)
    outside = (y > upper) | (y < lower)
    near = ~outside & ((y > near_upper) | (y < near_lower))
    step = np.sign(np.diff(y))
    trend = _members(_windows(step > 0, RUN - 1) | _windows(step < 0, RUN - 1), RUN, n)
    shift = _members(_windows(rel > 0, RUN) | _windows(rel < 0, RUN), RUN, n)
    if n >= 3:
        near_count = sliding_window_view(near, 3).sum(axis=1)
        same_side = np.abs(sliding_window_view(rel, 3).sum(axis=1)) == 3
        two_in_three = near & _members((near_count >= 2) & same_side, 3, n)
    else:
        two_in_three = np.zeros(n, dtype=bool)
    rule = np.select([outside, trend, two_in_three, shift], ["outside", "trend", "two_in_three", "shift"], "")
    both = trend & np.r_[trend[1:], False]
    trend_step = np.where(both, np.r_[step, 0.0], np.r_[0.0, step])
    side = np.where(rule == "", 0, np.where(rule == "trend", np.where(trend_step == 1, 1, -1),
                                            np.where(rel > 0, 1, -1)))
    return rule, side


def xmr(values: Iterable[float], screen_outliers: bool = True,
        rebase_at: Sequence[int] | int | None = None, polarity: str = "no_judgement") -> pd.DataFrame:
    """One row per point: value, mean, lower, upper (process limits), rule, special_cause, side
    and point_type (see the module docstring; `polarity` only changes point_type)."""
    x = np.asarray(list(values), dtype=float)
    if len(x) < 2:
        raise ValueError("an XmR chart needs at least two points")
    if np.isnan(x).any():
        raise ValueError("values must not contain missing points")
    if polarity not in DIRECTIONS:
        raise ValueError(f"polarity must be one of {', '.join(DIRECTIONS)} (got {polarity!r})")
    breaks = [rebase_at] if isinstance(rebase_at, int) else list(rebase_at or [])
    if any(not 0 < b < len(x) for b in breaks):
        raise ValueError(f"rebase points must fall inside the series (1 to {len(x) - 1})")
    edges = [0, *sorted(set(breaks)), len(x)]
    mean, mr_bar = np.empty(len(x)), np.empty(len(x))
    rule, side = np.empty(len(x), dtype=object), np.zeros(len(x), dtype=int)
    for a, b in itertools.pairwise(edges):
        m, r = _phase_limits(x[a:b], screen_outliers)
        mean[a:b], mr_bar[a:b] = m, r
        rule[a:b], side[a:b] = _phase_rules(x[a:b], m, r)
    rule = rule.astype(str)
    direction = DIRECTIONS[polarity]
    if direction:
        kind = np.where(side * direction > 0, "special_cause_improvement", "special_cause_concern")
    else:
        kind = np.where(side > 0, "special_cause_neutral_high", "special_cause_neutral_low")
    return pd.DataFrame({"value": x, "mean": mean, "lower": mean - LIMIT_FACTOR * mr_bar,
                         "upper": mean + LIMIT_FACTOR * mr_bar, "rule": rule, "special_cause": rule != "",
                         "side": side, "point_type": np.where(side == 0, "common_cause", kind)})


def variation_icon(chart: pd.DataFrame, polarity: str = "no_judgement") -> str:
    """The Making Data Count variation icon for an XmR chart, from its latest point: "common cause",
    or "special cause" with "improvement" or "concern" (or "neither" without a polarity) and
    "high" or "low" (for a trend, increasing or decreasing, as NHSRplotthedots)."""
    last = chart.iloc[-1]
    if not last["special_cause"]:
        return "common cause"
    high = last["side"] > 0 if "side" in chart.columns else last["value"] > last["mean"]
    side = "high" if high else "low"
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
