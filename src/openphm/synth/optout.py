"""The ICS's National Data Opt-out list, as `openphm optout` reads it.

An ICS learns who has opted out by sending its patients' NHS numbers to NHS England's check for
national data opt-outs, which answers with those who have none; the opted-out are the rest. The
generator writes that answer's complement directly: `optout/national_data_opt_out.txt`, one true
NHS number a line, sorted, for a seeded sample of everyone ever in the ICS.

Who opts out (approx.): 4.97% of England's population had a national data opt-out in mid-2021,
5.53% of females and 4.41% of males (BJGP Open 2024, BJGPO.2024.0020, from NHS Digital's National
Data Opt-out statistics), the share used here. Rates are lowest in children and highest at
30-59: for females in April 2022, 1.7% at 0-9, 3.1% at 10-19, 7.0% at 20-29, 8.1% at 30-39, 7.5%
at 40-49, 7.2% at 50-59, 6.9% at 60-69, 6.1% at 70-79 and 4.5% at 80-89 (NHS England's written
evidence DDA0067 to Parliament on the right to privacy and digital data, 2022, from NHS Digital's
National Data Opt-out dashboard). Here each
person's chance follows that age profile (age at the end of the data, or on leaving it), times
0.80 for males (4.41 / 5.53), scaled so that the expected share of everyone is SHARE. The sample
has its own random stream, so the rest of the ICS is the same with or without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openphm.synth.extracts import ExtractWriter
from openphm.synth.people import DAYS_PER_YEAR, OPEN

SHARE = 0.0497  # of everyone ever in the ICS: England, mid-2021 (see the module's note)
FEMALE_RATE_BY_DECADE = (1.67, 3.12, 7.03, 8.06, 7.52, 7.19, 6.94, 6.13, 4.47)  # %, ages 0-9 ... 80-89 (and 90+)
MALE_FACTOR = 4.41 / 5.53
STREAM = 40  # ExtractWriter.rng key: apart from every source's
PATH = Path("optout") / "national_data_opt_out.txt"


def optout_chances(age: np.ndarray, female: np.ndarray, share: float = SHARE) -> np.ndarray:
    """Each person's chance of an opt-out: the age profile, lower for males, scaled to `share` on average."""
    decade = np.clip(np.asarray(age) // 10, 0, len(FEMALE_RATE_BY_DECADE) - 1).astype(int)
    weight = np.asarray(FEMALE_RATE_BY_DECADE)[decade] * np.where(np.asarray(female) == 1, 1.0, MALE_FACTOR)
    return np.clip(weight * share / weight.mean(), 0.0, 1.0) if len(weight) else weight


def write_optout(w: ExtractWriter) -> Path:
    """Write the opt-out list for everyone ever in the ICS; returns its path."""
    people, sim = w.sim.people, w.sim
    end = np.minimum(people.view("exit"), sim.year_starts[-1])
    end = np.where(people.view("exit") == OPEN, sim.year_starts[-1], end)
    age = np.floor((end - people.view("dob")) / DAYS_PER_YEAR)
    chosen = w.rng(STREAM).random(people.n) < optout_chances(age, people.view("female"))
    numbers = np.sort(people.view("nhs")[chosen])
    path = w.out / PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{n:010d}\n" for n in numbers), encoding="utf-8")
    w.files.append(path)
    return path
