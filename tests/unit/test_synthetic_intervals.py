"""Synthetic DiD's interval on a staggered panel where the adopters trend away from the never-adopters
and nothing was done: the in-time placebo finds the trend's bias, and the interval that allows for it
covers zero more often than the placebo alone."""

import dataclasses
import datetime as dt

import numpy as np
import polars as pl

from openphm.evaluate.panel import Panel
from openphm.evaluate.run import run_synthetic
from openphm.evaluate.spec import EvaluationSpec

SPEC = EvaluationSpec(name="trend", level="practice", starts={}, outcomes=["y"], start=dt.date(2021, 4, 1),
                      end=dt.date(2025, 3, 1), bootstrap=49, placebo=20)


def _panel(seed: int, drift: float) -> Panel:
    """30 units over 48 months; 4 adopt at month 25 and 4 at month 31; none is affected, but the adopters'
    rate drifts by `drift` a month against the others' from the start."""
    rng = np.random.default_rng(seed)
    months, units = 48, 30
    first = np.array([25] * 4 + [31] * 4 + [0] * 22)
    level = rng.normal(30, 3, units)
    season = 2 * np.sin(np.arange(months) / 12 * 2 * np.pi)
    t = np.arange(1, months + 1)
    y = level[:, None] + season[None, :] + rng.normal(0, 0.8, (units, months))
    y[first > 0] += drift * t[None, :]
    return Panel(pl.DataFrame({"unit": np.repeat([f"P{i:02d}" for i in range(units)], months),
                               "t": np.tile(t, units), "first_treated": np.repeat(first, months),
                               "population": 1000.0, "y": y.ravel()}), ["y"], [])


def test_the_interval_allows_for_the_bias_the_in_time_placebo_finds():
    covered, covered_by_placebo_alone, found = 0, 0, []
    for seed in range(8):
        estimate = run_synthetic(_panel(seed, drift=-0.02), "y", dataclasses.replace(SPEC, seed=seed),
                                 "synthetic_did")
        d = estimate.diagnostics
        found.append(d["in_time_placebo_effect"])
        half = 1.959964 * d["placebo_se"]
        covered += estimate.ci_low <= 0 <= estimate.ci_high
        covered_by_placebo_alone += abs(estimate.absolute) <= half
    assert np.mean(found) < -0.1 and sum(f < 0 for f in found) >= 7  # the drift, seen before the start
    # a drift grows over the post period, longer than the in-time placebo's, so the allowance is partial:
    # it does not make the interval cover in every panel, but in clearly more than the placebo alone
    assert covered >= covered_by_placebo_alone + 2, (covered, covered_by_placebo_alone)


def test_without_a_trend_the_interval_covers_zero_and_is_not_much_wider():
    """With nothing to find, the in-time placebo is noise of the estimate's own size: the interval that
    adds it is wider (by about root 2 on average) but no wider than that would make it."""
    covered, ratios = 0, []
    for seed in range(8):
        estimate = run_synthetic(_panel(seed, drift=0.0), "y", dataclasses.replace(SPEC, seed=seed),
                                 "synthetic_did")
        d = estimate.diagnostics
        assert d["reliable_interval"]  # 22 never-adopters stand in for both cohorts at once
        covered += estimate.ci_low <= 0 <= estimate.ci_high
        ratios.append((estimate.ci_high - estimate.ci_low) / (2 * 1.959964 * d["placebo_se"]))
    assert covered >= 7
    assert np.median(ratios) < 2.5
