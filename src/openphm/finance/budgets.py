"""Population budgets: a capitation model fitted on the ICS, and fair shares per practice, PCN and place.

The model: a person's cost in a financial year from what was known of them at its start (age and
sex in ESP2013 bands, IMD quintile, each long-term condition, electronic Frailty Index category,
care-home residence), by ordinary least squares on person-level costs, as England's person-based
resource allocation does (Dixon et al., "Developing a person based resource allocation formula for
allocations to general practices in England", BMJ 2011;343:d6608, whose model explained about 12% of
the variation in cost between people and 77% between practices). It is fitted on one year (the
`fit_year`: predictors on 1 April, cost in that year) and applied to the people registered at the
start of the next (the `budget_year`), so the comparison with that year's actual spend is out of
sample.

Fair share: each unit's people's predicted costs, summed, scaled so that the budgets add up to the
envelope (default: the budget year's actual spend on the population, so the question is only how it
is divided). Against actual spend: the difference, and whether it is outside what chance alone
would give: a unit's actual spend under the model has variance the sum of its people's residual
variances (estimated in the fit year by twentieths of predicted cost, so heavier for people
predicted to cost more), so z = (actual - fair share) / sqrt(that sum) is flagged beyond 1.96 (95%)
and 3.09 (99.8%), the limits of a funnel plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from openphm.derive.features import CONDITIONS
from openphm.finance.spend import HOSPITAL, person_costs

LEVELS = {"practice": "practice_code", "pcn": "pcn_code", "place": "place_code"}
EFI_BANDS = ((0.12, "fit"), (0.24, "mild"), (0.36, "moderate"), (math.inf, "severe"))  # Clegg et al. 2016
VARIANCE_BINS = 20
Z95, Z998 = 1.959964, 3.090232

# Plausibility band for the fit's R squared: Dixon et al. BMJ 2011 (PBRA).
PUBLISHED_R2 = {"person": 0.12, "practice": 0.77}


def _efi_band(efi: pl.Expr) -> pl.Expr:
    out = pl.when(efi <= EFI_BANDS[0][0]).then(pl.lit(EFI_BANDS[0][1]))
    for limit, name in EFI_BANDS[1:]:
        out = out.when(efi <= limit).then(pl.lit(name))
    return out.otherwise(pl.lit("severe"))


def design(people: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The model's design matrix (intercept first) and its column names: age band by sex (reference:
    women 40-44), IMD quintiles 1-4 (reference: 5, least deprived), each condition, eFI mild, moderate
    and severe (reference: fit) and care-home residence."""
    frame = people.with_columns(
        (pl.col("sex").fill_null("F") + ":" + pl.col("age_band")).alias("age_sex"),
        _efi_band(pl.col("efi")).alias("efi_band"))
    columns: list[np.ndarray] = [np.ones(len(frame))]
    names = ["intercept"]
    age_sex = frame["age_sex"].to_numpy()
    for level in sorted(set(age_sex) - {"F:40-44"}):
        columns.append((age_sex == level).astype(float))
        names.append(f"age_sex[{level}]")
    quintile = frame["imd_quintile"].to_numpy()
    for q in (1, 2, 3, 4):
        columns.append((quintile == q).astype(float))
        names.append(f"imd_quintile[{q}]")
    for c in CONDITIONS:
        columns.append(frame[f"has_{c}"].to_numpy().astype(float))
        names.append(f"has_{c}")
    band = frame["efi_band"].to_numpy()
    for b in ("mild", "moderate", "severe"):
        columns.append((band == b).astype(float))
        names.append(f"efi[{b}]")
    columns.append(frame["care_home_resident"].to_numpy().astype(float))
    names.append("care_home_resident")
    return np.column_stack(columns), names


@dataclass(frozen=True)
class CapitationModel:
    """OLS coefficients by design column, the residual variance by predicted-cost twentieth, and fit."""

    names: list[str]
    coefficients: np.ndarray
    bin_edges: np.ndarray  # predicted-cost cut points between the twentieths
    bin_variance: np.ndarray  # residual variance in each twentieth
    fit_year: str
    people: int
    r2_person: float

    def predict(self, people: pl.DataFrame) -> np.ndarray:
        """Expected cost of each person (the design's columns must match the fit's: absent levels are 0)."""
        x, names = design(people)
        index = {n: i for i, n in enumerate(names)}
        aligned = np.column_stack([x[:, index[n]] if n in index else np.zeros(len(people)) for n in self.names])
        return aligned @ self.coefficients

    def variance(self, predicted: np.ndarray) -> np.ndarray:
        """Each person's residual variance, by the twentieth of predicted cost they fall in."""
        return self.bin_variance[np.searchsorted(self.bin_edges, predicted, side="right")]

    def coefficient_table(self) -> pl.DataFrame:
        return pl.DataFrame({"term": self.names, "pounds": self.coefficients})


