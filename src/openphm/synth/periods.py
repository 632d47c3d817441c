"""Exposure periods: each person's time in one year at one practice, address and care-home status.

Activity is drawn per period as a Poisson count with the person's rate for the period
and dated uniformly within it, which is the same as drawing a Poisson process in time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openphm.synth.geography import Geography
from openphm.synth.parameters import band_of_age, load_parameters, per_band
from openphm.synth.people import DAYS_PER_YEAR, People
from openphm.synth.risk import PersonYear


@dataclass
class Periods:
    """Parallel arrays, one entry per period."""

    pid: np.ndarray
    pos: np.ndarray  # position of the person in the year's PersonYear
    start: np.ndarray
    end: np.ndarray
    practice: np.ndarray
    postcode: np.ndarray
    care_home: np.ndarray
    band: np.ndarray
    age: np.ndarray

    @property
    def years(self) -> np.ndarray:
        """Length of each period in years."""
        return (self.end - self.start) / DAYS_PER_YEAR

    def take(self, mask: np.ndarray) -> Periods:
        """The periods where `mask` is true."""
        return Periods(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def year_periods(people: People, state: PersonYear, y0: int, y1: int) -> Periods:
    """Periods of everyone in `state` within [y0, y1)."""
    eps = people.all_episodes()
    keep = (eps["start"] < y1) & (eps["end"] > y0)
    start = np.maximum(eps["start"][keep], y0)
    end = np.minimum(eps["end"][keep], y1)
    pid = eps["pid"][keep]
    pos_of = np.full(people.n, -1, dtype=np.int64)
    pos_of[state.ids] = np.arange(len(state.ids))
    pos = pos_of[pid]
    ok = (end > start) & (pos >= 0)
    mid = (start + end) // 2
    age = (mid - people.dob[pid]) / DAYS_PER_YEAR
    p = Periods(pid=pid, pos=pos, start=start, end=end, practice=eps["practice"][keep],
                postcode=eps["postcode"][keep], care_home=eps["care_home"][keep],
                band=band_of_age(age), age=age)
    return p.take(ok)


def period_rate(periods: Periods, state: PersonYear, curve: list[float] | np.ndarray,
                elasticity: float, extra: np.ndarray | None = None) -> np.ndarray:
    """Expected events per period: rate per 1,000 for the band x relative risk x years."""
    risk = load_parameters()["risk"]
    rel = state.relative(elasticity, extra)[periods.pos]
    # The risk was measured at one date; a period before or after a care-home move differs.
    in_home = (periods.care_home >= 0).astype(float)
    rel = rel * np.exp(elasticity * risk["care_home_weight"]
                       * (in_home - state.care_home[periods.pos]))
    return per_band(curve)[periods.band] / 1000 * rel * periods.years


def draw_events(rng: np.random.Generator, periods: Periods, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events: (period index, date) of each event, dated uniformly within its period."""
    counts = rng.poisson(rate)
    idx = np.repeat(np.arange(len(rate)), counts)
    span = periods.end[idx] - periods.start[idx]
    date = periods.start[idx] + np.floor(rng.random(len(idx)) * span).astype(np.int64)
    return idx, date


def care_model_prevented(periods: Periods, idx: np.ndarray, date: np.ndarray, model: dict | None) -> np.ndarray:
    """Thinning a Poisson process for the new care model: True for events the model prevented.

    Every event is drawn first, as if there were no care model, and the model then removes
    some, using its own random stream: a run with the care model differs from the same seed
    without it only by the events prevented, so the counterfactual is known exactly."""
    if model is None or len(idx) == 0:
        return np.zeros(len(idx), dtype=bool)
    in_model = date >= model["start_day"][periods.practice[idx]]
    eligible = (periods.age[idx] >= model["eligible_min_age"]) | (periods.care_home[idx] >= 0)
    return in_model & eligible & (model["rng"].random(len(idx)) < -model["effect"])


def place_of_postcode(geo: Geography, postcode: np.ndarray) -> np.ndarray:
    """Place index of each postcode."""
    return geo.lsoa_place[geo.postcode_lsoa[postcode]]
