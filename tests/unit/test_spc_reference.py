"""`xmr` special-cause flags against NHSRplotthedots 0.2.2 (NHS-R Community, "Making Data Count").

The reference below is a plain, loop-by-loop transcription of the rules in NHSRplotthedots 0.2.2
(`R/ptd_spc_standard.R` for limits, near limits and outlier screening; `R/ptd_calculate_point_type.R`
for `ptd_seven_point_trend`, `ptd_part_of_seven_trend`, `ptd_two_in_three`,
`ptd_part_of_two_in_three`, `ptd_seven_point_one_side_mean`, `ptd_special_cause_type` and
`ptd_point_type`; `R/ptd_add_rebase_column.R` for rebasing). Its helpers are first checked against
the expected values published in NHSRplotthedots' own tests (`tests/testthat/`), then `xmr` is
compared with it point for point on real NHS England A&E series.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd
import pytest

from openphm.variation import variation_icon, xmr

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "ae_attendances.csv"
RULE = {"Above UCL": "outside", "Below LCL": "outside", "7 Point Trend (Increasing)": "trend",
        "7 Point Trend (Decreasing)": "trend", "2 in 3 Above CL": "two_in_three", "2 in 3 Below CL": "two_in_three",
        "7 Points Above CL": "shift", "7 Points Below CL": "shift", "Common Cause": ""}


# ---- the reference: NHSRplotthedots' functions, one loop at a time ----------------------------------

def sign(v: float) -> int:
    return (v > 0) - (v < 0)


def seven_point_trend(y: list[float]) -> list[int]:
    """+1 / -1 at a point that ends 7 points each higher / lower than the one before, else 0."""
    out = [0] * len(y)
    for i in range(6, len(y)):
        steps = [sign(y[j] - y[j - 1]) for j in range(i - 5, i + 1)]
        if all(s == 1 for s in steps):
            out[i] = 1
        elif all(s == -1 for s in steps):
            out[i] = -1
    return out


def part_of_seven(ends: list[int]) -> list[int]:
    """1 where this point or one of the next six ends a run of seven."""
    return [int(any(ends[j] != 0 for j in range(i, min(i + 7, len(ends))))) for i in range(len(ends))]


def seven_one_side(rtm: list[int]) -> list[int]:
    """1 at a point that ends 7 points on the same (non-zero) side of the mean."""
    out = [0] * len(rtm)
    for i in range(6, len(rtm)):
        if rtm[i] != 0 and all(rtm[j] == rtm[i] for j in range(i - 6, i)):
            out[i] = 1
    return out


def two_in_three(close: list[int], rtm: list[int]) -> list[int]:
    """1 where some 3-point window holding the point has 2+ close points and all 3 on one side."""
    n = len(close)
    out = [0] * n
    for i in range(n):
        for start in range(i - 2, i + 1):
            if start < 0 or start + 3 > n:
                continue  # NHSRplotthedots pads with zeros: such a window never has |sum of sides| 3
            if sum(close[start:start + 3]) >= 2 and abs(sum(rtm[start:start + 3])) == 3:
                out[i] = 1
    return out


def part_of_two_in_three(flag: list[int], close: list[int]) -> list[int]:
    return [int(f == 1 and abs(c) == 1) for f, c in zip(flag, close, strict=True)]


def combine(y, rtm, part_trend, part_two, part_shift, outside) -> list[str]:
    """`ptd_special_cause_type`'s case_when, with its choice of trend direction."""
    n = len(y)
    labels = []
    for i in range(n):
        if part_trend[i] and i + 1 < n and part_trend[i + 1]:
            step = sign(y[i + 1] - y[i])  # both this and the next point in a trend: the step to the right
        else:
            step = sign(y[i] - y[i - 1]) if i > 0 else 0
        side = "Above" if rtm[i] > 0 else "Below"
        if outside[i]:
            labels.append("Above UCL" if rtm[i] == 1 else "Below LCL")
        elif part_trend[i]:
            labels.append(f"7 Point Trend ({'In' if step == 1 else 'De'}creasing)")
        elif part_two[i]:
            labels.append(f"2 in 3 {side} CL")
        elif part_shift[i]:
            labels.append(f"7 Points {side} CL")
        else:
            labels.append("Common Cause")
    return labels


