"""Hospital activity for one year: emergency, elective and maternity spells, and A&E.

Emergency admissions: a Poisson process at the band's rate (less the part made up by
readmissions, by admissions that end in death and by those near the end of life), each
admission followed by another within 30 days with `readmission_chance`; 72% arrive through a
type 1 A&E department, which makes about 26% of type 1 attendances admitted. People in their
last year of life have more (`end_of_life_events`), so that about 15% of emergency admissions
are theirs. Length of stay: a third zero-day, the rest 1 + a gamma-Poisson count with the
band's mean. Delays after the discharge-ready
date for people 65+ are set per place and year so that delayed bed days are the place's
target share of all bed days (shares spread ~9x between places).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from openphm.synth import casemix
from openphm.synth.categories import enum
from openphm.synth.diagnoses import (
    elective_primary,
    emergency_primary,
    secondary_diagnoses,
    specialty_for,
)
from openphm.synth.parameters import load_parameters, per_band
from openphm.synth.people import EXIT_DIED, People
from openphm.synth.periods import (
    Periods,
    care_model_prevented,
    draw_events,
    period_rate,
)
from openphm.synth.risk import PersonYear, persistent_propensity


def _spell_frame(rng: np.random.Generator, periods: Periods, state: PersonYear, idx: np.ndarray,
                 admit: np.ndarray, los: np.ndarray, *, method: np.ndarray, kind: str,
                 primary: np.ndarray, specialty: np.ndarray, classification: np.ndarray,
                 died: np.ndarray | None = None, hrg: np.ndarray | None = None,
                 critical_care: np.ndarray | None = None) -> pl.DataFrame:
    pos = periods.pos[idx]
    died = np.zeros(len(idx), dtype=bool) if died is None else died
    hrg = np.full(len(idx), None, dtype=object) if hrg is None else hrg
    critical_care = np.zeros(len(idx), dtype=np.int64) if critical_care is None else critical_care
    secondary = secondary_diagnoses(rng, state.has[pos], state.efi[pos], primary)
    cols = {
        "pid": periods.pid[idx].astype(np.int32), "admission_date": admit.astype(np.int32), "los": los,
        "admission_method": method, "kind": np.full(len(idx), kind, dtype=object),
        "patient_classification": classification, "died": died,
        "practice": periods.practice[idx], "postcode": periods.postcode[idx],
        "care_home": periods.care_home[idx], "age": periods.age[idx], "treatment_specialty": specialty,
        "prevented": np.zeros(len(idx), dtype=bool),
        "hrg": pl.Series(hrg, dtype=pl.Utf8), "critical_care_days": critical_care.astype(np.int64),
        "diag_01": primary,
    }
    for j, col in enumerate(secondary, start=2):
        cols[f"diag_{j:02d}"] = col
    return pl.DataFrame(cols, schema_overrides={"admission_method": pl.Utf8,
                                                "treatment_specialty": pl.Utf8})


def _los(rng: np.random.Generator, band: np.ndarray, age: np.ndarray) -> np.ndarray:
    hosp = load_parameters()["hospital"]
    p0 = np.where(age < 45, 0.45, np.where(age < 75, 0.33, 0.22)) * hosp["emergency_zero_day_share"] / 0.33
    mean = per_band(hosp["emergency_los_mean"])[band] - 1
    shape = 1.3
    stay = 1 + rng.poisson(rng.gamma(shape, mean / shape))
    return np.where(rng.random(len(band)) < p0, 0, stay)


def end_of_life_share(days: float) -> float:
    """Mean share of a last year of life's end-of-life admissions that fall within the year of death
    (deaths are drawn year by year, so admissions before the year began are not drawn), for a death
    uniform in the year and an intensity exp(-(time to death) / days)."""
    whole = 1 - np.exp(-365.25 / days)
    return float((1 - days / 365.25 * whole) / whole)


def end_of_life_events(rng: np.random.Generator, periods: Periods, people: People) -> tuple[np.ndarray, np.ndarray]:
    """(period index, date) of emergency admissions added near the end of life: for each period of a
    person who dies this year, a Poisson count at `end_of_life_admissions` per last year of life, with
    an intensity rising as exp(-(death - t) / end_of_life_days) towards death, dated by inverting its
    cumulative intensity."""
    hosp = load_parameters()["hospital"]
    days, total = hosp["end_of_life_days"], hosp["end_of_life_admissions"]
    death = people.exit[periods.pid].astype(np.float64)
    dies = people.exit_reason[periods.pid] == EXIT_DIED  # this year's deaths: next year's are not yet drawn
    start = np.maximum(periods.start, death - 365.25)
    lo = np.where(dies, np.exp(-(death - start) / days), 0.0)
    hi = np.where(dies, np.exp(-np.maximum(death - periods.end, 0) / days), 0.0)
    expected = total * np.maximum(hi - lo, 0) / (1 - np.exp(-365.25 / days))
    idx = np.repeat(np.arange(len(expected)), rng.poisson(expected))
    u = rng.random(len(idx))
    date = np.floor(death[idx] + days * np.log(lo[idx] + u * (hi[idx] - lo[idx]))).astype(np.int64)
    return idx, np.clip(date, periods.start[idx], periods.end[idx] - 1)


def emergency_spells(rng: np.random.Generator, periods: Periods, state: PersonYear,
                     people: People, model: dict | None, y0: int, y1: int) -> pl.DataFrame:
    """Emergency admissions (with readmissions and deaths in hospital) starting in [y0, y1)."""
    params = load_parameters()
    hosp = params["hospital"]
    curve = per_band(params["activity_per_1000"]["emergency_admission"])
    mort = per_band(params["mortality"]["per_1000"])
    hospital_death = params["mortality"]["place_of_death"]["hospital"]
    end_of_life = hosp["end_of_life_admissions"] * end_of_life_share(hosp["end_of_life_days"])
    primary_curve = np.maximum(curve / (1 + hosp["readmission_chance"]) - (hospital_death + end_of_life) * mort,
                               0.5 * curve)
    # frequent A&E attenders are admitted more often too: half their propensity (on the log scale)
    frequent = 0.5 * np.log(persistent_propensity(state.ids, params["risk"]["frequent_attender_shape"]))
    idx, admit = draw_events(rng, periods, period_rate(periods, state, primary_curve, 1.0, frequent))
    eol_idx, eol_admit = end_of_life_events(rng.spawn(1)[0], periods, people)
    idx, admit = np.concatenate([idx, eol_idx]), np.concatenate([admit, eol_admit])
    exit_date = people.exit[periods.pid]

    all_idx, all_admit = [idx], [admit]
    all_los = [_los(rng, periods.band[idx], periods.age[idx])]
    all_prevented = [care_model_prevented(periods, idx, admit, model)]
    for _ in range(2):  # readmissions, and readmissions of readmissions
        src_idx, src_admit, src_los, src_prev = all_idx[-1], all_admit[-1], all_los[-1], all_prevented[-1]
        again = rng.random(len(src_idx)) < hosp["readmission_chance"]
        r_date = src_admit[again] + src_los[again] + rng.integers(1, 31, int(again.sum()))
        ok = r_date < exit_date[src_idx[again]]
        r_idx, r_date = src_idx[again][ok], r_date[ok]
        # a readmission after a prevented admission was prevented with it
        r_prev = src_prev[again][ok] | care_model_prevented(periods, r_idx, r_date, model)
        all_idx.append(r_idx)
        all_admit.append(r_date)
        all_los.append(_los(rng, periods.band[r_idx], periods.age[r_idx]))
        all_prevented.append(r_prev)
    idx, admit, los, prevented = (np.concatenate(a) for a in (all_idx, all_admit, all_los, all_prevented))
    # Spells may not outlast the person; a stay past their death is cut at the death date.
    los = np.minimum(los, np.maximum(exit_date[idx] - admit, 0))

    # Deaths in hospital: the person's last period of the year, ending on the death date.
    last = np.r_[periods.pid[1:] != periods.pid[:-1], True]
    dying = last & (people.exit_reason[periods.pid] == EXIT_DIED) & (exit_date == periods.end)
    in_hospital = dying & (rng.random(len(periods.pid)) < np.where(periods.care_home >= 0, 0.35,
                                                                     hospital_death * 1.05))
    d_idx = np.flatnonzero(in_hospital)
    d_los = np.minimum(1 + rng.geometric(1 / 9, len(d_idx)), periods.end[d_idx] - periods.start[d_idx])
    d_admit = periods.end[d_idx] - d_los

    n_live = len(idx)
    idx = np.concatenate([idx, d_idx])
    admit = np.concatenate([admit, d_admit])
    los = np.concatenate([los, d_los])
    died = np.r_[np.zeros(n_live, dtype=bool), np.ones(len(d_idx), dtype=bool)]
    prevented = np.r_[prevented, np.zeros(len(d_idx), dtype=bool)]
    pos = periods.pos[idx]
    primary = emergency_primary(rng, periods.age[idx], state.has[pos])
    method = np.where(rng.random(len(idx)) < hosp["emergency_via_ae_share"], "21",
                      rng.choice(np.array(["22", "23", "24", "28"]), size=len(idx)))
    frame = _spell_frame(rng, periods, state, idx, admit, los, method=method, kind="emergency",
                         primary=primary, specialty=specialty_for(primary, periods.age[idx]),
                         classification=np.ones(len(idx), dtype=np.int64), died=died)
    return frame.with_columns(pl.Series("prevented", prevented)).filter(pl.col("admission_date") < y1)


def elective_spells(rng: np.random.Generator, periods: Periods, state: PersonYear) -> pl.DataFrame:
    """Elective admissions (waiting list, booked, planned): a day case or not as the diagnosis usually is
    (`casemix.day_case_share`), most of them day cases."""
    params = load_parameters()
    hosp = params["hospital"]
    rate = period_rate(periods, state, params["activity_per_1000"]["elective_admission"],
                       params["risk"]["elasticity"]["elective_admission"])
    idx, admit = draw_events(rng, periods, rate)
    pos = periods.pos[idx]
    primary, specialty = elective_primary(rng, periods.age[idx], state.has[pos])
    share = {d: casemix.day_case_share(d) for d in np.unique(primary)}
    day_case = rng.random(len(idx)) < np.array([share[d] for d in primary], dtype=float)
    stay = 1 + rng.poisson(hosp["elective_los_mean"] - 1, len(idx))
    los = np.where(day_case, 0, stay)
    method = rng.choice(np.array(["11", "12", "13"]), size=len(idx), p=[0.6, 0.3, 0.1])
    return _spell_frame(rng, periods, state, idx, admit, los, method=method, kind="elective",
                        primary=primary, specialty=specialty,
                        classification=np.where(day_case, 2, 1))


def maternity_spells(rng: np.random.Generator, periods: Periods, state: PersonYear, people: People,
                     babies: np.ndarray, casemix_rng: np.random.Generator) -> pl.DataFrame:
    """A delivery spell for each mother and a birth spell for each baby born in hospital (97%); babies
    admitted for neonatal care (`casemix.neonatal_days`) stay for their days of it."""
    if len(babies) == 0:
        return pl.DataFrame()
    babies = babies[rng.random(len(babies)) < 0.97]
    mothers = people.mother[babies]
    dob = people.dob[babies]
    frames = []
    for who, method, kind, diag in ((mothers, "31", "maternity", "O800"),
                                    (babies, "82", "birth", "Z380")):
        # the period of this person that holds the birth date
        order = np.lexsort((periods.start, periods.pid))
        key = periods.pid[order] * (1 << 32) + periods.start[order]
        at = order[np.clip(np.searchsorted(key, who * (1 << 32) + dob, side="right") - 1, 0,
                           len(order) - 1)]
        ok = periods.pid[at] == who
        idx = at[ok]
        los = rng.integers(0, 3, len(idx))
        neonatal = casemix.neonatal_days(casemix_rng, len(idx)) if kind == "birth" else None
        if neonatal is not None:
            los = np.maximum(los, neonatal)
        frames.append(_spell_frame(
            rng, periods, state, idx, dob[ok], los, method=np.full(len(idx), method, dtype=object),
            kind=kind, primary=np.full(len(idx), diag, dtype=object),
            specialty=np.full(len(idx), "501" if kind == "maternity" else "424", dtype=object),
            classification=np.ones(len(idx), dtype=np.int64), critical_care=neonatal))
    return pl.concat(frames)


PSYCHIATRY = ("710", "711", "715")  # adult, child and adolescent, and old age psychiatry: mental health wards
MENTAL_HEALTH_DIAGNOSIS = {"smi": "F209", "dementia": "F03X", "learning_disability": "F79X", "depression": "F329"}


def mental_health_spells(rng: np.random.Generator, periods: Periods, state: PersonYear,
                         people: People) -> pl.DataFrame:
    """Admissions to mental health wards (`mental_health.inpatient`): a Poisson count per period at the
    highest rate among the person's conditions (`other` for anyone else aged 13+), stays log-normal
    around `median_days`, at most a year and not past the person's exit; admitted through a
    GP, clinic or crisis team (methods 22, 24, 28), under adult, child and adolescent or old age
    psychiatry (`PSYCHIATRY`), the condition's code as the primary diagnosis."""
    mh = load_parameters()["mental_health"]["inpatient"]
    has = {c: state.has_item(c)[periods.pos] for c in MENTAL_HEALTH_DIAGNOSIS}
    rate = np.where(periods.age >= 13, mh["other"], 0.0)
    primary = np.full(len(rate), "F99X", dtype=object)  # mental disorder, not otherwise specified
    for condition, code in MENTAL_HEALTH_DIAGNOSIS.items():
        higher = has[condition] & (mh[condition] > rate)
        rate, primary = np.where(higher, mh[condition], rate), np.where(higher, code, primary)
    idx, admit = draw_events(rng, periods, rate * periods.years)
    stay = np.rint(mh["median_days"] * np.exp(mh["sigma"] * rng.standard_normal(len(idx)))).astype(np.int64)
    exit_date = people.exit[periods.pid[idx]]
    los = np.clip(np.minimum(stay, exit_date - admit), 1, 365)
    age = periods.age[idx]
    specialty = np.where(age < 18, PSYCHIATRY[1], np.where(age >= 65, PSYCHIATRY[2], PSYCHIATRY[0])).astype(object)
    return _spell_frame(rng, periods, state, idx, admit, los,
                        method=rng.choice(np.array(["22", "24", "28"]), size=len(idx), p=[0.3, 0.1, 0.6]),
                        kind="emergency", primary=primary[idx], specialty=specialty,
                        classification=np.ones(len(idx), dtype=np.int64))


