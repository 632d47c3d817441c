"""Next year's spend by partner, simulated from the base year's population: Monte Carlo over the
variance of spend, settled under a risk-share agreement (openphm.finance.agreement).

The model (one simulated year). Draw the population again with replacement: N people from the N
registered and alive on 1 April of the base year. Each drawn person's count of events in each setting
of care is Poisson, with mean their base-year count (times any scenario factor), and each event costs
that person's mean cost per event in that setting in the base year. Adult social care is not
count-like (a long-term package, costed by its days): it varies only through the bootstrap, at the
person's base-year cost. Spend by partner is the sum over the settings it bears, plus the base-year
spend of people outside the population (born, registered or arrived during the year), held fixed.

Why settings, not tariff categories: budgets, agreements and the costs report are by setting, and a
person's own mean cost per event keeps their category mix (a scenario on one category changes that
mix before it is averaged); fewer dimensions give fewer distinct people, which is what makes the
exact sampler fast. The cost: the variation of the mix within a setting is not simulated.

The exact sampler (`simulate_spend`). People with identical rows (mean count and mean cost per event
in each setting, social care cost) form a profile; a resample is a multinomial draw of N over profile
frequencies (profiles of at least RARE_BELOW people by conditional binomials; the draws falling on
the rarer ones by a uniform draw of their people: the same multinomial, split exactly). Given the
profile counts m_k, the events of setting s at unit cost u are the sum of independent Poissons, so
Poisson(sum_k m_k x rate_ks over profiles with unit cost u in s) - one draw per (setting, unit cost).
Both steps are exact in distribution: the spend it samples has the law of `naive_simulate`'s (resample
rows, Poisson per person and setting), which the unit tests check. Nothing is binned unless
`resolution` is given (unit costs and social care costs rounded to that many pounds before profiling).
The cost of a run grows with the profiles and the people in rare ones, not with N: 10,000 runs over a
million people are a minute's work; batches of runs are shared between two processes when large.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import numpy as np
import polars as pl
from scipy import sparse

from openphm.finance.agreement import Agreement, settle_runs, with_baseline_budgets
from openphm.finance.shocks import shock_factors
from openphm.finance.spend import SETTINGS, person_costs, year_start
from openphm.yaml_files import read_yaml

FIXED_SETTINGS = ("Adult social care",)  # varied by the bootstrap only
OLDEST_AGE = 90  # ages 90 and over are pooled when the population ages
AGE_WINDOW = 2  # mean cost per person at an age is taken over ages a-2..a+2 (smooths single-year noise)
RARE_BELOW = 8  # profiles with fewer people are resampled person by person (cheaper than a binomial each)
CELLS_PER_BATCH = 4_000_000  # runs x profiles held at once
PARALLEL_FROM = 200_000_000  # people x runs from which two processes share the work
QUANTILES = (0.05, 0.5, 0.95)


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Change:
    """Multiply the expected activity of `setting` (or `activity`, optionally one `category`) of the people
    matching `who` by `factor`."""

    factor: float
    setting: str | None = None
    activity: str | None = None
    category: str | None = None
    who: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """Changes to next year's expected activity, and years the population ages."""

    name: str
    changes: tuple[Change, ...] = ()
    age_years: int = 0
    description: str = ""


@dataclass(frozen=True)
class BaseYear:
    """The base year: `people` (person_id, sex, age, practice_code, ...), `activity` (one row per person,
    activity, cost_category and setting with `events` and `cost`), spend on people outside the population
    by setting, and the activity rows left uncosted."""

    year: str
    people: pl.DataFrame
    activity: pl.DataFrame
    other_spend: dict[str, float]
    uncosted_rows: int


