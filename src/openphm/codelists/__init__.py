"""Code lists: one CSV per condition (code system, code, term, source), validated by a schema test.

ICD-10 entries are prefixes: a hospital diagnosis belongs to the condition when its code starts
with the entry (so I10 covers I10X). SNOMED CT entries are exact concepts.
"""

from __future__ import annotations

from importlib import resources

import polars as pl

COLUMNS = ["code_system", "code", "term", "source"]
SYSTEMS = ("SNOMED CT", "ICD-10")


def load_codelists() -> pl.DataFrame:
    """Every shipped code list as one table with a `condition` column (the file name)."""
    folder = resources.files("openphm.codelists") / "data"
    frames = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".csv"):
            frame = pl.read_csv(entry.read_bytes(), schema_overrides={"code": pl.Utf8})
            frames.append(frame.with_columns(pl.lit(entry.name[:-4]).alias("condition")))
    return pl.concat(frames).select("condition", *COLUMNS)