def point_type(label: str, improvement_direction: int) -> str:
    v = 1 if ("Above" in label or "Increasing" in label) else -1 if ("Below" in label or "Decreasing" in label) else 0
    if improvement_direction == 0:
        return {1: "special_cause_neutral_high", -1: "special_cause_neutral_low", 0: "common_cause"}[v]
    v *= improvement_direction
    return {1: "special_cause_improvement", -1: "special_cause_concern", 0: "common_cause"}[v]


def reference(values, screen_outliers=True, rebase_at=()) -> list[str]:
    """NHSRplotthedots' special_cause_type for each point; each rebase index starts a new group."""
    values = [float(v) for v in values]
    starts = [0, *sorted(rebase_at), len(values)]
    labels: list[str] = []
    for g in range(len(starts) - 1):
        y = values[starts[g]:starts[g + 1]]
        mean = statistics.fmean(y)
        mr = [abs(y[i] - y[i - 1]) for i in range(1, len(y))]
        amr = statistics.fmean(mr) if mr else float("nan")
        if screen_outliers:
            mr = [r for r in mr if r < 3.267 * amr]
            amr = statistics.fmean(mr) if mr else float("nan")
        lpl, upl = mean - 2.66 * amr, mean + 2.66 * amr
        nlpl, nupl = mean - 2 * (2.66 / 3) * amr, mean + 2 * (2.66 / 3) * amr
        outside = [int(v > upl or v < lpl) for v in y]
        rtm = [sign(v - mean) for v in y]
        close = [int(not o and (v < nlpl or v > nupl)) for v, o in zip(y, outside, strict=True)]
        labels += combine(y, rtm, part_of_seven(seven_point_trend(y)),
                          part_of_two_in_three(two_in_three(close, rtm), close),
                          part_of_seven(seven_one_side(rtm)), outside)
    return labels


# ---- the reference's helpers reproduce NHSRplotthedots' published test values ------------------------

def test_reference_helpers_match_nhsrplotthedots_tests():
    # tests/testthat/test-ptd_calculate_point_type.R (NHSRplotthedots 0.2.2)
    assert seven_one_side([1] * 6) == [0] * 6
    assert seven_one_side([1] * 6 + [-1]) == [0] * 7
    assert seven_one_side([1] * 8 + [-1]) == [0, 0, 0, 0, 0, 0, 1, 1, 0]
    assert seven_one_side([-1] * 8 + [1]) == [0, 0, 0, 0, 0, 0, 1, 1, 0]
    assert part_of_seven([0] * 6 + [1, 0]) == [1] * 7 + [0]
    assert part_of_seven([0] * 7 + [-1, 0]) == [0] + [1] * 7 + [0]
    assert seven_point_trend([1, 2, 3, 3, 4, 5, 6]) == [0] * 7
    assert seven_point_trend(list(range(1, 8))) == [0] * 6 + [1]
    assert seven_point_trend([2, *range(1, 8), 3]) == [0] * 7 + [1, 0]
    assert seven_point_trend([2, *range(7, 0, -1), 3]) == [0] * 7 + [-1, 0]
    all_above = [1] * 7
    assert two_in_three([1, 0, 1], [1, 1, 1]) == two_in_three([0, 1, 1], [1, 1, 1]) == [1, 1, 1]
    assert two_in_three([0, 0, 1, 0, 1, 0, 0], all_above) == [0, 0, 1, 1, 1, 0, 0]
    assert two_in_three([0, 0, 1, 1, 0, 0, 0], all_above) == [0, 1, 1, 1, 1, 0, 0]
    assert two_in_three([1, 0, 1], [1, -1, 1]) == [0, 0, 0]
    assert two_in_three([0, 0, 1, 0, 1, 0, 0], [1, -1, 1, -1, 1, -1, 1]) == [0] * 7
    assert two_in_three([0, 0, 1, 1, 0, 0, 0], [-1, 1, -1, 1, -1, 1, -1]) == [0] * 7
    hv = [1, 0, 0, 1]
    assert part_of_two_in_three(two_in_three(hv, [1] * 4), hv) == [0, 0, 0, 0]
    iv = [1, 0, 0, 1, 1]
    assert part_of_two_in_three(two_in_three(iv, [1] * 5), iv) == [0, 0, 0, 1, 1]
    # "ptd_special_cause_type works as expected": the mocked parts fed straight to the case_when
    assert combine(list(range(1, 9)), [1] * 4 + [-1] * 4, [1, -1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0, 0],
                   [0, 0, 1, -1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, -1, 0]) == [
        "7 Point Trend (Increasing)", "7 Point Trend (Increasing)", "7 Points Above CL", "7 Points Above CL",
        "2 in 3 Below CL", "Below LCL", "Below LCL", "Common Cause"]


