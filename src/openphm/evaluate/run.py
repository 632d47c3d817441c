"""Run an evaluation: every method on every outcome of the panel, each estimate as a relative effect
with its interval and the diagnostics a reviewer asks for, and the estimate to trust, said in words.

Relative effects: an absolute effect on the rate (events per 1,000 people per month) divided by the
treated units' counterfactual rate after their start (their observed rate minus the effect). The
interval is the absolute interval over the same counterfactual.

Synthetic control and synthetic difference-in-differences need one start: with staggered adoption
they are run for each cohort of units that started together, against the units that never adopted,
and the cohorts' effects are averaged with weights by units times post months (Arkhangelsky et al.
2021, section 8, suggest this for staggered designs). The placebo draws every cohort's stand-ins at once
(`synthetic.cohort_placebo`), because the cohorts share their controls and their errors move together.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from openphm.evaluate.did import naive_before_after, p_value, staggered_did
from openphm.evaluate.panel import Panel
from openphm.evaluate.spec import EvaluationSpec
from openphm.evaluate.synthetic import cohort_placebo, synthetic_control, synthetic_did

PRETREND_ALPHA = 0.05
# A synthetic comparison fits well when its pre-period misfit (root mean square) is within twice the
# month-to-month noise of the adopters' own series: a rate counted from a few dozen events a month
# cannot be matched more closely than its noise (on the synthetic ICS's replicates the ratio ran from
# 0.8 to 1.6 with no systematic misfit), while a comparison that misses the adopters' level or trend
# shows as a ratio well above it.
FIT_LIMIT = 2.0
# A placebo interval rests on the ways the adopters' number can be drawn from the never-adopters: with
# 6 of them and 1 adopter there are 6, too few to say how far estimates wander by chance.
MIN_PLACEBO_ASSIGNMENTS = 20
# The in-time placebo moves every start this many months earlier (at most half the months before the
# first start), within the months before anyone adopted.
IN_TIME_SHIFT = 12


def _noise(series: np.ndarray) -> float:
    """The noise of a series around its local level: the spread of month-to-month changes over root 2."""
    changes = np.diff(series)
    return float(np.std(changes, ddof=1) / math.sqrt(2)) if len(changes) > 1 and np.std(changes) > 0 else 1.0


@dataclass
class Estimate:
    """One method's answer for one outcome."""

    method: str
    outcome: str
    estimate: float  # relative effect (-0.2: 20% fewer)
    ci_low: float
    ci_high: float
    p_value: float
    n_treated: int
    n_control: int
    absolute: float  # effect on the rate per 1,000 people per month
    diagnostics: dict[str, Any] = field(default_factory=dict)
    charts: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_json(self, population: str) -> dict:
        """The row of result.json."""
        return {"method": self.method, "outcome": self.outcome, "population": population,
                "estimate": _r(self.estimate), "ci_low": _r(self.ci_low), "ci_high": _r(self.ci_high),
                "p_value": _r(self.p_value), "n_treated": self.n_treated, "n_control": self.n_control,
                "absolute_effect_per_1000_per_month": _r(self.absolute), "diagnostics": self.diagnostics}


