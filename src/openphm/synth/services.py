"""Outpatient, primary care, community, mental health, social care and voluntary-sector activity.

Each is a Poisson process per period at the band's published rate times the person's
relative risk raised to the activity's elasticity, with extra weight for the conditions
that drive it (serious mental illness for mental health services, depression and living
alone for social prescribing, being housebound for community nursing).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.special import ndtri

from openphm.synth.categories import code, enum, pick
from openphm.synth.parameters import load_items, load_parameters, per_band
from openphm.synth.people import People
from openphm.synth.periods import Periods, draw_events, period_rate
from openphm.synth.risk import PersonYear, persistent_normal
from openphm.synth.writers import NO_DATE


def _events(rng: np.random.Generator, periods: Periods, state: PersonYear, activity: str,
            extra: np.ndarray | None, date_name: str,
            dispersion: float | None = None,
            only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Draw one activity's events: (period index, date, the common columns). With `dispersion`, each
    period's rate is multiplied by a gamma draw of that shape and mean 1 (events that come in courses).
    With `only` (per person of `state`), the events fall on those people alone, each age band's total
    kept: the rest of the band's expected events move to them in proportion to their rates."""
    params = load_parameters()
    rate = period_rate(periods, state, params["activity_per_1000"][activity],
                       params["risk"]["elasticity"][activity], extra)
    if only is not None:
        kept = np.where(only[periods.pos], rate, 0.0)
        band_total = np.bincount(periods.band, weights=rate, minlength=19)
        band_kept = np.bincount(periods.band, weights=kept, minlength=19)
        rate = kept * np.where(band_kept > 0, band_total / np.maximum(band_kept, 1e-300), 0.0)[periods.band]
    if dispersion:
        rate = rate * rng.gamma(dispersion, 1 / dispersion, len(rate))
    idx, date = draw_events(rng, periods, rate)
    cols = {"pid": periods.pid[idx].astype(np.int32), date_name: date.astype(np.int32),
            "practice": periods.practice[idx].astype(np.int32),
            "postcode": periods.postcode[idx].astype(np.int32)}
    return idx, date, cols


HCP = ["GP", "Nurse", "Other Practice staff"]
MODES = ["Face-to-Face", "Telephone", "Video/Online", "Home Visit"]
STATUS = ["Attended", "DNA", "Unknown"]


def gp_appointments(rng: np.random.Generator, periods: Periods, state: PersonYear) -> pl.DataFrame:
    """GP practice appointments with staff type, mode and attendance status."""
    extra = 0.3 * state.has_item("depression")
    idx, _, cols = _events(rng, periods, state, "gp_appointment", extra, "appointment_date")
    n = len(idx)
    homebound = (periods.care_home[idx] >= 0) | state.has_item("housebound")[periods.pos[idx]]
    mode = pick(rng, MODES, [0.68, 0.30, 0.02, 0.0], n)
    mode[homebound & (rng.random(n) < 0.35)] = code(MODES, "Home Visit")
    cols["hcp_type"] = enum(HCP, pick(rng, HCP, [0.46, 0.25, 0.29], n))
    cols["appointment_mode"] = enum(MODES, mode)
    cols["appointment_status"] = enum(STATUS, pick(rng, STATUS, [0.95, 0.04, 0.01], n))
    del cols["postcode"]
    return pl.DataFrame(cols)


OP_SPECIALTIES = ["100", "101", "110", "120", "130", "300", "320", "330", "340", "361", "370",
                  "400", "410", "430", "502", "420"]


def outpatients(rng: np.random.Generator, periods: Periods, state: PersonYear) -> pl.DataFrame:
    """Outpatient appointments: first or follow-up, attended or did not attend, by specialty."""
    extra = 1.0 * state.has_item("cancer") + 0.15 * state.has[:, load_items().condition_mask].sum(axis=1)
    idx, _, cols = _events(rng, periods, state, "outpatient_attendance", extra, "appointment_date",
                           load_parameters()["outpatient_course_shape"])
    n = len(idx)
    age = periods.age[idx]
    spec = pick(rng, OP_SPECIALTIES, [8, 5, 12, 6, 10, 8, 7, 5, 5, 2, 6, 4, 3, 3, 5, 0], n)
    spec[age < 16] = code(OP_SPECIALTIES, "420")
    spec[(age < 45) & (spec == code(OP_SPECIALTIES, "430"))] = code(OP_SPECIALTIES, "300")
    cancer = state.has_item("cancer")[periods.pos[idx]] & (rng.random(n) < 0.4)
    spec[cancer] = code(OP_SPECIALTIES, "370")
    cols["treatment_specialty"] = enum(OP_SPECIALTIES, spec)
    cols["first_attendance"] = enum(["1", "2"], (rng.random(n) >= 0.35).astype(np.uint8))
    dep = state.dep[periods.pos[idx]]
    cols["attendance_status"] = enum(["5", "3"], (rng.random(n) < 0.07 * (1 + 0.5 * dep)).astype(np.uint8))
    return pl.DataFrame(cols)


