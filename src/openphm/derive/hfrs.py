"""Hospital Frailty Risk Score (HFRS) from hospital diagnoses (ICD-10), at any date.

Definition: Gilbert T, Neuburger J, Kraindler J, et al. "Development and validation of a Hospital
Frailty Risk Score focusing on older people in acute care settings using electronic hospital
records: an observational study". Lancet 2018;391:1775-82. 109 three-character ICD-10
categories each carry points (supplementary appendix; data/hfrs_weights.csv, transcribed from
the appendix table and cross-checked against a second independent listing: same 109 codes and
weights, summing to 173.2). A person's score is the sum of the points of each category recorded
in any diagnosis position on spells admitted in the two years up to and including `as_of`, each
category counted once. Risk: low below 5, intermediate 5 to 15, high above 15.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources

import polars as pl

from openphm.engine.connection import Connection

LOOKBACK_DAYS = 730  # two years
DIAGNOSIS_TABLES = ("record.hospital_diagnosis", "planning.hospital_diagnosis", "hospital_diagnosis")


def hfrs_weights() -> pl.DataFrame:
    """The 109 ICD-10 categories and their points."""
    raw = (resources.files("openphm.derive") / "data" / "hfrs_weights.csv").read_bytes()
    return pl.read_csv(raw, schema_overrides={"icd10_category": pl.Utf8, "weight": pl.Float64})


def hfrs_sql(as_of: dt.date, diagnoses: str = "record.hospital_diagnosis") -> str:
    """SQL: person_id, hfrs, hfrs_category, categories for everyone with a scoring diagnosis (needs a
    registered `hfrs_w` relation with the weights)."""
    if diagnoses not in DIAGNOSIS_TABLES:
        raise ValueError("diagnoses must name a hospital_diagnosis table")
    since = as_of - dt.timedelta(days=LOOKBACK_DAYS)
    return f"""
        WITH hfrs_present AS (
            SELECT DISTINCT d.person_id, left(d.code, 3) AS icd10_category
            FROM {diagnoses} d
            WHERE d.admission_date <= DATE '{as_of}' AND d.admission_date > DATE '{since}')
        SELECT person_id, round(sum(w.weight), 1) AS hfrs,
               CASE WHEN sum(w.weight) < 5 THEN 'low' WHEN sum(w.weight) <= 15 THEN 'intermediate'
                    ELSE 'high' END AS hfrs_category,
               list(icd10_category ORDER BY icd10_category) AS categories
        FROM hfrs_present JOIN hfrs_w w USING (icd10_category)
        GROUP BY person_id"""


def hfrs_scores(con: Connection, as_of: dt.date,
                diagnoses: str = "record.hospital_diagnosis") -> pl.DataFrame:
    """HFRS per person with at least one scoring diagnosis in the two years to `as_of` (everyone
    else scores 0, low risk)."""
    con.register("hfrs_w", hfrs_weights().to_arrow())
    try:
        return con.execute(hfrs_sql(as_of, diagnoses) + " ORDER BY person_id").pl()
    finally:
        con.unregister("hfrs_w")
