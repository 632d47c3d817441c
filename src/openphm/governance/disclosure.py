"""Disclosure control: the one place every aggregate leaves OpenPHM through for anyone without a
direct-care role (pages, charts, CSV downloads, the API, reports).

The rule, as NHS trusted research environments apply it (OpenSAFELY's output checking rules; NHS
England's Hospital Episode Statistics analysis guidance for published tables):

- a count of 1 to 7 is redacted (shown as `REDACTED`, never as a number); 0 stays 0 (knowing that
  nobody in a group had an event discloses nothing about a person);
- every other count is rounded to the nearest 5 (8 -> 10, 12 -> 10, 13 -> 15);
- a rate or percentage is computed from the rounded numerator and denominator, and is redacted when
  either is redacted, so it cannot be turned back into the exact count;
- secondary suppression: within a group of cells that add up to a published total (the practices
  of a PCN, the quintiles of a measure), a single redacted cell could be recovered by subtraction,
  so the next smallest cell is redacted too.

Rounding to 5 also makes a redacted cell hard to recover from a rounded total; the secondary
suppression covers the case where totals are published exactly (as the denominators of a funnel
plot often are).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

SMALLEST_SHOWN = 8  # counts of 1 to SMALLEST_SHOWN - 1 are redacted
ROUND_TO = 5
REDACTED = "REDACTED"


def protect_count(n: float | int | None) -> int | None:
    """A count as it may be shown: None (redacted) for 1-7, 0 for 0, else rounded to the nearest 5
    (halves up: 12.5 cannot occur for whole counts). Negative or fractional input is refused."""
    if n is None:
        return None
    if n < 0 or n != int(n):
        raise ValueError(f"a count must be a whole number of zero or more, not {n!r}")
    n = int(n)
    if n == 0:
        return 0
    if n < SMALLEST_SHOWN:
        return None
    return ROUND_TO * ((n + ROUND_TO // 2) // ROUND_TO)


def protect_rate(numerator: float | int | None, denominator: float | int | None,
                 multiplier: float = 1.0) -> float | None:
    """A rate from the protected counts: None when either is redacted or the denominator is 0."""
    num, den = protect_count(numerator), protect_count(denominator)
    if num is None or den is None or den == 0:
        return None
    return multiplier * num / den


def _protected_count_expr(column: str) -> pl.Expr:
    c = pl.col(column)
    return (pl.when(c.is_null()).then(None)
            .when(c == 0).then(0)
            .when(c < SMALLEST_SHOWN).then(None)
            .otherwise(((c + ROUND_TO // 2) // ROUND_TO) * ROUND_TO)).cast(pl.Int64).alias(column)


def _secondary(frame: pl.DataFrame, counts: Sequence[str], within: Sequence[str]) -> pl.DataFrame:
    """Redact, in each group of `within` with exactly one redacted (non-zero) cell of a count, the next
    smallest shown non-zero cell, so the redacted one cannot be recovered from the group's total."""
    if not within:
        return frame
    frame = frame.with_row_index("_row")
    for column in counts:
        redacted = f"_{column}_redacted"
        marked = frame.with_columns(pl.col(column).is_null().alias(redacted))
        lone = (marked.group_by(within).agg(pl.col(redacted).sum().alias("_n"))
                .filter(pl.col("_n") == 1).drop("_n"))
        if lone.height == 0:
            continue
        candidates = (marked.join(lone, on=list(within), how="semi")
                      .filter(~pl.col(redacted) & (pl.col(column) > 0))
                      .sort(column).group_by(within, maintain_order=True).first())
        rows = candidates["_row"].to_list()
        frame = frame.with_columns(pl.when(pl.col("_row").is_in(rows)).then(None)
                                   .otherwise(pl.col(column)).alias(column))
    return frame.drop("_row")


def protect_frame(frame: pl.DataFrame, counts: Iterable[str],
                  rates: dict[str, tuple[str, str, float]] | None = None,
                  within: Sequence[str] = ()) -> pl.DataFrame:
    """A table as it may be shown: each column in `counts` protected (null = redacted), secondary
    suppression within groups of `within`, then each rate in `rates` (name: numerator column,
    denominator column, multiplier) recomputed from the protected counts. Columns that are neither
    are passed through: the caller states which columns are counts, and `assert_no_small_counts`
    checks what leaves."""
    counts = list(counts)
    out = frame.with_columns([_protected_count_expr(c) for c in counts])
    out = _secondary(out, counts, within)
    for name, (num, den, multiplier) in (rates or {}).items():
        if num not in counts or den not in counts:
            raise ValueError(f"rate {name}: its numerator and denominator must be protected counts")
        out = out.with_columns(
            pl.when(pl.col(num).is_null() | pl.col(den).is_null() | (pl.col(den) == 0)).then(None)
            .otherwise(multiplier * pl.col(num) / pl.col(den)).alias(name))
    return out


def small_counts(values: Iterable[object]) -> list[object]:
    """The values among `values` that no protected count can be: whole numbers 1-7, or whole numbers
    that are not multiples of 5 (for tests and for a last check at an exit)."""
    bad = []
    for v in values:
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int | float) and float(v).is_integer():
            n = int(v)
            if 0 < n < SMALLEST_SHOWN or n % ROUND_TO:
                bad.append(v)
    return bad


def assert_no_small_counts(frame: pl.DataFrame, counts: Iterable[str]) -> None:
    """Raise if any count column holds a value that protection cannot have produced."""
    for column in counts:
        bad = small_counts(frame[column].to_list())
        if bad:
            raise ValueError(f"column {column} would disclose small or unrounded counts ({len(bad)} cells)")
