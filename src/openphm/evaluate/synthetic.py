"""Synthetic difference-in-differences, synthetic control and plain difference-in-differences on a panel.

One treated block: some units take the intervention together from the period `start`; every other unit is
a control. Periods before `start` are "pre", the rest "post". The `treated` column is truthy for a treated
unit either in every row or (as in synthdid's `panel.matrices`) only from `start`; never for a control.

The estimators are those of Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021), "Synthetic difference-
in-differences", American Economic Review 111(12), 4088-4118 (the paper), computed as the authors' R
package synthdid does (version 0.0.9, github.com/synth-inference/synthdid, commit 70c1ce3; files
R/synthdid.R, R/solver.R, R/utils.R, R/vcov.R, R/plot.R). Each rule carried over names where it comes from.
The code here is written from those definitions, not translated from the package.

- `synthetic_did`: unit weights omega and pre-period weights lambda, each on the simplex, then a weighted
  double difference (the paper's Algorithm 1; synthdid `synthdid_estimate`).
- `synthetic_control`: unit weights only, no intercept, no time weights (Abadie, Diamond & Hainmueller
  2010, JASA 105: 493-505, as synthdid `sc_estimate` computes it).
- `plain_did`: uniform weights on controls and pre periods (synthdid `did_estimate`).

`SyntheticResult.placebo` gives the placebo standard error of the paper's Algorithm 4 (synthdid
`vcov(method="placebo")`), the only one of the paper's three that works with a single treated unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from numpy import count_nonzero

__all__ = ["SyntheticResult", "cohort_placebo", "plain_did", "synthetic_control", "synthetic_did"]

# synthdid R/synthdid.R `synthdid_estimate` defaults (paper, Section 2 and Algorithm 1):
MAX_ITER = 10_000  # max.iter: Frank-Wolfe iterations in the final round
MAX_ITER_PRE_SPARSIFY = 100  # max.iter.pre.sparsify: iterations in the first round, before sparsifying
MIN_DECREASE_PER_NOISE = 1e-5  # min.decrease = 1e-5 * noise level; stop when the objective falls by < its square
ETA_LAMBDA = 1e-6  # eta.lambda: zeta.lambda = 1e-6 * noise level ("infinitesimal" ridge on time weights)
ETA_OMEGA_SC = 1e-6  # R/synthdid.R `sc_estimate`: eta.omega = 1e-6 (infinitesimal ridge on SC unit weights)
Z_95 = 1.96  # README and vignette of synthdid: 95% interval = estimate +/- 1.96 se


@dataclass(frozen=True)
class _Options:
    """How the weights are found; kept on the result so the placebo re-estimates the same way."""

    zeta_omega: float
    zeta_lambda: float
    omega_intercept: bool
    update_omega: bool
    update_lambda: bool
    min_decrease: float


@dataclass(frozen=True)
class SyntheticResult:
    """An estimate of the average effect on the treated units in the post periods (ATT).

    `weights`: control units' weights (`unit`, `weight`); `time_weights`: pre periods' weights (`time`,
    `weight`; all zero for synthetic control); `series`: by `time`, `treated` (mean outcome of the treated
    units) and `synthetic` (weighted controls shifted by the intercept, as synthdid's plot with overlay=1
    draws it), so `att` is the post-period mean of `treated - synthetic`; `pre_rmse`: root mean squared
    `treated - synthetic` over the pre periods. Frames come back as pandas or polars, as given.
    """

    method: str
    att: float
    weights: Any
    time_weights: Any
    series: Any
    pre_rmse: float
    _y: np.ndarray = field(repr=False, compare=False)  # controls' rows first, then treated; periods in order
    _n0: int = field(repr=False, compare=False)
    _t0: int = field(repr=False, compare=False)
    _omega: np.ndarray = field(repr=False, compare=False)
    _lambda: np.ndarray = field(repr=False, compare=False)
    _options: _Options = field(repr=False, compare=False)

    def placebo(self, replications: int = 200, seed: int = 0) -> dict[str, float]:
        """Placebo standard error, 95% interval and two-sided normal p-value (paper, Algorithm 4).

        Each replication drops the treated units, calls a random set of as many controls "treated" and
        re-estimates with the same options and regularisation (the zetas of the original fit), starting from
        the fitted weights (synthdid R/vcov.R `placebo_se`); se = sqrt((r - 1) / r) * sd of the r estimates.
        The draws are numpy's, so the se differs from R's by Monte Carlo error only.
        """
        n0, n1 = self._n0, self._y.shape[0] - self._n0
        if n0 <= n1:
            raise ValueError(f"the placebo needs more control units than treated ones (got {n0} and {n1})")
        if replications < 2:
            raise ValueError(f"replications must be at least 2 (got {replications})")
        rng = np.random.default_rng(seed)
        controls = self._y[:n0]
        estimates = np.empty(replications)
        for r in range(replications):
            order = rng.permutation(n0)
            start_omega = _sum_normalise(self._omega[order[: n0 - n1]])
            estimates[r], _, _ = _estimate(controls[order], n0 - n1, self._t0, self._options,
                                           start_omega, self._lambda)
        se = math.sqrt((replications - 1) / replications) * float(np.std(estimates, ddof=1))
        z = abs(self.att) / se if se > 0 else (math.inf if self.att else 0.0)
        return {"se": se, "ci_low": self.att - Z_95 * se, "ci_high": self.att + Z_95 * se,
                "p_value": math.erfc(z / math.sqrt(2))}


def cohort_placebo(fits: list[SyntheticResult], weights: list[float], replications: int = 200,
                   seed: int = 0) -> dict[str, float]:
    """Placebo standard error of a weighted average of several cohorts' estimates that share one set of
    controls (staggered adoption, each cohort fitted against the same never-treated units).

    The paper's Algorithm 4 drawn jointly: each replication permutes the controls, calls disjoint blocks
    of them each cohort's "treated" (as many as the cohort has) and the rest controls, re-estimates every
    cohort with its own options and start, and averages with `weights`. The spread of that average is
    the standard error. Drawing the cohorts together keeps the correlation that sharing the controls
    puts between their estimates; treating the cohorts' standard errors as independent (as an earlier
    version did) gave intervals that excluded zero in 5 of 20 no-effect replicates. With one cohort this
    is exactly `SyntheticResult.placebo`. Returns the se and the number of distinct assignments.
    """
    if not fits or len(fits) != len(weights):
        raise ValueError("give one weight per cohort's fit")
    n0 = fits[0]._n0
    controls = fits[0]._y[:n0]
    for fit in fits[1:]:
        if fit._n0 != n0 or not np.array_equal(fit._y[:n0], controls):
            raise ValueError("every cohort must be fitted against the same control units")
    sizes = [fit._y.shape[0] - n0 for fit in fits]
    kept = n0 - sum(sizes)
    if kept < 1:
        raise ValueError(f"the placebo needs more control units than treated ones (got {n0} and {sum(sizes)})")
    if replications < 2:
        raise ValueError(f"replications must be at least 2 (got {replications})")
    w = np.asarray(weights, dtype=float) / float(sum(weights))
    rng = np.random.default_rng(seed)
    estimates = np.empty(replications)
    for r in range(replications):
        order = rng.permutation(n0)
        rest, end = order[:kept], kept
        total = 0.0
        for k, fit in enumerate(fits):
            block = order[end : end + sizes[k]]
            end += sizes[k]
            y = np.vstack([controls[rest], controls[block]])
            start_omega = _sum_normalise(fit._omega[rest])
            att, _, _ = _estimate(y, kept, fit._t0, fit._options, start_omega, fit._lambda)
            total += w[k] * att
        estimates[r] = total
    se = math.sqrt((replications - 1) / replications) * float(np.std(estimates, ddof=1))
    assignments = math.factorial(n0) // math.factorial(kept)
    for size in sizes:
        assignments //= math.factorial(size)
    return {"se": se, "distinct_assignments": assignments}


def synthetic_did(frame, unit: str, time: str, outcome: str, treated: str, start) -> SyntheticResult:
    """Synthetic difference-in-differences (paper, Algorithm 1; synthdid `synthdid_estimate` defaults).

    `frame` is a tidy, balanced panel (pandas or polars): one row per unit and period. Needs at least two
    pre periods (the noise level is a standard deviation of period-on-period changes).
    """
    panel = _Panel.build(frame, unit, time, outcome, treated, start)
    noise = panel.noise_level(minimum_pre=2)
    n1, t1 = panel.y.shape[0] - panel.n0, panel.y.shape[1] - panel.t0
    # Paper, Section 2: zeta = (N_tr * T_post)^(1/4) * sigma-hat; synthdid eta.omega default.
    options = _Options(zeta_omega=(n1 * t1) ** 0.25 * noise, zeta_lambda=ETA_LAMBDA * noise,
                       omega_intercept=True, update_omega=True, update_lambda=True,
                       min_decrease=MIN_DECREASE_PER_NOISE * noise)
    return _result("synthetic_did", panel, options, None, None)


def synthetic_control(frame, unit: str, time: str, outcome: str, treated: str, start) -> SyntheticResult:
    """Synthetic control as synthdid's `sc_estimate`: simplex unit weights fitted to the treated units'
    pre-period path with no intercept and an infinitesimal ridge (1e-6 * noise level), no time weights."""
    panel = _Panel.build(frame, unit, time, outcome, treated, start)
    noise = panel.noise_level(minimum_pre=2)
    options = _Options(zeta_omega=ETA_OMEGA_SC * noise, zeta_lambda=ETA_LAMBDA * noise,
                       omega_intercept=False, update_omega=True, update_lambda=False,
                       min_decrease=MIN_DECREASE_PER_NOISE * noise)
    return _result("synthetic_control", panel, options, None, np.zeros(panel.t0))


def plain_did(frame, unit: str, time: str, outcome: str, treated: str, start) -> SyntheticResult:
    """Plain difference-in-differences (synthdid `did_estimate`): every control and pre period weighs the same."""
    panel = _Panel.build(frame, unit, time, outcome, treated, start)
    options = _Options(zeta_omega=0.0, zeta_lambda=0.0, omega_intercept=True, update_omega=False,
                       update_lambda=False, min_decrease=0.0)
    return _result("plain_did", panel, options, np.full(panel.n0, 1 / panel.n0), np.full(panel.t0, 1 / panel.t0))


# ----------------------------------------------------------------------------------------------- panel


@dataclass(frozen=True)
class _Panel:
    y: np.ndarray  # units x periods: controls (sorted) then treated (sorted); periods ascending
    n0: int
    t0: int
    controls: list
    times: list
    polars_out: bool

    @classmethod
    def build(cls, frame, unit: str, time: str, outcome: str, treated: str, start) -> _Panel:
        polars_out = isinstance(frame, pl.DataFrame)
        data = frame.to_pandas() if polars_out else frame
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"expected a pandas or polars DataFrame (got {type(frame).__name__})")
        for column in (unit, time, outcome, treated):
            if column not in data.columns:
                present = ", ".join(map(str, data.columns))
                raise ValueError(f"column {column!r} is not in the panel (columns: {present})")
            if data[column].isna().any():
                raise ValueError(f"column {column!r} has missing values")
        data = data[[unit, time, outcome, treated]]
        try:
            values = data[outcome].to_numpy(dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"column {outcome!r} (the outcome) must be numeric") from error
        if not np.isfinite(values).all():
            raise ValueError(f"column {outcome!r} (the outcome) has infinite values")
        if data.duplicated([unit, time]).any():
            raise ValueError(f"some {unit!r} has more than one row for one {time!r}: give one row per unit and period")
        if pd.api.types.is_datetime64_any_dtype(data[time]):
            start = pd.Timestamp(start)
        wide = data.pivot(index=unit, columns=time, values=outcome).sort_index(axis=1)
        times = list(wide.columns)
        pre = np.array([t < start for t in times])
        if not pre.any():
            raise ValueError(f"no pre periods: no value of column {time!r} is before start={start!r}")
        if pre.all():
            raise ValueError(f"no post periods: no value of column {time!r} is at or after start={start!r}")
        gaps = wide.isna().sum(axis=1)
        if gaps.any():
            worst = gaps.idxmax()
            raise ValueError(f"unbalanced panel: {unit} {worst!r} (column {unit!r}) has no row for {int(gaps[worst])} "
                             f"of the {wide.shape[1]} periods in column {time!r}")
        controls, treated_units = _split_units(data, unit, time, treated, start)
        y = wide.loc[controls + treated_units].to_numpy(dtype=float)
        return cls(y=y, n0=len(controls), t0=int(pre.sum()), controls=controls, times=times, polars_out=polars_out)

    def noise_level(self, minimum_pre: int) -> float:
        """Standard deviation of the controls' period-on-period changes in the pre periods (paper, Section 2;
        synthdid `noise.level = sd(apply(Y[1:N0, 1:T0], 1, diff))`, denominator n - 1)."""
        if self.t0 < minimum_pre:
            raise ValueError(f"at least {minimum_pre} pre periods are needed for the noise level (got {self.t0})")
        changes = np.diff(self.y[: self.n0, : self.t0], axis=1)
        return float(np.std(changes, ddof=1)) if changes.size > 1 else 0.0


def _split_units(data: pd.DataFrame, unit: str, time: str, treated: str, start) -> tuple[list, list]:
    """Control and treated units, each sorted. `treated` may flag a treated unit in every row, or (as
    synthdid's `panel.matrices` takes it) only from `start`; a treated unit is truthy in every post row."""
    flags = data[treated].astype(bool)
    post = data[time] >= start
    ever = flags.groupby(data[unit]).any()
    if not ever.any():
        raise ValueError(f"no treated units: column {treated!r} is never true")
    if ever.all():
        raise ValueError(f"no control units: column {treated!r} is true for some row of every {unit!r}")
    is_treated_unit = data[unit].map(ever)
    pre_flags = flags[is_treated_unit & ~post].groupby(data[unit]).agg(["all", "any"])
    broken = (is_treated_unit & post & ~flags) | data[unit].isin(pre_flags.index[pre_flags["any"] & ~pre_flags["all"]])
    if broken.any():
        raise ValueError(f"column {treated!r} must be constant within a unit, or false before start and true from it "
                         f"({unit} {data.loc[broken, unit].iloc[0]!r} is neither): all treated units start together")
    return sorted(ever.index[~ever]), sorted(ever.index[ever])


# ---------------------------------------------------------------------------------------------- solver


def _frank_wolfe_step(a: np.ndarray, x: np.ndarray, b: np.ndarray, eta: float, fitted: np.ndarray) -> np.ndarray:
    """One Frank-Wolfe step with exact line search for min ||a x - b||^2 + eta ||x||^2 over the simplex
    (synthdid R/solver.R `fw.step`): move toward the vertex with the smallest gradient coordinate."""
    half_gradient = (fitted - b) @ a + eta * x
    # (array methods and count_nonzero rather than np.argmin/ndarray.any: this runs ~10^5 times a fit on
    # small arrays, where numpy's Python wrappers cost as much as the arithmetic)
    vertex = int(half_gradient.argmin())  # first minimum on ties, as R's which.min
    direction = -x
    direction[vertex] = 1.0 - x[vertex]
    if not count_nonzero(direction):
        return x
    change = a[:, vertex] - fitted
    step = -(half_gradient @ direction) / (change @ change + eta * (direction @ direction))
    return x + min(1.0, max(0.0, step)) * direction


def _simplex_weights(matrix: np.ndarray, zeta: float, intercept: bool, start: np.ndarray | None,
                     min_decrease: float, max_iter: int) -> np.ndarray:
    """Weights w on the simplex so that matrix[:, :-1] @ w tracks the last column (synthdid `sc.weight.fw`).

    Minimises zeta^2 ||w||^2 + ||matrix[:, :-1] w - matrix[:, -1]||^2 / rows, after centring each column
    when `intercept` (a free constant in the fit); stops after `max_iter` steps or once a step lowers the
    objective by no more than min_decrease^2.
    """
    rows, k = matrix.shape[0], matrix.shape[1] - 1
    if intercept:
        matrix = matrix - matrix.mean(axis=0)
    a, b = matrix[:, :k], matrix[:, k]
    eta = rows * zeta**2
    w = np.full(k, 1.0 / k) if start is None else np.array(start, dtype=float)
    previous = current = math.inf
    fitted = a @ w
    steps, zeta_squared, enough = 0, zeta**2, min_decrease**2
    while steps < max_iter and (steps < 2 or previous - current > enough):
        w = _frank_wolfe_step(a, w, b, eta, fitted)
        fitted = a @ w  # reused by the next step
        residual = fitted - b
        previous, current = current, zeta_squared * (w @ w) + (residual @ residual) / rows
        steps += 1
    return w


def _sparsify(w: np.ndarray) -> np.ndarray:
    """synthdid R/synthdid.R `sparsify_function`: zero weights at or below a quarter of the largest, rescale."""
    kept = np.where(w <= w.max() / 4, 0.0, w)
    return kept / kept.sum()


def _sparse_weights(matrix: np.ndarray, zeta: float, intercept: bool, start: np.ndarray | None,
                    min_decrease: float) -> np.ndarray:
    """synthdid's default two rounds: 100 steps, sparsify, then up to 10,000 steps from the sparse weights."""
    first = _simplex_weights(matrix, zeta, intercept, start, min_decrease, MAX_ITER_PRE_SPARSIFY)
    return _simplex_weights(matrix, zeta, intercept, _sparsify(first), min_decrease, MAX_ITER)


def _sum_normalise(w: np.ndarray) -> np.ndarray:
    """Rescale to sum 1, or uniform if all zero (synthdid R/vcov.R `sum_normalize`)."""
    total = w.sum()
    return w / total if total != 0 else np.full(len(w), 1.0 / len(w))


def _estimate(y: np.ndarray, n0: int, t0: int, options: _Options, omega: np.ndarray | None,
              lambda_: np.ndarray | None) -> tuple[float, np.ndarray, np.ndarray]:
    """ATT, unit weights and time weights for a block design (paper, Algorithm 1).

    Weights are fitted on the collapsed panel (synthdid R/utils.R `collapsed.form`): controls' pre-period
    outcomes, their post-period mean, and the treated units' mean in each pre period and overall post.
    A weight vector passed in is the starting point if its `update_*` option is set, else used as given.
    """
    n1, t1 = y.shape[0] - n0, y.shape[1] - t0
    collapsed = np.empty((n0 + 1, t0 + 1))
    collapsed[:n0, :t0] = y[:n0, :t0]
    collapsed[:n0, t0] = y[:n0, t0:].mean(axis=1)
    collapsed[n0, :t0] = y[n0:, :t0].mean(axis=0)
    collapsed[n0, t0] = y[n0:, t0:].mean()
    if options.update_lambda:  # time weights: pre periods that predict the controls' post mean, with intercept
        lambda_ = _sparse_weights(collapsed[:n0, :], options.zeta_lambda, True, lambda_, options.min_decrease)
    if options.update_omega:  # unit weights: controls that track the treated units' pre-period path
        omega = _sparse_weights(collapsed[:, :t0].T, options.zeta_omega, options.omega_intercept, omega,
                                options.min_decrease)
    unit_contrast = np.concatenate([-omega, np.full(n1, 1.0 / n1)])
    time_contrast = np.concatenate([-lambda_, np.full(t1, 1.0 / t1)])
    return float(unit_contrast @ y @ time_contrast), omega, lambda_


def _result(method: str, panel: _Panel, options: _Options, omega: np.ndarray | None,
            lambda_: np.ndarray | None) -> SyntheticResult:
    att, omega, lambda_ = _estimate(panel.y, panel.n0, panel.t0, options, omega, lambda_)
    treated_path = panel.y[panel.n0 :].mean(axis=0)
    control_path = omega @ panel.y[: panel.n0]
    # synthdid R/plot.R with overlay = 1: shift the synthetic path by the lambda-weighted pre-period gap
    # (zero for synthetic control, whose lambda is zero).
    synthetic_path = control_path + (treated_path[: panel.t0] - control_path[: panel.t0]) @ lambda_
    gap = treated_path[: panel.t0] - synthetic_path[: panel.t0]
    make = pl.DataFrame if panel.polars_out else pd.DataFrame
    return SyntheticResult(
        method=method,
        att=att,
        weights=make({"unit": panel.controls, "weight": omega}),
        time_weights=make({"time": panel.times[: panel.t0], "weight": lambda_}),
        series=make({"time": panel.times, "treated": treated_path, "synthetic": synthetic_path}),
        pre_rmse=float(np.sqrt(np.mean(gap**2))),
        _y=panel.y, _n0=panel.n0, _t0=panel.t0, _omega=omega, _lambda=lambda_, _options=options,
    )
