"""Risk-model metrics against independent computations."""

import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from openphm.risk.metrics import auprc_with_ci, auroc_with_ci, calibration, evaluate, top_of_list


def test_auroc_is_the_share_of_correctly_ordered_pairs_with_hanley_mcneil_limits():
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.9, 0.2, 0.6])
    pairs = [(a, b) for a in p[y == 1] for b in p[y == 0]]
    by_hand = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)  # Mann-Whitney
    auc, lo, hi = auroc_with_ci(y, p)
    assert auc == pytest.approx(by_hand) == pytest.approx(0.75)
    # Hanley & McNeil 1982, eq. 2, by hand: A = 0.75, 4 with and 4 without the outcome
    q1, q2 = 0.75 / 1.25, 2 * 0.75**2 / 1.75
    se = math.sqrt((0.75 * 0.25 + 3 * (q1 - 0.5625) + 3 * (q2 - 0.5625)) / 16)
    assert (lo, hi) == pytest.approx((0.75 - 1.959964 * se, min(1.0, 0.75 + 1.959964 * se)), abs=1e-6)
    with pytest.raises(ValueError, match="both outcomes"):
        auroc_with_ci(np.zeros(5), np.linspace(0, 1, 5))


def test_calibration_against_scikit_learn_and_simulated_truth():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.6, 60_000)
    y = (rng.random(len(p)) < p).astype(int)
    good = calibration(y, p)
    assert abs(good["calibration_intercept"]) < 0.03 and abs(good["calibration_slope"] - 1) < 0.04
    # predictions that are too extreme: logit doubled, so the slope should be about 0.5
    logit = np.log(p / (1 - p))
    extreme = 1 / (1 + np.exp(-2 * logit))
    cal = calibration(y, extreme)
    reference = LogisticRegression(C=np.inf).fit((2 * logit)[:, None], y)
    assert cal["calibration_slope"] == pytest.approx(reference.coef_[0][0], abs=1e-4)
    assert cal["calibration_slope"] == pytest.approx(0.5, abs=0.03)
    assert cal["observed_to_expected"] == pytest.approx(y.sum() / extreme.sum())


def test_top_of_the_list_by_hand():
    y = np.array([1, 0, 1, 1, 0, 0, 0, 0, 0, 1] * 20)  # 200 people, 80 admitted
    p = np.linspace(1, 0, 200)  # the first people are ranked highest
    out = top_of_list(y, p)
    assert out["ppv_top_5pct"] == pytest.approx(4 / 10)  # top 10: 1,0,1,1,0,0,0,0,0,1
    assert out["sensitivity_top_5pct"] == pytest.approx(4 / 80)
    assert out["ppv_top_1pct"] == pytest.approx(1 / 2)  # top 2: 1, 0
    assert out["ppv_top_0_5pct"] == 1.0
    report = evaluate(y, p)
    assert {"auroc", "auroc_ci", "auprc", "calibration_intercept", "calibration_slope", "ppv_top_1pct",
            "sensitivity_top_5pct"} <= set(report)


def test_auprc_logit_interval_by_hand():
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    # average precision by hand: positives at ranks 1, 3, 6 with precision 1, 2/3, 3/6
    ap = (1 + 2 / 3 + 3 / 6) / 3
    got, lo, hi = auprc_with_ci(y, p)
    assert got == pytest.approx(ap)
    half = 1.959964 / math.sqrt(3 * ap * (1 - ap))
    centre = math.log(ap / (1 - ap))
    assert (lo, hi) == pytest.approx((1 / (1 + math.exp(-(centre - half))), 1 / (1 + math.exp(-(centre + half)))),
                                     abs=1e-6)


def test_fairness_by_group_against_direct_computation():
    import polars as pl

    from openphm.risk.report import fairness

    rng = np.random.default_rng(5)
    n = 4000
    p = rng.uniform(0.02, 0.5, n)
    sex = np.where(np.arange(n) % 2 == 0, "F", "M")
    # males' true risk is double the prediction: a miscalibrated group to flag
    y = (rng.random(n) < np.where(sex == "M", np.minimum(2 * p, 1), p)).astype(int)
    frame = pl.DataFrame({"sex": sex, "age": np.full(n, 50.0), "ethnic_group": ["White"] * n,
                          "imd_quintile": np.full(n, 3.0), "outcome": y})
    rows = {(r["by"], r["group"]): r for r in fairness(frame, p, auroc_with_ci(y, p)[0])}
    male = rows[("sex", "M")]
    assert male["observed_to_expected"] == pytest.approx(y[sex == "M"].sum() / p[sex == "M"].sum())
    assert male["flag"].startswith("observed/expected") and rows[("sex", "F")]["flag"] == ""
    top = p >= np.quantile(p, 0.95)
    assert male["ppv_top_5pct"] == pytest.approx(y[(sex == "M") & top].mean())
    assert male["sensitivity_top_5pct"] == pytest.approx(y[(sex == "M") & top].sum() / y[sex == "M"].sum())
