"""Cheap replicates of the care model for testing evaluation methods: one population, many draws of
who adopts and which events the model prevents.

The generator removes each eligible event at an adopting practice after its start with probability
-effect, independently (thinning a Poisson process: `periods.care_model_prevented`). So, given a
panel built from an ICS generated *without* the care model (counts of the eligible population's
events by practice and month), drawing the adopters by the generator's own rule
(`simulate.choose_joiners`) and thinning each treated cell's count binomially gives exactly the
panel a full generation with that adoption would give, in a fraction of a second. The truth for a
replicate is the share of the treated cells' events removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from openphm.synth.parameters import load_parameters
from openphm.synth.simulate import choose_joiners


@dataclass(frozen=True)
class Replicate:
    """One replicate: the panel with adoption and thinning applied, and the true effects."""

    panel: pl.DataFrame
    adopters: dict[str, int]  # unit -> first treated period
    true_effect: dict[str, float]  # outcome -> -(events removed / events there would have been)


def care_model_replicate(panel: pl.DataFrame, practices: pl.DataFrame, outcomes: list[str], seed: int,
                         effect: float = -0.20, first_treated: int = 25, waves: int = 1,
                         wave_gap: int = 6) -> Replicate:
    """A replicate on `panel` (unit, t, population, and <outcome>_events and <outcome> per outcome, for
    the population the model reaches), with `practices` (unit, size, mean_deprivation: higher is more
    deprived) to draw the adopters from. Adopters start at `first_treated` or, with `waves`, in waves
    `wave_gap` periods apart."""
    rng = np.random.default_rng([seed, 11])
    practices = practices.sort("unit")
    share = load_parameters()["care_model"]["practice_share"]
    chosen = choose_joiners(rng, practices["size"].to_numpy(), practices["mean_deprivation"].to_numpy(), share)
    units = practices["unit"].to_numpy()[chosen]
    wave = rng.permutation(np.arange(len(units)) % max(waves, 1))
    adopters = {str(u): int(first_treated + w * wave_gap) for u, w in zip(units, wave, strict=True)}
    starts = pl.DataFrame({"unit": list(adopters), "first_treated": list(adopters.values())},
                          schema={"unit": pl.Utf8, "first_treated": pl.Int64})
    out = (panel.drop("first_treated", strict=False).join(starts, on="unit", how="left")
           .with_columns(pl.col("first_treated").fill_null(0)).sort("unit", "t"))
    treated = ((out["first_treated"] > 0) & (out["t"] >= out["first_treated"])).to_numpy()
    truth = {}
    for outcome in outcomes:
        events = out[f"{outcome}_events"].to_numpy()
        if not np.allclose(events, np.round(events)):
            raise ValueError(f"{outcome}: thinning needs counts of events, not {outcome}_events as given")
        counts = np.round(events).astype(np.int64)
        kept = counts.copy()
        kept[treated] = rng.binomial(counts[treated], 1.0 + effect)
        removed, total = int((counts - kept)[treated].sum()), int(counts[treated].sum())
        truth[outcome] = -removed / total if total else float("nan")
        out = out.with_columns(pl.Series(f"{outcome}_events", kept.astype(np.float64)),
                               (pl.Series(kept.astype(np.float64)) / pl.col("population") * 1000).alias(outcome))
    return Replicate(out, adopters, truth)
