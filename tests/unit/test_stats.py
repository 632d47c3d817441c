"""openphm.stats against published worked examples and independent recomputation."""

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats as sps

from openphm.stats import ESP2013, byar_limits, dsr, isr, mean_ci, poisson_exact_limits, rate, wilson


@pytest.mark.parametrize("num, den, lower, upper", [
    # Newcombe RG, Stat Med 1998;17:857-72, Table II, method 3 (Wilson score, no continuity correction)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_newcombe(num, den, lower, upper):
    p, lo, hi = wilson(num, den)
    assert p == pytest.approx(num / den)
    assert lo == pytest.approx(lower, abs=6e-5) and hi == pytest.approx(upper, abs=6e-5)


def test_wilson_998_is_wider_and_errors_are_clear():
    _, lo95, hi95 = wilson(30, 100)
    _, lo998, hi998 = wilson(30, 100, confidence=0.998)
    assert lo998 < lo95 and hi998 > hi95
    with pytest.raises(ValueError, match="denominator must be positive"):
        wilson(0, 0)
    with pytest.raises(ValueError, match="between 0 and the denominator"):
        wilson(5, 4)


@pytest.mark.parametrize("count, lower, upper", [
    # exact 95% Poisson limits, as tabulated (e.g. Documenta Geigy; PHE technical guide tables)
    (0, 0.0, 3.689), (1, 0.0253, 5.572), (5, 1.6235, 11.668), (9, 4.1150, 17.085),
])
def test_exact_poisson_limits(count, lower, upper):
    lo, hi = poisson_exact_limits(count)
    assert lo == pytest.approx(lower, abs=6e-4) and hi == pytest.approx(upper, abs=6e-3)


@pytest.mark.parametrize("count", [10, 11, 25, 100, 1_000, 50_000])
def test_byar_is_close_to_exact_from_ten(count):
    # independent: exact limits from the gamma distribution rather than chi-squared
    exact_lo = sps.gamma.ppf(0.025, count)
    exact_hi = sps.gamma.ppf(0.975, count + 1)
    lo, hi = byar_limits(count)
    assert lo == pytest.approx(exact_lo, rel=3e-3) and hi == pytest.approx(exact_hi, rel=3e-3)


def test_rate_switches_method_at_ten_and_handles_zero():
    r, lo, hi = rate(0, 20_000)
    assert r == 0 and lo == 0 and hi == pytest.approx(3.689 / 20_000 * 100_000, rel=1e-3)
    _, lo9, _ = rate(9, 1_000, per=1_000)
    assert lo9 == pytest.approx(poisson_exact_limits(9)[0])
    _, lo10, hi10 = rate(10, 1_000, per=1_000)
    assert (lo10, hi10) == pytest.approx(byar_limits(10))
    assert lo10 == pytest.approx(4.787, abs=2e-3) and hi10 == pytest.approx(18.392, abs=2e-3)
    with pytest.raises(ValueError, match="denominator must be positive"):
        rate(3, 0)


def _independent_dsr(counts, pops, weights, z=1.959963984540054):
    """Dobson's method written out longhand."""
    total_w = sum(weights)
    value = sum(w * o / n for o, n, w in zip(counts, pops, weights, strict=True)) / total_w
    var = sum(w * w * o / (n * n) for o, n, w in zip(counts, pops, weights, strict=True)) / total_w**2
    o = sum(counts)
    o_lo = sps.chi2.ppf(0.025, 2 * o) / 2 if o < 10 else o * (1 - 1 / (9 * o) - z / (3 * math.sqrt(o))) ** 3
    o_hi = (sps.chi2.ppf(0.975, 2 * o + 2) / 2 if o < 10
            else (o + 1) * (1 - 1 / (9 * (o + 1)) + z / (3 * math.sqrt(o + 1))) ** 3)
    k = math.sqrt(var / o)
    return value * 1e5, (value + k * (o_lo - o)) * 1e5, (value + k * (o_hi - o)) * 1e5


def test_dsr_matches_longhand_dobson_for_two_areas():
    rng = np.random.default_rng(3)
    bands = list(ESP2013)
    rows = []
    for area in ("A", "B"):
        for band in bands:
            pop = int(rng.integers(2_000, 9_000))
            rows.append({"area": area, "ageband": band, "count": int(rng.poisson(pop * 0.01)), "population": pop})
    frame = pd.DataFrame(rows)
    out = dsr(frame, by="area")
    assert isinstance(out, pd.DataFrame)
    for area in ("A", "B"):
        sub = frame[frame["area"] == area]
        expected = _independent_dsr(sub["count"].tolist(), sub["population"].tolist(),
                                    [ESP2013[b] for b in sub["ageband"]])
        got = out[out["area"] == area][["value", "lower", "upper"]].iloc[0].tolist()
        assert got == pytest.approx(expected, rel=1e-9)


def test_dsr_of_a_uniform_rate_is_that_rate_and_small_counts_are_not_computed():
    frame = pl.DataFrame({"ageband": list(ESP2013), "count": [50] * 19, "population": [10_000] * 19})
    out = dsr(frame, per=1_000)
    assert out["value"][0] == pytest.approx(5.0)
    small = pl.DataFrame({"ageband": ["0-4", "90+"], "count": [4, 5], "population": [1_000, 1_000]})
    assert math.isnan(dsr(small)["value"][0])
    custom = frame.with_columns(pl.lit(1.0).alias("flat"))
    assert dsr(custom, standard="flat", per=1_000)["value"][0] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="positive population"):
        dsr(frame.with_columns(pl.lit(0).alias("population")))
    with pytest.raises(ValueError, match="unknown age bands"):
        dsr(frame.with_columns(pl.lit("0-9").alias("ageband")))


def test_isr_uses_exact_limits_below_ten_and_byar_from_ten():
    frame = pl.DataFrame({"g": ["x", "x", "y"], "observed": [12, 18, 6], "expected": [10.0, 15.0, 4.0]})
    out = isr(frame, by="g").sort("g")
    assert out["value"].to_list() == pytest.approx([30 / 25, 6 / 4])
    lo, hi = byar_limits(30)
    assert out.row(0, named=True)["lower"] == pytest.approx(lo / 25)
    assert out.row(0, named=True)["upper"] == pytest.approx(hi / 25)
    lo6, hi6 = poisson_exact_limits(6)
    assert (out.row(1, named=True)["lower"], out.row(1, named=True)["upper"]) == pytest.approx((lo6 / 4, hi6 / 4))


def test_mean_ci_students_t():
    m, lo, hi = mean_ci(range(1, 11))
    # mean 5.5, s = 3.02765, t(0.975, 9) = 2.262157
    assert (m, lo, hi) == pytest.approx((5.5, 3.33415, 7.66585), abs=1e-4)
    with pytest.raises(ValueError, match="at least two values"):
        mean_ci([4.0])
