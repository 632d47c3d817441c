"""Electronic Frailty Index (Clegg et al., Age and Ageing 2016): deficits present / 36, at any date.

A deficit is present when any of its codes (one versioned code list per deficit in
openphm.codelists, kind frailty_deficit) was recorded on or before the
date. Categories: fit <= 0.12, mild > 0.12 to 0.24, moderate > 0.24 to 0.36, severe > 0.36.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from openphm.codelists import load_codelists
from openphm.engine.connection import Connection

N_DEFICITS = 36


def efi_codes() -> pl.DataFrame:
    """The deficit code list."""
    return load_codelists("frailty_deficit").drop("version")


def efi_sql(as_of: dt.date, events: str = "record.gp_event") -> str:
    """SQL: person_id, deficits, efi, efi_category for everyone with a deficit by `as_of` (needs a
    registered `efi_codes` relation)."""
    if events not in ("record.gp_event", "planning.gp_event", "gp_event"):
        raise ValueError("events must name a gp_event table")
    return f"""
        SELECT person_id, count(DISTINCT c.deficit) AS deficits,
               count(DISTINCT c.deficit) / {N_DEFICITS}.0 AS efi,
               CASE WHEN count(DISTINCT c.deficit) / {N_DEFICITS}.0 <= 0.12 THEN 'fit'
                    WHEN count(DISTINCT c.deficit) / {N_DEFICITS}.0 <= 0.24 THEN 'mild'
                    WHEN count(DISTINCT c.deficit) / {N_DEFICITS}.0 <= 0.36 THEN 'moderate' ELSE 'severe' END
                   AS efi_category
        FROM {events} e JOIN efi_codes c ON c.code = e.snomed_code
        WHERE e.event_date <= DATE '{as_of}'
        GROUP BY person_id"""


def efi_scores(con: Connection, as_of: dt.date, events: str = "record.gp_event") -> pl.DataFrame:
    """eFI per person with at least one deficit (everyone else scores 0, fit)."""
    con.register("efi_codes", efi_codes().to_arrow())
    try:
        return con.execute(efi_sql(as_of, events) + " ORDER BY person_id").pl()
    finally:
        con.unregister("efi_codes")
