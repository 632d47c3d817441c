"""The practice admission ratio feature: observed emergency admissions over those expected from the
ICS's rates in five-year age bands 0-4, 5-9, ... 90+ (indirect standardisation), recomputed in pandas."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from openphm.derive.features import add_practice_admission_ratio


def expected_by_pandas(people: pd.DataFrame) -> pd.Series:
    band = np.minimum(np.floor(people["age"] / 5), 18)
    rate = people.groupby(band)["emergency_admissions_12m"].transform("mean")
    by_practice = people.assign(expected=rate).groupby("practice_code")[["emergency_admissions_12m", "expected"]].sum()
    return by_practice["emergency_admissions_12m"] / by_practice["expected"]


def test_ratio_uses_five_year_bands_from_zero():
    rng = np.random.default_rng(3)
    people = pd.DataFrame({"person_id": range(600), "practice_code": rng.choice(["A", "B", "C"], 600),
                           "age": rng.integers(0, 101, 600).astype(float),
                           "emergency_admissions_12m": rng.poisson(0.3, 600).astype(float)})
    # ages 37 and 39: one band (35-39) with five-year bands from zero, two bands if centred on 40
    people.loc[:9, ["age", "practice_code", "emergency_admissions_12m"]] = [37.0, "A", 3.0]
    people.loc[10:19, ["age", "practice_code", "emergency_admissions_12m"]] = [39.0, "B", 0.0]
    con = duckdb.connect()
    con.register("people_frame", people)
    con.execute("CREATE TEMP TABLE people AS SELECT * FROM people_frame")
    add_practice_admission_ratio(con, "people")
    got = con.execute("SELECT practice_code, any_value(practice_admission_ratio) FROM people GROUP BY 1").df()
    want = expected_by_pandas(people)
    for practice, ratio in got.itertuples(index=False):
        assert abs(ratio - want[practice]) < 1e-12, practice
