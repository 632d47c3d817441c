"""`openphm risk score`: everyone's risk at a date, with reasons in plain words, and rising risk.

Tables (schema `risk`):
- `score`: person_id, practice_code, pcn_code, as_of, model, risk, centile (100 = the highest
  1%), reasons (up to three plain-words factors that raise this person's risk the most);
  one set of rows per date scored, so earlier scorings are kept;
- `rising`: for the latest date, each person's risk and centile against the previous scoring,
  largest rise first.

Scoring is for direct care (case finding), so everyone in the record is scored, people with a
National Data Opt-out too (openphm.identity.optout); planning readers use `planning.risk_score`
and `planning.risk_rising`, which leave out the people the build in service has opted out,
whenever the scores were computed.

Reasons come from per-person contributions to the log odds: coefficient times standardised
value for the logistic model, for everyone; when LightGBM scores, its own TreeSHAP values for the
highest-risk 5% (the people lists and clinicians look at). TreeSHAP costs about 1.4 ms a person
on this machine, 30 minutes for a million, so it is kept to them. Only factors present in the
person (a count above zero, a condition recorded) and raising the risk are given.

People of equal risk (everyone with the same features has the same) are taken in person-id order
(as text), so the centiles and the TreeSHAP top 5% do not depend on the order in which an engine
returns rows: DuckDB and Spark give the same (tests/integration/test_spark_parity.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from openphm.derive.features import FEATURES, build_features, feature_names
from openphm.engine import lookup_storage
from openphm.engine.connection import Connection, transaction
from openphm.identity.optout import direct_care_schema, planning_view
from openphm.risk.model_files import installation_key, load_models

TOP_REASONS = 3
SHAP_TOP_SHARE = 0.05


def explain(contributions: np.ndarray, x: np.ndarray, top: int = TOP_REASONS) -> list[list[str]]:
    """Plain-words reasons per person: the largest positive contributions of factors present."""
    names = feature_names()
    templates = [FEATURES[n] for n in names]
    present = x != 0
    present[:, names.index("days_since_emergency_admission")] = x[:, names.index("days_since_emergency_admission")] \
        < 3650
    scored = np.where(present & (contributions > 0), contributions, 0.0)
    order = np.argsort(-scored, axis=1)[:, :top]
    reasons = []
    for i in range(len(x)):
        reasons.append([templates[j].format(v=x[i, j]) for j in order[i] if scored[i, j] > 0])
    return reasons


def predict_and_explain(saved: dict, name: str, x: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
    """Risks from model `name` and reasons for everyone (see the module's note on TreeSHAP)."""
    chosen = saved["models"][name]
    risk = chosen.predict(x)
    reasons = explain(saved["models"]["logistic"].contributions(x), x)
    if name != "logistic":
        top = np.argsort(-risk, kind="stable")[:int(np.ceil(SHAP_TOP_SHARE * len(risk)))]
        for i, words in zip(top, explain(chosen.contributions(x[top]), x[top]), strict=True):
            reasons[i] = words
    return risk, reasons


def score_population(con: Connection, model_dir: Path, as_of: dt.date,
                     model: str | None = None, key: bytes | None = None) -> pl.DataFrame:
    """Score everyone registered on `as_of`, keep the scores in risk.score and update risk.rising.
    `key` checks the models' signature: by default the key of the store `con` belongs to
    (installation_key; on Spark, which has none, pass the installation's model_key)."""
    saved = load_models(model_dir, key if key is not None else installation_key(con))
    name = model or saved["best"]
    if name not in saved["models"]:
        raise ValueError(f"no model {name!r}; trained: {', '.join(saved['models'])}")
    build_features(con, as_of, schema=direct_care_schema(con), table="score_features")  # everyone: direct care
    frame = con.execute("SELECT CAST(person_id AS VARCHAR) AS person_id, practice_code, pcn_code, "
                        f"{', '.join(feature_names())} FROM score_features ORDER BY 1").pl()  # ties: by person_id
    con.execute("DROP TABLE score_features")
    x = frame.select(feature_names()).to_numpy().astype(float)
    risk, reasons = predict_and_explain(saved, name, x)
    rank = np.argsort(np.argsort(risk, kind="stable"), kind="stable")
    centile = np.floor(rank / max(len(risk), 1) * 100).astype(int) + 1
    scores = frame.select("person_id", "practice_code", "pcn_code").with_columns(
        pl.lit(as_of).alias("as_of"), pl.lit(name).alias("model"), pl.Series("risk", risk),
        pl.Series("centile", centile), pl.Series("reasons", reasons, dtype=pl.List(pl.Utf8)))
    con.execute("CREATE SCHEMA IF NOT EXISTS risk")
    con.register("new_scores", scores.to_arrow())
    with lookup_storage(con), transaction(con):  # a record page looks a person's scores up (sorted above)
        con.execute("CREATE TABLE IF NOT EXISTS risk.score AS SELECT CAST(person_id AS UUID) AS person_id, "
                    "* EXCLUDE (person_id) FROM new_scores LIMIT 0")
        con.execute(f"DELETE FROM risk.score WHERE as_of = DATE '{as_of}' AND model = '{name}'")
        con.execute("INSERT INTO risk.score SELECT CAST(person_id AS UUID), * EXCLUDE (person_id) FROM new_scores")
        con.execute(f"""
            CREATE OR REPLACE TABLE risk.rising AS
            WITH previous AS (SELECT max(as_of) AS as_of FROM risk.score
                              WHERE model = '{name}' AND as_of < DATE '{as_of}')
            SELECT n.person_id, n.practice_code, n.pcn_code, n.as_of, p.as_of AS previous_as_of, n.risk,
                   p.risk AS previous_risk, n.risk - p.risk AS change, n.centile, p.centile AS previous_centile,
                   n.reasons
            FROM risk.score n JOIN risk.score p ON p.person_id = n.person_id AND p.model = n.model
            WHERE n.model = '{name}' AND n.as_of = DATE '{as_of}' AND p.as_of = (SELECT as_of FROM previous)
            ORDER BY change DESC""")
        planning_view(con, "risk_score", "risk.score")
        planning_view(con, "risk_rising", "risk.rising")
    con.unregister("new_scores")
    return scores
