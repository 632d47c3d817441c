"""Identifier columns as each source holds them, with the source's typical errors.

Error rates per source (share of records; set by the authors, to confirm against data
quality reports such as the NHS Digital DQMI): hospital and community data carry a valid
NHS number on 98-99.6% of records; A&E and mental health data less often; councils'
social care records lack it for about a third of people; voluntary-sector records never
have it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from openphm.synth.errors import (
    dates_of_birth_with_errors,
    misspell,
    mistype_postcodes,
    nhs_numbers_with_errors,
)
from openphm.synth.people import People

# source: (missing NHS number, mistyped NHS number, date-of-birth error, postcode typo)
ERROR_RATES = {
    "gp": (0.0, 0.0, 0.0, 0.0),
    "apc": (0.004, 0.002, 0.002, 0.002),
    "op": (0.005, 0.002, 0.002, 0.002),
    "ecds": (0.02, 0.004, 0.004, 0.004),
    "csds": (0.015, 0.003, 0.003, 0.003),
    "mhsds": (0.02, 0.003, 0.003, 0.003),
    "asc": (0.0, 0.01, 0.01, 0.01),  # plus a third of people whose council never had the number
    "vcse": (1.0, 0.0, 0.02, 0.01),
    "deaths": (0.003, 0.001, 0.001, 0.001),
}
NHS_SOURCES = ("gp", "apc", "op", "ecds", "csds", "mhsds", "deaths")


def nhs_number_strings(numbers: np.ndarray, spaced: np.ndarray | None = None) -> pl.Series:
    """Ten-digit strings (blank for -1), optionally in the 3-3-4 spaced form some systems use."""
    s = pl.Series(numbers).cast(pl.Utf8).str.zfill(10)
    s = pl.select(pl.when(pl.Series(numbers) >= 0).then(s).otherwise(None)).to_series()
    if spaced is not None:
        sp = pl.select(s.str.slice(0, 3) + " " + s.str.slice(3, 3) + " " + s.str.slice(6, 4)).to_series()
        s = pl.select(pl.when(pl.Series(spaced)).then(sp).otherwise(s)).to_series()
    return s.alias("nhs_number")


def identity_columns(rng: np.random.Generator, people: People, pid: np.ndarray,
                     postcode_text: np.ndarray, source: str) -> tuple[dict, dict]:
    """NHS number, date of birth, sex and postcode as `source` records them, and the truth flags."""
    p_miss, p_typo, p_dob, p_pc = ERROR_RATES[source]
    nhs, nhs_err = nhs_numbers_with_errors(rng, people.nhs[pid], p_miss, p_typo)
    dob, dob_err = dates_of_birth_with_errors(rng, people.dob[pid], p_dob)
    pc, pc_err = mistype_postcodes(rng, postcode_text, p_pc)
    cols = {"nhs_number": nhs, "date_of_birth": dob,
            "sex": np.where(people.female[pid] == 1, "2", "1"), "postcode": pc}
    truth = {"nhs_number_error": nhs_err, "dob_error": dob_err, "postcode_error": pc_err}
    return cols, truth


def name_columns(rng: np.random.Generator, people: People, names, pid: np.ndarray,
                 at_date: np.ndarray, p_typo: float, p_nickname: float = 0.0) -> tuple[dict, np.ndarray]:
    """Given and family names as known on `at_date` (a surname before a change), with typos."""
    given = np.array(names.given_names, dtype=object)[people.given[pid]]
    if p_nickname:
        from openphm.synth.names import NICKNAMES
        nick = rng.random(len(pid)) < p_nickname
        given = np.array([NICKNAMES.get(g, g) if n else g for g, n in zip(given, nick, strict=True)],
                         dtype=object)
    changed = people.surname_change[pid] <= at_date
    family_idx = np.where(changed, people.family[pid], people.prev_family[pid])
    family = np.array(names.family_names, dtype=object)[family_idx]
    given, g_err = misspell(rng, given, p_typo / 2)
    family, f_err = misspell(rng, family, p_typo)
    return {"given_name": given, "family_name": family}, np.maximum(g_err, f_err)