def fit_capitation(people: pl.DataFrame, fit_year: str, outcome: str = "cost") -> CapitationModel:
    """OLS of each person's cost in the year (column `outcome`) on the design (see `design`)."""
    x, names = design(people)
    y = people[outcome].to_numpy().astype(float)
    keep = x.any(axis=0)
    keep[0] = True
    x, names = x[:, keep], [n for n, k in zip(names, keep, strict=True) if k]
    coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
    predicted = x @ coefficients
    residual = y - predicted
    edges = np.quantile(predicted, np.linspace(0, 1, VARIANCE_BINS + 1)[1:-1])
    bins = np.searchsorted(edges, predicted, side="right")
    variance = np.array([residual[bins == b].var() if (bins == b).any() else residual.var()
                         for b in range(VARIANCE_BINS)])
    return CapitationModel(names, coefficients, edges, variance, fit_year, len(people), r_squared(y, predicted))


def r_squared(actual: np.ndarray, predicted: np.ndarray, weights: np.ndarray | None = None) -> float:
    """1 - residual sum of squares / total sum of squares (each term weighted, given `weights`)."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    w = np.ones(len(actual)) if weights is None else np.asarray(weights, dtype=float)
    if len(actual) < 2:
        return math.nan
    total = float(np.sum(w * (actual - np.average(actual, weights=w)) ** 2))
    return 1 - float(np.sum(w * (actual - predicted) ** 2)) / total if total > 0 else math.nan


def fair_shares(people: pl.DataFrame, model: CapitationModel, envelope: float | None = None,
                outcome: str = "cost") -> dict:
    """Per level (practice, PCN, place): people, fair-share budget, actual spend, difference, z and
    flags; and R squared of the units' actual spend per person on predicted per person (weighted
    by people), with the person-level R squared out of sample."""
    predicted = model.predict(people)
    actual = people[outcome].to_numpy().astype(float)
    envelope = float(actual.sum()) if envelope is None else float(envelope)
    scale = envelope / predicted.sum() if predicted.sum() > 0 else math.nan
    frame = people.select(*LEVELS.values()).with_columns(
        pl.Series("predicted", predicted * scale), pl.Series("actual", actual),
        pl.Series("variance", model.variance(predicted) * scale ** 2))
    out: dict = {"envelope": envelope, "scale": scale, "r2_person_out_of_sample": r_squared(actual, predicted * scale),
                 "levels": {}}
    for level, column in LEVELS.items():
        units = (frame.group_by(column).agg(pl.len().alias("people"), pl.col("predicted").sum().alias("fair_share"),
                                            pl.col("actual").sum().alias("actual_spend"),
                                            pl.col("variance").sum().alias("variance"))
                 .rename({column: "unit"}).sort("unit")
                 .with_columns((pl.col("actual_spend") - pl.col("fair_share")).alias("difference"))
                 .with_columns((pl.col("difference") / pl.col("variance").sqrt()).alias("z"))
                 .with_columns(pl.when(pl.col("z").abs() > Z998).then(pl.lit("beyond 99.8%"))
                               .when(pl.col("z").abs() > Z95).then(pl.lit("beyond 95%"))
                               .otherwise(pl.lit("within chance")).alias("verdict"))
                 .drop("variance"))
        weights = units["people"].to_numpy().astype(float)
        per_actual = units["actual_spend"].to_numpy() / weights
        per_fair = units["fair_share"].to_numpy() / weights
        out["levels"][level] = {"units": units, "r2": r_squared(per_actual, per_fair, weights)}
    return out


def population_budgets(con, budget_year: str, fit_year: str | None = None, envelope: float | None = None) -> dict:
    """Fit on `fit_year` (default: the year before), apply to `budget_year`'s people and compare with
    that year's actual spend. Returns the model, the in-sample fit by level and the fair shares."""
    start = int(budget_year[:4])
    fit_year = fit_year or f"{start - 1}-{start % 100:02d}"
    fit_people, _ = person_costs(con, fit_year)
    if fit_people.is_empty() or float(fit_people["cost"].sum()) <= 0:
        raise ValueError(f"no costed activity in {fit_year} to fit the model on")
    model = fit_capitation(fit_people, fit_year)
    in_sample = fair_shares(fit_people, model)
    # England's person-based formula modelled hospital costs: the same model on hospital spend alone is
    # the like-for-like comparison with its R squared (social care, here, is far more predictable)
    hospital = fit_people.with_columns(pl.sum_horizontal(*HOSPITAL).alias("hospital_cost"))
    hospital_model = fit_capitation(hospital, fit_year, "hospital_cost")
    hospital_fit = fair_shares(hospital, hospital_model, outcome="hospital_cost")
    people, _ = person_costs(con, budget_year)
    if people.is_empty():
        raise ValueError(f"nobody registered on 1 April of {budget_year}")
    shares = fair_shares(people, model, envelope)
    return {"fit_year": fit_year, "budget_year": budget_year, "model": model,
            "fit": {"person": model.r2_person, **{lv: in_sample["levels"][lv]["r2"] for lv in LEVELS}},
            "fit_hospital": {"person": hospital_model.r2_person,
                             **{lv: hospital_fit["levels"][lv]["r2"] for lv in LEVELS}},
            "published": PUBLISHED_R2, "shares": shares}
