"""The people of the synthetic ICS: who they are, where they live, where they are registered.

`People` holds one row per person who is ever part of the ICS (the population at the
start, babies born and people who move in), as growable column arrays. Demographic
change (deaths, moves, care-home admissions) is simulated in `demography.py`; this
module creates people and keeps their registration-and-address episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from openphm.synth.geography import Geography
from openphm.synth.names import NameBank
from openphm.synth.onsets import draw_onset_ages
from openphm.synth.parameters import load_parameters, per_band

DAYS_PER_YEAR = 365.25
OPEN = np.iinfo(np.int32).max  # an episode or life that has not ended
EXIT_NONE, EXIT_DIED, EXIT_LEFT = 0, 1, 2


@dataclass
class Episodes:
    """Closed registration-and-address episodes: one row per spell at one practice and address."""

    pid: list[np.ndarray] = field(default_factory=list)
    start: list[np.ndarray] = field(default_factory=list)
    end: list[np.ndarray] = field(default_factory=list)
    practice: list[np.ndarray] = field(default_factory=list)
    postcode: list[np.ndarray] = field(default_factory=list)
    care_home: list[np.ndarray] = field(default_factory=list)

    def add(self, pid, start, end, practice, postcode, care_home) -> None:
        """Append closed episodes (arrays of equal length)."""
        self.pid.append(np.asarray(pid, dtype=np.int64))
        self.start.append(np.asarray(start, dtype=np.int32))
        self.end.append(np.asarray(end, dtype=np.int32))
        self.practice.append(np.asarray(practice, dtype=np.int32))
        self.postcode.append(np.asarray(postcode, dtype=np.int32))
        self.care_home.append(np.asarray(care_home, dtype=np.int32))

    def arrays(self) -> dict[str, np.ndarray]:
        """All closed episodes as concatenated arrays."""
        return {name: np.concatenate(getattr(self, name)) if getattr(self, name)
                else np.empty(0, dtype=np.int64)
                for name in ("pid", "start", "end", "practice", "postcode", "care_home")}


class People:
    """Column arrays for everyone ever in the ICS, with room to grow."""

    INT_COLUMNS = ("dob", "entry", "exit", "exit_reason", "female", "ethnicity", "given",
                   "family", "birth_family", "name_group", "practice", "postcode", "care_home",
                   "ep_start", "mother", "first_care_start", "surname_change", "prev_family", "asc_start")
    FLOAT_COLUMNS = ("z", "frailty_re")

    def __init__(self, capacity: int, n_items: int) -> None:
        self.n = 0
        self.capacity = capacity
        for name in self.INT_COLUMNS:
            setattr(self, name, np.full(capacity, -1, dtype=np.int64))
        for name in self.FLOAT_COLUMNS:
            setattr(self, name, np.zeros(capacity, dtype=np.float64))
        self.nhs = np.zeros(capacity, dtype=np.int64)
        self.onset = np.full((capacity, n_items), np.inf, dtype=np.float32)
        self.episodes = Episodes()

    def _grow(self, extra: int) -> None:
        if self.n + extra <= self.capacity:
            return
        new_cap = max(self.capacity * 2, self.n + extra)
        for name in (*self.INT_COLUMNS, *self.FLOAT_COLUMNS, "nhs"):
            old = getattr(self, name)
            grown = np.full(new_cap, -1 if old.dtype == np.int64 else 0, dtype=old.dtype)
            grown[: self.n] = old[: self.n]
            setattr(self, name, grown)
        onset = np.full((new_cap, self.onset.shape[1]), np.inf, dtype=np.float32)
        onset[: self.n] = self.onset[: self.n]
        self.onset = onset
        self.capacity = new_cap

    def view(self, name: str) -> np.ndarray:
        """The filled part of a column."""
        return getattr(self, name)[: self.n]

    def add(self, rng: np.random.Generator, geo: Geography, names: NameBank, *, dob: np.ndarray,
            entry: np.ndarray, postcode: np.ndarray, practice: np.ndarray,
            female: np.ndarray | None = None, family: np.ndarray | None = None,
            name_group: np.ndarray | None = None, mother: np.ndarray | None = None) -> np.ndarray:
        """Create people; returns their ids. Ethnicity, names, health and onsets are drawn here."""
        params = load_parameters()
        k = len(dob)
        self._grow(k)
        ids = np.arange(self.n, self.n + k)
        lsoa = geo.postcode_lsoa[postcode]
        dep = geo.lsoa_deprivation[lsoa]
        age_years = (entry - dob) / DAYS_PER_YEAR
        if female is None:
            band = np.minimum(age_years // 5, 18).astype(int)
            female = rng.random(k) < per_band(params["population"]["female_share"])[band]
        female = female.astype(np.int64)
        if name_group is None:
            name_group = self._draw_ethnic_group(rng, age_years, dep)
        ethnicity = names.draw_ethnicity_code(rng, name_group)
        given = names.draw_given(rng, name_group, female)
        if family is None:
            family = names.draw_family(rng, name_group)
        z = rng.standard_normal(k)
        self.onset[ids] = draw_onset_ages(rng, dep, female.astype(np.float64), z,
                                          rng.standard_normal(k))
        shape = params["risk"]["person_gamma_shape"]
        values = {
            "dob": dob, "entry": entry, "exit": np.full(k, OPEN), "exit_reason": np.zeros(k),
            "female": female, "ethnicity": ethnicity, "given": given, "family": family,
            "birth_family": family, "name_group": name_group, "practice": practice,
            "postcode": postcode, "care_home": np.full(k, -1), "ep_start": entry,
            "mother": mother if mother is not None else np.full(k, -1),
            "first_care_start": np.full(k, -1), "surname_change": np.full(k, OPEN),
            "prev_family": family, "asc_start": np.full(k, -1), "z": z,
            "frailty_re": rng.gamma(shape, 1.0 / shape, k),
        }
        for name, value in values.items():
            getattr(self, name)[ids] = value
        self.nhs[ids] = names.new_nhs_numbers(rng, k)
        self.n += k
        return ids

    @staticmethod
    def _draw_ethnic_group(rng: np.random.Generator, age_years: np.ndarray,
                           dep: np.ndarray) -> np.ndarray:
        eth = load_parameters()["ethnicity"]
        groups = eth["groups"]
        white_share = groups[0]["share"]
        base = np.log((1 - white_share) / white_share)
        logodds = (base + eth["minority_age_logodds_per_year"] * (age_years - 40)
                   + eth["minority_deprivation_logodds"] * dep)
        minority = rng.random(len(age_years)) < expit(logodds)
        shares = np.array([g["share"] for g in groups[1:]])
        group = 1 + rng.choice(len(shares), size=len(age_years), p=shares / shares.sum())
        return np.where(minority, group, 0).astype(np.int64)

    def change_state(self, ids: np.ndarray, dates: np.ndarray, *, practice: np.ndarray,
                     postcode: np.ndarray, care_home: np.ndarray) -> None:
        """Close each person's current episode at `dates` and open one with the new state."""
        self.episodes.add(ids, self.ep_start[ids], dates, self.practice[ids], self.postcode[ids],
                          self.care_home[ids])
        self.practice[ids] = practice
        self.postcode[ids] = postcode
        self.care_home[ids] = care_home
        self.ep_start[ids] = dates

    def leave(self, ids: np.ndarray, dates: np.ndarray, reason: int) -> None:
        """End people's time in the ICS (death or moving away) and close their episodes."""
        self.exit[ids] = dates
        self.exit_reason[ids] = reason
        self.episodes.add(ids, self.ep_start[ids], dates, self.practice[ids], self.postcode[ids],
                          self.care_home[ids])

    def all_episodes(self) -> dict[str, np.ndarray]:
        """Closed episodes plus the open ones of people still in the ICS, sorted by person and start."""
        closed = self.episodes.arrays()
        still = np.flatnonzero(self.view("exit") == OPEN)
        cols = {
            "pid": np.concatenate([closed["pid"], still]),
            "start": np.concatenate([closed["start"], self.ep_start[still]]),
            "end": np.concatenate([closed["end"], np.full(len(still), OPEN)]),
            "practice": np.concatenate([closed["practice"], self.practice[still]]),
            "postcode": np.concatenate([closed["postcode"], self.postcode[still]]),
            "care_home": np.concatenate([closed["care_home"], self.care_home[still]]),
        }
        order = np.lexsort((cols["start"], cols["pid"]))
        return {k: v[order].astype(np.int64) for k, v in cols.items()}


def episode_at(episodes: dict[str, np.ndarray], pid: np.ndarray, date: np.ndarray) -> np.ndarray:
    """Index of the episode covering each (person, date); the person's first episode before it starts."""
    key = episodes["pid"] * (1 << 32) + episodes["start"]
    query = pid.astype(np.int64) * (1 << 32) + date.astype(np.int64)
    idx = np.searchsorted(key, query, side="right") - 1
    first = np.searchsorted(episodes["pid"], pid, side="left")
    return np.maximum(idx, first)