# ---- hand-worked series from NHSRplotthedots' tests -----------------------------------------------

# set.seed(123); rnorm(20): the data of tests/testthat/test-ptd_spc_standard.R and test-ptd_spc.R
RNORM = [-0.56047565, -0.23017749, 1.55870831, 0.07050839, 0.12928774, 1.71506499, 0.46091621, -1.26506123,
         -0.68685285, -0.44566197, 1.22408180, 0.35981383, 0.40077145, 0.11068272, -0.55584113, 1.78691314,
         0.49785048, -1.96661716, 0.70135590, -0.47279140]


def test_published_limits_and_point_types():
    # tests/testthat/_snaps/ptd_spc_standard.md and _snaps/ptd_spc.md: mean 0.1416238, limits -3.01138 to
    # 3.294627, and all 20 points common cause (summary: common_cause 20)
    chart = xmr(RNORM, polarity="higher_is_better")
    assert chart["mean"][0] == pytest.approx(0.1416238, abs=1e-7)
    assert chart["lower"][0] == pytest.approx(-3.01138, abs=1e-5)
    assert chart["upper"][0] == pytest.approx(3.294627, abs=1e-6)
    assert (chart["point_type"] == "common_cause").all()
    # the same data with y[15] = 10: limits with and without screening the moving ranges
    spiked = [*RNORM[:14], 10.0, *RNORM[15:]]
    screened, unscreened = xmr(spiked), xmr(spiked, screen_outliers=False)
    assert (screened["mean"][0], screened["lower"][0], screened["upper"][0]) == pytest.approx(
        (0.6694159, -2.383666, 3.722497), abs=1e-6)
    assert (unscreened["lower"][0], unscreened["upper"][0]) == pytest.approx((-4.596625, 5.935457), abs=1e-6)
    # faceted at 10 points each: two groups, each common cause throughout
    for half, expected in ((RNORM[:10], (0.0746, -2.60, 2.75)), (RNORM[10:], (0.209, -3.28, 3.70))):
        chart = xmr(half)
        assert (chart["mean"][0], chart["lower"][0], chart["upper"][0]) == pytest.approx(expected, abs=6e-3)
        assert not chart["special_cause"].any()
    # test-ptd_spc_standard.R: "it only reports special cause for 2of3 points close to limits when they
    # are on the same side of the mean": 1, -1, ... with points 15 and 16 set to 5.5 and -5.5
    symmetric = [1.0, -1.0] * 8
    symmetric[14], symmetric[15] = 5.5, -5.5
    chart = xmr(symmetric, polarity="higher_is_better")
    assert chart["point_type"].tail(2).tolist() == ["common_cause", "common_cause"]
    # both are beyond two sigma (mean 0, screened mean moving range 32.5 / 14), inside the limits
    assert 2 * 2.66 / 3 * 32.5 / 14 < 5.5 < chart["upper"][0]
    # the trend vectors of test-ptd_calculate_point_type.R as series: 2, 1..7, 3 and 2, 7..1, 3
    up, down = xmr([2, *range(1, 8), 3]), xmr([2, *range(7, 0, -1), 3])
    assert up["rule"].tolist() == down["rule"].tolist() == [""] + ["trend"] * 7 + [""]
    assert up["point_type"].iloc[1:8].eq("special_cause_neutral_high").all()
    assert down["point_type"].iloc[1:8].eq("special_cause_neutral_low").all()


