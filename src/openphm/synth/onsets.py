"""When each person's long-term conditions and frailty deficits begin.

Every item (condition or deficit) arises once in a life. The share of people of age
`a` who have it is  cap * logistic(slope * (a + deprivation_years * d - centre)
+ female_logodds * f + loading * z)  (see data/conditions.yaml), so an onset age can
be drawn in closed form from one uniform number per person and item. The centre of
each item is solved by bisection on a fixed England-like reference population so that
prevalence at the item's `min_age`+ equals its target: an ICS that is more deprived
or older than England then shows higher prevalence, as a real one would.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.special import expit, logit, ndtr

from openphm.synth.parameters import Items, load_items, load_parameters, per_band

NEVER = np.float32(np.inf)


def _prevalence(items: Items, centre: float, age: np.ndarray, dep: np.ndarray,
                female: np.ndarray, z: np.ndarray, k: int) -> float:
    eta = (items.slope[k] * (age + items.deprivation_years[k] * dep - centre)
           + items.female_logodds[k] * female + items.loading[k] * z)
    p = items.cap[k] * expit(eta) * (age >= items.earliest_age[k])
    return float(p[age >= items.min_age[k]].mean())


def reference_population(n: int = 40_000) -> tuple[np.ndarray, ...]:
    """An England-like cross-section (age, deprivation, female, latent health) with a fixed seed."""
    rng = np.random.default_rng(20_240_401)
    params = load_parameters()["population"]
    share = per_band(params["age_band_share"])
    band = rng.choice(19, size=n, p=share / share.sum())
    age = band * 5 + rng.random(n) * np.where(band == 18, 12, 5)
    female = (rng.random(n) < per_band(params["female_share"])[band]).astype(np.float64)
    dep = (5.5 - rng.integers(1, 11, n)) / 4.5
    z = rng.standard_normal(n)
    return age, dep, female, z


@cache
def calibrated_centres() -> np.ndarray:
    """Centre (in years) of each item's onset curve, solved so that reference prevalence = target."""
    items = load_items()
    age, dep, female, z = reference_population()
    centres = np.empty(len(items.ids))
    for k in range(len(items.ids)):
        lo, hi = -100.0, 400.0
        # Excess mortality thins people with some items over the years simulated; the uplift
        # (data/conditions.yaml) restores prevalence in the middle of the period.
        target = items.target[k] * items.survival_uplift[k]
        for _ in range(44):
            mid = (lo + hi) / 2
            if _prevalence(items, mid, age, dep, female, z, k) > target:
                lo = mid
            else:
                hi = mid
        centres[k] = (lo + hi) / 2
    return centres


def draw_onset_ages(rng: np.random.Generator, dep: np.ndarray, female: np.ndarray,
                    z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Onset age in years of every item for each person: a (people, items) float32 array, inf = never."""
    items = load_items()
    centres = calibrated_centres()
    n, k = len(dep), len(items.ids)
    rho = items.child_cluster[None, :]
    ever_score = np.sqrt(1 - rho) * rng.standard_normal((n, k)) - np.sqrt(rho) * c[:, None]
    never = ndtr(ever_score) >= items.cap[None, :]
    q = rng.random((n, k))
    onset = (centres[None, :] - items.deprivation_years[None, :] * dep[:, None]
             + (logit(q) - items.female_logodds[None, :] * female[:, None]
                - items.loading[None, :] * z[:, None]) / items.slope[None, :])
    onset = np.maximum(onset, items.earliest_age[None, :])
    onset[never] = np.inf
    return onset.astype(np.float32)
