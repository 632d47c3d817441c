"""Case mix of synthetic hospital spells: the HRG each spell groups to, its critical care days, and
the regular day attenders on renal dialysis.

Spending on hospital care is concentrated on few people (1% of the population accounted for 32% of
public hospital spending: Kelly, Stoye & Vera-Hernandez, IFS W15/21, 2015) because a few spells cost
many times the average (major surgery, a stroke, critical care) and a few people attend all year
(dialysis). Without case mix every spell of a department costs the same; these are what SUS+ gives
an ICS to cost spells with.

- HRG: each spell's primary diagnosis maps to the HRG roots it groups to (`DIAGNOSIS_HRG`, read from
  the HRG4+ currency descriptions in the National Cost Collection 2023/24). Within them the HRG is
  drawn from the Collection's activity in the spell's department (elective, day case, non-elective
  short or long stay), the costlier HRGs (higher complication and comorbidity splits) going with
  the longer stays (a Gaussian copula between the stay's rank and the HRG's cost rank, correlation
  `SEVERITY_CORRELATION`, set by the authors).
- Critical care days: adult critical care took 1,310,011 bed days in 2023/24 (NCC, XC01Z-XC07Z)
  against 4,527,849 non-elective long-stay and 1,183,793 elective inpatient FCEs; about four in five
  adult critical care admissions are unplanned (ICNARC case mix programme summaries), so about 0.23
  critical care days per non-elective long stay and 0.22 per ordinary elective spell. Sicker spells
  (by the copula's draw) are likelier to include critical care. About one baby in seven is admitted
  for neonatal care (National Neonatal Audit Programme), for 877,309 neonatal critical care days in
  2023/24 (NCC, XA01Z-XA06Z) over about 600,000 births: about 9 days each (8 in England and Wales,
  Bliss 2015). Most are born at term and stay a few days; the very preterm (born before 32 weeks,
  about 1.2% of births: 7% of births are preterm and 7% of those before 28 weeks, Bliss; 28-31 weeks
  about 0.9%) stay for weeks (44 days on average at 28-31 weeks, longer before: Bliss 2015), so about
  one baby in twelve admitted has about half the days.
- Renal dialysis: 2.98 million hospital and satellite haemodialysis sessions in 2023/24 (NCC,
  LD01A-LD08A), three a week, is about 19,000 people, 0.033% of England's 57.1 million (ONS mid-2023).
  They are drawn from adults with chronic kidney disease, stay on dialysis for the rest of the
  simulation, and attend three days a week as regular day attenders (patient classification 3,
  primary diagnosis Z49.1, an LD HRG).
"""

from __future__ import annotations

import functools

import numpy as np
import polars as pl
from scipy.special import ndtr, ndtri

from openphm.finance.casemix import load_hrg_costs

