"""ICD-10 diagnoses for synthetic hospital spells and deaths.

Primary diagnoses of emergency admissions are drawn from a short list of common causes
(weights by age group, set by the authors from the shape of HES primary diagnosis counts;
to confirm), or, for people with a long-term condition, from that condition's exacerbation.
Secondary diagnoses carry the person's conditions and, for the frail, the symptom and
dependency codes from which the Hospital Frailty Risk Score is computed.
"""

from __future__ import annotations

import numpy as np

from openphm.synth.parameters import load_items

# code: weights for age groups 0-15, 16-44, 45-74, 75+
EMERGENCY_GENERIC: dict[str, tuple[float, float, float, float]] = {
    "R074": (0.5, 6, 8, 3), "R104": (3, 8, 5, 2), "J189": (3, 2, 5, 9), "N390": (1, 2, 3, 8),
    "J22X": (6, 1, 3, 6), "A419": (1, 1, 2, 4), "R55X": (0.5, 2, 3, 4), "S720": (0, 0.1, 0.8, 5),
    "S069": (3, 2, 1, 2), "K359": (3, 3, 1, 0.2), "J069": (10, 1, 0.2, 0.1), "A099": (8, 2, 1, 1),
    "R509": (8, 1, 0.5, 0.3), "F100": (0.2, 3, 2, 0.3), "T509": (0.5, 4, 1, 0.3),
    "L031": (1, 3, 3, 3), "I639": (0, 0.3, 2, 4), "I214": (0, 0.5, 3, 3), "E86X": (1, 0.5, 1, 3),
    "F050": (0, 0.1, 0.5, 3), "R296": (0, 0.1, 1, 5), "K590": (1, 1, 1, 2), "R51X": (1, 3, 1, 0.3),
}
# Condition -> ICD-10 of the admissions it causes when it is the reason for an emergency admission.
EXACERBATION = {
    "copd": "J441", "asthma": "J459", "heart_failure": "I500", "chd": "I209",
    "atrial_fibrillation": "I489", "diabetes": "E162", "dementia": "F051", "epilepsy": "G409",
    "smi": "F209", "ckd": "N179", "stroke_tia": "G459", "cancer": "C809", "parkinsons": "G20X",
}
# Elective admissions: (ICD-10, treatment function code, weights by age group as above).
ELECTIVE = [
    ("H259", "130", (0, 0.1, 3, 8)), ("M171", "110", (0, 0.5, 4, 3)), ("K409", "100", (2, 3, 3, 2)),
    ("Z511", "370", (0.5, 2, 6, 4)), ("K219", "301", (0.5, 3, 4, 3)), ("J350", "120", (8, 1, 0.1, 0)),
    ("K802", "100", (0, 3, 3, 1)), ("N40X", "101", (0, 0, 3, 3)), ("N920", "502", (0, 4, 1, 0)),
    ("G560", "108", (0, 2, 3, 1)), ("Z121", "301", (0, 1, 6, 2)), ("L989", "330", (1, 2, 2, 2)),
    ("H651", "120", (6, 0.5, 0.2, 0)), ("M751", "110", (0, 1, 3, 1)),
]
# Mental disorders admitted to an acute hospital (delirium, alcohol) are under general medicine (geriatric
# medicine from 80); adult, child and old age psychiatry (710, 711, 715) are the mental health trust's wards.
SPECIALTY_OF_EMERGENCY = {"J": "340", "I": "320", "N": "300", "S": "110", "K": "100", "F": "300",
                          "G": "400", "E": "300", "C": "370", "A": "300", "R": "300", "L": "300",
                          "T": "300"}
DEATH_CAUSE = {"dementia": "F03X", "cancer": "C809", "chd": "I259", "copd": "J449",
               "stroke_tia": "I639", "heart_failure": "I500", "ckd": "N189", "parkinsons": "G20X",
               "diabetes": "E119", "atrial_fibrillation": "I489"}


def age_group(age: np.ndarray) -> np.ndarray:
    """0: 0-15, 1: 16-44, 2: 45-74, 3: 75+."""
    return np.searchsorted(np.array([16, 45, 75]), age, side="right")