@dataclass(frozen=True)
class PersonModel:
    """Next year's expected activity, one row per person: `rate` (mean events) and `unit_cost` in each
    of `poisson_settings`, and `fixed` cost in each of `fixed_settings`."""

    poisson_settings: tuple[str, ...]
    rate: np.ndarray
    unit_cost: np.ndarray
    fixed_settings: tuple[str, ...]
    fixed: np.ndarray

    @property
    def people(self) -> int:
        """How many people the model holds."""
        return self.rate.shape[0]

    def expected_spend(self) -> dict[str, float]:
        """The expected spend by setting (the mean of the simulated spend, exactly)."""
        out = {s: float((self.rate[:, j] * self.unit_cost[:, j]).sum()) for j, s in enumerate(self.poisson_settings)}
        out.update({s: float(self.fixed[:, j].sum()) for j, s in enumerate(self.fixed_settings)})
        return out


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario; ScenarioError naming the file and the field for anything wrong."""
    data = read_yaml(path, ScenarioError)
    schema = json.loads(Path(__file__).with_name("scenario.schema.json").read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.path).lstrip(".") or "(top level)"
        message = "give either a setting or an activity (with an optional category)" if e.validator == "oneOf" \
            else e.message
        raise ScenarioError(f"{path}: {at}: {message}")
    changes = []
    for i, c in enumerate(data.get("changes", [])):
        who = c.get("who", {})
        if who.get("age_min", 0) > who.get("age_max", float("inf")):
            raise ScenarioError(f"{path}: changes[{i}].who: age_min is above age_max")
        changes.append(Change(float(c["factor"]), c.get("setting"), c.get("activity"), c.get("category"), who))
    return Scenario(data["name"], tuple(changes), int(data.get("age_years", 0)), data.get("description", ""))


def load_base_year(con, year: str) -> BaseYear:
    """The base year's population and costed activity from the record (`planning.activity_cost`)."""
    people, others = person_costs(con, year)
    activity = con.execute("""SELECT CAST(person_id AS VARCHAR) AS person_id, activity, cost_category, setting,
                                     count(*) AS events, CAST(sum(cost) AS DOUBLE) AS cost
                              FROM planning.activity_cost WHERE financial_year = ? AND cost IS NOT NULL
                              GROUP BY 1, 2, 3, 4""", [year]).pl()
    activity = activity.filter(pl.col("person_id").is_in(people["person_id"].implode()))
    uncosted = con.execute("SELECT count(*) FROM planning.activity_cost WHERE financial_year = ? AND cost IS NULL",
                           [year]).fetchone()[0]
    other = dict(zip(others["setting"].to_list(), others["cost"].to_list(), strict=True)) if len(others) else {}
    return BaseYear(year, people.select("person_id", "sex", "age", "practice_code"), activity,
                    {s: float(other.get(s, 0.0)) for s in SETTINGS}, int(uncosted))


def _who(change: Change) -> pl.Expr:
    who, expr = change.who, pl.lit(True)
    if "age_min" in who:
        expr &= pl.col("age") >= who["age_min"]
    if "age_max" in who:
        expr &= pl.col("age") <= who["age_max"]
    if "sex" in who:
        expr &= pl.col("sex") == who["sex"]
    if "practices" in who:
        expr &= pl.col("practice_code").is_in(list(who["practices"]))
    if change.setting is not None:
        return expr & (pl.col("setting") == change.setting)
    expr &= pl.col("activity") == change.activity
    return expr & (pl.col("cost_category") == change.category) if change.category is not None else expr


