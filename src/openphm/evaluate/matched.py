"""A matched cohort at person level, as the Improvement Analytics Unit evaluates care models.

For each cohort of adopting units (those that started in the same month), the people in the
evaluation's population registered with an adopting unit on the start date are matched to people
registered with a unit that never adopted, on the same date, by propensity score: a logistic
regression on age, sex, deprivation, care-home residence, the number of long-term conditions,
frailty (eFI) and emergency admissions and A&E attendances in the year before. Matching is 1:1,
nearest neighbour without replacement, within a caliper of 0.2 standard deviations of the logit of
the score (Austin 2011, Pharmaceutical Statistics 10: 150-161), exact on sex. Balance is the
standardised mean difference of each covariate before and after (under 0.1 is balanced). The effect
is a rate ratio of the outcome's events after the start, from a Poisson regression on the matched
sample with each person's time at risk as the offset and standard errors clustered by unit.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from openphm.derive.efi import efi_codes, efi_sql
from openphm.domain import ACTIVITY, age_on, registered_on, sql_date
from openphm.engine.connection import Connection
from openphm.engine.duckdb_store import lit
from openphm.evaluate.panel import OUTCOME_SOURCES, UNIT_COLUMNS, population_filter
from openphm.evaluate.spec import EvaluationSpec, next_month

COVARIATES = ["age", "male", "imd_decile", "imd_missing", "care_home", "conditions", "efi",
              "prior_emergency_admissions", "prior_ae_attendances"]
CALIPER_SD = 0.2
BALANCED_SMD = 0.1


@dataclass
class MatchedCohort:
    """The matched comparison for one outcome."""

    rate_ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    n_treated: int
    n_control: int
    n_treated_unmatched: int
    balance: pd.DataFrame  # covariate, smd_before, smd_after
    max_smd_after: float


def people_at(con: Connection, spec: EvaluationSpec, day: dt.date, units: list[str], outcomes: list[str],
              end: dt.date) -> pd.DataFrame:
    """One row per person in the population registered with any unit on `day`: unit, covariates,
    and for each outcome its events from `day` to `end` and the person's days at risk."""
    unit_col = UNIT_COLUMNS[spec.level]
    d, year_before = sql_date(day), sql_date(day - dt.timedelta(days=365))
    prior = {o: ACTIVITY[o] for o in ("emergency_admissions", "ae_attendances")}
    counts = []
    for name, (table, date_col, where, value) in prior.items():
        counts.append(f"(SELECT person_id, CAST({value} AS DOUBLE) AS prior_{name} FROM planning.{table} "
                      f"WHERE {where} AND {date_col} >= {year_before} AND {date_col} < {d} GROUP BY 1)")
    for o in outcomes:
        table, date_col, where, value = OUTCOME_SOURCES[o]
        counts.append(f"(SELECT person_id, CAST({value} AS DOUBLE) AS after_{o} FROM planning.{table} "
                      f"WHERE {where} AND {date_col} >= {d} AND {date_col} <= {sql_date(end)} GROUP BY 1)")
    joins = " ".join(f"LEFT JOIN {c} USING (person_id)" for c in counts)
    members = (f"AND p.person_id IN (SELECT person_id FROM planning.list_member WHERE list_id = {lit(spec.list_id)})"
               if spec.list_id else "")
    con.register("efi_codes", efi_codes().to_arrow())
    try:
        frame = con.execute(f"""
            WITH base AS (
                SELECT p.person_id, r.{unit_col} AS unit, {age_on(day, 'p')} AS age,
                       CAST(p.sex = 'M' AS INTEGER) AS male, p.imd_decile,
                       CAST(r.care_home_code IS NOT NULL AS INTEGER) AS care_home,
                       least(coalesce(p.date_of_death, {sql_date(end)}), {sql_date(end)}) AS at_risk_until
                FROM planning.registration r JOIN planning.person p ON p.person_id = r.person_id
                WHERE {registered_on(day, 'r')} AND (p.date_of_death IS NULL OR p.date_of_death > {d}) {members}
                  AND r.{unit_col} IN ({', '.join("'" + u.replace("'", "''") + "'" for u in units)})
                  AND {population_filter(spec.population, d)}),
            conditions AS (SELECT person_id, count(*) AS conditions FROM planning.condition
                           WHERE first_date < {d} GROUP BY 1),
            frailty AS ({efi_sql(day - dt.timedelta(days=1), 'planning.gp_event')})
            SELECT base.*, coalesce(conditions.conditions, 0) AS conditions, coalesce(frailty.efi, 0) AS efi,
                   {', '.join(f'coalesce(prior_{n}, 0) AS prior_{n}' for n in prior)},
                   {', '.join(f'coalesce(after_{o}, 0) AS after_{o}' for o in outcomes)}
            FROM base LEFT JOIN conditions USING (person_id) LEFT JOIN frailty USING (person_id) {joins}
            ORDER BY person_id""").df()
    finally:
        con.unregister("efi_codes")
    frame = frame.drop_duplicates("person_id")  # two registrations covering one day: the first, by person
    frame["imd_missing"] = frame["imd_decile"].isna().astype(int)
    frame["imd_decile"] = frame["imd_decile"].fillna(frame["imd_decile"].median() if frame["imd_decile"].notna().any()
                                                     else 5)
    frame["days_at_risk"] = (pd.to_datetime(frame["at_risk_until"]) - pd.Timestamp(day)).dt.days + 1
    return frame[frame["days_at_risk"] > 0].reset_index(drop=True)


