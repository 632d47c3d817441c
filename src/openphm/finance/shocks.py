"""System-wide year-to-year variation of spend, which a bootstrap of people cannot show.

Resampling people and their activity gives chance alone (who falls ill, how often): its spread shrinks
with the population as one over its square root, so at ICS scale it is a few tenths of a percent.
Real spend also moves for the whole system at once (prices, policy, a bad winter). Its size is
estimated from the record: for each setting, the standard deviation across the covered financial
years of the year-on-year change in log spend per registered person (the mean change, the trend, is
taken out by the standard deviation itself). With fewer than three years there is no estimate. In a
simulated year each setting's spend is multiplied by 1 + e, e ~ Normal(0, sd), clipped at -0.9: mean
one, so the expected spend is unchanged.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from openphm.domain import registered_on
from openphm.engine.connection import Connection
from openphm.finance.spend import SETTINGS, costed_years, year_start

SEED_STREAM = 7_777_777  # the shocks' own random stream, apart from the sampler's batches


def shock_sd(con: Connection, years: list[str] | None = None) -> dict[str, float]:
    """Per setting, the sd of the year-on-year change in log spend per registered person (see above)."""
    years = years or costed_years(con)
    if len(years) < 3:
        return {}
    per_person: dict[str, list[float]] = {s: [] for s in SETTINGS}
    for year in years:
        day = year_start(year) - dt.timedelta(days=1)
        people = con.execute(f"SELECT count(DISTINCT person_id) FROM planning.registration "
                             f"WHERE {registered_on(day)}").fetchone()[0] or 0
        spend = dict(con.execute("SELECT setting, CAST(sum(cost) AS DOUBLE) FROM planning.activity_cost "
                                 "WHERE financial_year = ? AND cost IS NOT NULL GROUP BY 1", [year]).fetchall())
        for s in SETTINGS:
            per_person[s].append(spend.get(s, 0.0) / people if people else math.nan)
    out = {}
    for s, values in per_person.items():
        v = np.asarray(values, dtype=float)
        if (v > 0).all() and np.isfinite(v).all():
            out[s] = float(np.std(np.diff(np.log(v)), ddof=1))
    return out


def shock_factors(sd_by_setting: list[float], runs: int, seed: int) -> np.ndarray:
    """(settings x runs) multipliers 1 + e, e ~ Normal(0, sd), clipped at -0.9."""
    rng = np.random.default_rng([seed, SEED_STREAM])
    sd = np.asarray(sd_by_setting, dtype=float)[:, None]
    return 1 + np.clip(rng.standard_normal((len(sd_by_setting), runs)) * sd, -0.9, None)
