"""The capitation model's fair-share budgets against a plain pandas and statsmodels recomputation, and
its chance limits against simulation."""

import numpy as np
import pandas as pd
import polars as pl
import pytest
import statsmodels.formula.api as smf

from openphm.derive.features import CONDITIONS
from openphm.domain import age_band_value
from openphm.finance.budgets import fair_shares, fit_capitation


def _people(seed: int, n: int = 6000) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 100, n)
    sex = rng.choice(["F", "M"], n)
    imd = rng.integers(1, 6, n)
    efi = np.clip(rng.gamma(1.0, 0.06, n) * (age / 60), 0, 0.9)
    care_home = (age > 80) & (rng.random(n) < 0.08)
    flags = {f"has_{c}": (rng.random(n) < 0.02 + 0.2 * (age / 100) * (k % 3 == 0)).astype(float)
             for k, c in enumerate(CONDITIONS)}
    mean = 200 + 25 * age + 800 * (imd == 1) + 3000 * care_home + 5000 * efi + 600 * sum(flags.values())
    cost = rng.gamma(0.4, mean / 0.4)  # skewed, like care costs
    practice = rng.choice([f"P{i:02d}" for i in range(12)], n)
    return pl.DataFrame({"sex": sex, "age": age.astype(float), "age_band": [age_band_value(int(a)) for a in age],
                         "imd_quintile": imd.astype(float), "efi": efi, "care_home_resident": care_home.astype(float),
                         **flags, "cost": cost, "practice_code": practice,
                         "pcn_code": [f"N{int(p[1:]) // 4}" for p in practice], "place_code": "X"})


def _efi_band(efi: pd.Series) -> pd.Series:
    return pd.cut(efi, [-np.inf, 0.12, 0.24, 0.36, np.inf], labels=["fit", "mild", "moderate", "severe"])


def test_practice_budgets_equal_a_plain_pandas_recomputation():
    fit_frame, budget_frame = _people(1), _people(2)
    model = fit_capitation(fit_frame, "2023-24")
    ours = fair_shares(budget_frame, model)["levels"]["practice"]["units"].to_pandas().set_index("unit")

    def prepared(frame: pl.DataFrame) -> pd.DataFrame:
        d = frame.to_pandas()
        d["age_sex"] = d["sex"] + ":" + d["age_band"]
        d["efi_band"] = _efi_band(d["efi"]).astype(str)
        d["imd"] = d["imd_quintile"].astype(int).astype(str)
        return d

    train, apply = prepared(fit_frame), prepared(budget_frame)
    terms = " + ".join(f"has_{c}" for c in CONDITIONS)
    formula = (f"cost ~ C(age_sex, Treatment('F:40-44')) + C(imd, Treatment('5')) + {terms} "
               "+ C(efi_band, Treatment('fit')) + care_home_resident")
    fitted = smf.ols(formula, data=train).fit()
    predicted = fitted.predict(apply)
    scale = apply["cost"].sum() / predicted.sum()
    expected = (apply.assign(fair=predicted * scale).groupby("practice_code")
                .agg(fair=("fair", "sum"), actual=("cost", "sum"), people=("cost", "size")))
    assert list(ours.index) == list(expected.index)
    np.testing.assert_allclose(ours["fair_share"], expected["fair"], rtol=1e-8)
    np.testing.assert_allclose(ours["actual_spend"], expected["actual"], rtol=1e-12)
    assert ours["fair_share"].sum() == pytest.approx(apply["cost"].sum(), rel=1e-9)
    assert (ours["people"] == expected["people"]).all()
    assert model.r2_person == pytest.approx(fitted.rsquared, abs=1e-9)


def test_chance_limits_hold_when_spend_follows_the_model():
    """Budget-year spend drawn from the fitted population's own process: about 5% of practices should be
    flagged beyond the 95% limits, not many more."""
    model = fit_capitation(_people(3, 20000), "2023-24")
    flagged = total = 0
    for seed in range(10, 30):
        units = fair_shares(_people(seed, 6000), model)["levels"]["practice"]["units"]
        flagged += int((units["verdict"] != "within chance").sum())
        total += len(units)
    assert flagged / total <= 0.12