SEVERITY_CORRELATION = 0.85
# Primary diagnosis -> {HRG root or prefix: share}; within a root, the Collection's activity decides.
DIAGNOSIS_HRG: dict[str, dict[str, float]] = {
    # emergency causes
    "R074": {"EB12": 1}, "R104": {"FD05": 1}, "J189": {"DZ11": 0.9, "DZ23": 0.1}, "N390": {"LA04": 1},
    "J22X": {"DZ22": 1}, "A419": {"WJ06": 1}, "R55X": {"EB08": 1},
    "S720": {"HT12": 0.45, "HT13": 0.25, "HE11": 0.3},  # most hip fractures are operated on
    "S069": {"AA26": 1}, "K359": {"FF37": 1}, "J069": {"CB02": 1}, "A099": {"FD01": 1}, "R509": {"WJ07": 1},
    "F100": {"WH21": 1}, "T509": {"WH04": 1}, "L031": {"JD07": 1}, "I639": {"AA35": 1}, "I214": {"EB10": 1},
    "E86X": {"KC05": 1}, "F050": {"WD01": 1}, "R296": {"WH09": 1}, "K590": {"FD10": 1}, "R51X": {"AA31": 1},
    # exacerbations of long-term conditions
    "J441": {"DZ65": 1}, "J459": {"DZ15": 1}, "I500": {"EB03": 1}, "I209": {"EB13": 1}, "I489": {"EB07": 1},
    "E162": {"KB01": 1}, "F051": {"WD01": 0.5, "WD02": 0.5}, "G409": {"AA26": 1}, "F209": {"WD07": 1},
    "N179": {"LA07": 1}, "G459": {"AA29": 1}, "C809": {"DZ17": 0.3, "FD11": 0.4, "LB06": 0.2, "SA17": 0.1},
    "G20X": {"AA25": 1},
    # admissions to mental health wards (`hospital.mental_health_spells`): the Collection's mental health
    # HRGs (WD, mental health patients treated by other providers), as mental health trusts cost stays
    # by bed day rather than HRG
    "F03X": {"WD": 1}, "F329": {"WD": 1}, "F79X": {"WD": 1}, "F99X": {"WD": 1},
    # elective procedures
    "H259": {"BZ3": 1}, "M171": {"HN22": 0.7, "HN23": 0.15, "HN24": 0.15}, "K409": {"FF6": 1},
    "Z511": {"SB1": 0.85, "SB97": 0.15}, "K219": {"FE2": 1}, "J350": {"CA60": 0.5, "CA61": 0.5},
    "K802": {"GA10": 1}, "N40X": {"LB25": 1}, "N920": {"MA08": 0.3, "MA10": 0.4, "MA12": 0.3},
    "G560": {"HN44": 0.3, "HN45": 0.7}, "Z121": {"FE3": 1}, "L989": {"JC4": 1}, "H651": {"CA35": 1},
    "M751": {"HN52": 0.2, "HN53": 0.5, "HN54": 0.3},
}
# Under 19, non-elective spells group to the paediatric HRGs.
PAEDIATRIC_HRG: dict[str, dict[str, float]] = {
    "J069": {"PD11": 1}, "J22X": {"PD14": 0.6, "PD15": 0.4}, "R509": {"PW20": 1}, "R104": {"PX29": 1},
    "J459": {"PD12": 1}, "S069": {"PR07": 1}, "T509": {"PX50": 1}, "R51X": {"PR04": 1}, "G409": {"PR02": 1},
    "E162": {"PK68": 1},
}
PAEDIATRIC_DEFAULT = {"P": 1.0}
DIALYSIS_HRG = ("LD01A", "LD02A", "LD03A", "LD04A", "LD05A", "LD06A", "LD07A", "LD08A")
DIALYSIS_SHARE_OF_CKD = 0.011  # of people with CKD 3-5 aged 18+: 0.033% of the population
NEONATAL_CARE_SHARE, NEONATAL_MEAN_DAYS = 0.14, 9.0
# Babies born before 32 weeks: share of births and mean days of neonatal care (within the 14%).
VERY_PRETERM_SHARE, VERY_PRETERM_MEAN_DAYS = 0.012, 50.0
# Probability of critical care in a non-elective long stay of an adult, and mean days, by cause.
CRITICAL_CARE_CAUSES = {"A419", "J189", "I214", "I639", "S069", "T509", "I500", "J441", "K359", "S720"}


def spell_department(kind: np.ndarray, classification: np.ndarray, los: np.ndarray) -> np.ndarray:
    """The National Cost Collection department each spell is costed in ('' for maternity and births)."""
    classification = classification.astype(str)
    out = np.full(len(kind), "", dtype=object)
    elective = kind == "elective"
    out[elective] = np.where(classification[elective] == "2", "day_case", "elective")
    emergency = kind == "emergency"
    out[emergency] = np.where(los[emergency] <= 1, "non_elective_short_stay", "non_elective_long_stay")
    out[np.isin(classification, ["3", "4"])] = "regular_day_attender"
    return out


