"""The identifier errors real extracts carry: missing and mistyped NHS numbers, transposed
dates of birth, misspelt names and postcodes. Each injected error is recorded in truth/."""

from __future__ import annotations

import numpy as np

from openphm.identity.nhs_number import digits_of, valid_mask

VOWELS = "aeiou"


def mistype_nhs_numbers(rng: np.random.Generator, numbers: np.ndarray) -> np.ndarray:
    """One keying error per number: an adjacent transposition in the first nine digits or a
    wrong digit. Modulus 11 catches both, so every result is invalid (checked here)."""
    digits = digits_of(numbers, 10)
    n = len(numbers)
    pos = rng.integers(0, 8, n)
    rows = np.arange(n)
    a, b = digits[rows, pos].copy(), digits[rows, pos + 1].copy()
    transpose = (rng.random(n) < 0.5) & (a != b)
    digits[rows[transpose], pos[transpose]] = b[transpose]
    digits[rows[transpose], pos[transpose] + 1] = a[transpose]
    sub = ~transpose
    where = rng.integers(0, 10, n)
    old = digits[rows[sub], where[sub]]
    digits[rows[sub], where[sub]] = (old + rng.integers(1, 10, int(sub.sum()))) % 10
    out = (digits * (10 ** np.arange(9, -1, -1))[None, :]).sum(axis=1)
    if valid_mask(out).any():
        raise AssertionError("a mistyped NHS number passed modulus 11")
    return out


def nhs_numbers_with_errors(rng: np.random.Generator, numbers: np.ndarray, p_missing: float,
                            p_mistyped: float) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as a source sends them (-1 = blank) and the error code per row
    (0 none, 1 missing, 2 mistyped)."""
    u = rng.random(len(numbers))
    error = np.where(u < p_missing, 1, np.where(u < p_missing + p_mistyped, 2, 0))
    out = numbers.copy()
    out[error == 1] = -1
    out[error == 2] = mistype_nhs_numbers(rng, numbers[error == 2])
    return out, error


def dates_of_birth_with_errors(rng: np.random.Generator, dob: np.ndarray, p_error: float
                               ) -> tuple[np.ndarray, np.ndarray]:
    """Dates of birth (days since 1970) with day and month transposed where possible, or one day
    out; error code per row (0 none, 1 day/month transposed, 2 off by one day)."""
    d = np.datetime64("1970-01-01") + dob.astype("timedelta64[D]")
    months = d.astype("datetime64[M]")
    year = months.astype("datetime64[Y]")
    month = (months - year.astype("datetime64[M]")).astype(int) + 1
    day = (d - months.astype("datetime64[D]")).astype(int) + 1
    err = rng.random(len(dob)) < p_error
    can_swap = (day <= 12) & (day != month)
    swap = err & can_swap
    shift = err & ~can_swap
    out = dob.copy()
    swapped = (year.astype("datetime64[M]") + (day - 1).astype("timedelta64[M]")).astype(
        "datetime64[D]") + (month - 1).astype("timedelta64[D]")
    out[swap] = (swapped[swap] - np.datetime64("1970-01-01")).astype(np.int64)
    out[shift] = dob[shift] + rng.choice(np.array([-1, 1]), int(shift.sum()))
    return out, np.where(swap, 1, np.where(shift, 2, 0))


def misspell(rng: np.random.Generator, words: np.ndarray, p_error: float) -> tuple[np.ndarray, np.ndarray]:
    """Names with a keying error (a dropped, doubled or swapped letter, or a changed vowel)."""
    out = words.astype(object).copy()
    hit = np.flatnonzero(rng.random(len(words)) < p_error)
    kinds = rng.integers(0, 4, len(hit))
    spots = rng.random(len(hit))
    flags = np.zeros(len(words), dtype=np.int64)
    for i, kind, spot in zip(hit, kinds, spots, strict=True):
        w = str(out[i])
        if len(w) < 3:
            continue
        j = 1 + int(spot * (len(w) - 2))
        if kind == 0:
            w = w[:j] + w[j + 1:]
        elif kind == 1:
            w = w[:j] + w[j] + w[j:]
        elif kind == 2:
            w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
        else:
            c = w[j].lower()
            repl = VOWELS[(VOWELS.index(c) + 1) % 5] if c in VOWELS else "e"
            w = w[:j] + repl + w[j + 1:]
        if w != out[i]:
            out[i] = w
            flags[i] = 1
    return out, flags


def mistype_postcodes(rng: np.random.Generator, postcodes: np.ndarray, p_error: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Postcodes with the two unit letters swapped or one replaced."""
    out = postcodes.astype(object).copy()
    hit = np.flatnonzero(rng.random(len(postcodes)) < p_error)
    flags = np.zeros(len(postcodes), dtype=np.int64)
    for i in hit:
        pc = str(out[i])
        new = pc[:-2] + pc[-1] + pc[-2] if pc[-1] != pc[-2] else pc[:-1] + ("A" if pc[-1] != "A" else "B")
        out[i] = new
        flags[i] = 1
    return out, flags
