"""Indicator results as published to roles without direct care, hand-worked: every value and limit
agrees with the protected counts, by each standardisation."""

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from openphm.measures.definitions import load_measures
from openphm.measures.published import published_results
from openphm.stats import ESP2013, dsr

MEASURES = load_measures()


def _rows(units: list[tuple[str, str, float, float, float | None, float | None, float | None]]) -> pl.DataFrame:
    """level, unit, numerator, denominator, value, lower95, upper95 (the 99.8% limits copy the 95%)."""
    frame = pl.DataFrame(units, schema=["level", "unit", "numerator", "denominator", "value", "lower95", "upper95"],
                         orient="row")
    return frame.with_columns(pl.lit("2024-25").alias("period"), pl.col("lower95").alias("lower998"),
                              pl.col("upper95").alias("upper998"))


def _wilson(x: float, n: float, z: float) -> tuple[float, float]:
    centre, half = (x + z * z / 2) / (n + z * z), z * math.sqrt(x * (n - x) / n + z * z / 4) / (n + z * z)
    return centre - half, centre + half


def test_a_crude_proportion_is_recomputed_from_the_rounded_counts():
    rows = _rows([("practice", "A", 13, 101, 12.87, 7.7, 20.8), ("practice", "B", 5, 240, 2.08, 0.9, 4.8),
                  ("practice", "C", 9, 212, 4.25, 2.2, 7.9), ("practice", "D", 0, 90, 0.0, 0.0, 4.1)])
    got = published_results(rows, MEASURES["prevalence_diabetes"]).rows_by_key("unit", named=True, unique=True)
    a = got["A"]
    assert (a["numerator"], a["denominator"]) == (15, 100)
    assert a["value"] == pytest.approx(15.0)
    z95, z998 = stats.norm.ppf(0.975), stats.norm.ppf(0.999)
    assert (a["lower95"], a["upper95"]) == pytest.approx(tuple(100 * v for v in _wilson(15, 100, z95)), rel=1e-9)
    assert (a["lower998"], a["upper998"]) == pytest.approx(tuple(100 * v for v in _wilson(15, 100, z998)), rel=1e-9)
    # B's 5 is redacted, with its value and limits; C (the next smallest non-zero numerator in the period)
    # goes too, so B cannot be had from the ICS total; D's zero stays
    for unit in ("B", "C"):
        assert got[unit]["numerator"] is None and got[unit]["value"] is None and got[unit]["upper95"] is None
    assert got["C"]["denominator"] == 210
    assert (got["D"]["numerator"], got["D"]["value"]) == (0, 0.0)


def test_a_crude_rate_uses_its_count_limits():
    rows = _rows([("practice", "A", 52, 3998, 13.0, 9.7, 17.1), ("practice", "B", 120, 5003, 23.98, 19.9, 28.7)])
    a = published_results(rows, MEASURES["ae_attendances"]).row(0, named=True)
    o = 50  # Byar's limits of the rounded count, over the rounded population, per 1,000
    z = stats.norm.ppf(0.975)
    lower = o * (1 - 1 / (9 * o) - z / (3 * math.sqrt(o))) ** 3
    upper = (o + 1) * (1 - 1 / (9 * (o + 1)) + z / (3 * math.sqrt(o + 1))) ** 3
    assert a["value"] == pytest.approx(1000 * 50 / 4000)
    assert (a["lower95"], a["upper95"]) == pytest.approx((1000 * lower / 4000, 1000 * upper / 4000), rel=1e-9)


def test_a_directly_standardised_rate_keeps_its_value_and_takes_dobson_limits_of_the_rounded_count():
    rng = np.random.default_rng(3)
    bands = list(ESP2013)
    strata = pl.DataFrame({"ageband": bands, "population": rng.integers(200, 900, len(bands)).astype(float),
                           "count": rng.integers(0, 6, len(bands)).astype(float)})
    exact = dsr(strata, per=100_000).row(0, named=True)
    o = int(exact["count"])
    rows = _rows([("practice", "A", o, float(strata["population"].sum()), exact["value"], exact["lower"],
                   exact["upper"])])
    got = published_results(rows, MEASURES["emergency_admissions_dsr"]).row(0, named=True)
    shown = 5 * round(o / 5)
    assert got["numerator"] == shown and shown != o
    assert got["value"] == pytest.approx(round(exact["value"], 1))
    # Dobson by hand: var = sum(w^2 o_i / n_i^2) / (sum w)^2, step sqrt(var / O), limits of the shown count
    w = np.array([ESP2013[b] for b in bands], dtype=float)
    var = float((w ** 2 * strata["count"].to_numpy() / strata["population"].to_numpy() ** 2).sum() / w.sum() ** 2)
    step = math.sqrt(var / o) * 100_000
    z = stats.norm.ppf(0.975)
    lower = shown * (1 - 1 / (9 * shown) - z / (3 * math.sqrt(shown))) ** 3
    upper = (shown + 1) * (1 - 1 / (9 * (shown + 1)) + z / (3 * math.sqrt(shown + 1))) ** 3
    assert got["lower95"] == pytest.approx(exact["value"] + step * (lower - shown), abs=0.06)
    assert got["upper95"] == pytest.approx(exact["value"] + step * (upper - shown), abs=0.06)


def test_a_small_standardised_count_is_redacted_with_its_rate():
    rows = _rows([("practice", "A", 6, 900, None, None, None), ("practice", "B", 30, 800, 3100.2, 2000.0, 4500.0),
                  ("practice", "C", 300, 8000, 3500.0, 3100.0, 3900.0)])
    got = published_results(rows, MEASURES["emergency_admissions_dsr"]).rows_by_key("unit", named=True, unique=True)
    assert got["A"]["numerator"] is None and got["A"]["value"] is None
    assert got["B"]["numerator"] is None and got["B"]["value"] is None and got["B"]["lower95"] is None
    assert got["C"]["value"] == 3500.0 and got["C"]["numerator"] == 300


def test_an_indirectly_standardised_ratio_is_the_rounded_observed_over_the_expected():
    rows = _rows([("practice", "A", 23, 19.3712, 118.7, 75.3, 178.2)])
    got = published_results(rows, MEASURES["emergency_admissions_sar"]).row(0, named=True)
    assert got["numerator"] == 25 and got["denominator"] == 19.4
    z = stats.norm.ppf(0.975)
    lower = 25 * (1 - 1 / (9 * 25) - z / (3 * math.sqrt(25))) ** 3
    assert got["value"] == pytest.approx(round(100 * 25 / 19.4, 1))  # over the expected as shown
    assert got["lower95"] == pytest.approx(round(100 * lower / 19.4, 1))


def test_no_count_leaves_small_or_unrounded_for_any_indicator():
    rng = np.random.default_rng(11)
    n = 60
    rows = _rows([("practice", f"P{i}", float(rng.integers(0, 40)), float(rng.integers(40, 400)), 1.0, 0.5, 2.0)
                  for i in range(n)])
    for m in MEASURES.values():
        got = published_results(rows, m)
        assert got.height == n
        counts = got["numerator"].drop_nulls().to_list()
        assert all(c == 0 or (c >= 10 and c % 5 == 0) for c in counts), m.id
        # a value is shown only where its counts are
        assert got.filter(pl.col("numerator").is_null() & pl.col("value").is_not_null()).height == 0, m.id