def _choose_by_group(rng: np.random.Generator, codes: list[str], weights: np.ndarray,
                     group: np.ndarray) -> np.ndarray:
    out = np.empty(len(group), dtype=object)
    for g in range(4):
        mask = group == g
        w = weights[:, g] / weights[:, g].sum()
        out[mask] = np.array(codes, dtype=object)[rng.choice(len(codes), size=int(mask.sum()), p=w)]
    return out


def emergency_primary(rng: np.random.Generator, age: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Primary ICD-10 diagnosis for emergency admissions of people with ages and item flags."""
    items = load_items()
    codes = list(EMERGENCY_GENERIC)
    out = _choose_by_group(rng, codes, np.array(list(EMERGENCY_GENERIC.values())), age_group(age))
    cond_idx = np.array([items.index(c) for c in EXACERBATION])
    cond_codes = np.array(list(EXACERBATION.values()), dtype=object)
    present = has[:, cond_idx]
    n_present = present.sum(axis=1)
    use = (n_present > 0) & (rng.random(len(age)) < 1 - 0.6 ** n_present)
    # pick one present condition at random: random keys, masked
    keys = np.where(present, rng.random(present.shape), -1.0)
    pick = keys.argmax(axis=1)
    out[use] = cond_codes[pick[use]]
    return out


def elective_primary(rng: np.random.Generator, age: np.ndarray, has: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Primary ICD-10 diagnosis and treatment function code for elective admissions."""
    codes = [c for c, _, _ in ELECTIVE]
    weights = np.array([w for _, _, w in ELECTIVE], dtype=float)
    diag = _choose_by_group(rng, codes, weights, age_group(age))
    cancer = has[:, load_items().index("cancer")] & (rng.random(len(age)) < 0.5)
    diag[cancer] = "Z511"
    spec_of = {c: s for c, s, _ in ELECTIVE}
    return diag, np.array([spec_of[d] for d in diag], dtype=object)


def secondary_diagnoses(rng: np.random.Generator, has: np.ndarray, efi: np.ndarray,
                        primary: np.ndarray, n_columns: int = 11) -> list[np.ndarray]:
    """Up to `n_columns` secondary diagnosis columns: conditions coded 85% of the time, deficits
    (the frailty symptoms HFRS reads) coded more often the frailer the person."""
    items = load_items()
    icd = np.array([c or "" for c in items.icd10], dtype=object)
    is_cond = items.condition_mask
    p_code = np.where(is_cond[None, :], 0.85, np.clip(0.15 + 1.2 * efi, 0, 0.8)[:, None])
    coded = has & (icd != "")[None, :] & (rng.random(has.shape) < p_code)
    coded &= icd[None, :] != primary[:, None]
    # order columns: conditions first (by item order), then deficits
    cols: list[np.ndarray] = []
    rank = np.cumsum(coded, axis=1) - 1
    for j in range(n_columns):
        at = coded & (rank == j)
        any_at = at.any(axis=1)
        col = np.full(len(primary), "", dtype=object)
        col[any_at] = icd[at.argmax(axis=1)[any_at]]
        cols.append(col)
    return cols


def death_cause(rng: np.random.Generator, age: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Underlying cause of death: one of the person's serious conditions, else a common cause."""
    items = load_items()
    idx = np.array([items.index(c) for c in DEATH_CAUSE])
    codes = np.array(list(DEATH_CAUSE.values()), dtype=object)
    present = has[:, idx]
    keys = np.where(present, rng.random(present.shape), -1.0)
    out = codes[keys.argmax(axis=1)]
    fallback = np.array(["J189", "I219", "C349", "R54X", "X599"], dtype=object)
    none = ~present.any(axis=1)
    choice = rng.choice(len(fallback), size=len(age), p=[0.3, 0.25, 0.25, 0.1, 0.1])
    chosen = fallback[choice]
    chosen[(chosen == "R54X") & (age < 80)] = "J189"
    out[none] = chosen[none]
    return out


def specialty_for(primary: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Treatment function code of an emergency spell from its diagnosis chapter (420 under 16)."""
    spec = np.array([SPECIALTY_OF_EMERGENCY.get(c[0], "300") for c in primary], dtype=object)
    spec[age < 16] = "420"
    spec[(age >= 80) & (spec == "300")] = "430"
    return spec