@functools.cache
def day_case_share(diagnosis: str) -> float:
    """Share of planned admissions for `diagnosis` that are day cases: the National Cost Collection's
    day-case FCEs over day-case and ordinary elective FCEs among the HRG roots the diagnosis groups to
    (a cataract almost always, a knee replacement about one in eight); the national share (85%) for a
    diagnosis with none."""
    costs = load_hrg_costs()
    total = {d: costs.filter(pl.col("department") == d)["activity"].sum() for d in ("day_case", "elective")}
    day = ordinary = 0.0
    for root, share in DIAGNOSIS_HRG.get(diagnosis, {}).items():
        hit = costs.filter(pl.col("hrg").str.starts_with(root))
        day += share * hit.filter(pl.col("department") == "day_case")["activity"].sum()
        ordinary += share * hit.filter(pl.col("department") == "elective")["activity"].sum()
    if day + ordinary == 0:
        return total["day_case"] / (total["day_case"] + total["elective"])
    return day / (day + ordinary)


def _severity(rng: np.random.Generator, department: np.ndarray, los: np.ndarray) -> np.ndarray:
    """A standard normal score per spell: the rank of its stay within its department (ties broken at
    random), through the copula to a uniform draw."""
    key = los + rng.random(len(los))
    z = np.zeros(len(los))
    for d in np.unique(department):
        at = np.flatnonzero(department == d)
        rank = np.argsort(np.argsort(key[at]))
        z[at] = ndtri((rank + 0.5) / len(at))
    e = rng.standard_normal(len(los))
    return ndtr(SEVERITY_CORRELATION * z + np.sqrt(1 - SEVERITY_CORRELATION ** 2) * e)


