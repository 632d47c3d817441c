"""XmR charts and funnel plots on hand-made data with hand-computed limits."""

import numpy as np
import pytest

from openphm.variation import assurance_icon, funnel, variation_icon, xmr


def test_xmr_limits_by_hand():
    values = [10, 12, 11, 13, 12]
    chart = xmr(values)
    # mean 11.6; moving ranges 2, 1, 2, 1 -> mean 1.5; limits 11.6 +/- 2.66 * 1.5 = 3.99
    assert chart["mean"].tolist() == pytest.approx([11.6] * 5)
    assert chart["upper"][0] == pytest.approx(15.59) and chart["lower"][0] == pytest.approx(7.61)
    assert not chart["special_cause"].any()


def test_screening_drops_a_huge_moving_range_once():
    values = [10, 11, 10, 11, 10, 11, 10, 11, 10, 40]
    unscreened = xmr(values, screen_outliers=False)
    screened = xmr(values)
    # moving ranges: eight of 1 and one of 30: mean 38/9 = 4.22; 30 >= 3.267 * 4.22 so it is dropped: mean 1
    assert unscreened["upper"][0] - unscreened["mean"][0] == pytest.approx(2.66 * 38 / 9)
    assert screened["upper"][0] - screened["mean"][0] == pytest.approx(2.66 * 1.0)
    assert screened["rule"].iloc[-1] == "outside"


def test_shift_trend_and_two_in_three_with_precedence():
    base = [10, 11, 9, 10, 11, 9, 10, 11, 9, 10]
    shift = xmr(base + [10.5] * 8)
    assert (shift["rule"].iloc[-8:] == "shift").all() and not shift["special_cause"].iloc[:10].any()
    trend = xmr([*base, 9, 9.2, 9.4, 9.6, 9.8, 10.0, 10.2, *base])
    assert (trend["rule"].iloc[10:17] == "trend").all()
    # a long steady series (mean about 10.5, moving range about 1: sigma = 2.66 / 3) and then 12.7, 11,
    # 12.7: two of three points beyond two sigma above the mean, both inside the limits, and all three
    # above the mean (NHSRplotthedots counts a window only when all three are on one side)
    series = [10, 11] * 50
    chart = xmr([*series, 12.7, 11, 12.7, *series])
    mean, sigma = chart["mean"][0], (chart["upper"][0] - chart["mean"][0]) / 3
    assert mean + 2 * sigma < 12.7 < mean + 3 * sigma
    assert chart["rule"].iloc[100] == "two_in_three" and chart["rule"].iloc[102] == "two_in_three"
    assert chart["rule"].iloc[101] == ""


def test_rebasing_recalculates_from_the_change_point():
    before, after = [20, 21, 19, 20, 21, 19, 20], [15, 16, 14, 15, 16, 14, 15]
    chart = xmr(before + after, rebase_at=7)
    assert chart["mean"][0] == pytest.approx(20) and chart["mean"][7] == pytest.approx(15)
    assert not chart["special_cause"].any()
    step = xmr(before + after)
    assert step["special_cause"].iloc[7:].any()
    with pytest.raises(ValueError, match="inside the series"):
        xmr(before, rebase_at=0)


def test_funnel_for_proportions_by_hand():
    out = funnel([20, 5, 45, 30], [100, 100, 100, 100], target=0.2)
    # 0.2 +/- 1.96 * sqrt(0.2 * 0.8 / 100) = 0.2 +/- 0.0784
    assert out["lower95"][0] == pytest.approx(0.2 - 1.959964 * 0.04, abs=1e-6)
    assert out["upper998"][0] == pytest.approx(0.2 + 3.090232 * 0.04, abs=1e-6)
    assert out["flag"].tolist() == ["within", "low_998", "high_998", "high_95"]


def test_funnel_ratio_uses_exact_poisson_and_pooled_target():
    out = funnel([30, 10, 50], [25.0, 10.0, 40.0], kind="ratio")
    assert out["value"].tolist() == pytest.approx([1.2, 1.0, 1.25])
    # pooled target 90 / 75 = 1.2; for expected 25 * 1.2 = 30 the 95% Poisson quantiles are 20 and 41
    assert out["lower95"][0] == pytest.approx(20 / 25) and out["upper95"][0] == pytest.approx(41 / 25)
    with pytest.raises(ValueError, match="kind must be one of"):
        funnel([1], [2], kind="odds")