def dialysis_spells(rng: np.random.Generator, periods: Periods, state: PersonYear) -> pl.DataFrame:
    """Haemodialysis sessions of the people on dialysis (`casemix.on_dialysis`): regular day attender
    spells (patient classification 3, planned admission), three a week, primary diagnosis Z49.1."""
    on = casemix.on_dialysis(periods.pid, state.has_item("ckd")[periods.pos], periods.age)
    sub = np.flatnonzero(on)
    k, day = casemix.dialysis_sessions(periods.pid[sub].astype(np.int64), periods.start[sub], periods.end[sub])
    idx = sub[k]
    n = len(idx)
    return _spell_frame(rng, periods, state, idx, day, np.zeros(n, dtype=np.int64),
                        method=np.full(n, "13", dtype=object), kind="elective",
                        primary=np.full(n, "Z491", dtype=object), specialty=np.full(n, "361", dtype=object),
                        classification=np.full(n, 3, dtype=np.int64),
                        hrg=casemix.dialysis_hrg(periods.pid[idx].astype(np.int64)))


def add_delays(rng: np.random.Generator, spells: pl.DataFrame, place_share: np.ndarray,
               place_of: np.ndarray) -> pl.DataFrame:
    """Discharge-ready and discharge dates: delays for people 65+ after emergency stays of 2+ days,
    scaled per place so delayed bed days are the place's target share of all bed days."""
    hosp = load_parameters()["hospital"]
    los = spells["los"].to_numpy()
    place = place_of[spells["postcode"].to_numpy()]
    eligible = ((spells["kind"] == "emergency").to_numpy() & (spells["age"].to_numpy() >= hosp["delay_min_age"])
                & (los >= 2) & ~spells["died"].to_numpy())
    bed_days = np.bincount(place, weights=los, minlength=len(place_share))
    n_elig = np.bincount(place, weights=eligible, minlength=len(place_share))
    share = place_share
    mean_delay = share * bed_days / (1 - share) / np.maximum(n_elig, 1)
    # A minority of stays are delayed, some for weeks: a gamma-Poisson count with that mean.
    mu = mean_delay[place]
    delay = np.where(eligible, rng.poisson(rng.gamma(0.35, mu / 0.35)), 0)
    admit = spells["admission_date"].to_numpy()
    return spells.with_columns(
        pl.Series("discharge_ready_date", admit + los),
        pl.Series("discharge_date", admit + los + delay),
        pl.Series("delay_days", delay),
    )