def community_contacts(rng: np.random.Generator, periods: Periods, state: PersonYear) -> pl.DataFrame:
    """Community health contacts (CSDS-like): health visiting, district nursing, therapies."""
    extra = 0.8 * state.has_item("housebound") + 0.5 * state.has_item("skin_ulcer")
    idx, _, cols = _events(rng, periods, state, "community_contact", extra, "contact_date")
    n = len(idx)
    age = periods.age[idx]
    team = pick(rng, TEAMS, [45, 20, 15, 8, 9, 3, 0, 0, 0], n)
    young = age < 65
    team[young] = pick(rng, TEAMS, [30, 40, 20, 0, 0, 0, 10, 0, 0], int(young.sum()))
    team[age < 19] = code(TEAMS, "School Nursing")
    team[age < 5] = code(TEAMS, "Health Visiting")
    cols["team_type"] = enum(TEAMS, team)
    home = np.isin(team, [code(TEAMS, t) for t in ("District Nursing", "Community Matron", "Health Visiting")])
    location = np.where(home & (rng.random(n) < 0.85), 0, np.where(rng.random(n) < 0.8, 1, 2))
    cols["contact_location"] = enum(["Home", "Clinic", "Telephone"], location)
    return pl.DataFrame(cols)


TEAMS = ["District Nursing", "Physiotherapy", "Podiatry", "Community Matron", "Intermediate Care",
         "Speech and Language Therapy", "Continence", "School Nursing", "Health Visiting"]
MH_TEAMS = ["Community Mental Health Team", "Crisis Resolution", "Psychological Therapies",
            "Liaison Psychiatry", "Early Intervention in Psychosis", "Memory Service", "CAMHS"]


def in_mental_health_contact(rng: np.random.Generator, state: PersonYear) -> np.ndarray:
    """Whether each person is in contact with secondary mental health services this year: a chance
    from their conditions (`mental_health.in_contact`: one minus the chance that no condition, nor
    the chance everyone has, brings them into contact), read at a probit score that is mostly the
    person's own from year to year (`persistence`) and partly this year's."""
    chance = load_parameters()["mental_health"]["in_contact"]
    stay_out = np.full(len(state.ids), 1 - chance["other"])
    for item in ("smi", "dementia", "learning_disability", "depression"):
        stay_out *= np.where(state.has_item(item), 1 - chance[item], 1.0)
    rho = chance["persistence"]
    score = (rho * persistent_normal(state.ids, salt=MH_SALT)
             + np.sqrt(1 - rho ** 2) * rng.standard_normal(len(state.ids)))
    return score < ndtri(np.clip(1 - stay_out, 1e-12, 1 - 1e-12))


MH_SALT = 1


def mental_health_contacts(rng: np.random.Generator, periods: Periods, state: PersonYear,
                           place_of: np.ndarray, coordinator_cover: np.ndarray,
                           plan_cover: np.ndarray, y0: int) -> pl.DataFrame:
    """Secondary mental health contacts (MHSDS-like) with care coordinator and care plan status, of the
    people in contact with services in the year (`in_mental_health_contact`)."""
    smi = state.has_item("smi")
    extra = (3.0 * smi + 1.3 * state.has_item("depression") + 1.0 * state.has_item("dementia")
             + 1.0 * state.has_item("learning_disability"))
    idx, date, cols = _events(rng, periods, state, "mental_health_contact", extra, "contact_date",
                              only=in_mental_health_contact(rng, state))
    n = len(idx)
    pos = periods.pos[idx]
    age = periods.age[idx]
    # Care coordination and care plans are per person and year, and vary by place (IPPR 2021).
    place = place_of[periods.postcode]
    person_place = np.zeros(len(state.ids), dtype=np.int64)
    person_place[periods.pos] = place
    u = rng.random(len(state.ids))
    has_cc = np.where(smi, u < coordinator_cover[person_place], u < 0.03)
    has_plan = np.where(smi, (u < coordinator_cover[person_place])
                        | (rng.random(len(state.ids)) < plan_cover[person_place] - coordinator_cover[person_place]),
                        u < 0.05)
    plan_date = y0 + rng.integers(0, 300, len(state.ids))
    team = pick(rng, MH_TEAMS, [55, 10, 30, 5, 0, 0, 0], n)
    team[smi[pos] & (age < 35) & (rng.random(n) < 0.4)] = code(MH_TEAMS, "Early Intervention in Psychosis")
    team[(age >= 65) & state.has_item("dementia")[pos]] = code(MH_TEAMS, "Memory Service")
    team[age < 18] = code(MH_TEAMS, "CAMHS")
    cols["team_type"] = enum(MH_TEAMS, team)
    cols["care_coordinator"] = enum(["N", "Y"], has_cc[pos].astype(np.uint8))
    plan_ok = has_plan[pos] & (plan_date[pos] <= date)
    cols["care_plan_agreed_date"] = np.where(plan_ok, plan_date[pos], NO_DATE).astype(np.int32)
    return pl.DataFrame(cols)