def ageing_ratios(people: pl.DataFrame, activity: pl.DataFrame, years: int) -> pl.DataFrame:
    """Per sex, age (whole years, 90+ pooled) and setting: the mean cost per person at age + `years` over the
    mean at age, each mean taken over ages within AGE_WINDOW (people-weighted); 1 where the mean is 0."""
    people = people.with_columns(pl.col("age").floor().cast(pl.Int32).clip(0, OLDEST_AGE).alias("age_year"))
    counts = people.group_by("sex", "age_year").agg(pl.len().alias("people"))
    spend = (activity.join(people.select("person_id", "sex", "age_year"), on="person_id")
             .group_by("sex", "age_year", "setting").agg(pl.col("cost").sum()))
    rows = []
    for sex in counts["sex"].unique().to_list():
        n = np.zeros(OLDEST_AGE + 1)
        c = counts.filter(pl.col("sex") == sex)
        n[c["age_year"].to_numpy()] = c["people"].to_numpy()
        for setting in SETTINGS:
            s = spend.filter((pl.col("sex") == sex) & (pl.col("setting") == setting))
            cost = np.zeros(OLDEST_AGE + 1)
            cost[s["age_year"].to_numpy()] = s["cost"].to_numpy()
            kernel = np.ones(2 * AGE_WINDOW + 1)
            smooth_n = np.convolve(n, kernel, "same")
            mean = np.divide(np.convolve(cost, kernel, "same"), smooth_n, out=np.zeros_like(n), where=smooth_n > 0)
            later = np.minimum(np.arange(OLDEST_AGE + 1) + years, OLDEST_AGE)
            ratio = np.divide(mean[later], mean, out=np.ones_like(mean), where=(mean > 0) & (smooth_n[later] > 0))
            rows += [{"sex": sex, "age_year": a, "setting": setting, "ratio": float(ratio[a])}
                     for a in range(OLDEST_AGE + 1)]
    return pl.DataFrame(rows, schema={"sex": pl.Utf8, "age_year": pl.Int32, "setting": pl.Utf8, "ratio": pl.Float64})


def person_model(base: BaseYear, settings: Sequence[str], scenario: Scenario | None = None) -> PersonModel:
    """Each person's expected events and unit cost next year in each of `settings` (after the scenario)."""
    people = base.people.with_columns(pl.col("age").cast(pl.Float64))
    activity = (base.activity.filter(pl.col("setting").is_in(list(settings)))
                .join(people.select("person_id", "sex", "age", "practice_code"), on="person_id", how="inner")
                .with_columns(pl.col("events").cast(pl.Float64), pl.col("cost").cast(pl.Float64)))
    factor = pl.lit(1.0)
    for change in (scenario.changes if scenario else ()):
        factor = factor * pl.when(_who(change)).then(change.factor).otherwise(1.0)
    activity = activity.with_columns(factor.alias("factor"))
    if scenario and scenario.age_years:
        ratios = ageing_ratios(base.people, base.activity, scenario.age_years)
        activity = (activity.with_columns(pl.col("age").floor().cast(pl.Int32).clip(0, OLDEST_AGE).alias("age_year"))
                    .join(ratios, on=["sex", "age_year", "setting"], how="left")
                    .with_columns(pl.col("factor") * pl.col("ratio").fill_null(1.0)))
    activity = activity.with_columns(pl.col("events") * pl.col("factor"), pl.col("cost") * pl.col("factor"))
    wide = (activity.group_by("person_id", "setting").agg(pl.col("events").sum(), pl.col("cost").sum())
            .pivot(on="setting", index="person_id", values=["events", "cost"]))
    frame = people.select("person_id").join(wide, on="person_id", how="left")

    def column(kind: str, setting: str) -> np.ndarray:
        name = f"{kind}_{setting}"
        return frame[name].fill_null(0.0).to_numpy() if name in frame.columns else np.zeros(len(frame))

    poisson = tuple(s for s in settings if s not in FIXED_SETTINGS)
    fixed = tuple(s for s in settings if s in FIXED_SETTINGS)
    rate = np.column_stack([column("events", s) for s in poisson]) if poisson else np.zeros((len(frame), 0))
    cost = np.column_stack([column("cost", s) for s in poisson]) if poisson else np.zeros((len(frame), 0))
    unit = np.divide(cost, rate, out=np.zeros_like(cost), where=rate > 0)
    fixed_cost = np.column_stack([column("cost", s) for s in fixed]) if fixed else np.zeros((len(frame), 0))
    return PersonModel(poisson, rate, unit, fixed, fixed_cost)


@dataclass(frozen=True)
class Profiles:
    """Distinct person rows with their frequencies, and the sparse map from profiles to columns: one per
    (setting, unit cost) bin (entries: mean events) and one per fixed setting (entries: cost)."""

    frequency: np.ndarray
    design: sparse.csr_matrix
    bin_unit_cost: np.ndarray
    bin_setting: np.ndarray  # index into the poisson settings
    fixed_setting: np.ndarray  # index into the fixed settings


