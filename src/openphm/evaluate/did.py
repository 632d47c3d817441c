"""Difference-in-differences for staggered adoption (Callaway & Sant'Anna 2021) and the naive
before-and-after comparison reported beside it.

The group-time effects and their aggregations come from `moderndid` (a maintained Python port of
the authors' R `did` package, which agrees with the R package's published mpdta results to the
fourth decimal: tests/spec/test_evaluate_did.py). Intervals are its multiplier bootstrap: the
influence functions re-weighted unit by unit (Mammen weights), so that all of a unit's periods move
together (clustered by unit, as a wild cluster bootstrap is), with simultaneous bands for the
group-time and event-time effects.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

KINDS = ("simple", "dynamic", "group", "calendar")
CONTROL_GROUPS = ("nevertreated", "notyettreated")


def _frame(frame: Any, columns: list[str]) -> pl.DataFrame:
    """A polars copy of `frame` (pandas or polars) with `columns` present and no missing values."""
    out = pl.from_pandas(frame) if isinstance(frame, pd.DataFrame) else pl.DataFrame(frame)
    missing = [c for c in columns if c not in out.columns]
    if missing:
        raise ValueError(f"the panel has no column {missing[0]!r} (columns: {', '.join(out.columns)})")
    for c in columns:
        n = out[c].null_count()
        if n:
            raise ValueError(f"column {c!r} has {n} missing values")
    return out.select(columns)


@dataclass
class StaggeredDiD:
    """Callaway & Sant'Anna group-time effects (`group_time`) and their aggregations."""

    group_time: pd.DataFrame  # group, time, att, se, ci_low, ci_high (simultaneous band), post
    pretrend_p_value: float  # Wald pre-test that every pre-period group-time effect is zero (NaN when its
    #                          covariance is singular: more pre-period effects than units)
    control_group: str
    n_units: int
    n_treated_units: int
    _fit: Any = field(repr=False, default=None)
    _seed: int = 0
    notes: list[str] = field(default_factory=list)  # what moderndid warned of (small groups, a singular pre-test)
    _cache: dict = field(default_factory=dict, repr=False)

    def aggregate(self, kind: str = "simple") -> dict:
        """One aggregation: `simple` (every post-period group-time effect weighted by group size),
        `dynamic` (by event time; the overall is their mean over event times 0 and later), `group`
        or `calendar`. Returns `att`, `se`, `ci_low`, `ci_high`, `p_value` and, except for `simple`,
        `by` (a DataFrame with `e`, `att`, `se`, `ci_low`, `ci_high`: the simultaneous band)."""
        if kind not in KINDS:
            raise ValueError(f"aggregation {kind!r}: choose one of {', '.join(KINDS)}")
        if kind in self._cache:
            return self._cache[kind]
        from moderndid import aggte

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the same warnings as the fit's, kept in `notes`
            agg = aggte(self._fit, type=kind, random_state=self._seed)
        att, se = float(agg.overall_att), float(agg.overall_se)
        out = {"att": att, "se": se, "ci_low": att - 1.959964 * se, "ci_high": att + 1.959964 * se,
               "p_value": p_value(att, se)}
        if kind != "simple" and agg.event_times is not None:
            crit = np.asarray(agg.critical_values if agg.critical_values is not None else 1.959964, dtype=float)
            est, ses = np.asarray(agg.att_by_event, dtype=float), np.asarray(agg.se_by_event, dtype=float)
            out["by"] = pd.DataFrame({"e": np.asarray(agg.event_times), "att": est, "se": ses,
                                      "ci_low": est - crit * ses, "ci_high": est + crit * ses})
        self._cache[kind] = out
        return out


def p_value(estimate: float, se: float) -> float:
    """Two-sided normal p-value of an estimate with its standard error (NaN without one)."""
    if not se or not math.isfinite(se):
        return float("nan")
    return math.erfc(abs(estimate / se) / math.sqrt(2))


