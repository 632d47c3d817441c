"""The latent risk of emergency admission, per person per year.

log m = log(person heterogeneity, gamma with mean 1) + sum of condition weights
        + frailty weight * eFI + deprivation weight * d + care-home weight
        + practice effect + place effect + year-to-year noise.
Rates of each activity are the published rate for the person's age band times
m ** elasticity divided by its mean in the band, so that rates by age stay at their
reference values while risk is concentrated in the sick, frail and deprived.
The expected number of emergency admissions in a full year is written to
`truth/person_year_risk` as each person's true risk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openphm.synth.geography import Geography
from openphm.synth.parameters import band_of_age, load_items, load_parameters
from openphm.synth.people import DAYS_PER_YEAR, People


@dataclass
class PersonYear:
    """State of people present in one year, measured at a reference date."""

    ids: np.ndarray
    age: np.ndarray
    band: np.ndarray
    has: np.ndarray  # (people, items) bool: item present at the reference date
    efi: np.ndarray
    dep: np.ndarray
    care_home: np.ndarray
    log_m: np.ndarray

    def concat(self, other: PersonYear) -> PersonYear:
        """Both groups of people together."""
        return PersonYear(*(np.concatenate([getattr(self, f), getattr(other, f)])
                            for f in self.__dataclass_fields__))

    def relative(self, elasticity: float, extra: np.ndarray | None = None) -> np.ndarray:
        """m ** elasticity (times exp(extra)) divided by its mean within each age band."""
        log_r = elasticity * self.log_m + (extra if extra is not None else 0.0)
        r = np.exp(log_r - log_r.max())
        sums = np.bincount(self.band, weights=r, minlength=19)
        counts = np.bincount(self.band, minlength=19)
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)
        return r / mean[self.band]

    def has_item(self, item_id: str) -> np.ndarray:
        """Whether each person has an item at the reference date."""
        return self.has[:, load_items().index(item_id)]


@dataclass
class Effects:
    """Practice and place effects on activity (log scale)."""

    practice: np.ndarray
    place: np.ndarray


def draw_effects(rng: np.random.Generator, geo: Geography) -> Effects:
    """Practice and place random effects on the latent risk."""
    risk = load_parameters()["risk"]
    return Effects(practice=rng.normal(0, risk["practice_sd"], len(geo.practice_code)),
                   place=rng.normal(0, risk["place_sd"], len(geo.place_code)))


def person_year(rng: np.random.Generator, people: People, geo: Geography, effects: Effects,
                ids: np.ndarray, date: int) -> PersonYear:
    """Conditions, frailty and latent risk of `ids` at `date` (days since 1970-01-01)."""
    items = load_items()
    risk = load_parameters()["risk"]
    age = (date - people.dob[ids]) / DAYS_PER_YEAR
    has = people.onset[ids] <= age[:, None].astype(np.float32)
    names, efi_map = items.efi_matrix()
    efi = ((has.astype(np.float32) @ efi_map) > 0).sum(axis=1) / len(names)
    lsoa = geo.postcode_lsoa[people.postcode[ids]]
    dep = geo.lsoa_deprivation[lsoa]
    care_home = people.care_home[ids] >= 0
    practice = people.practice[ids]
    log_m = (np.log(people.frailty_re[ids])
             + has.astype(np.float32) @ items.risk_weight.astype(np.float32)
             + risk["frailty_weight"] * efi
             + risk["deprivation_weight"] * dep
             + risk["care_home_weight"] * care_home
             + effects.practice[practice]
             + effects.place[geo.practice_place[practice]]
             + rng.normal(0, risk["year_noise_sd"], len(ids)))
    return PersonYear(ids=ids, age=age, band=band_of_age(age), has=has, efi=efi, dep=dep,
                      care_home=care_home, log_m=log_m)


_PROPENSITY: dict[float, np.ndarray] = {}  # by shape: the propensity of person ids 0, 1, 2, ... (a pure function)


def persistent_propensity(ids: np.ndarray, shape: float) -> np.ndarray:
    """A person's own multiplier of an activity, the same every year: a gamma variable with `shape`
    and mean 1, read at a uniform hashed from the person id (so that it moves no random stream).
    Computed once per person id and kept (the inverse gamma function is slow on a million people)."""
    from scipy.special import gammaincinv

    have = _PROPENSITY.get(shape, np.empty(0))
    need = int(ids.max()) + 1 if len(ids) else 0
    if need > len(have):
        new = np.arange(len(have), need, dtype=np.uint64)
        hashed = (new * np.uint64(2246822519) + np.uint64(374761393)) % np.uint64(2 ** 32)
        have = np.concatenate([have, gammaincinv(shape, (hashed + 0.5) / 2.0 ** 32) / shape])
        _PROPENSITY[shape] = have
    return have[ids]


def persistent_normal(ids: np.ndarray, salt: int) -> np.ndarray:
    """A person's own standard normal score, the same every year: read at a uniform hashed from the
    person id and `salt` (one salt per use, so that scores of different uses are unrelated), so that
    it moves no random stream."""
    from scipy.special import ndtri

    # SplitMix64's finaliser (Steele, Lea & Flood 2014) of id and salt; the top 32 bits as the uniform.
    with np.errstate(over="ignore"):
        x = ids.astype(np.uint64) + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return ndtri(((x >> np.uint64(32)).astype(np.float64) + 0.5) / 2.0 ** 32)
