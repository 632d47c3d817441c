"""Staggered difference-in-differences against the R `did` package's published mpdta results, and
against a direct computation for the not-yet-treated control group; the naive comparison by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from openphm.evaluate import naive_before_after, staggered_did


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    # mpdta (Callaway & Sant'Anna 2021: 500 US counties, 2003-2007, teen employment), as shipped
    # with moderndid (the same data as the R did package's `data(mpdta)`)
    from moderndid import load_mpdta

    return load_mpdta().to_pandas()


@pytest.fixture(scope="module")
def fit(mpdta):
    return staggered_did(mpdta, unit="countyreal", time="year", outcome="lemp", first_treated="first.treat",
                         control_group="nevertreated", bootstrap=199, seed=3)


# did 2.x README (github.com/bcallaway11/did, `summary(att_gt(..., est_method = "reg"))`), printed
# to four decimals: (group, time) -> ATT(g,t)
PUBLISHED_GROUP_TIME = {
    (2004, 2004): -0.0105, (2004, 2005): -0.0704, (2004, 2006): -0.1373, (2004, 2007): -0.1008,
    (2006, 2004): 0.0065, (2006, 2005): -0.0028, (2006, 2006): -0.0046, (2006, 2007): -0.0412,
    (2007, 2004): 0.0305, (2007, 2005): -0.0027, (2007, 2006): -0.0311, (2007, 2007): -0.0261,
}
# the README's aggte summaries and the aggte reference page (docs/reference/aggte.md)
PUBLISHED_OVERALL = {"simple": -0.04, "dynamic": -0.0772, "group": -0.031, "calendar": -0.0417}
PUBLISHED_BY = {
    "dynamic": {-3: 0.0305, -2: -0.0006, -1: -0.0245, 0: -0.0199, 1: -0.0510, 2: -0.1373, 3: -0.1008},
    "group": {2004: -0.0797, 2006: -0.0229, 2007: -0.0261},
    "calendar": {2004: -0.0105, 2005: -0.0704, 2006: -0.0488, 2007: -0.0371},
}


def _printed(value: float, published: float) -> bool:
    """Equal to the published figure as printed: within half its last decimal, plus 1e-4."""
    decimals = len(repr(published).split(".")[1]) if "." in repr(published) else 0
    return abs(value - published) <= 0.5 * 10 ** -decimals + 1e-4


def test_group_time_effects_equal_the_published_ones(fit) -> None:
    got = {(int(r.group), int(r.time)): r.att for r in fit.group_time.itertuples()}
    assert set(got) == set(PUBLISHED_GROUP_TIME)
    for key, published in PUBLISHED_GROUP_TIME.items():
        assert abs(got[key] - published) <= 0.5e-4 + 1e-12, key
    assert fit.pretrend_p_value == pytest.approx(0.16812, abs=1e-5)  # "P-value for pre-test": 0.16812


@pytest.mark.parametrize("kind", ["simple", "dynamic", "group", "calendar"])
def test_aggregations_equal_the_published_ones(fit, kind) -> None:
    agg = fit.aggregate(kind)
    assert _printed(agg["att"], PUBLISHED_OVERALL[kind])
    assert agg["ci_low"] < agg["att"] < agg["ci_high"]
    if kind in PUBLISHED_BY:
        by = dict(zip(agg["by"]["e"].astype(int), agg["by"]["att"], strict=True))
        for e, published in PUBLISHED_BY[kind].items():
            assert abs(by[e] - published) <= 0.5e-4 + 1e-12, (kind, e)


def test_not_yet_treated_controls_equal_a_direct_computation(mpdta) -> None:
    fit = staggered_did(mpdta, unit="countyreal", time="year", outcome="lemp", first_treated="first.treat",
                        bootstrap=99, seed=1)
    wide = mpdta.pivot(index="countyreal", columns="year", values="lemp")
    g_of = mpdta.groupby("countyreal")["first.treat"].first()
    for r in fit.group_time.itertuples():
        g, t = int(r.group), int(r.time)
        base = g - 1 if t >= g else t - 1  # the "varying" base period
        change = wide[t] - wide[base]
        treated = g_of == g
        # not yet treated by the later of the two periods compared, and not of the group itself
        control = (g_of == 0) | ((g_of > max(t, base)) & (g_of != g))
        expected = change[treated].mean() - change[control].mean()
        assert r.att == pytest.approx(expected, abs=1e-10), (g, t)


def test_a_clear_error_for_an_unbalanced_panel_or_no_treated_unit(mpdta) -> None:
    with pytest.raises(ValueError, match="not balanced"):
        staggered_did(mpdta.iloc[1:], unit="countyreal", time="year", outcome="lemp", first_treated="first.treat")
    with pytest.raises(ValueError, match="no unit is ever treated"):
        staggered_did(mpdta.assign(g=0), unit="countyreal", time="year", outcome="lemp", first_treated="g")
    with pytest.raises(ValueError, match="'employment'"):
        staggered_did(mpdta, unit="countyreal", time="year", outcome="employment", first_treated="first.treat")


def test_the_naive_comparison_by_hand() -> None:
    rng = np.random.default_rng(0)
    rows = [(u, t, 10 + u + (3 if (g and t >= g) else 0) + rng.normal(0, 0.1), g)
            for u, g in [(1, 5), (2, 5), (3, 7), (4, 0)] for t in range(1, 10)]
    panel = pd.DataFrame(rows, columns=["unit", "time", "y", "g"])
    got = naive_before_after(panel, unit="unit", time="time", outcome="y", first_treated="g")
    treated = panel[panel.g > 0]
    after = treated[treated.time >= treated.g].y.mean()
    before = treated[treated.time < treated.g].y.mean()
    assert got.relative == pytest.approx(after / before - 1, rel=1e-12)
    assert got.ci_low < got.relative < got.ci_high