def _r(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def _relative(absolute: float, low: float, high: float, treated_post: float) -> tuple[float, float, float]:
    counterfactual = treated_post - absolute
    if counterfactual <= 0:
        return float("nan"), float("nan"), float("nan")
    return absolute / counterfactual, low / counterfactual, high / counterfactual


def _treated_post_mean(frame: pl.DataFrame, outcome: str) -> float:
    post = frame.filter((pl.col("first_treated") > 0) & (pl.col("t") >= pl.col("first_treated")))
    return float(post[outcome].mean())


def run_did(panel: Panel, outcome: str, spec: EvaluationSpec) -> Estimate:
    """Callaway & Sant'Anna with its event study and pre-trend test."""
    frame = panel.frame
    fit = staggered_did(frame, unit="unit", time="t", outcome=outcome, first_treated="first_treated",
                        control_group=spec.control_group, bootstrap=spec.bootstrap, seed=spec.seed)
    simple = fit.aggregate("simple")
    dynamic = fit.aggregate("dynamic")
    rel = _relative(simple["att"], simple["ci_low"], simple["ci_high"], _treated_post_mean(frame, outcome))
    pre = dynamic["by"][dynamic["by"]["e"] < 0]
    outside = int(((pre["ci_low"] > 0) | (pre["ci_high"] < 0)).sum())
    if math.isfinite(fit.pretrend_p_value):
        test, pre_ok = "Wald test of every pre-period effect", fit.pretrend_p_value >= PRETREND_ALPHA
    else:  # more pre-period effects than units: the event study's simultaneous band instead
        test, pre_ok = "every pre-period effect inside the simultaneous 95% band", outside == 0
    return Estimate(
        "staggered_did", outcome, *rel, simple["p_value"], fit.n_treated_units, fit.n_units - fit.n_treated_units,
        simple["att"],
        diagnostics={"pretrend_test": test, "pretrend_p_value": _r(fit.pretrend_p_value),
                     "parallel_pre_trends": bool(pre_ok), "pre_periods_outside_band": outside,
                     "control_group": spec.control_group, "notes": fit.notes},
        charts={"event_study": dynamic["by"]})


def _cohorts(frame: pl.DataFrame) -> list[int]:
    return sorted(g for g in frame["first_treated"].unique().to_list() if g > 0)


@dataclass
class _SyntheticFit:
    att: float  # absolute effect on the rate, cohorts weighted by units times post months
    se: float  # placebo standard error
    draws: int  # distinct placebo assignments (0: the cohorts' own placebos, not relied on)
    series: list
    misfit: float  # pre-period misfit over the adopters' month-to-month noise, weighted like att


def _synthetic_fit(frame: pl.DataFrame, outcome: str, spec: EvaluationSpec, estimator) -> _SyntheticFit:
    never = frame.filter(pl.col("first_treated") == 0)
    n_control = never["unit"].n_unique()
    if n_control < 2:
        raise ValueError("fewer than two units never adopted the care model: no synthetic comparison")
    fits, weights, series, misfit = [], [], [], []
    last = frame["t"].max()
    for g in _cohorts(frame):
        cohort = frame.filter(pl.col("first_treated") == g)
        data = pl.concat([cohort, never]).with_columns((pl.col("first_treated") == g).alias("treated")).to_pandas()
        fit = estimator(data, unit="unit", time="t", outcome=outcome, treated="treated", start=g)
        fits.append(fit)
        weights.append(cohort["unit"].n_unique() * (last - g + 1))
        s = fit.series
        series.append((g, s))
        misfit.append(fit.pre_rmse / _noise(s.loc[s["time"] < g, "treated"].to_numpy(dtype=float)))
    w = np.asarray(weights, dtype=float) / sum(weights)
    att = float(np.dot(w, [fit.att for fit in fits]))
    if n_control > frame.filter(pl.col("first_treated") > 0)["unit"].n_unique():
        inference = cohort_placebo(fits, weights, replications=spec.placebo, seed=spec.seed)
        se, draws = inference["se"], inference["distinct_assignments"]
    else:  # too few never-adopters to stand in for every cohort at once: each cohort's own placebo,
        # combined as if independent, which understates the spread, so the interval is not relied on
        ses = [f.placebo(replications=spec.placebo, seed=spec.seed)["se"] for f in fits]
        se, draws = float(math.sqrt(np.dot(w ** 2, np.asarray(ses) ** 2))), 0
    return _SyntheticFit(att, se, int(draws), series, float(np.dot(w, misfit)))


def _in_time_placebo(frame: pl.DataFrame, outcome: str, spec: EvaluationSpec, estimator) -> float | None:
    """The same estimate on the months before anyone adopted, every start moved `IN_TIME_SHIFT` months
    earlier (an in-time placebo: its true effect is zero, so what it finds is the method's bias on these
    units). None when the months before the first start are too few."""
    first = min(_cohorts(frame))
    shift = min(IN_TIME_SHIFT, (first - 1) // 2)
    if shift < 3:
        return None
    before = frame.filter(pl.col("t") < first).with_columns(
        pl.when(pl.col("first_treated") > 0).then(pl.col("first_treated") - shift).otherwise(0)
        .alias("first_treated"))
    # a cohort whose moved start is not before the first real start has no placebo months: left out
    before = before.filter((pl.col("first_treated") == 0) | (pl.col("first_treated") < first))
    if before.filter(pl.col("first_treated") > 0).is_empty():
        return None
    return _synthetic_fit(before, outcome, dataclasses.replace(spec, placebo=max(2, spec.placebo // 2)),
                          estimator).att


def run_synthetic(panel: Panel, outcome: str, spec: EvaluationSpec, method: str) -> Estimate:
    """Synthetic DiD or synthetic control, cohort by cohort against never-adopters (see the module's note).

    The interval is bias-aware: the placebo standard error combined with the in-time placebo's estimate
    (se^2 + bias^2), so a method that found an effect where there was none before the start says so in
    the width of its interval. On the synthetic ICS's no-effect replicates, synthetic DiD's estimates ran
    about 3 points below zero (the adopters' practices, larger and more deprived, trend differently and
    no weighting of 16 never-adopters matches them), and intervals from the placebo alone excluded zero
    in 5 of 20 (docs/benchmarks.md)."""
    estimator = synthetic_did if method == "synthetic_did" else synthetic_control
    frame = panel.frame
    fit = _synthetic_fit(frame, outcome, spec, estimator)
    bias = _in_time_placebo(frame, outcome, spec, estimator)
    se = math.sqrt(fit.se ** 2 + (bias or 0.0) ** 2)
    rel = _relative(fit.att, fit.att - 1.959964 * se, fit.att + 1.959964 * se, _treated_post_mean(frame, outcome))
    n_treated = frame.filter(pl.col("first_treated") > 0)["unit"].n_unique()
    n_control = frame.filter(pl.col("first_treated") == 0)["unit"].n_unique()
    return Estimate(method, outcome, *rel, p_value(fit.att, se), n_treated, n_control, fit.att,
                    diagnostics={"pre_period_misfit_to_noise": _r(fit.misfit),
                                 "good_pre_period_fit": bool(fit.misfit <= FIT_LIMIT),
                                 "distinct_placebo_assignments": fit.draws,
                                 "reliable_interval": bool(fit.draws >= MIN_PLACEBO_ASSIGNMENTS),
                                 "placebo_se": _r(fit.se),
                                 "in_time_placebo_effect": _r(bias) if bias is not None else None,
                                 "in_time_placebo_months_earlier": IN_TIME_SHIFT if bias is not None else None,
                                 "cohorts": len(fit.series), "placebo_replications": spec.placebo},
                    charts={"series": fit.series})


def run_naive(panel: Panel, outcome: str) -> Estimate:
    """The treated units after their start against before it: no counterfactual."""
    frame = panel.frame
    ba = naive_before_after(frame, unit="unit", time="t", outcome=outcome, first_treated="first_treated",
                            weights="population")
    se = (math.log1p(ba.ci_high) - math.log1p(ba.ci_low)) / (2 * 1.959964) if ba.ci_low > -1 else float("nan")
    p = p_value(math.log1p(ba.relative), se) if ba.relative > -1 else float("nan")
    n_treated = frame.filter(pl.col("first_treated") > 0)["unit"].n_unique()
    return Estimate("naive_before_after", outcome, ba.relative, ba.ci_low, ba.ci_high, p, n_treated, 0,
                    ba.after - ba.before, diagnostics={"counterfactual": "none: the treated units' own past"})


def recommend(estimates: list[Estimate]) -> tuple[str | None, str]:
    """The method whose estimate to trust for one outcome, and why, in plain words.

    Callaway & Sant'Anna first when the pre-trends are parallel: on the synthetic ICS's replicates its
    intervals covered the true effect in 80 of 80 with bias within 2 points, while synthetic DiD's
    placebo intervals were too narrow (70 of 80, and 3 of 8 no-effect intervals excluding zero;
    docs/benchmarks.md). Otherwise synthetic difference-in-differences when it fits the adopters' past as
    closely as the noise allows and has enough comparison units for a placebo interval (it needs no
    parallel trends). Otherwise the matched cohort when it balances every covariate. Otherwise none:
    every estimate is then reported as unreliable."""
    by = {e.method: e for e in estimates}
    did, sdid, matched = by.get("staggered_did"), by.get("synthetic_did"), by.get("matched_cohort")
    if did and did.diagnostics["parallel_pre_trends"]:
        return "staggered_did", ("The adopting practices and those that had not yet adopted moved in parallel "
                                 "before the start (no pre-trend detected), so difference-in-differences is "
                                 "trusted; its interval comes from a bootstrap clustered by practice.")
    if sdid and sdid.diagnostics["good_pre_period_fit"] and sdid.diagnostics["reliable_interval"]:
        trend = ("Before the start the adopters' trend differed from the other practices', so plain "
                 "difference-in-differences would be biased. " if did else "")
        return "synthetic_did", (trend + "Synthetic difference-in-differences weights the comparison practices and "
                                 "months to match the adopters' own past, and it matches it as closely as the "
                                 "month-to-month noise allows; its interval combines placebo comparisons "
                                 "among the practices that never adopted with the bias the method showed "
                                 "when the start was moved a year earlier, before anyone adopted.")
    if matched and matched.diagnostics["balanced"]:
        return "matched_cohort", ("The people at the adopting practices were matched to similar people elsewhere "
                                  "(age, sex, deprivation, care home, conditions, frailty and the year before's "
                                  "admissions), and the matched groups are balanced on all of them. Matching "
                                  "cannot balance what was not recorded, so read it beside the other estimates.")
    if sdid or did or matched:
        return None, ("No method is trusted: the adopters' trend before the start differed from the other "
                      "practices', no synthetic comparison matched their past closely with enough comparison "
                      "practices, and no matched cohort was balanced. Treat every estimate below as unreliable.")
    return None, "No method that supports a recommendation was run."


def run_matched(con: Any, panel: Panel | None, outcome: str, spec: EvaluationSpec) -> Estimate:
    """The person-level matched cohort (openphm.evaluate.matched)."""
    from openphm.evaluate.matched import BALANCED_SMD, matched_cohort

    units = sorted(panel.frame["unit"].unique().to_list()) if panel is not None else None
    m = matched_cohort(con, spec, outcome, units)
    return Estimate("matched_cohort", outcome, m.rate_ratio - 1, m.ci_low - 1, m.ci_high - 1, m.p_value,
                    m.n_treated, m.n_control, float("nan"),
                    diagnostics={"max_abs_smd_after_matching": _r(m.max_smd_after),
                                 "balanced": bool(m.max_smd_after < BALANCED_SMD),
                                 "adopters_people_unmatched": m.n_treated_unmatched},
                    charts={"balance": m.balance})


def _every(outcomes: list[str], methods: list[str], run_one: Callable[[str, str], Estimate],
           progress: Any = None, name_of: Callable[[str], str] = str) -> dict[str, Any]:
    """`run_one(method, outcome)` for every outcome and method: a method that cannot run on the data
    (a ValueError) is listed under `problems`; each outcome gets its recommendation."""
    estimates: list[Estimate] = []
    recommended: dict[str, tuple[str | None, str]] = {}
    problems: list[str] = []
    for outcome in outcomes:
        found: list[Estimate] = []
        for method in methods:
            if progress:
                progress(f"{method} on {outcome}")
            try:
                found.append(run_one(method, outcome))
            except ValueError as exc:
                problems.append(f"{method} on {name_of(outcome)}: {exc}")
        for e in found:
            e.outcome = name_of(outcome)
        estimates.extend(found)
        recommended[name_of(outcome)] = recommend(found)
    return {"estimates": estimates, "recommended": recommended, "problems": problems}


def evaluate_panel(panel: Panel, spec: EvaluationSpec, progress: Any = None, con: Any = None) -> dict[str, Any]:
    """Every method on every outcome: {"estimates": [Estimate, ...], "recommended": {outcome: (method, why)},
    "problems": [...]}. The matched cohort needs `con` (it works on people, not the panel)."""
    def run_one(method: str, outcome: str) -> Estimate:
        if method == "staggered_did":
            return run_did(panel, outcome, spec)
        if method in ("synthetic_did", "synthetic_control"):
            return run_synthetic(panel, outcome, spec, method)
        if method == "matched_cohort":
            if con is None:
                raise ValueError("the matched cohort needs the person record, not only the panel")
            return run_matched(con, panel, outcome, spec)
        return run_naive(panel, outcome)

    return _every(panel.outcomes, spec.methods, run_one, progress, panel.name_of)


def evaluate_people(con: Any, spec: EvaluationSpec, progress: Any = None) -> dict[str, Any]:
    """An intervention on people (a list's members at some practices): the matched cohort and the
    people's own before-and-after, for every outcome."""
    from openphm.evaluate.matched import people_before_after

    def run_one(method: str, outcome: str) -> Estimate:
        if method == "matched_cohort":
            return run_matched(con, None, outcome, spec)
        rel, low, high, n = people_before_after(con, spec, outcome)
        return Estimate("naive_before_after", outcome, rel, low, high, float("nan"), n, 0, float("nan"),
                        diagnostics={"counterfactual": "none: the same people's year before the start (people "
                                                       "chosen for recent activity regress to the mean)"})

    return _every(spec.outcomes, spec.methods, run_one, progress)
