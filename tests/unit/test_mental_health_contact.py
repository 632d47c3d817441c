"""Who is in contact with secondary mental health services, and where their contacts fall.

Checked on a hand-built population (200,000 adults of one age, a known share with each condition)
against the chances in parameters.yaml, computed here by hand, not by the generator's code.
"""

from __future__ import annotations

import numpy as np
import pytest

from openphm.synth.parameters import load_items, load_parameters
from openphm.synth.periods import Periods
from openphm.synth.risk import PersonYear, persistent_normal
from openphm.synth.services import _events, in_mental_health_contact

N = 200_000
CHANCE = load_parameters()["mental_health"]["in_contact"]


def _state(smi_share: float = 0.01, depression_share: float = 0.12, seed: int = 0) -> PersonYear:
    rng = np.random.default_rng(seed)
    items = load_items()
    has = np.zeros((N, len(items.ids)), dtype=bool)
    has[:, items.index("smi")] = rng.random(N) < smi_share
    has[:, items.index("depression")] = rng.random(N) < depression_share
    age = np.full(N, 40.0)
    return PersonYear(ids=np.arange(N), age=age, band=np.full(N, 8), has=has, efi=np.zeros(N, dtype=np.float32),
                      dep=np.zeros(N), care_home=np.zeros(N, dtype=bool), log_m=rng.normal(0, 0.5, N))


def test_the_share_in_contact_follows_each_condition_chance():
    state = _state()
    inside = in_mental_health_contact(np.random.default_rng(1), state)
    smi, dep = state.has_item("smi"), state.has_item("depression")
    neither = ~smi & ~dep
    # one minus the chance that neither the condition nor the chance everyone has brings them in
    expect_smi = 1 - (1 - CHANCE["smi"]) * (1 - CHANCE["other"])
    expect_dep = 1 - (1 - CHANCE["depression"]) * (1 - CHANCE["other"])
    for mask, expect in ((smi & ~dep, expect_smi), (dep & ~smi, expect_dep), (neither, CHANCE["other"])):
        share, k = inside[mask].mean(), mask.sum()
        assert abs(share - expect) < 4 * np.sqrt(expect * (1 - expect) / k), (share, expect)


def test_being_in_contact_persists_from_year_to_year_at_the_stated_correlation():
    state = _state()
    one = in_mental_health_contact(np.random.default_rng(1), state)
    two = in_mental_health_contact(np.random.default_rng(2), state)
    neither = ~state.has_item("smi") & ~state.has_item("depression")
    p = CHANCE["other"]
    both = (one & two)[neither].mean()
    # Two probit scores with correlation rho^2 (the shared part is the person's own): the chance
    # both fall below the threshold, by numerical integration over the shared score.
    from scipy.integrate import trapezoid
    from scipy.special import ndtr, ndtri

    rho = CHANCE["persistence"]
    z = np.linspace(-8, 8, 20001)
    density = np.exp(-z ** 2 / 2) / np.sqrt(2 * np.pi)
    cond = ndtr((ndtri(p) - rho * z) / np.sqrt(1 - rho ** 2))
    expect = trapezoid(density * cond ** 2, z)
    k = neither.sum()
    assert expect > 3 * p * p  # the persistence is real: far more than independent years would give
    assert abs(both - expect) < 4 * np.sqrt(expect / k), (both, expect)


def test_the_persons_own_score_is_standard_normal_and_unrelated_across_uses():
    ids = np.arange(1_000_000)
    a, b = persistent_normal(ids, 1), persistent_normal(ids, 2)
    assert abs(a.mean()) < 0.005 and abs(a.std() - 1) < 0.005
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.005
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.005  # neighbouring ids unrelated
    assert np.array_equal(a, persistent_normal(ids, 1))  # the same every time it is asked


def test_contacts_fall_only_on_people_in_contact_and_the_bands_total_is_kept():
    state = _state()
    periods = Periods(pid=np.arange(N), pos=np.arange(N), start=np.zeros(N, dtype=np.int64),
                      end=np.full(N, 365, dtype=np.int64), practice=np.zeros(N, dtype=np.int64),
                      postcode=np.zeros(N, dtype=np.int64), care_home=np.full(N, -1), band=state.band,
                      age=state.age)
    inside = in_mental_health_contact(np.random.default_rng(1), state)
    everyone, _, _ = _events(np.random.default_rng(3), periods, state, "mental_health_contact", None, "d")
    only, _, _ = _events(np.random.default_rng(3), periods, state, "mental_health_contact", None, "d", only=inside)
    assert inside[periods.pos[only]].all()
    # same expected total: the two Poisson totals differ by no more than chance
    assert len(only) == pytest.approx(len(everyone), abs=5 * np.sqrt(len(everyone)))
    # the same contacts on far fewer people: about 6% in contact, against half of people with a
    # contact when every adult of 40 draws at the band's rate
    assert 5 * len(np.unique(periods.pid[only])) < len(np.unique(periods.pid[everyone]))
