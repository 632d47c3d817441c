"""Categorical columns held as small integer codes and written as polars Enums.

Tens of millions of rows of short strings ("Face-to-Face", "DNA") would cost 16 bytes a row
as strings; as codes they cost one byte, and an Enum writes them as text to CSV and as a
dictionary-encoded column to Parquet.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def pick(rng: np.random.Generator, options: list[str], weights: list[float], n: int) -> np.ndarray:
    """`n` codes (uint8 indices into `options`) drawn with the given weights."""
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(options), size=n, p=w / w.sum()).astype(np.uint8)


def code(options: list[str], value: str) -> int:
    """The code of one option."""
    return options.index(value)


def enum(options: list[str], codes: np.ndarray, name: str = "") -> pl.Series:
    """Codes as an Enum series of the option strings."""
    dtype = pl.Enum(list(dict.fromkeys(options)))
    return pl.Series(name, options, dtype=pl.Utf8).cast(dtype).gather(codes.astype(np.uint32))
