"""Cambridge Multimorbidity Score (CMS), at any date.

Definition: Payne RA, Mendonca SC, Elliott MN, et al. "Development and validation of the
Cambridge Multimorbidity Score". CMAJ 2020;192:E107-14. Twenty conditions, each with a weight
for the general outcome and for mortality (data/cms_weights.csv). The weights are transcribed
from public implementations of the paper (the general weights agree across four independent
sources; the mortality weights come from one), not from the paper's table directly.

The record has no prescribing data, so conditions the CMS defines by prescriptions alone
(painful condition, constipation) are not scored; asthma and epilepsy count on a diagnosis alone
(the CMS also asks for a prescription in the last 12 months), depression on a diagnosis ever
(the CMS asks for one in the last 12 months), and irritable bowel syndrome and alcohol problems
are not generated. Hearing loss uses the eFI hearing-impairment codes. Cancer counts when first
recorded in the five years to the date. Each row of the data file says how it is implemented.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources

import polars as pl

from openphm.derive.efi import efi_codes
from openphm.engine.connection import Connection

OUTCOMES = ("general", "mortality")
CANCER_YEARS = 5


def cms_weights() -> pl.DataFrame:
    """The 20 conditions, how each is found in the record, and their weights."""
    raw = (resources.files("openphm.derive") / "data" / "cms_weights.csv").read_bytes()
    return pl.read_csv(raw, schema_overrides={"openphm_condition": pl.Utf8})


_TABLES = ("cms_w", "cms_event_codes", "cms_all_w")


def register_cms_tables(con: Connection, outcome: str = "general") -> None:
    """Register the weights and code tables that `cms_sql` reads (`unregister_cms_tables` after)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
    weights = cms_weights().filter(pl.col("openphm_condition").is_not_null())
    from_conditions = weights.filter(~pl.col("openphm_condition").str.starts_with("efi:"))
    from_events = weights.filter(pl.col("openphm_condition").str.starts_with("efi:")).with_columns(
        pl.col("openphm_condition").str.strip_prefix("efi:").alias("deficit"))
    codes = efi_codes().join(from_events.select("deficit", "cms_condition"), on="deficit").select("code",
                                                                                                 "cms_condition")
    con.register("cms_w", from_conditions.select("cms_condition", "openphm_condition").to_arrow())
    con.register("cms_event_codes", codes.to_arrow())
    con.register("cms_all_w", cms_weights().select("cms_condition", pl.col(outcome).alias("weight")).to_arrow())


def unregister_cms_tables(con: Connection) -> None:
    """Remove what `register_cms_tables` registered."""
    for name in _TABLES:
        con.unregister(name)


def cms_sql(as_of: dt.date, schema: str = "record", outcome: str = "general") -> str:
    """SQL: per person with any scored condition by the end of `as_of`: person_id, cms, conditions
    (the registered tables of `register_cms_tables`, for the same outcome). The one definition of
    the score, used by `cms_scores`, the risk features and the segments."""
    if schema not in ("record", "planning"):
        raise ValueError("schema must be record or planning")
    cancer_since = as_of - dt.timedelta(days=round(365.25 * CANCER_YEARS))
    return f"""
        WITH cms_present AS (
            SELECT DISTINCT c.person_id, w.cms_condition
            FROM {schema}.condition c JOIN cms_w w ON w.openphm_condition = c.condition
            WHERE c.first_date <= DATE '{as_of}'
              AND (c.condition <> 'cancer' OR c.first_date > DATE '{cancer_since}')
            UNION
            SELECT DISTINCT e.person_id, k.cms_condition
            FROM {schema}.gp_event e JOIN cms_event_codes k ON k.code = e.snomed_code
            WHERE e.event_date <= DATE '{as_of}')
        SELECT person_id, round(sum(w.weight), 2) AS cms, list(cms_condition ORDER BY cms_condition) AS conditions
        FROM cms_present JOIN cms_all_w w USING (cms_condition)
        GROUP BY person_id"""


def cms_scores(con: Connection, as_of: dt.date, outcome: str = "general",
               schema: str = "record") -> pl.DataFrame:
    """Per person with any scored condition by `as_of`: the score and the CMS conditions counted."""
    register_cms_tables(con, outcome)
    try:
        return con.execute(f"SELECT * FROM ({cms_sql(as_of, schema, outcome)}) ORDER BY person_id").pl()
    finally:
        unregister_cms_tables(con)
