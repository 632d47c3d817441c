"""Run the synthetic ICS forward in time: demography, then each year's activity."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from openphm.synth import casemix, demography, hospital, services
from openphm.synth.geography import Geography, build_geography
from openphm.synth.names import NameBank
from openphm.synth.parameters import load_items, load_parameters, per_band
from openphm.synth.people import People
from openphm.synth.periods import place_of_postcode, year_periods
from openphm.synth.risk import Effects, draw_effects, person_year

EPOCH = dt.date(1970, 1, 1)


def to_days(day: dt.date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH).days


def add_years(day: dt.date, years: int) -> dt.date:
    """The same day `years` later (28 February for 29 February in a non-leap year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass
class CareModel:
    """The new care model as injected: which practices, from when (`starts`, one date per practice in
    `practices`: equal unless adoption is staggered), and its true effect."""

    practices: np.ndarray
    start: dt.date  # the first practice's start
    effect: float
    eligible_min_age: int
    starts: list[dt.date] = field(default_factory=list)

    def start_of(self) -> list[dt.date]:
        """Each joining practice's start date."""
        return self.starts or [self.start] * len(self.practices)

    def as_thinning(self, n_practices: int) -> dict:
        """The form the activity generators use: the start day of every practice (never for those
        that do not join)."""
        start_day = np.full(n_practices, np.iinfo(np.int64).max, dtype=np.int64)
        start_day[self.practices] = [to_days(d) for d in self.start_of()]
        return {"start_day": start_day, "effect": self.effect, "eligible_min_age": self.eligible_min_age}


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later (the first of the month stays the first)."""
    index = day.year * 12 + day.month - 1 + months
    return day.replace(year=index // 12, month=index % 12 + 1)


@dataclass
class Simulation:
    """Everything the extract writers need."""

    geo: Geography
    names: NameBank
    people: People
    effects: Effects
    start: dt.date
    years: int
    year_starts: list[int]
    delayed_share: np.ndarray
    coordinator_cover: np.ndarray
    plan_cover: np.ndarray
    care_model: CareModel | None
    seed: int
    n_people: int
    risk: list[pl.DataFrame] = field(default_factory=list)
    prevented: list[pl.DataFrame] = field(default_factory=list)


def spread(rng: np.random.Generator, n: int, mean: float, ratio: float) -> np.ndarray:
    """`n` values, log-evenly spread so max/min = ratio, with the given mean, in random order."""
    values = ratio ** (np.linspace(-0.5, 0.5, n))
    return rng.permutation(values / values.mean() * mean)


def choose_care_model_practices(rng: np.random.Generator, geo: Geography, people: People,
                                share: float) -> np.ndarray:
    """Practices that join: likelier when larger and more deprived (so naive comparisons are biased)."""
    practice = people.view("practice")
    dep = geo.lsoa_deprivation[geo.postcode_lsoa[people.view("postcode")]]
    size = np.bincount(practice, minlength=len(geo.practice_code)).astype(float)
    mean_dep = np.bincount(practice, dep, len(geo.practice_code)) / np.maximum(size, 1)
    return choose_joiners(rng, size, mean_dep, share)


def choose_joiners(rng: np.random.Generator, size: np.ndarray, mean_deprivation: np.ndarray,
                   share: float) -> np.ndarray:
    """Indices of the practices that join, from their list sizes and mean deprivation: a logit-like
    score (the parameters' log-odds per standard deviation, Gumbel noise) and the top `share`."""
    cm = load_parameters()["care_model"]
    size, mean_deprivation = np.asarray(size, dtype=float), np.asarray(mean_deprivation, dtype=float)

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / (x.std() or 1.0)

    score = (cm["deprivation_logodds"] * z(mean_deprivation) + cm["list_size_logodds"] * z(np.log(size + 1))
             + rng.gumbel(size=len(size)))
    n_join = max(1, round(share * len(size)))
    return np.sort(np.argsort(-score)[:n_join])


Sink = Callable[[str, int, pl.DataFrame], None]


def setup(n_people: int, years: int, seed: int, start: dt.date, care_model: bool,
          care_model_start: dt.date | None, care_model_effect: float, care_model_waves: int = 1) -> Simulation:
    """Build the ICS as it stands on the start date."""
    params = load_parameters()
    geo = build_geography(_stream(seed, 1), n_people, n_people * 0.0048)
    names = NameBank()
    people = People(int(n_people * (1 + 0.12 * years)) + 1000, len(load_items().ids))
    start_days = to_days(start)
    ids = demography.initial_population(_stream(seed, 2), geo, names, people, n_people, start_days)
    effects = draw_effects(_stream(seed, 3), geo)
    state0 = person_year(_stream(seed, 4), people, geo, effects, ids, start_days)
    demography.place_initial_care_home_residents(_stream(seed, 5), geo, people, state0, start_days)
    rng = _stream(seed, 6)
    n_place = len(geo.place_code)
    hosp, mh = params["hospital"], params["mental_health"]
    delayed = spread(rng, n_place, hosp["delayed_share_mean"], hosp["delayed_share_ratio_between_places"])
    cover = spread(rng, n_place, mh["care_coordinator_mean"], mh["care_coordinator_ratio_between_places"])
    plan = np.clip(cover * mh["care_plan_mean"] / mh["care_coordinator_mean"], 0, 0.97)
    model = None
    if care_model:
        cm = params["care_model"]
        chosen = choose_care_model_practices(_stream(seed, 7), geo, people, cm["practice_share"])
        first = care_model_start or add_years(start, 2)
        # staggered adoption: the joiners split at random into waves, each starting some months after
        # the one before (its own stream, so the joiners and every other draw stay the same)
        wave = _stream(seed, 8).permutation(np.arange(len(chosen)) % max(care_model_waves, 1))
        starts = [add_months(first, int(w) * cm["wave_gap_months"]) for w in wave]
        model = CareModel(practices=chosen, start=first, effect=care_model_effect,
                          eligible_min_age=cm["eligible_min_age"], starts=starts)
    return Simulation(geo=geo, names=names, people=people, effects=effects, start=start, years=years,
                      year_starts=[to_days(add_years(start, y)) for y in range(years + 1)],
                      delayed_share=delayed, coordinator_cover=cover, plan_cover=plan,
                      care_model=model, seed=seed, n_people=n_people)


def care_model_cells(events: pl.DataFrame, outcome: str, date: str, min_age: int) -> pl.DataFrame:
    """The care model's truth for one outcome: by practice, month and group (the eligible ages, care-home
    residents under them, everyone else), the events there would have been without the model and
    those it prevented, so that the exact effect for any population and period can be computed."""
    group = (pl.when(pl.col("age") >= min_age).then(pl.lit(f"aged {min_age}+"))
             .when(pl.col("care_home") >= 0).then(pl.lit(f"care home, under {min_age}"))
             .otherwise(pl.lit("other")))
    return (events.select(pl.col("practice").cast(pl.Int32),
                          pl.from_epoch(pl.col(date).cast(pl.Int64), time_unit="d").dt.truncate("1mo").alias("month"),
                          group.alias("group"), pl.col("prevented"))
            .group_by("practice", "month", "group")
            .agg(pl.len().cast(pl.Int64).alias("events"), pl.col("prevented").sum().cast(pl.Int64).alias("prevented"))
            .with_columns(pl.lit(outcome).alias("outcome")))


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def run_years(sim: Simulation, sink: Sink, step: Callable[[str], None] = lambda _: None) -> None:
    """Simulate each year in turn, handing each year's activity tables to `sink`."""
    params = load_parameters()
    geo, people, effects = sim.geo, sim.people, sim.effects
    thinning = sim.care_model.as_thinning(len(geo.practice_code)) if sim.care_model else None
    place_of = place_of_postcode(geo, np.arange(len(geo.postcode)))
    emergency_curve = per_band(params["activity_per_1000"]["emergency_admission"])
    home_is_nursing = geo.care_home_type == "nursing"
    in_hospital_until = np.zeros(0, dtype=np.int64)  # by person: the discharge of their latest written spell
    held_back: pl.DataFrame | None = None

    def write_spells(year: int, frame: pl.DataFrame) -> None:
        np.maximum.at(in_hospital_until, frame["pid"].to_numpy().astype(np.int64),
                      frame["discharge_date"].to_numpy().astype(np.int64))
        sink("apc", year, frame.filter(~pl.col("prevented")).drop("prevented", "year_index"))

    for y in range(sim.years):
        rng = _stream(sim.seed, 100 + y)
        if thinning:
            thinning["rng"] = _stream(sim.seed, 500 + y)
        y0, y1 = sim.year_starts[y], sim.year_starts[y + 1]
        mid = (y0 + y1) // 2
        present = np.flatnonzero((people.view("exit") > y0) & (people.view("entry") < y1))
        state = person_year(rng, people, geo, effects, present, mid)
        demography.exits(rng, people, state, y0, y1)
        target = int(sim.n_people * 1.004 ** (y + 1))
        new = demography.arrivals(rng, geo, sim.names, people, present, y0, y1, target)
        state = state.concat(person_year(rng, people, geo, effects, new, mid))
        demography.moves(rng, geo, people, state, y0, y1)
        periods = year_periods(people, state, y0, y1)
        babies = new[people.mother[new] >= 0]
        casemix_rng = _stream(sim.seed, 700 + y)  # its own stream: case mix moves no other draw
        spells = pl.concat([
            hospital.emergency_spells(rng, periods, state, people, thinning, y0, y1),
            hospital.elective_spells(rng, periods, state),
            hospital.maternity_spells(rng, periods, state, people, babies, casemix_rng),
            hospital.mental_health_spells(_stream(sim.seed, 800 + y), periods, state, people),
        ], how="vertical_relaxed")
        spells = hospital.add_delays(rng, spells, sim.delayed_share, place_of)
        dialysis = hospital.dialysis_spells(casemix_rng, periods, state)
        if dialysis.height:
            spells = pl.concat([spells, hospital.add_delays(casemix_rng, dialysis, sim.delayed_share, place_of)],
                               how="vertical_relaxed")
        spells = casemix.add_casemix(casemix_rng, spells)
        # A person is in one spell at a time. Last year's spells are held back until this year's
        # deaths are known, since a death in hospital can end a spell that began last year.
        if len(in_hospital_until) < people.n:
            in_hospital_until = np.r_[in_hospital_until, np.zeros(people.n - len(in_hospital_until), dtype=np.int64)]
        spells = spells.with_columns(pl.lit(y, pl.Int32).alias("year_index"))
        both = spells if held_back is None else pl.concat([held_back, spells], how="vertical_relaxed")
        both = hospital.one_spell_at_a_time(both, in_hospital_until, people.exit[: people.n].astype(np.int64))
        if held_back is not None:
            write_spells(y - 1, both.filter(pl.col("year_index") == y - 1))
        spells = held_back = both.filter(pl.col("year_index") == y)
        hospital.record_onsets(spells, people)  # a prevented admission prevents the stay, not the disease
        ae = hospital.ae_attendances(rng, periods, state, spells, thinning)
        sink("ecds", y, ae.filter(~pl.col("prevented")).drop("prevented"))
        min_age = params["care_model"]["eligible_min_age"]
        sim.prevented.append(pl.concat([
            care_model_cells(spells.filter(pl.col("kind") == "emergency"), "emergency admissions", "admission_date",
                             min_age),
            care_model_cells(ae, "A&E attendances", "arrival_date", min_age)]))
        del spells, ae
        sink("op", y, services.outpatients(rng, periods, state))
        sink("gp_appointments", y, services.gp_appointments(rng, periods, state))
        sink("csds", y, services.community_contacts(rng, periods, state))
        sink("mhsds", y, services.mental_health_contacts(rng, periods, state, place_of,
                                                         sim.coordinator_cover, sim.plan_cover, y0))
        sink("asc", y, services.social_care(rng, periods, state, people, home_is_nursing, y0, y1))
        sink("vcse", y, services.vcse_referrals(rng, periods, state))
        expected = emergency_curve[state.band] / 1000 * state.relative(1.0)
        sim.risk.append(pl.DataFrame({
            "pid": state.ids.astype(np.int32), "year_index": np.full(len(state.ids), y, dtype=np.int8),
            "expected_emergency_admissions": expected.astype(np.float32),
            "risk_of_emergency_admission": (1 - np.exp(-expected)).astype(np.float32),
            "log_latent_risk": state.log_m.astype(np.float32), "efi": state.efi.astype(np.float32),
        }))
        step(f"year {y + 1}")
    if held_back is not None:
        write_spells(sim.years - 1, held_back)