def smd(treated: pd.DataFrame, control: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Standardised mean differences: difference in means over the root mean of the two variances."""
    out = {}
    for c in columns:
        a, b = treated[c].astype(float), control[c].astype(float)
        pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2) if len(a) > 1 and len(b) > 1 else 0.0
        out[c] = (a.mean() - b.mean()) / pooled if pooled > 0 else 0.0
    return pd.Series(out)


def match(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """1:1 nearest-neighbour matching on the logit of the propensity score, exact on sex, within the
    caliper, without replacement (treated people in random order); returns the matched rows with a
    `pair` column."""
    from sklearn.linear_model import LogisticRegression

    x = frame[COVARIATES].to_numpy(dtype=float)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    model = LogisticRegression(max_iter=1000, C=1e6).fit(x, frame["treated"].to_numpy())
    p = np.clip(model.predict_proba(x)[:, 1], 1e-6, 1 - 1e-6)
    logit = np.log(p / (1 - p))
    caliper = CALIPER_SD * logit.std()
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = []
    for sex in (0, 1):
        t_idx = np.flatnonzero((frame["treated"].to_numpy() == 1) & (frame["male"].to_numpy() == sex))
        c_idx = np.flatnonzero((frame["treated"].to_numpy() == 0) & (frame["male"].to_numpy() == sex))
        if len(c_idx) == 0:
            continue
        order = np.argsort(logit[c_idx])
        c_sorted, c_logit = c_idx[order], logit[c_idx][order]
        used = np.zeros(len(c_sorted), dtype=bool)
        for i in rng.permutation(t_idx):
            pos = np.searchsorted(c_logit, logit[i])
            best, best_d = -1, caliper
            # walk outwards from the insertion point to the nearest unused control on each side
            for step in (-1, 1):
                j = pos if step == 1 else pos - 1
                while 0 <= j < len(c_sorted) and used[j]:
                    j += step
                if 0 <= j < len(c_sorted) and abs(c_logit[j] - logit[i]) <= best_d:
                    best, best_d = j, abs(c_logit[j] - logit[i])
            if best >= 0:
                used[best] = True
                pairs.append((i, c_sorted[best]))
    rows = [(i, k) for k, pair in enumerate(pairs) for i in pair]
    out = frame.iloc[[i for i, _ in rows]].copy()
    out["pair"] = [k for _, k in rows]
    return out


def rate_ratio(matched: pd.DataFrame, outcome: str) -> tuple[float, float, float, float]:
    """(rate ratio, 95% low, high, p) from a Poisson regression of the events on treatment with the log
    of days at risk as offset, standard errors clustered by unit."""
    import statsmodels.api as sm

    y = matched[f"after_{outcome}"].to_numpy(dtype=float)
    x = sm.add_constant(matched["treated"].to_numpy(dtype=float))
    groups = pd.factorize(matched["unit"])[0]
    fit = sm.GLM(y, x, family=sm.families.Poisson(), offset=np.log(matched["days_at_risk"].to_numpy(dtype=float))
                 ).fit(cov_type="cluster", cov_kwds={"groups": groups})
    b, se = float(fit.params[1]), float(fit.bse[1])
    return math.exp(b), math.exp(b - 1.959964 * se), math.exp(b + 1.959964 * se), float(fit.pvalues[1])


def last_day(spec: EvaluationSpec) -> dt.date:
    """The last day of the evaluation's last month."""
    return next_month(spec.end) - dt.timedelta(days=1)


def all_units(con: Connection, spec: EvaluationSpec) -> list[str]:
    """Every unit anyone in the record is registered with (for a list: any of its members)."""
    unit_col = UNIT_COLUMNS[spec.level]
    members = (f"WHERE person_id IN (SELECT person_id FROM planning.list_member WHERE list_id = {lit(spec.list_id)})"
               if spec.list_id else "")
    return [r[0] for r in con.execute(f"SELECT DISTINCT {unit_col} FROM planning.registration {members} "
                                      f"ORDER BY 1").fetchall() if r[0] is not None]


def matched_cohort(con: Connection, spec: EvaluationSpec, outcome: str, units: list[str] | None = None,
                   cohorts: dict[dt.date, list[str]] | None = None) -> MatchedCohort:
    """The matched cohort for one outcome (see the module's note); `units` are every unit in the
    evaluation (by default every one in the record), the never-adopters among them the pool of controls."""
    cohorts = cohorts or _cohorts_of(spec)
    never = [u for u in (units if units is not None else all_units(con, spec)) if u not in spec.starts]
    if not never:
        raise ValueError("no unit never adopted: there is no one to match with")
    end = last_day(spec)
    parts, matched_parts, before = [], [], []
    for k, (start, units) in enumerate(sorted(cohorts.items())):
        people = people_at(con, spec, start, units + never, [outcome], end)
        people["treated"] = people["unit"].isin(units).astype(int)
        people["cohort"] = k
        if people["treated"].sum() == 0 or (people["treated"] == 0).sum() == 0:
            continue
        before.append(people)
        matched_parts.append(match(people, seed=spec.seed + k).assign(pair=lambda f, k=k: f["pair"] * 1000 + k))
        parts.append(k)
    if not matched_parts:
        raise ValueError("no adopter or no comparison person in the population on the start dates")
    everyone, matched = pd.concat(before), pd.concat(matched_parts)
    t_all, c_all = everyone[everyone.treated == 1], everyone[everyone.treated == 0]
    t_m, c_m = matched[matched.treated == 1], matched[matched.treated == 0]
    balance = pd.DataFrame({"covariate": COVARIATES, "smd_before": smd(t_all, c_all, COVARIATES).to_numpy(),
                            "smd_after": smd(t_m, c_m, COVARIATES).to_numpy()})
    rr, low, high, p = rate_ratio(matched, outcome)
    return MatchedCohort(rr, low, high, p, len(t_m), len(c_m), len(t_all) - len(t_m), balance,
                         float(balance["smd_after"].abs().max()))


def people_before_after(con: Connection, spec: EvaluationSpec, outcome: str) -> tuple[float, float, float, int]:
    """The naive comparison for people: the adopters' people's rate of the outcome after the start
    against the year before it, as a relative change with a Poisson interval; and how many people.
    For people chosen for their recent activity (a case-finding list) this is where regression to
    the mean shows."""
    frames = []
    for start, units in sorted(_cohorts_of(spec).items()):
        people = people_at(con, spec, start, units, [outcome], last_day(spec))
        prior = "prior_" + outcome if outcome in ("emergency_admissions", "ae_attendances") else None
        if prior is None:
            raise ValueError(f"the people's before-and-after needs the year before's {outcome}: not collected")
        frames.append(people.assign(prior=people[prior]))
    people = pd.concat(frames)
    before, after = float(people["prior"].sum()), float(people[f"after_{outcome}"].sum())
    days = float(people["days_at_risk"].sum())
    if before == 0 or after == 0:
        return float("nan"), float("nan"), float("nan"), len(people)
    ratio = (after / days) / (before / (365.0 * len(people)))
    half = 1.959964 * math.sqrt(1 / before + 1 / after)
    return ratio - 1, ratio * math.exp(-half) - 1, ratio * math.exp(half) - 1, len(people)


def _cohorts_of(spec: EvaluationSpec) -> dict[dt.date, list[str]]:
    out: dict[dt.date, list[str]] = {}
    for unit, start in spec.starts.items():
        out.setdefault(start, []).append(unit)
    return out
