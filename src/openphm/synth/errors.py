"""The identifier errors real extracts carry: missing, mistyped and wrong NHS numbers, transposed
dates of birth, misspelt names and postcodes. Each injected error is recorded in truth/."""

from __future__ import annotations

import numpy as np

from openphm.identity.nhs_number import check_digits, digits_of, valid_mask

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


def keyed_uniforms(seed: int, keys: np.ndarray, k: int) -> np.ndarray:
    """(len(keys), k) uniforms in [0, 1) that depend only on the seed and each non-negative integer
    key (SplitMix64 hashing), so the same key draws the same values wherever it is drawn: the GP
    extracts written year by year during the simulation and the registrations written after it
    agree on each patient record's number."""
    def mix(x: np.ndarray) -> np.ndarray:
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))

    with np.errstate(over="ignore"):
        base = mix(np.asarray(keys, dtype=np.int64).astype(np.uint64) ^ mix(np.full(1, seed, np.uint64)))
        draws = [mix(base + np.uint64(j)) for j in range(k)]
    return np.stack([(d >> np.uint64(11)).astype(np.float64) * 2.0**-53 for d in draws], axis=1).reshape(-1, k)


def mistype_nhs_numbers_keyed(numbers: np.ndarray, u: np.ndarray) -> np.ndarray:
    """As `mistype_nhs_numbers`, with the choices taken from uniforms `u` (one row of four per
    number) instead of a random stream: an adjacent transposition in the first nine digits or a
    wrong digit; every result fails modulus 11 (checked here)."""
    digits = digits_of(numbers, 10)
    n = len(numbers)
    rows = np.arange(n)
    pos = np.minimum((u[:, 0] * 8).astype(np.int64), 7)
    a, b = digits[rows, pos].copy(), digits[rows, pos + 1].copy()
    transpose = (u[:, 1] < 0.5) & (a != b)
    digits[rows[transpose], pos[transpose]] = b[transpose]
    digits[rows[transpose], pos[transpose] + 1] = a[transpose]
    sub = ~transpose
    where = np.minimum((u[:, 2] * 10).astype(np.int64), 9)
    add = 1 + np.minimum((u[:, 3] * 9).astype(np.int64), 8)
    digits[rows[sub], where[sub]] = (digits[rows[sub], where[sub]] + add[sub]) % 10
    out = (digits * (10 ** np.arange(9, -1, -1))[None, :]).sum(axis=1)
    if valid_mask(out).any():
        raise AssertionError("a mistyped NHS number passed modulus 11")
    return out


def wrong_valid_nhs_numbers(u: np.ndarray) -> np.ndarray:
    """Valid NHS numbers from Northern Ireland's range (320 000 001 to 399 999 999 as stems), one per
    uniform in `u`: a number that passes modulus 11 but belongs to no one in a synthetic ICS (whose
    numbers are England's)."""
    stems = 320_000_001 + np.minimum((u * 79_999_990).astype(np.int64), 79_999_989)
    check = check_digits(stems)
    while (check == 10).any():  # no valid number for this stem: take the next one
        stems = np.where(check == 10, stems + 1, stems)
        check = check_digits(stems)
    return stems * 10 + check


def record_nhs_numbers_with_errors(seed: int, keys: np.ndarray, numbers: np.ndarray, p_mistyped: float,
                                   p_wrong_valid: float) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as one system holds them per patient record (`keys`: one per record, the same key
    always giving the same number) and the error code per row (0 none, 2 mistyped and failing
    modulus 11, 3 valid but another person's)."""
    u = keyed_uniforms(seed, keys, 6)
    error = np.where(u[:, 0] < p_mistyped, 2, np.where(u[:, 0] < p_mistyped + p_wrong_valid, 3, 0))
    out = np.asarray(numbers, dtype=np.int64).copy()
    typo = error == 2
    out[typo] = mistype_nhs_numbers_keyed(out[typo], u[typo, 1:5])
    wrong = error == 3
    out[wrong] = wrong_valid_nhs_numbers(u[wrong, 5])
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