# ---- cases that the previous rules got wrong -----------------------------------------------------

STEADY = [10.0, 11.0] * 20  # mean 10.5, moving ranges 1: near limits about +/- 1.8, process limits +/- 2.7


def test_two_in_three_needs_all_three_points_on_one_side_of_the_mean():
    # 12.6 and 12.6 are beyond two sigma above the mean, but the point between them is below it
    chart = xmr([*STEADY, 12.6, 10.0, 12.6, *STEADY])
    mean, upper = chart["mean"][0], chart["upper"][0]
    near = mean + 2 * (upper - mean) / 3
    assert near < 12.6 < upper and mean > 10.0
    assert chart["rule"].iloc[40:43].tolist() == ["", "", ""]
    assert not chart["special_cause"].any()
    assert reference([*STEADY, 12.6, 10.0, 12.6, *STEADY]) == ["Common Cause"] * 83
    # with the middle point above the mean the window counts, and only the two near points are flagged
    chart = xmr([*STEADY, 12.6, 11.0, 12.6, *STEADY])
    assert chart["rule"].iloc[40:43].tolist() == ["two_in_three", "", "two_in_three"]


def test_points_beyond_the_limits_do_not_count_towards_two_in_three():
    # 12.6 (near) next to 20 (outside) on the same side: one near point in the window is not enough
    chart = xmr([*STEADY, 12.6, 20.0, 11.0, *STEADY])
    assert chart["rule"].iloc[40:43].tolist() == ["", "outside", ""]
    chart = xmr([*STEADY, 12.6, 20.0, 12.6, *STEADY])  # two near points and an outside one between
    assert chart["rule"].iloc[40:43].tolist() == ["two_in_three", "outside", "two_in_three"]


def test_the_side_of_a_trend_is_its_direction_and_a_shared_point_takes_the_step_to_its_right():
    # a rise of 7 then a fall of 7 sharing the peak, all inside wide limits (the 0 / 9 swings around them)
    hill = [0, 9, 0, 9, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4, 3, 2, 1, 9, 0, 9, 0]
    chart = xmr(hill)
    assert chart["rule"].iloc[4:17].eq("trend").all() and not chart["rule"].eq("outside").any()
    assert chart["side"].iloc[4:10].eq(1).all() and chart["side"].iloc[10:17].eq(-1).all()  # the peak: falling
    # the rising points 1..4 are below the mean: the side is the trend's direction, not the side of the mean
    assert (chart["value"].iloc[4:8] < chart["mean"].iloc[4:8]).all()
    # and so for the icon: a rise from 0 to 7 after swings up to 30 ends below the mean, yet is rising
    rising = xmr([30, 0, 30, 0, 30, 0, 1, 2, 3, 4, 5, 6, 7])
    assert rising["rule"].iloc[-1] == "trend" and rising["value"].iloc[-1] < rising["mean"].iloc[-1]
    assert variation_icon(rising, "higher_is_better") == "special cause improvement (high)"
    assert variation_icon(rising, "lower_is_better") == "special cause concern (high)"
    # a flat step between a rise of 7 and a fall of 7: NHSRplotthedots labels the top of the rise
    # "decreasing" (the step to its right is 0)
    flat = [0, 9, 0, 9, 1, 2, 3, 4, 5, 6, 7, 7, 6, 5, 4, 3, 2, 1, 9, 0, 9, 0]
    labels = reference(flat)
    assert labels[10] == "7 Point Trend (Decreasing)" and labels[9] == "7 Point Trend (Increasing)"
    assert xmr(flat)["side"].iloc[10] == -1 and xmr(flat)["point_type"].iloc[10] == "special_cause_neutral_low"
    for series in (hill, flat):
        assert xmr(series)["rule"].tolist() == [RULE[label] for label in reference(series)]


