"""Charlson Comorbidity Index from hospital diagnoses (ICD-10), at any date.

Categories by the Quan et al. (2005) ICD-10 coding algorithm: a diagnosis belongs to a category
when its code starts with one of the category's prefixes (data/charlson_quan_icd10.csv). Weights
(data/charlson_weights.csv): the original Charlson (1987) or the updated Quan (2011) weights. The
usual hierarchy applies: mild liver disease is not counted with moderate/severe liver disease,
diabetes without complications not with diabetes with complications, and any malignancy not with
metastatic solid tumour. The score sums the weights of the categories present on spells admitted
on or before `as_of` (and after `as_of - lookback` when a lookback is given).
"""

from __future__ import annotations

import datetime as dt
from importlib import resources

import polars as pl

from openphm.engine.connection import Connection

HIERARCHY = {"mld": "msld", "diab": "diabwc", "canc": "metacanc"}  # dropped when the second is present
WEIGHTS = ("charlson", "quan")


def _data(name: str) -> pl.DataFrame:
    raw = (resources.files("openphm.derive") / "data" / name).read_bytes()
    return pl.read_csv(raw, schema_overrides={"prefix": pl.Utf8})


def charlson_scores(con: Connection, as_of: dt.date, weights: str = "quan",
                    lookback_years: int | None = None, diagnoses: str = "record.hospital_diagnosis") -> pl.DataFrame:
    """Per person with any diagnosis: the Charlson score and the categories counted."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}")
    if diagnoses not in ("record.hospital_diagnosis", "planning.hospital_diagnosis", "hospital_diagnosis"):
        raise ValueError("diagnoses must name a hospital_diagnosis table")
    con.register("charlson_map", _data("charlson_quan_icd10.csv").to_arrow())
    con.register("charlson_w", _data("charlson_weights.csv").select(
        "comorbidity", pl.col(f"weight_{weights}").alias("weight")).to_arrow())
    since = f"AND d.admission_date > DATE '{as_of - dt.timedelta(days=round(365.25 * lookback_years))}'" \
        if lookback_years else ""
    drop = " OR ".join(f"(c.comorbidity = '{low}' AND list_contains(s.present, '{high}'))"
                       for low, high in HIERARCHY.items())
    frame = con.execute(f"""
        WITH present AS (
            SELECT d.person_id, list(DISTINCT m.comorbidity) AS present
            FROM {diagnoses} d JOIN charlson_map m ON starts_with(d.code, m.prefix)
            WHERE d.admission_date <= DATE '{as_of}' {since}
            GROUP BY d.person_id),
        counted AS (
            SELECT s.person_id, c.comorbidity
            FROM present s, unnest(s.present) AS c(comorbidity)
            WHERE NOT ({drop}))
        SELECT person_id, CAST(sum(w.weight) AS INTEGER) AS charlson_score,
               list(comorbidity ORDER BY comorbidity) AS categories
        FROM counted JOIN charlson_w w USING (comorbidity)
        GROUP BY person_id ORDER BY person_id""").pl()
    con.unregister("charlson_map")
    con.unregister("charlson_w")
    return frame
