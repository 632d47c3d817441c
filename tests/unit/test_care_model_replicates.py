"""Cheap replicates of the care model: adopters by the generator's rule, events thinned binomially
in the adopters' cells from their start, and the truth equal to what was removed."""

from __future__ import annotations

import numpy as np
import polars as pl

from openphm.synth.replicates import care_model_replicate


def _panel(n_units: int = 30, n_t: int = 40, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    units = [f"P{i:03d}" for i in range(n_units)]
    pop = rng.integers(500, 3000, n_units)
    rows = [(u, t, int(pop[i]), float(rng.poisson(pop[i] * 0.03)))
            for i, u in enumerate(units) for t in range(1, n_t + 1)]
    panel = pl.DataFrame(rows, schema=["unit", "t", "population", "ea_events"], orient="row").with_columns(
        (pl.col("ea_events") / pl.col("population") * 1000).alias("ea"))
    practices = pl.DataFrame({"unit": units, "size": pop * 7, "mean_deprivation": rng.normal(size=n_units)})
    return panel, practices


def test_thinning_removes_the_stated_share_from_the_adopters_after_their_start_only() -> None:
    panel, practices = _panel()
    rep = care_model_replicate(panel, practices, ["ea"], seed=4, effect=-0.2, first_treated=21, waves=2, wave_gap=6)
    assert len(rep.adopters) == round(0.3 * 30)
    assert sorted(set(rep.adopters.values())) == [21, 27]
    joined = rep.panel.join(panel.select("unit", "t", pl.col("ea_events").alias("before")), on=["unit", "t"])
    treated = (pl.col("first_treated") > 0) & (pl.col("t") >= pl.col("first_treated"))
    untouched = joined.filter(~treated)
    assert (untouched["ea_events"] == untouched["before"]).all()
    cells = joined.filter(treated)
    assert (cells["ea_events"] <= cells["before"]).all()
    removed = (cells["before"] - cells["ea_events"]).sum() / cells["before"].sum()
    assert rep.true_effect["ea"] == -removed
    n = cells["before"].sum()
    assert abs(removed - 0.2) < 4 * np.sqrt(0.2 * 0.8 / n)
    assert np.allclose(rep.panel["ea"], rep.panel["ea_events"] / rep.panel["population"] * 1000)


def test_no_effect_removes_nothing_and_the_draw_is_reproducible() -> None:
    panel, practices = _panel()
    a = care_model_replicate(panel, practices, ["ea"], seed=9, effect=0.0)
    b = care_model_replicate(panel, practices, ["ea"], seed=9, effect=0.0)
    assert a.true_effect["ea"] == 0.0 and a.adopters == b.adopters
    assert a.panel.equals(b.panel)


def test_larger_and_more_deprived_practices_adopt_more_often() -> None:
    panel, practices = _panel(n_units=40)
    counts = dict.fromkeys(practices["unit"].to_list(), 0)
    for seed in range(200):
        for unit in care_model_replicate(panel, practices, ["ea"], seed=seed).adopters:
            counts[unit] += 1
    share = practices.with_columns(pl.col("unit").replace_strict(counts).alias("n"))
    assert np.corrcoef(share["mean_deprivation"], share["n"])[0, 1] > 0.3
    assert np.corrcoef(np.log(share["size"]), share["n"])[0, 1] > 0.2
