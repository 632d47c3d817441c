"""NHS number check digits (modulus 11), scalar and vectorised.

An NHS number is ten digits; the tenth is a check digit. Multiply the first nine
digits by the weights 10, 9, ..., 2, sum, take the remainder modulo 11 and
subtract it from 11. A result of 11 becomes 0; a result of 10 means the nine
digits cannot form a valid number. Source: NHS Data Model and Dictionary,
"NHS Number" (Modulus 11 algorithm).

Ten identical digits (0000000000, 9999999999, ...) pass modulus 11 for 0 and 9 but are never
issued: systems use them as "unknown" placeholders, so they count as invalid here and in ingest.
"""

from __future__ import annotations

import numpy as np

WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)  # 10, 9, ..., 2


def check_digit(first_nine: str) -> int | None:
    """Return the check digit for nine digits, or None when no digit is valid (remainder 10)."""
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError("an NHS number stem is nine digits")
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    digit = 11 - total % 11
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


def is_valid(nhs_number: str | None) -> bool:
    """True when the value is ten digits (spaces allowed) with a correct modulus-11 check digit."""
    if nhs_number is None:
        return False
    digits = str(nhs_number).replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    if len(set(digits)) == 1:  # a placeholder such as 0000000000, never issued
        return False
    expected = check_digit(digits[:9])
    return expected is not None and expected == int(digits[9])


def digits_of(numbers: np.ndarray, n_digits: int) -> np.ndarray:
    """Split non-negative integers into a (len, n_digits) array of decimal digits, most significant first."""
    numbers = np.asarray(numbers, dtype=np.int64)
    powers = 10 ** np.arange(n_digits - 1, -1, -1, dtype=np.int64)
    return (numbers[:, None] // powers[None, :]) % 10


def check_digits(stems: np.ndarray) -> np.ndarray:
    """Vectorised check digits for nine-digit integer stems; 10 marks a stem with no valid number."""
    digits = digits_of(stems, 9)
    remainder = (digits * WEIGHTS[None, :]).sum(axis=1) % 11
    result = 11 - remainder
    result[result == 11] = 0
    return result


def valid_mask(numbers: np.ndarray) -> np.ndarray:
    """Vectorised validity of ten-digit integer NHS numbers (negative values count as missing)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    ok = (numbers >= 0) & (numbers < 10**10)
    safe = np.where(ok, numbers, 0)
    stems, last = safe // 10, safe % 10
    check = check_digits(stems)
    placeholder = (safe % 1111111111 == 0)  # ten identical digits (0 and 9 pass modulus 11)
    return ok & (check != 10) & (check == last) & ~placeholder
