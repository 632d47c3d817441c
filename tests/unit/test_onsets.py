import numpy as np

from openphm.synth.onsets import draw_onset_ages, reference_population
from openphm.synth.parameters import load_items


def test_onsets_reproduce_target_prevalence_on_an_england_like_population():
    items = load_items()
    age, dep, female, z = reference_population(60_000)
    c = np.random.default_rng(9).standard_normal(len(age))
    onset = draw_onset_ages(np.random.default_rng(10), dep, female, z, c)
    has = onset <= age[:, None]
    for k, item in enumerate(items.ids):
        eligible = age >= items.min_age[k]
        prevalence = has[eligible, k].mean()
        target = items.target[k] * items.survival_uplift[k]
        # binomial noise on 60,000 people plus sampling of the reference population
        tolerance = 4 * np.sqrt(target * (1 - target) / eligible.sum()) + 0.05 * target
        assert abs(prevalence - target) < tolerance, item


def test_no_onset_before_earliest_age_and_deprivation_brings_onset_forward():
    items = load_items()
    n = 40_000
    rng = np.random.default_rng(11)
    z, c, female = rng.standard_normal(n), rng.standard_normal(n), np.zeros(n)
    most = draw_onset_ages(np.random.default_rng(12), np.ones(n), female, z, c)
    least = draw_onset_ages(np.random.default_rng(12), -np.ones(n), female, z, c)
    assert (most >= items.earliest_age[None, :]).all()
    k = items.index("copd")
    finite = np.isfinite(most[:, k]) & np.isfinite(least[:, k])
    gap = np.median(least[finite, k] - most[finite, k])
    # conditions.yaml: deprivation_years 14 for COPD, i.e. 28 years between the extremes
    assert 20 < gap <= 28.5