def ae_attendances(rng: np.random.Generator, periods: Periods, state: PersonYear,
                   spells: pl.DataFrame, model: dict | None) -> pl.DataFrame:
    """A&E attendances: one for each emergency admission through A&E, plus those not admitted."""
    params = load_parameters()
    hosp = params["hospital"]
    via = spells.filter((pl.col("kind") == "emergency") & (pl.col("admission_method") == "21"))
    # The same random draws with or without a care model; the model only removes events (see periods.py).
    admitted = pl.DataFrame({
        "pid": via["pid"].cast(pl.Int32), "arrival_date": via["admission_date"].cast(pl.Int32),
        "department_type": enum(DEPARTMENTS, np.zeros(via.height, dtype=np.uint8)),
        "disposal": enum(DISPOSALS, np.zeros(via.height, dtype=np.uint8)),
        "practice": via["practice"].cast(pl.Int32), "postcode": via["postcode"].cast(pl.Int32),
        "age": via["age"].cast(pl.Float32), "care_home": via["care_home"].cast(pl.Int32),
        "prevented": via["prevented"],
    })
    curve = (per_band(params["activity_per_1000"]["ae_attendance"])
             - hosp["emergency_via_ae_share"] * per_band(params["activity_per_1000"]["emergency_admission"]))
    extra = (0.9 * state.has_item("smi") + 0.35 * state.has_item("depression")
             + np.log(persistent_propensity(state.ids, params["risk"]["frequent_attender_shape"])))
    rate = period_rate(periods, state, np.maximum(curve, 50), params["risk"]["elasticity"]["ae_attendance"],
                       extra)
    idx, date = draw_events(rng, periods, rate)
    prevented = care_model_prevented(periods, idx, date, model)
    types = hosp["ae_type_share"]
    # Type 1 share among attendances not admitted, so that type 1 is its share of all attendances.
    n_total = len(idx) + admitted.height
    t1 = max(types["01"] * n_total - admitted.height, 0) / max(len(idx), 1)
    rest = 1 - t1
    dept = rng.choice(3, size=len(idx), p=[t1, rest * types["02"] / (types["02"] + types["03"]),
                                           rest * types["03"] / (types["02"] + types["03"])])
    disposal = rng.choice(np.arange(1, 5), size=len(idx), p=[0.72, 0.20, 0.05, 0.03])
    other = pl.DataFrame({
        "pid": periods.pid[idx].astype(np.int32), "arrival_date": date.astype(np.int32),
        "department_type": enum(DEPARTMENTS, dept), "disposal": enum(DISPOSALS, disposal),
        "practice": periods.practice[idx].astype(np.int32),
        "postcode": periods.postcode[idx].astype(np.int32), "age": periods.age[idx].astype(np.float32),
        "care_home": periods.care_home[idx].astype(np.int32), "prevented": prevented,
    })
    out = pl.concat([admitted, other])
    ambulance = rng.random(out.height) < np.clip(0.1 + out["age"].to_numpy() / 150, 0, 0.8)
    # age and care home stay for the care model's truth (the extract writer takes only its own columns)
    return out.with_columns(enum(["walk-in", "ambulance"], ambulance.astype(np.uint8), "arrival_mode"))


