"""Writing tables as CSV or Parquet, byte-identical for identical input."""

from __future__ import annotations

from pathlib import Path

import polars as pl

FORMATS = ("csv", "parquet")
NO_DATE = -999_999  # a blank date in integer-day columns (dates before 1970 are negative)


def days_to_date(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Integer day columns (days since 1970-01-01; NO_DATE = blank) as dates."""
    return frame.with_columns(
        pl.when(pl.col(c) != NO_DATE).then(pl.col(c)).otherwise(None).cast(pl.Int32).cast(pl.Date).alias(c)
        for c in columns if c in frame.columns
    )


def write_table(frame: pl.DataFrame, path_without_suffix: Path, fmt: str) -> Path:
    """Write `frame` as `<path>.csv` or `<path>.parquet`; returns the path written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    path = path_without_suffix.with_suffix(f".{fmt}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Sources send plain text columns, not a polars-specific Enum type.
    frame = frame.with_columns(pl.col(pl.Enum, pl.Categorical).cast(pl.Utf8))
    if fmt == "csv":
        frame.write_csv(path, date_format="%Y-%m-%d")
    else:
        frame.write_parquet(path, compression="zstd", statistics=True)
    return path


