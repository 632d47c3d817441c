"""The fast risk-share sampler (profiles, a multinomial resample, one Poisson per setting and unit cost)
against the naive one (resample person rows, a Poisson per person and setting), at small scale."""

import numpy as np
import pytest
from scipy import stats

from openphm.finance import simulate as sim
from openphm.finance.simulate import PersonModel, naive_simulate, profiles, simulate_spend

SETTINGS = ("Non-elective admissions", "A&E", "General practice")
PARTNERS = [("Non-elective admissions", "A&E"), ("General practice",), ("Adult social care",)]
RUNS = 10_000


def small_model(n: int = 300, seed: int = 11) -> PersonModel:
    """Many people alike (common profiles: nobody seen, one GP appointment) and many unique ones (rare)."""
    rng = np.random.default_rng(seed)
    rate = np.zeros((n, 3))
    unit = np.zeros((n, 3))
    unique = np.arange(n) >= n // 2
    k = int(unique.sum())
    frailty = rng.gamma(0.5, 2.0, k)[:, None]  # the same people use every setting more: partners' spends correlate
    rate[unique] = rng.poisson(np.array([0.3, 0.8, 4.0]) * frailty)
    unit[unique] = np.column_stack([rng.choice([700.0, 4000.0, 5400.0], k), rng.choice([90.0, 250.0], k),
                                    rng.uniform(15, 100, k)])
    rate[n // 4:n // 2, 2], unit[n // 4:n // 2, 2] = 1.0, 42.0  # common profile
    unit[rate == 0] = 0.0
    fixed = np.where(rng.random(n) < 0.05, rng.uniform(5e3, 3e4, n), 0.0)[:, None]
    return PersonModel(SETTINGS, rate, unit, ("Adult social care",), fixed)


def analytic_sd(model: PersonModel, settings: tuple[str, ...]) -> float:
    """sd of N draws of Y: N Var(Y) = N (E[Var(Y | person)] + Var(E[Y | person]))."""
    cols = [j for j, s in enumerate(model.poisson_settings) if s in settings]
    within = (model.rate[:, cols] * model.unit_cost[:, cols] ** 2).sum(axis=1).mean()
    mean = (model.rate[:, cols] * model.unit_cost[:, cols]).sum(axis=1)
    if "Adult social care" in settings:
        mean = mean + model.fixed[:, 0]
    return float(np.sqrt(model.people * (within + mean.var())))


def test_the_fast_sampler_draws_the_same_distribution_as_the_naive_one():
    model = small_model()
    prof = profiles(model)
    assert (prof.frequency >= sim.RARE_BELOW).any() and (prof.frequency < sim.RARE_BELOW).any()  # both paths
    fast, _ = simulate_spend(model, PARTNERS, RUNS, seed=1)
    naive = naive_simulate(model, PARTNERS, RUNS, seed=2)
    expected = model.expected_spend()
    for q, settings in enumerate(PARTNERS):
        mean = sum(expected[s] for s in settings)
        sd = analytic_sd(model, settings)
        for draws in (fast[q], naive[q]):
            assert abs(draws.mean() - mean) < 4 * sd / np.sqrt(RUNS)
            assert draws.std() == pytest.approx(sd, rel=0.04)
        assert stats.ks_2samp(fast[q], naive[q]).pvalue > 0.001
        for p in (5, 50, 95):  # percentiles agree within a tenth of a standard deviation
            assert abs(np.percentile(fast[q], p) - np.percentile(naive[q], p)) < 0.1 * sd
    # the joint law too: the two partners' spends are correlated through the people resampled
    assert np.corrcoef(fast)[0, 1] == pytest.approx(np.corrcoef(naive)[0, 1], abs=0.05)
    assert np.corrcoef(naive)[0, 1] > 0.2


def test_all_rare_and_all_common_paths_give_the_same_distribution(monkeypatch):
    model = small_model(n=200, seed=4)
    monkeypatch.setattr(sim, "RARE_BELOW", 10**9)  # everyone drawn person by person
    rare, _ = simulate_spend(model, PARTNERS, 3000, seed=5)
    monkeypatch.setattr(sim, "RARE_BELOW", 1)  # every profile by binomials
    common, _ = simulate_spend(model, PARTNERS, 3000, seed=6)
    for q in range(len(PARTNERS)):
        assert stats.ks_2samp(rare[q], common[q]).pvalue > 0.001


def test_the_seed_fixes_the_draw_whatever_the_number_of_processes():
    model = small_model()
    one, _ = simulate_spend(model, PARTNERS, 300, seed=12, batch=20, workers=1)
    two, _ = simulate_spend(model, PARTNERS, 300, seed=12, batch=20, workers=2)
    np.testing.assert_array_equal(one, two)


def test_the_seed_fixes_the_draw_and_the_batch_size_does_not_change_it_in_law():
    model = small_model()
    first, _ = simulate_spend(model, PARTNERS, 500, seed=7)
    again, _ = simulate_spend(model, PARTNERS, 500, seed=7)
    other, _ = simulate_spend(model, PARTNERS, 500, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(naive_simulate(model, PARTNERS, 20, seed=3),
                                  naive_simulate(model, PARTNERS, 20, seed=3))
    small_batches, _ = simulate_spend(model, PARTNERS, 2000, seed=9, batch=7)
    assert stats.ks_2samp(small_batches[0], simulate_spend(model, PARTNERS, 2000, seed=10)[0][0]).pvalue > 0.001


def test_profiles_are_exact_unless_a_resolution_is_given():
    model = small_model()
    exact = profiles(model)
    assert exact.frequency.sum() == model.people
    # the design reproduces every person's expected spend exactly
    per_profile = exact.design[:, :len(exact.bin_unit_cost)] @ exact.bin_unit_cost
    total = float(exact.frequency @ per_profile) + float(exact.frequency @ exact.design[:, -1].toarray().ravel())
    assert total == pytest.approx(sum(model.expected_spend().values()), rel=1e-12)
    rounded = profiles(model, resolution=50.0)
    assert len(rounded.frequency) < len(exact.frequency)