def social_care(rng: np.random.Generator, periods: Periods, state: PersonYear, people: People,
                home_is_nursing: np.ndarray, y0: int, y1: int) -> pl.DataFrame:
    """Adult social care long-term support in the year: one row per person and service."""
    params = load_parameters()
    adult = state.age >= 18
    rel = state.relative(params["risk"]["elasticity"]["social_care_support"],
                         1.0 * state.has_item("learning_disability"))
    p = per_band(params["activity_per_1000"]["social_care_support"])[state.band] / 1000 * rel
    asc_start = people.asc_start
    # `p` is the share supported in a year. Most support continues (3 in 4 from one year to the next),
    # so new support starts at a quarter of that rate: otherwise people supported accumulate to about
    # four times the published share.
    p = np.where(asc_start[state.ids] >= 0, np.maximum(p, CONTINUES), p * (1 - CONTINUES))
    in_home = np.zeros(len(state.ids), dtype=bool)
    home_of = np.full(len(state.ids), -1)
    ch_periods = periods.care_home >= 0
    in_home[periods.pos[ch_periods]] = True
    home_of[periods.pos[ch_periods]] = periods.care_home[ch_periods]
    # About 37% of care-home residents in England pay for their own care and have no council service
    # (ONS, "Care homes and estimating the self-funding population, England: 2022 to 2023"); who they
    # are is fixed per person (a hash of the id), so funding does not change from year to year.
    council_funded = (state.ids.astype(np.uint64) * np.uint64(2654435761) % np.uint64(1000)) >= SELF_FUNDED_PER_1000
    supported = adult & ((in_home & council_funded) | (~in_home & (rng.random(len(state.ids)) < np.clip(p, 0, 1))))
    ids = state.ids[supported]
    exit_date = people.exit[ids]
    new = asc_start[ids] < 0
    start = np.where(in_home[supported], np.maximum(people.first_care_start[ids], 0), asc_start[ids])
    lo = np.maximum(people.entry[ids], y0)
    fresh = lo + np.floor(rng.random(len(ids)) * np.maximum(np.minimum(exit_date, y1) - lo, 1))
    start = np.where(start < 0, fresh, start).astype(np.int64)
    asc_start[ids[new & ~in_home[supported]]] = start[new & ~in_home[supported]]
    ld = state.has_item("learning_disability")[supported]
    service = pick(rng, SERVICES, [60, 15, 10, 15, 0, 0, 0], len(ids))
    service[ld] = code(SERVICES, "Supported Living")
    home = home_of[supported]
    nursing = home_is_nursing[np.maximum(home, 0)]
    service[home >= 0] = np.where(nursing[home >= 0], code(SERVICES, "Nursing Care"),
                                  code(SERVICES, "Residential Care"))
    # Reablement is short-term support (up to six weeks, NHS Digital ASC-FR): it ends, and only a new
    # start is reablement (continuing support is home care).
    reable = service == code(SERVICES, "Short Term Reablement")
    service[reable & ~new] = code(SERVICES, "Home Care")
    reable &= new
    end = np.where(exit_date < y1, exit_date, NO_DATE)
    end = np.where(reable, np.minimum(np.where(end == NO_DATE, start + REABLEMENT_DAYS, end), start + REABLEMENT_DAYS),
                   end)
    asc_start[ids[reable]] = -1  # after reablement, support continues only if it starts again
    return pl.DataFrame({
        "pid": ids, "start_date": start, "end_date": end.astype(np.int64),
        "service_type": enum(SERVICES, service), "care_home": home,
    })


CONTINUES = 0.75
SELF_FUNDED_PER_1000 = 370
REABLEMENT_DAYS = 42
SERVICES = ["Home Care", "Direct Payment", "Day Care", "Short Term Reablement", "Supported Living",
            "Nursing Care", "Residential Care"]
REASONS = ["Loneliness and isolation", "Mental wellbeing", "Debt and benefits", "Housing",
           "Physical activity", "Carer support"]


def vcse_referrals(rng: np.random.Generator, periods: Periods, state: PersonYear) -> pl.DataFrame:
    """Social prescribing referrals to the voluntary sector."""
    extra = (1.0 * state.has_item("depression") + 0.8 * state.has_item("social_vulnerability")
             + 0.4 * state.dep)
    idx, _, cols = _events(rng, periods, state, "vcse_referral", extra, "referral_date")
    cols["referral_reason"] = enum(REASONS, pick(rng, REASONS, [30, 25, 15, 10, 12, 8], len(idx)))
    return pl.DataFrame(cols)