def test_overdispersion_widens_limits_as_spiegelhalter_describes():
    rng = np.random.default_rng(5)
    den = rng.integers(200, 2_000, 60).astype(float)
    true = np.clip(rng.normal(0.3, 0.05, 60), 0.01, 0.99)
    num = rng.binomial(den.astype(int), true).astype(float)
    plain = funnel(num, den)
    wide = funnel(num, den, overdispersion=True)
    assert (wide["upper95"] > plain["upper95"]).all()
    assert (plain["flag"] != "within").sum() > (wide["flag"] != "within").sum()
    # longhand: winsorised z-scores, phi, tau^2
    theta = num.sum() / den.sum()
    var = theta * (1 - theta) / den
    z = (num / den - theta) / np.sqrt(var)
    zw = np.clip(z, *np.percentile(z, [10, 90]))
    phi = np.mean(zw**2)
    w = 1 / var
    tau2 = (60 * phi - 59) / (w.sum() - (w**2).sum() / w.sum())
    assert wide["upper95"][0] == pytest.approx(theta + 1.959964 * np.sqrt(var[0] + tau2), rel=1e-6)


def test_slope_index_of_a_straight_line_and_its_gap():
    from openphm.variation import slope_index_of_inequality

    # equal populations: ranks 0.1, 0.3, 0.5, 0.7, 0.9; values fall by 10 per 0.2 of rank -> slope -50
    result = slope_index_of_inequality([100, 90, 80, 70, 60], [1000] * 5)
    assert result["sii"] == pytest.approx(50.0)
    assert result["gap"] == pytest.approx(40.0)
    assert result["lower"] == pytest.approx(50.0) and result["upper"] == pytest.approx(50.0)
    reversed_order = slope_index_of_inequality([60, 70, 80, 90, 100], [1000] * 5, most_deprived_first=False)
    assert reversed_order["sii"] == pytest.approx(50.0)


def test_slope_index_weights_groups_by_population():
    from openphm.variation import slope_index_of_inequality

    values, pops = [30.0, 22.0, 25.0, 18.0, 15.0], [5000.0, 3000.0, 4000.0, 2000.0, 1000.0]
    share = np.array(pops) / sum(pops)
    rank = np.cumsum(share) - share / 2
    slope = np.polyfit(rank, values, 1, w=np.sqrt(pops))[0]  # weighted least squares, independently
    assert slope_index_of_inequality(values, pops)["sii"] == pytest.approx(-slope)


def test_opportunity_to_the_best_quartile():
    from openphm.variation import opportunity

    out = opportunity([10, 20, 30, 40, 50], [1000] * 5, units=list("ABCDE"))
    # rates 0.01 .. 0.05; 25th centile 0.02; E would have 20 instead of 50: 30 fewer
    assert out["benchmark_rate"][0] == pytest.approx(0.02)
    assert out["opportunity"].tolist() == pytest.approx([0, 0, 10, 20, 30])
    assert "best quartile" in out.attrs["method"]
    up = opportunity([10, 20, 30, 40, 50], [1000] * 5, polarity="higher_is_better")
    assert up["opportunity"].tolist() == pytest.approx([30, 20, 10, 0, 0])


def test_variation_and_assurance_icons():
    # ten points at 10 +/- 1 then a drop to 2: the last point is outside the lower limit
    values = [10, 11, 9, 10, 11, 9, 10, 11, 9, 10, 2]
    chart = xmr(values)
    assert chart["rule"].iloc[-1] == "outside"
    assert variation_icon(chart, "lower_is_better") == "special cause improvement (low)"
    assert variation_icon(chart, "higher_is_better") == "special cause concern (low)"
    assert variation_icon(chart) == "special cause (low)"
    steady = xmr(values[:10])
    assert variation_icon(steady, "lower_is_better") == "common cause"
    # limits of the steady series: mean 10, moving ranges 1,2,1,1,2,1,1,2,1 (mean 12/9), so 6.45 to 13.55
    assert steady["lower"].iloc[0] == pytest.approx(10 - 2.66 * 12 / 9)
    assert assurance_icon(steady, 20, "lower_is_better") == "consistently pass"
    assert assurance_icon(steady, 20, "higher_is_better") == "consistently fail"
    assert assurance_icon(steady, 12, "higher_is_better") == "hit and miss"
    assert assurance_icon(steady, 4, "higher_is_better") == "consistently pass"
