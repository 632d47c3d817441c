"""Matching and the rate ratio of the matched cohort, on people made with a known effect and
confounding by age and prior admissions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from openphm.evaluate.matched import COVARIATES, match, rate_ratio, smd


def _people(n: int = 6000, effect: float = 0.7, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(82, 6, n)
    prior = rng.poisson(0.3 + 0.02 * (age - 75).clip(0), n)
    # older people with more admissions are likelier to be at an adopting practice (confounding)
    treated = (rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 0.08 * (age - 82) + 0.5 * prior)))).astype(int)
    days = rng.integers(200, 730, n)
    rate = 0.0015 * np.exp(0.05 * (age - 82) + 0.3 * prior) * np.where(treated == 1, effect, 1.0)
    return pd.DataFrame({
        "person_id": np.arange(n), "unit": rng.choice([f"P{i}" for i in range(20)], n), "age": age,
        "male": rng.integers(0, 2, n), "imd_decile": rng.integers(1, 11, n), "imd_missing": 0,
        "care_home": (rng.random(n) < 0.05).astype(int), "conditions": rng.poisson(2, n),
        "efi": rng.uniform(0, 0.4, n), "prior_emergency_admissions": prior, "prior_ae_attendances": rng.poisson(0.5, n),
        "treated": treated, "days_at_risk": days, "after_emergency_admissions": rng.poisson(rate * days)})


def test_matching_balances_what_differed_and_pairs_within_sex() -> None:
    people = _people()
    before = smd(people[people.treated == 1], people[people.treated == 0], COVARIATES)
    assert abs(before["age"]) > 0.2 and abs(before["prior_emergency_admissions"]) > 0.2
    matched = match(people, seed=1)
    pairs = matched.groupby("pair")
    assert (pairs.size() == 2).all() and (pairs.treated.sum() == 1).all()
    assert (pairs.male.nunique() == 1).all()
    assert matched.person_id.is_unique  # without replacement
    after = smd(matched[matched.treated == 1], matched[matched.treated == 0], COVARIATES)
    assert after.abs().max() < 0.1


def test_the_rate_ratio_is_the_ratio_of_rates_and_recovers_the_effect() -> None:
    people = _people()
    matched = match(people, seed=1)
    rr, low, high, _ = rate_ratio(matched, "emergency_admissions")
    t, c = matched[matched.treated == 1], matched[matched.treated == 0]
    by_hand = (t.after_emergency_admissions.sum() / t.days_at_risk.sum()) / (
        c.after_emergency_admissions.sum() / c.days_at_risk.sum())
    assert rr == pytest.approx(by_hand, rel=1e-6)  # a Poisson regression on one indicator is the rate ratio
    assert low < 0.7 < high
    crude_t, crude_c = people[people.treated == 1], people[people.treated == 0]
    crude = (crude_t.after_emergency_admissions.sum() / crude_t.days_at_risk.sum()) / (
        crude_c.after_emergency_admissions.sum() / crude_c.days_at_risk.sum())
    assert abs(crude - 0.7) > abs(rr - 0.7)  # unmatched, confounding hides part of the effect