# ---- real data: NHS England A&E attendances and 4-hour breaches, 2016-2019 --------------------------

def ae_series() -> list[tuple[str, list[float], int]]:
    """(name, values, improvement direction): per trust, breaches (lower is better) and 4-hour
    performance (higher is better); per trust and department type, breaches."""
    raw = pd.read_csv(DATA, dtype={"type": str})
    out = []
    trusts = raw.groupby(["org_code", "period"], as_index=False)[["attendances", "breaches"]].sum()
    for org, s in trusts.sort_values("period").groupby("org_code"):
        s = s[s["attendances"] > 0]
        if len(s) >= 12:
            out.append((f"{org} breaches", s["breaches"].tolist(), -1))
            out.append((f"{org} 4-hour %", (100 * (1 - s["breaches"] / s["attendances"])).tolist(), 1))
    for (org, kind), s in raw.sort_values("period").groupby(["org_code", "type"]):
        if kind != "2" and len(s) >= 12 and s["breaches"].nunique() > 1:
            out.append((f"{org} type {kind} breaches", s["breaches"].astype(float).tolist(), -1))
    return out


SERIES = ae_series()
POLARITY = {1: "higher_is_better", -1: "lower_is_better", 0: "no_judgement"}


@pytest.mark.parametrize("screen", [True, False], ids=["screened", "unscreened"])
@pytest.mark.parametrize("rebase", ["none", "middle", "thirds"])
def test_every_point_of_the_ae_series_matches_the_reference(screen, rebase):
    assert len(SERIES) > 400
    counts: dict[str, int] = {}
    mismatches = []
    for name, values, direction in SERIES:
        n = len(values)
        breaks = {"none": [], "middle": [n // 2], "thirds": [n // 3, 2 * n // 3]}[rebase]
        expected = reference(values, screen, breaks)
        chart = xmr(values, screen_outliers=screen, rebase_at=breaks, polarity=POLARITY[direction])
        rules = [RULE[label] for label in expected]
        types = [point_type(label, direction) for label in expected]
        if chart["rule"].tolist() != rules or chart["point_type"].tolist() != types:
            mismatches.append(name)
        if xmr(values, screen_outliers=screen, rebase_at=breaks)["point_type"].tolist() != [
                point_type(label, 0) for label in expected]:
            mismatches.append(f"{name} (neutral)")
        for rule in rules:
            counts[rule] = counts.get(rule, 0) + 1
    assert mismatches == []
    # the comparison exercises every rule, many times
    assert all(counts.get(rule, 0) >= 50 for rule in ("outside", "trend", "two_in_three", "shift")), counts


def test_the_ae_series_include_points_the_old_two_in_three_rule_flagged():
    # points beyond two sigma whose 3-point windows are spoiled by a point across the mean or beyond the
    # limits: the reference leaves them common cause, and so must xmr
    spoiled = 0
    for _, values, _ in SERIES:
        labels = reference(values)
        chart = xmr(values)
        mean, upper = chart["mean"].to_numpy(), chart["upper"].to_numpy()
        near = (abs(chart["value"] - mean) > 2 * (upper - mean) / 3) & (abs(chart["value"] - mean) <= upper - mean)
        for i in range(len(values)):
            if near.iloc[i] and labels[i] == "Common Cause":
                window = range(max(0, i - 2), min(len(values), i + 3))
                if sum(bool(near.iloc[j]) and (values[j] > mean[j]) == (values[i] > mean[i]) for j in window) >= 2:
                    spoiled += 1
                    assert not chart["special_cause"].iloc[i]
    assert spoiled >= 20