DEPARTMENTS = ["01", "02", "03"]
DISPOSALS = ["admitted", "discharged", "referred", "left", "transferred"]


def one_spell_at_a_time(spells: pl.DataFrame, busy_until: np.ndarray, exit_date: np.ndarray) -> pl.DataFrame:
    """Spells as a person can have them: one at a time, and none after they died or left.

    Spells are taken in order of admission; a live spell that starts before the person's previous
    spell has ended is dropped (it cannot happen). A death in hospital that starts during an earlier
    spell of the same year ends that spell instead (the person died in it); after a spell of an
    earlier year it starts on that spell's discharge. A discharge after the person's exit is moved
    to the exit date. `busy_until` holds, by person id, the last discharge among spells already
    written (spells still open to change are passed in `spells`)."""
    if spells.height == 0:
        return spells
    spells = spells.with_row_index("_row").sort(["pid", "admission_date", "died", "discharge_date", "_row"])
    pid = spells["pid"].to_numpy().astype(np.int64)
    admit = spells["admission_date"].to_numpy().astype(np.int64)
    died = spells["died"].to_numpy().copy()
    exits = exit_date[pid]
    discharge = np.minimum(spells["discharge_date"].to_numpy().astype(np.int64), np.maximum(exits, admit))
    ready = np.minimum(spells["discharge_ready_date"].to_numpy().astype(np.int64), discharge)
    keep = np.ones(len(pid), dtype=bool)
    current, until, last_kept = -1, 0, -1
    for k in range(len(pid)):  # a loop: each spell depends on the ones kept before it
        p = int(pid[k])
        if p != current:
            current, until, last_kept = p, int(busy_until[p]), -1
        if admit[k] >= until:
            last_kept, until = k, max(until, int(discharge[k]))
        elif died[k] and last_kept >= 0:
            discharge[last_kept] = ready[last_kept] = max(int(discharge[last_kept]), int(discharge[k]))
            died[last_kept], keep[k] = True, False
            until = int(discharge[last_kept])
        elif died[k]:
            admit[k] = min(until, int(discharge[k]))
            last_kept, until = k, max(until, int(discharge[k]))
        else:
            keep[k] = False
    out = spells.with_columns(pl.Series("admission_date", admit.astype(np.int32)), pl.Series("died", died),
                              pl.Series("discharge_date", discharge), pl.Series("discharge_ready_date", ready))
    out = out.filter(pl.Series(keep)).sort("_row").drop("_row")
    return out.with_columns((pl.col("discharge_date") - pl.col("admission_date")).cast(pl.Int64).alias("los"))


# Primary diagnoses of generic emergency admissions that are themselves the first sign of a
# long-term condition: the person has that condition from the admission on (a myocardial
# infarction is coronary heart disease; a stroke is stroke), so GP records and code lists agree.
ONSET_OF: dict[str, str] = {"I214": "chd", "I639": "stroke_tia"}


def record_onsets(spells: pl.DataFrame, people: People) -> int:
    """Bring forward the onset of each condition that a spell's primary diagnosis shows, to the
    admission date; returns the number of onsets brought forward."""
    from openphm.synth.parameters import load_items
    from openphm.synth.people import DAYS_PER_YEAR

    items = load_items()
    moved = 0
    for code, condition in ONSET_OF.items():
        hit = spells.filter(pl.col("diag_01") == code)
        if hit.height == 0:
            continue
        pid = hit["pid"].to_numpy().astype(np.int64)
        # the middle of the admission day, so that the onset's calendar day is the admission's
        age = ((hit["admission_date"].to_numpy() + 0.5 - people.dob[pid]) / DAYS_PER_YEAR).astype(np.float32)
        k = items.index(condition)
        earlier = age < people.onset[pid, k]
        np.minimum.at(people.onset[:, k], pid, age)
        moved += len(np.unique(pid[earlier]))
    return moved
