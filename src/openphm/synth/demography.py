"""Births, deaths, moves and care-home admissions, year by year, dated to the day.

The population at the start has the English age structure (Census 2021) with a small tilt
towards younger people in more deprived areas. Each simulated year then: people die (at
rates by age and sex from ONS, raised by their latent risk) or move away; babies are born
to women of the ICS; people move in so that the registered population stays about steady;
people move house or practice; the very old move into care homes, mostly re-registering
with the home's aligned practice; some women change surname.
"""

from __future__ import annotations

import numpy as np

from openphm.synth.geography import Geography
from openphm.synth.names import NameBank
from openphm.synth.parameters import band_of_age, load_parameters, per_band
from openphm.synth.people import DAYS_PER_YEAR, EXIT_DIED, EXIT_LEFT, OPEN, People
from openphm.synth.risk import PersonYear

# Age-specific fertility shape, women 15-44 by five-year band (ONS births by mother's age, approx.).
FERTILITY_SHAPE = {3: 0.12, 4: 0.55, 5: 1.0, 6: 1.2, 7: 0.75, 8: 0.2}


def _uniform_dates(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = np.maximum(hi - lo, 1)
    return (lo + np.floor(rng.random(len(lo)) * span)).astype(np.int64)


def _practice_in_pcn(rng: np.random.Generator, geo: Geography, pcn: np.ndarray,
                     cross_boundary: float) -> np.ndarray:
    """A practice for each person: in their PCN by list size, or anywhere in their place."""
    weights = geo.practice_list_target
    out = np.empty(len(pcn), dtype=np.int64)
    place = geo.pcn_place[pcn]
    anywhere = rng.random(len(pcn)) < cross_boundary
    for p in np.unique(pcn):
        for wide in (False, True):
            mask = (pcn == p) & (anywhere == wide)
            if not mask.any():
                continue
            cand = (np.flatnonzero(geo.practice_place == place[mask][0]) if wide
                    else np.flatnonzero(geo.practice_pcn == p))
            w = weights[cand] / weights[cand].sum()
            out[mask] = rng.choice(cand, size=int(mask.sum()), p=w)
    return out


def _postcode_in_lsoa(rng: np.random.Generator, geo: Geography, lsoa: np.ndarray) -> np.ndarray:
    return geo.lsoa_first_postcode[lsoa] + rng.integers(0, geo.lsoa_n_postcodes[lsoa])


def initial_population(rng: np.random.Generator, geo: Geography, names: NameBank, people: People,
                       n: int, start: int) -> np.ndarray:
    """Create the `n` people registered on the start date."""
    pop = load_parameters()["population"]
    lsoa = rng.choice(len(geo.lsoa_code), size=n, p=geo.lsoa_weight)
    dep = geo.lsoa_deprivation[lsoa]
    share = per_band(pop["age_band_share"])
    share = share / share.sum()
    # Younger populations in more deprived areas: tilt the band probabilities by deprivation.
    mid = np.arange(19) * 5 + 2.5
    tilt = np.exp(-0.25 * dep[:, None] * (mid[None, :] - 40) / 40)
    probs = share[None, :] * tilt
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    band = (rng.random(n)[:, None] > cum).sum(axis=1).clip(0, 18)
    width = np.where(band == 18, 0, 5)
    age = band * 5 + rng.random(n) * width + np.where(band == 18, rng.exponential(3.5, n), 0)
    age = np.minimum(age, 108)
    dob = (start - np.round(age * DAYS_PER_YEAR)).astype(np.int64)
    postcode = _postcode_in_lsoa(rng, geo, lsoa)
    practice = _practice_in_pcn(rng, geo, geo.lsoa_pcn[lsoa], 0.08)
    since = np.round(rng.exponential(9 * DAYS_PER_YEAR, n)).astype(np.int64)
    entry = np.maximum(start - since, dob)
    return people.add(rng, geo, names, dob=dob, entry=entry, postcode=postcode, practice=practice)


def place_initial_care_home_residents(rng: np.random.Generator, geo: Geography, people: People,
                                      state: PersonYear, start: int) -> None:
    """Move the right share of the very old, the frail and people with dementia into care homes."""
    ch = load_parameters()["care_home"]
    share = per_band(ch["resident_share"])[state.band]
    pull = np.exp(1.5 * state.has_item("dementia") + 4.0 * state.efi)
    mean_pull = np.bincount(state.band, pull, 19) / np.maximum(np.bincount(state.band, None, 19), 1)
    p = np.clip(share * pull / mean_pull[state.band], 0, 0.95)
    chosen = state.ids[rng.random(len(p)) < p]
    _admit_to_care_home(rng, geo, people, chosen, np.full(len(chosen), start), initial=True)
    state.care_home[np.isin(state.ids, chosen)] = True


def _admit_to_care_home(rng: np.random.Generator, geo: Geography, people: People, ids: np.ndarray,
                        dates: np.ndarray, initial: bool = False) -> None:
    if len(ids) == 0:
        return
    ch = load_parameters()["care_home"]
    place = geo.practice_place[people.practice[ids]]
    homes = np.empty(len(ids), dtype=np.int64)
    home_place = geo.care_home_place
    for p in np.unique(place):
        mask = place == p
        cand = np.flatnonzero(home_place == p)
        if len(cand) == 0:
            cand = np.arange(len(geo.care_home_code))
        w = geo.care_home_beds[cand] / geo.care_home_beds[cand].sum()
        homes[mask] = rng.choice(cand, size=int(mask.sum()), p=w)
    aligned = rng.random(len(ids)) < ch["aligned_practice_share"]
    practice = np.where(aligned, geo.care_home_practice[homes], people.practice[ids])
    postcode = geo.care_home_postcode[homes]
    if initial:
        # Already resident on the start date: the current episode began with the move.
        moved = np.maximum(dates - np.round(rng.random(len(ids)) * 2.5 * DAYS_PER_YEAR),
                           people.dob[ids] + 60 * 365)
        people.entry[ids] = np.minimum(people.entry[ids], moved)
        people.ep_start[ids] = people.entry[ids]
        people.practice[ids], people.postcode[ids], people.care_home[ids] = practice, postcode, homes
        people.first_care_start[ids] = moved
    else:
        people.change_state(ids, dates, practice=practice, postcode=postcode, care_home=homes)
        people.first_care_start[ids] = np.where(people.first_care_start[ids] < 0, dates,
                                                people.first_care_start[ids])


def exits(rng: np.random.Generator, people: People, state: PersonYear, y0: int, y1: int) -> None:
    """Deaths and moves away in [y0, y1), raised by latent risk; dated within each person's time."""
    params = load_parameters()
    ids = state.ids
    lo = np.maximum(people.entry[ids], y0)
    years = (y1 - lo) / DAYS_PER_YEAR
    female = people.female[ids] == 1
    mort = per_band(params["mortality"]["per_1000"])[state.band] / 1000
    mort = mort * np.where(female, 2 / (1 + params["mortality"]["male_ratio"]),
                           2 * params["mortality"]["male_ratio"] / (1 + params["mortality"]["male_ratio"]))
    rel = state.relative(params["risk"]["elasticity"]["mortality"])
    die = rng.random(len(ids)) < 1 - np.exp(-mort * rel * years)
    away_rate = per_band(params["population"]["out_migration_per_1000"])[state.band] / 1000
    away = (rng.random(len(ids)) < 1 - np.exp(-away_rate * years)) & ~state.care_home
    death_date = _uniform_dates(rng, lo, np.full(len(ids), y1))
    away_date = _uniform_dates(rng, lo, np.full(len(ids), y1))
    died = die & (~away | (death_date <= away_date))
    left = away & ~died
    people.leave(ids[died], death_date[died], EXIT_DIED)
    people.leave(ids[left], away_date[left], EXIT_LEFT)


def arrivals(rng: np.random.Generator, geo: Geography, names: NameBank, people: People,
             present: np.ndarray, y0: int, y1: int, n_target: int) -> np.ndarray:
    """Babies born to women of the ICS and people moving in; returns the new ids."""
    pop = load_parameters()["population"]
    mid = (y0 + y1) // 2
    alive = present[people.exit[present] > y0]
    age = (mid - people.dob[alive]) / DAYS_PER_YEAR
    band = band_of_age(age)
    weight = np.array([FERTILITY_SHAPE.get(int(b), 0.0) for b in range(19)])[band]
    weight = weight * (people.female[alive] == 1)
    n_births = rng.poisson(pop["birth_rate_per_1000"] / 1000 * len(alive))
    mothers = rng.choice(alive, size=n_births, p=weight / weight.sum())
    lo = np.maximum(people.entry[mothers], y0)
    hi = np.minimum(people.exit[mothers], y1)
    dob = _uniform_dates(rng, lo, hi)
    babies = people.add(rng, geo, names, dob=dob, entry=dob, postcode=people.postcode[mothers],
                        practice=people.practice[mothers], family=people.family[mothers],
                        name_group=people.name_group[mothers], mother=mothers)
    staying = int((people.view("exit") == OPEN).sum())
    n_in = max(0, n_target - staying)
    share = per_band(pop["age_band_share"]) * per_band(pop["out_migration_per_1000"])
    in_band = rng.choice(19, size=n_in, p=share / share.sum())
    entry = _uniform_dates(rng, np.full(n_in, y0), np.full(n_in, y1))
    age_in = in_band * 5 + rng.random(n_in) * 5
    lsoa = rng.choice(len(geo.lsoa_code), size=n_in, p=geo.lsoa_weight)
    movers = people.add(rng, geo, names, dob=(entry - np.round(age_in * DAYS_PER_YEAR)).astype(np.int64),
                        entry=entry, postcode=_postcode_in_lsoa(rng, geo, lsoa),
                        practice=_practice_in_pcn(rng, geo, geo.lsoa_pcn[lsoa], 0.08))
    return np.concatenate([babies, movers])


def moves(rng: np.random.Generator, geo: Geography, people: People, state: PersonYear,
          y0: int, y1: int) -> None:
    """Care-home admissions, house moves and practice changes (at most one per person a year)."""
    params = load_parameters()
    pop, ch = params["population"], params["care_home"]
    ids = state.ids
    lo = np.maximum(np.maximum(people.entry[ids], people.ep_start[ids]), y0) + 1
    hi = np.minimum(people.exit[ids], y1)
    ok = (hi > lo) & ~state.care_home
    years = np.clip((hi - lo) / DAYS_PER_YEAR, 0, 1)
    entry_rate = per_band(ch["entry_per_1000"])[state.band] / 1000
    pull = np.exp(1.5 * state.has_item("dementia") + 4.0 * state.efi)
    mean_pull = np.bincount(state.band, pull, 19) / np.maximum(np.bincount(state.band, None, 19), 1)
    enter = ok & (rng.random(len(ids)) < 1 - np.exp(-entry_rate * pull / mean_pull[state.band] * years))
    dates = _uniform_dates(rng, lo, hi)
    _admit_to_care_home(rng, geo, people, ids[enter], dates[enter])

    move = ok & ~enter & (rng.random(len(ids)) < pop["address_move_per_1000"] / 1000 * years)
    switch = ok & ~enter & ~move & (rng.random(len(ids)) < pop["practice_change_per_1000"] / 1000 * years)
    m_ids = ids[move]
    old_lsoa = geo.postcode_lsoa[people.postcode[m_ids]]
    old_pcn = geo.lsoa_pcn[old_lsoa]
    r = rng.random(len(m_ids))
    new_lsoa = rng.choice(len(geo.lsoa_code), size=len(m_ids), p=geo.lsoa_weight)
    for i in np.flatnonzero(r < 0.95):
        pool = (np.flatnonzero(geo.lsoa_pcn == old_pcn[i]) if r[i] < 0.7
                else np.flatnonzero(geo.lsoa_place == geo.lsoa_place[old_lsoa[i]]))
        new_lsoa[i] = pool[rng.integers(len(pool))]
    new_pcn = geo.lsoa_pcn[new_lsoa]
    new_practice = _practice_in_pcn(rng, geo, new_pcn, 0.05)
    change_practice = (new_pcn != old_pcn) & (rng.random(len(m_ids)) < 0.7)
    people.change_state(m_ids, dates[move],
                        practice=np.where(change_practice, new_practice, people.practice[m_ids]),
                        postcode=_postcode_in_lsoa(rng, geo, new_lsoa),
                        care_home=np.full(len(m_ids), -1))
    s_ids = ids[switch]
    pcn = geo.practice_pcn[people.practice[s_ids]]
    people.change_state(s_ids, dates[switch], practice=_practice_in_pcn(rng, geo, pcn, 0.1),
                        postcode=people.postcode[s_ids], care_home=np.full(len(s_ids), -1))

    women = (people.female[ids] == 1) & (state.age >= 20) & (state.age < 45)
    wed = women & (people.surname_change[ids] == OPEN) & (hi > lo) & (
        rng.random(len(ids)) < pop["surname_change_per_1000_women_20_44"] / 1000 * years)
    w_ids = ids[wed]
    people.prev_family[w_ids] = people.family[w_ids]
    people.family[w_ids] = rng.choice(np.unique(people.view("family")), size=len(w_ids))
    people.surname_change[w_ids] = dates[wed]