@functools.cache
def _candidates(department: str, roots: tuple[tuple[str, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """HRGs of a department under the roots, in order of unit cost, with their cumulative probability
    (kept: the same few hundred (department, roots) pairs come up every year)."""
    dept = load_hrg_costs().filter(pl.col("department") == department)
    parts = []
    for root, share in roots:
        hit = dept.filter(pl.col("hrg").str.starts_with(root))
        if hit.height:
            parts.append(hit.with_columns((share * pl.col("activity") / pl.col("activity").sum()).alias("p")))
    if not parts:
        return np.array([], dtype=object), np.array([])
    frame = pl.concat(parts).group_by("hrg").agg(pl.col("p").sum(), pl.col("unit_cost").first()).sort("unit_cost")
    p = frame["p"].to_numpy()
    return frame["hrg"].to_numpy().astype(object), np.cumsum(p) / p.sum()


def assign_hrg(rng: np.random.Generator, department: np.ndarray, diagnosis: np.ndarray, age: np.ndarray,
               los: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The spell's HRG (None where the department is '' or no candidate exists) and the copula's
    uniform severity draw."""
    u = _severity(rng, department, los.astype(float))
    hrg = np.full(len(department), None, dtype=object)
    child = (age < 19) & np.isin(department, ["non_elective_short_stay", "non_elective_long_stay"])
    keys = pl.DataFrame({"d": department, "x": diagnosis, "c": child}).with_row_index("i")
    for (d, x, c), group in keys.group_by(["d", "x", "c"]):
        if d in ("", "regular_day_attender"):
            continue
        roots = (PAEDIATRIC_HRG.get(x, PAEDIATRIC_DEFAULT) if c else DIAGNOSIS_HRG.get(x)) or {}
        codes, cum = _candidates(d, tuple(roots.items()))
        if len(codes) == 0:
            continue
        at = group["i"].to_numpy()
        hrg[at] = codes[np.minimum(np.searchsorted(cum, u[at]), len(codes) - 1)]
    return hrg, u


def critical_care_days(rng: np.random.Generator, department: np.ndarray, diagnosis: np.ndarray,
                       age: np.ndarray, los: np.ndarray, severity: np.ndarray) -> np.ndarray:
    """Critical care days within each spell (at most its length of stay less a day)."""
    n = len(los)
    p = np.zeros(n)
    mean = np.zeros(n)
    long_stay = department == "non_elective_long_stay"
    cause = np.isin(diagnosis, list(CRITICAL_CARE_CAUSES))
    p[long_stay] = np.where(cause[long_stay], 0.12, 0.032)
    mean[long_stay] = np.where(age[long_stay] < 18, 4.0, 7.0)
    elective = (department == "elective") & (los >= 2)
    p[elective] = 0.12
    mean[elective] = 3.5
    p *= 0.3 + 1.4 * severity  # the sicker, the likelier (the multiplier averages 1)
    gets = rng.random(n) < p
    days = 1 + rng.poisson(rng.gamma(0.8, np.maximum(mean - 1, 0.1) / 0.8))
    return np.where(gets, np.minimum(days, np.maximum(los - 1, 0)), 0).astype(np.int64)


def neonatal_days(rng: np.random.Generator, n: int) -> np.ndarray:
    """Neonatal critical care days of `n` babies born in hospital (0 for most): weeks for the very
    preterm, a few days for the others admitted, averaging `NEONATAL_MEAN_DAYS` over all admitted."""
    u = rng.random(n)
    admitted, very_preterm = u < NEONATAL_CARE_SHARE, u < VERY_PRETERM_SHARE
    others_mean = ((NEONATAL_MEAN_DAYS * NEONATAL_CARE_SHARE - VERY_PRETERM_MEAN_DAYS * VERY_PRETERM_SHARE)
                   / (NEONATAL_CARE_SHARE - VERY_PRETERM_SHARE))
    shape = np.where(very_preterm, 4.0, 0.9)  # very preterm stays: mean 50 days, sd about 25
    mean = np.where(very_preterm, VERY_PRETERM_MEAN_DAYS, others_mean)
    days = 1 + rng.poisson(rng.gamma(shape, (mean - 1) / shape))
    return np.where(admitted, days, 0).astype(np.int64)


def on_dialysis(pid: np.ndarray, has_ckd: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Whether each person is on haemodialysis: a fixed share of adults with CKD, the same people
    every year (a hash of the person id, so that the draw does not move other random streams)."""
    u = ((pid.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2 ** 32)) / 2.0 ** 32
    return has_ckd & (age >= 18) & (u < DIALYSIS_SHARE_OF_CKD)


def dialysis_sessions(pid: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into the periods, day) of each session: three days a week in each period [start, end),
    on the person's own weekdays (Monday, Wednesday, Friday or Tuesday, Thursday, Saturday)."""
    length = np.maximum(end - start, 0)
    idx = np.repeat(np.arange(len(pid)), length)
    day = start[idx] + (np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length))
    shift = pid[idx] % 2
    keep = np.isin((day + shift) % 7, [0, 2, 4])
    return idx[keep], day[keep]


def dialysis_hrg(pid: np.ndarray) -> np.ndarray:
    """Each person's dialysis HRG (access and setting), fixed for the person, by the Collection's
    activity among adult hospital and satellite haemodialysis."""
    costs = load_hrg_costs().filter(pl.col("hrg").is_in(DIALYSIS_HRG)).sort("hrg")
    cum = np.cumsum(costs["activity"].to_numpy())
    cum = cum / cum[-1]
    u = ((pid.astype(np.uint64) * np.uint64(40503)) % np.uint64(65536)) / 65536.0
    return costs["hrg"].to_numpy().astype(object)[np.minimum(np.searchsorted(cum, u), len(cum) - 1)]


def add_casemix(rng: np.random.Generator, spells: pl.DataFrame) -> pl.DataFrame:
    """Spells with `hrg` (kept where already set, as for dialysis) and `critical_care_days` (kept for
    birth episodes, which carry their neonatal days)."""
    if spells.height == 0:
        return spells
    los = spells["los"].to_numpy().astype(np.int64)
    kind = spells["kind"].to_numpy().astype(object)
    department = spell_department(kind, spells["patient_classification"].to_numpy(), los)
    diagnosis = spells["diag_01"].to_numpy().astype(object)
    age = spells["age"].to_numpy().astype(float)
    drawn, severity = assign_hrg(rng, department, diagnosis, age, los)
    days = critical_care_days(rng, department, diagnosis, age, los, severity)
    return spells.with_columns(
        pl.coalesce(pl.col("hrg"), pl.Series(drawn, dtype=pl.Utf8)).alias("hrg"),
        pl.when(pl.col("kind") == "birth").then(pl.col("critical_care_days"))
        .otherwise(pl.Series(days)).alias("critical_care_days"))