def profiles(model: PersonModel, resolution: float = 0.0) -> Profiles:
    """Group people with identical rows (exact unless `resolution` rounds costs to that many pounds)."""
    unit, fixed = model.unit_cost, model.fixed
    if resolution > 0:
        unit, fixed = np.round(unit / resolution) * resolution, np.round(fixed / resolution) * resolution
    columns = {f"r{j}": model.rate[:, j] for j in range(model.rate.shape[1])}
    columns |= {f"u{j}": np.where(model.rate[:, j] > 0, unit[:, j], 0.0) for j in range(unit.shape[1])}
    columns |= {f"f{j}": fixed[:, j] for j in range(fixed.shape[1])}
    if not columns:
        columns = {"none": np.zeros(model.people)}
    grouped = pl.DataFrame(columns).group_by(list(columns), maintain_order=True).agg(pl.len().alias("n"))
    rows, cols, vals, bin_cost, bin_setting = [], [], [], [], []
    k = np.arange(len(grouped))
    for j in range(model.rate.shape[1]):
        rate, cost = grouped[f"r{j}"].to_numpy(), grouped[f"u{j}"].to_numpy()
        has = rate > 0
        values, which = np.unique(cost[has], return_inverse=True)
        rows.append(k[has])
        cols.append(len(bin_cost) + which)
        vals.append(rate[has])
        bin_cost += values.tolist()
        bin_setting += [j] * len(values)
    for j in range(fixed.shape[1]):
        cost = grouped[f"f{j}"].to_numpy()
        has = cost != 0
        rows.append(k[has])
        cols.append(np.full(has.sum(), len(bin_cost) + j))
        vals.append(cost[has])
    shape = (len(grouped), len(bin_cost) + fixed.shape[1])
    design = sparse.csr_matrix((np.concatenate(vals) if vals else [], (np.concatenate(rows) if rows else [],
                                np.concatenate(cols) if cols else [])), shape=shape)
    return Profiles(grouped["n"].to_numpy().astype(np.int64), design, np.array(bin_cost, dtype=float),
                    np.array(bin_setting, dtype=np.int64), np.arange(fixed.shape[1]))


def _sampling_rows(prof: Profiles) -> tuple[np.ndarray, int, sparse.csr_matrix]:
    """The profiles of at least RARE_BELOW people, then one row per person of the rarer profiles: their
    frequencies, how many such people, and the (columns x rows) design to multiply resample counts by."""
    common = np.flatnonzero(prof.frequency >= RARE_BELOW)
    rare = np.flatnonzero(prof.frequency < RARE_BELOW)
    rows = np.concatenate([common, np.repeat(rare, prof.frequency[rare])])
    return prof.frequency[common], len(rows) - len(common), prof.design[rows].T.tocsr()


def _resample(rng: np.random.Generator, common: np.ndarray, rare_people: int, runs: int) -> np.ndarray:
    """(runs x rows) counts of a resample of all the people with replacement: a multinomial draw over the
    common profiles and the rare people together, made as one over the common profiles and "any rare
    person", whose draws are then spread uniformly over the rare people (an exact split)."""
    total = int(common.sum()) + rare_people
    counts = np.empty((runs, len(common) + rare_people), dtype=np.float64)
    drawn = rng.multinomial(total, np.append(common, rare_people) / total, size=runs)
    counts[:, :len(common)] = drawn[:, :-1]
    if rare_people:
        on_rare = drawn[:, -1]
        picks = rng.integers(0, rare_people, size=int(on_rare.sum()))
        picks += np.repeat(np.arange(runs) * rare_people, on_rare)
        counts[:, len(common):] = np.bincount(picks, minlength=runs * rare_people).reshape(runs, rare_people)
    return counts


@dataclass(frozen=True)
class _Work:
    """What every batch of runs needs (sent once to each worker process)."""

    seed: int
    common: np.ndarray
    rare_people: int
    design_t: sparse.csr_matrix
    n_bins: int
    to_partner: sparse.csr_matrix  # (partners x columns): unit cost of a bin's events, 1 for a fixed cost


