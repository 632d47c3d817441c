"""Training the two models of emergency admission within 12 months, with temporal validation.

Each example is a person registered and alive on an index date, with the features of
openphm.derive.features (information from before the date only) and the outcome: at least one
emergency admission in the 12 months from the date. The models are trained at one index date
and validated at a later one (temporal validation): by default the training date is two years
before the record's last complete year and the validation date one year later.

- `logistic`: L2-penalised logistic regression on standardised features, with log(1 + x) for
  counts: interpretable, each coefficient a log odds ratio per standard deviation.
- `lightgbm`: gradient-boosted trees (LightGBM), which find interactions and thresholds itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import polars as pl
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from openphm.calendar_dates import add_months
from openphm.derive.features import build_features, feature_names
from openphm.domain import emergency_admission
from openphm.engine.connection import Connection

MODELS = ("logistic", "lightgbm")
COUNT_PREFIXES = ("emergency", "elective", "maternity", "ae_", "outpatient", "gp_", "community", "mental_health",
                  "days_since", "condition_count")


def examples(con: Connection, index_date: dt.date, schema: str = "planning") -> pl.DataFrame:
    """Features at `index_date` and the outcome (an emergency admission in the next 12 months)."""
    build_features(con, index_date, schema=schema, table="risk_features")
    # a year on: the day after the same day a year later (from 29 February: to 28 February inclusive)
    end = add_months(index_date - dt.timedelta(days=1), 12) + dt.timedelta(days=1)
    frame = con.execute(f"""
        SELECT f.*, CAST(f.person_id AS VARCHAR) AS person_key,
               coalesce(o.admitted, 0) AS outcome
        FROM risk_features f LEFT JOIN (
            SELECT person_id, 1 AS admitted FROM {schema}.inpatient_spell
            WHERE {emergency_admission()} AND admission_date >= DATE '{index_date}'
              AND admission_date < DATE '{end}' GROUP BY person_id) o USING (person_id)
        ORDER BY person_key""").pl()  # one order on every engine and thread count: the same fitted models
    con.execute("DROP TABLE risk_features")
    return frame.drop("person_id").rename({"person_key": "person_id"})


def _matrix(frame: pl.DataFrame) -> np.ndarray:
    return frame.select(feature_names()).to_numpy().astype(float)


def _is_count(name: str) -> bool:
    return name.startswith(COUNT_PREFIXES)


@dataclass
class LogisticModel:
    """Logistic regression on standardised features (log1p on counts, age hinges), held as plain
    arrays so that it can be saved as numbers and loaded without executing anything."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    count_columns: np.ndarray

    def transform(self, x: np.ndarray) -> np.ndarray:
        """The standardised design matrix the coefficients apply to (as StandardScaler.transform)."""
        return (_design(x, self.count_columns) - self.mean) / self.scale

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted risks (as LogisticRegression.predict_proba)."""
        return expit((self.transform(x) @ self.coef[:, None]).reshape(-1) + self.intercept)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Each feature's contribution to each person's log odds (coefficient x standardised value);
        the age hinges are added to age."""
        c = self.transform(x) * self.coef
        n = len(feature_names())
        c[:, feature_names().index("age")] += c[:, n:].sum(axis=1)
        return c[:, :n]


@dataclass
class BoostedModel:
    """LightGBM booster."""

    booster: lgb.Booster

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted risks."""
        return self.booster.predict(x)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Each feature's SHAP contribution to each person's log odds (LightGBM's pred_contrib)."""
        return self.booster.predict(x, pred_contrib=True)[:, :-1]


AGE_KNOTS = (5, 15, 45, 65, 75, 85)  # risk of admission is U-shaped in age: a hinge at each knot


def _design(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """log(1 + count) for counts, and linear hinges of age, so the logistic model can bend."""
    x = x.copy()
    x[:, counts] = np.log1p(np.clip(x[:, counts], 0, None))
    age = x[:, feature_names().index("age")]
    return np.column_stack([x, *(np.clip(age - k, 0, None) for k in AGE_KNOTS)])


def train_logistic(frame: pl.DataFrame) -> LogisticModel:
    """Fit the logistic model."""
    counts = np.array([_is_count(n) for n in feature_names()])
    x = _design(_matrix(frame), counts)
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(x), frame["outcome"].to_numpy())
    return LogisticModel(scaler.mean_.astype(float), scaler.scale_.astype(float), model.coef_[0].astype(float),
                         float(model.intercept_[0]), counts)


def train_lightgbm(frame: pl.DataFrame, seed: int = 7) -> BoostedModel:
    """Fit the gradient-boosted trees (fixed, conservative settings; no tuning on the validation year)."""
    params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 100,
              "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
              "seed": seed, "verbose": -1, "num_threads": 2, "deterministic": True}
    data = lgb.Dataset(_matrix(frame), label=frame["outcome"].to_numpy(), feature_name=feature_names())
    return BoostedModel(lgb.train(params, data, num_boost_round=300))


def train_models(train: pl.DataFrame) -> dict[str, LogisticModel | BoostedModel]:
    """Both models fitted on the training examples."""
    return {"logistic": train_logistic(train), "lightgbm": train_lightgbm(train)}


def predict(models: dict, frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Each model's predicted risks for the examples."""
    x = _matrix(frame)
    return {name: m.predict(x) for name, m in models.items()}