def staggered_did(frame: Any, unit: str, time: str, outcome: str, first_treated: str,
                  control_group: str = "notyettreated", weights: str | None = None,
                  bootstrap: int = 999, seed: int = 0) -> StaggeredDiD:
    """Callaway & Sant'Anna (2021) difference-in-differences on a balanced panel: one row per unit and
    time, `first_treated` the first treated time of the unit (0 for never treated). Times are integers
    (for months, a running month number). `control_group` is `notyettreated` (never treated and not
    yet treated units; the default, since a care model's non-joiners may be few) or `nevertreated`."""
    if control_group not in CONTROL_GROUPS:
        raise ValueError(f"control_group {control_group!r}: choose one of {', '.join(CONTROL_GROUPS)}")
    cols = [unit, time, outcome, first_treated] + ([weights] if weights else [])
    data = _frame(frame, cols)
    units = data[unit].n_unique()
    per_unit = data.group_by(unit).agg(pl.col(time).n_unique().alias("n"), pl.col(first_treated).n_unique().alias("g"))
    if per_unit["g"].max() > 1:
        raise ValueError(f"{first_treated!r} must be the same in every row of a unit")
    if per_unit["n"].min() != data[time].n_unique() or data.height != units * data[time].n_unique():
        raise ValueError(f"the panel is not balanced: every {unit!r} needs one row for every {time!r}")
    treated_units = data.filter(pl.col(first_treated) > 0)[unit].n_unique()
    if treated_units == 0:
        raise ValueError(f"no unit is ever treated ({first_treated!r} is 0 everywhere)")
    if treated_units == units and control_group == "nevertreated":
        raise ValueError("every unit is treated: there is no never-treated control group (use notyettreated)")
    from moderndid import att_gt

    # moderndid needs a numeric unit id
    ids = {u: i + 1 for i, u in enumerate(sorted(data[unit].unique().to_list()))}
    data = data.with_columns(pl.col(unit).replace_strict(ids, return_dtype=pl.Int64).alias("__unit"),
                             pl.col(time).cast(pl.Int64), pl.col(first_treated).cast(pl.Int64),
                             pl.col(outcome).cast(pl.Float64))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = att_gt(data=data, yname=outcome, tname=time, idname="__unit", gname=first_treated,
                     weightsname=weights, est_method="reg", control_group=control_group, boot=True,
                     biters=bootstrap, cband=True, random_state=seed)
    notes = sorted({str(w.message).splitlines()[0] for w in caught})
    att, se = np.asarray(fit.att_gt, dtype=float), np.asarray(fit.se_gt, dtype=float)
    crit = float(fit.critical_value) if fit.critical_value is not None else 1.959964
    groups, times = np.asarray(fit.groups).astype(int), np.asarray(fit.times).astype(int)
    group_time = pd.DataFrame({"group": groups, "time": times, "att": att, "se": se,
                               "ci_low": att - crit * se, "ci_high": att + crit * se, "post": times >= groups})
    pre_p = float(fit.wald_pvalue) if fit.wald_pvalue is not None else float("nan")
    return StaggeredDiD(group_time, pre_p, control_group, units, treated_units, fit, seed, notes=notes)


@dataclass(frozen=True)
class BeforeAfter:
    """The naive comparison: the treated units' mean outcome after the start against before it."""

    before: float
    after: float
    relative: float  # after / before - 1
    ci_low: float
    ci_high: float


def naive_before_after(frame: Any, unit: str, time: str, outcome: str, first_treated: str,
                       weights: str | None = None) -> BeforeAfter:
    """The treated units' (weighted) mean outcome in their periods on or after their start against
    their periods before it, as a relative change, with a 95% interval from the delta method on the
    per-unit means (units as clusters). No counterfactual: the point is to show how far it can be wrong."""
    cols = [unit, time, outcome, first_treated] + ([weights] if weights else [])
    data = _frame(frame, cols).filter(pl.col(first_treated) > 0)
    if data.height == 0:
        raise ValueError(f"no unit is ever treated ({first_treated!r} is 0 everywhere)")
    w = pl.col(weights) if weights else pl.lit(1.0)
    per_unit = (data.with_columns((pl.col(time) >= pl.col(first_treated)).alias("after"), w.alias("__w"))
                .group_by(unit, "after").agg((pl.col(outcome) * pl.col("__w")).sum().alias("y"),
                                             pl.col("__w").sum().alias("w"))
                .pivot(on="after", index=unit, values=["y", "w"]).drop_nulls())
    if per_unit.height == 0:
        raise ValueError("no treated unit has periods both before and after its start")
    yb, wb = per_unit["y_false"].to_numpy(), per_unit["w_false"].to_numpy()
    ya, wa = per_unit["y_true"].to_numpy(), per_unit["w_true"].to_numpy()
    before, after = yb.sum() / wb.sum(), ya.sum() / wa.sum()
    ratio = after / before
    # delta method for a ratio of two ratio estimators, units as clusters
    n = len(yb)
    za, zb = (ya - after * wa) / wa.mean(), (yb - before * wb) / wb.mean()
    var_log = (np.var(za / after - zb / before, ddof=1) / n) if n > 1 else float("nan")
    half = 1.959964 * math.sqrt(var_log) if var_log == var_log else float("nan")
    return BeforeAfter(float(before), float(after), float(ratio - 1),
                       float(ratio * math.exp(-half) - 1), float(ratio * math.exp(half) - 1))