def _batch_spend(work: _Work, index: int, size: int) -> np.ndarray:
    """(partners x size) spend of batch `index`, from its own stream of random numbers (seed, index)."""
    rng = np.random.default_rng([work.seed, index])
    counts = _resample(rng, work.common, work.rare_people, size)
    means = work.design_t @ counts.T  # (columns x size): mean events per bin, then fixed costs
    means[:work.n_bins] = rng.poisson(means[:work.n_bins])
    return np.asarray(work.to_partner @ means)


_WORK: _Work | None = None  # in a worker process


def _start_worker(work: _Work) -> None:
    global _WORK
    _WORK = work


def _run_batch(index_size: tuple[int, int]) -> tuple[int, np.ndarray]:
    assert _WORK is not None
    return index_size[0], _batch_spend(_WORK, *index_size)


def simulate_spend(model: PersonModel, partner_settings: Sequence[Sequence[str]], runs: int, seed: int = 0,
                   resolution: float = 0.0, progress: Callable[[int], None] | None = None,
                   batch: int | None = None, workers: int | None = None) -> tuple[np.ndarray, Profiles]:
    """(partners x runs) simulated spend (the exact sampler of the module docstring), and the profiles.
    Batches of runs each draw from their own stream, (seed, batch number), so the result depends on the
    seed and the batch size only, not on `workers` (processes; default: 2 for large work where the
    platform can fork, else 1). Worker processes are forked and use numpy and scipy only."""
    prof = profiles(model, resolution)
    n_bins = len(prof.bin_unit_cost)
    setting_of = list(model.poisson_settings) + list(model.fixed_settings)
    column_setting = np.concatenate([prof.bin_setting, len(model.poisson_settings) + prof.fixed_setting])
    to_partner = np.zeros((len(partner_settings), len(setting_of)))
    for p, settings in enumerate(partner_settings):
        to_partner[p, [setting_of.index(s) for s in settings if s in setting_of]] = 1.0
    weight = np.concatenate([prof.bin_unit_cost, np.ones(len(prof.fixed_setting))])
    common, rare_people, design_t = _sampling_rows(prof)
    work = _Work(seed, common, rare_people, design_t, n_bins,
                 sparse.csr_matrix(to_partner[:, column_setting] * weight[None, :]))
    batch = batch or int(np.clip(CELLS_PER_BATCH // max(design_t.shape[1], 1), 10, 2000))
    batches = [(i, min(batch, runs - start)) for i, start in enumerate(range(0, runs, batch))]
    if workers is None:
        workers = 2 if model.people * runs >= PARALLEL_FROM else 1
    workers = min(workers, os.cpu_count() or 1, len(batches))
    out = np.zeros((len(partner_settings), runs))
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("fork").Pool(workers, _start_worker, (work,)) as pool:
            for index, spend in pool.imap_unordered(_run_batch, batches):
                out[:, index * batch:index * batch + spend.shape[1]] = spend
                if progress:
                    progress(spend.shape[1])
        return out, prof
    for index, size in batches:
        out[:, index * batch:index * batch + size] = _batch_spend(work, index, size)
        if progress:
            progress(size)
    return out, prof


def naive_simulate(model: PersonModel, partner_settings: Sequence[Sequence[str]], runs: int,
                   seed: int = 0) -> np.ndarray:
    """(partners x runs) spend by the plain method: resample N person rows with replacement, then a Poisson
    count per drawn person and setting. For checking `simulate_spend` at small scale only."""
    rng = np.random.default_rng(seed)
    n = model.people
    out = np.zeros((len(partner_settings), runs))
    for r in range(runs):
        drawn = rng.integers(0, n, size=n)
        events = rng.poisson(model.rate[drawn])
        by_setting = dict(zip(model.poisson_settings, (events * model.unit_cost[drawn]).sum(axis=0), strict=True))
        by_setting |= dict(zip(model.fixed_settings, model.fixed[drawn].sum(axis=0), strict=True))
        for p, settings in enumerate(partner_settings):
            out[p, r] = sum(by_setting.get(s, 0.0) for s in settings)
    return out


def summary(values: np.ndarray) -> dict[str, float]:
    """Mean, sd and the 5th, 50th and 95th percentiles."""
    q = np.quantile(values, QUANTILES)
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "p5": float(q[0]), "p50": float(q[1]), "p95": float(q[2])}


@dataclass(frozen=True)
class SimulationResult:
    """Simulated years under an agreement: per-run arrays (partners x runs) and what they were drawn from."""

    agreement: Agreement
    base_year: str
    runs: int
    seed: int
    scenario: Scenario | None
    spend: np.ndarray
    settlement: dict[str, np.ndarray]
    expected_spend: dict[str, float]
    people: int
    profiles: int
    bins: int
    uncosted_rows: int
    shocks: dict = field(default_factory=dict)  # per setting, the sd of the system-wide change (empty: none)

    def partner_statistics(self) -> dict[str, dict]:
        """Per partner: budget, expected spend, spend, variance and net summaries, P(overspend), P(loss)."""
        out = {}
        for q, p in enumerate(self.agreement.partners):
            variance, net = self.settlement["variance"][q], self.settlement["net"][q]
            out[p.id] = {"name": p.name, "bears": list(p.bears), "budget": float(p.budget),
                         "expected_spend": self.expected_spend[p.id], "spend": summary(self.spend[q]),
                         "variance": summary(variance), "net": summary(net),
                         "probability_of_overspend": float((variance > 0).mean()),
                         "probability_of_loss": float((net > 0).mean())}
        return out


def simulate(agreement: Agreement, base: BaseYear, runs: int = 10_000, seed: int = 0,
             scenario: Scenario | None = None, progress: Callable[[int], None] | None = None,
             resolution: float = 0.0, workers: int | None = None,
             shocks: dict[str, float] | None = None) -> SimulationResult:
    """Simulate next year's spend by partner `runs` times and settle each year under `agreement`
    ('baseline' budgets from the base year's spend, people outside the population included). `shocks`:
    per setting, the sd of a system-wide year-to-year change (openphm.finance.shocks), none if empty."""
    if runs < 1:
        raise ValueError(f"--runs must be at least 1 (got {runs})")
    year_start(base.year)
    settings = [s for p in agreement.partners for s in p.bears]
    model = person_model(base, settings, scenario)
    base_spend = {s: float(base.activity.filter(pl.col("setting") == s)["cost"].sum()) + base.other_spend.get(s, 0.0)
                  for s in SETTINGS}
    if agreement.needs_baseline:
        agreement = with_baseline_budgets(agreement, base_spend)
    partner_settings = [p.bears for p in agreement.partners]
    # each setting on its own: plus the spend of people outside the population, times any system-wide
    # change, then summed by partner
    borne = [s for b in partner_settings for s in b]
    by_setting, prof = simulate_spend(model, [[s] for s in borne], runs, seed, resolution, progress, workers=workers)
    by_setting += np.array([base.other_spend.get(s, 0.0) for s in borne])[:, None]
    if shocks:
        by_setting *= shock_factors([shocks.get(s, 0.0) for s in borne], runs, seed)
    spend = np.array([by_setting[[borne.index(s) for s in b]].sum(axis=0) for b in partner_settings])
    fixed_other = np.array([sum(base.other_spend.get(s, 0.0) for s in b) for b in partner_settings])
    expected = model.expected_spend()
    expected_by_partner = {p.id: sum(expected.get(s, 0.0) for s in p.bears) + float(fixed_other[q])
                           for q, p in enumerate(agreement.partners)}
    settlement = settle_runs(agreement, spend)
    return SimulationResult(agreement, base.year, runs, seed, scenario, spend, settlement, expected_by_partner,
                            model.people, len(prof.frequency), len(prof.bin_unit_cost), base.uncosted_rows,
                            dict(shocks or {}))
