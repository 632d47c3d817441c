"""Evaluation: do the methods' intervals cover the true effect of the care model, and how long does
one evaluation take?

One ICS of OPENPHM_BENCH_EVAL_PEOPLE (default 200,000) is generated *without* the care model and
built; its panel (practices by month, the model's population: aged 75+ or in a care home) is read
once. Each replicate then draws the adopters by the generator's own rule (larger and more deprived
practices likelier) in two waves six months apart, and thins the adopters' events after their start
binomially (`openphm.synth.replicates`): exactly what a full generation with that adoption gives.
OPENPHM_BENCH_EVAL_REPLICATES (default 100) replicates with the true -20% effect, and
OPENPHM_BENCH_EVAL_NULL_REPLICATES (default 20) with no effect. For each method: how often its 95%
interval covers the true effect (the realised share of events removed), the mean bias, and with no
effect how often the interval excludes zero.
Then one whole `openphm evaluate` over the built database is timed (goal: 5 minutes at 200,000).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from stages import person_record, run_stage

PEOPLE = int(os.environ.get("OPENPHM_BENCH_EVAL_PEOPLE", "200000"))
REPLICATES = int(os.environ.get("OPENPHM_BENCH_EVAL_REPLICATES", "100"))
NULL_REPLICATES = int(os.environ.get("OPENPHM_BENCH_EVAL_NULL_REPLICATES", "20"))
EFFECT = -0.20
PARTIAL = Path(tempfile.gettempdir()) / "openphm-bench-evaluate-rows.csv"
OUTCOMES = ["emergency_admissions", "ae_attendances"]


def base_spec():
    """The spec every replicate shares (its adopters are the replicate's)."""
    from openphm.evaluate.spec import EvaluationSpec

    return EvaluationSpec(name="coverage benchmark", level="practice", starts={}, outcomes=OUTCOMES,
                          start=dt.date(2021, 4, 1), end=dt.date(2026, 3, 1), bootstrap=199, placebo=50)


def base_panel(db: Path):
    """(panel without adoption, practices with size and mean deprivation)."""
    import polars as pl

    from openphm.evaluate.panel import build_panel
    from openphm.ingest.loader import open_store

    _, con = open_store(db)
    spec = base_spec()
    first = con.execute("SELECT min(practice_code) FROM planning.person").fetchone()[0]
    panel = build_panel(con, dataclasses.replace(spec, starts={first: dt.date(2023, 4, 1)}))
    # IMD decile 1 is the most deprived: minus the mean decile is higher where more deprived
    practices = con.execute("""SELECT practice_code AS unit, count(*) AS size, -avg(imd_decile) AS mean_deprivation
                               FROM planning.person WHERE registered GROUP BY 1""").pl()
    con.close()
    practices = practices.filter(pl.col("unit").is_in(panel.frame["unit"].unique().to_list()))
    return panel, practices


def replicate_rows(panel, practices, replicates: int, effect: float, seed0: int, done: list[dict]) -> list[dict]:
    """One row per replicate, method and outcome, after the rows `done` (written to PARTIAL as it goes)."""
    from openphm.evaluate.panel import Panel
    from openphm.evaluate.run import evaluate_panel
    from openphm.synth.replicates import care_model_replicate

    spec, rows = base_spec(), list(done)
    for r in range(replicates):
        rep = care_model_replicate(panel.frame, practices, OUTCOMES, seed=seed0 + r, effect=effect,
                                   first_treated=25, waves=2, wave_gap=6)
        start = time.perf_counter()
        result = evaluate_panel(Panel(rep.panel, OUTCOMES, []), spec)
        seconds = time.perf_counter() - start
        for e in result["estimates"]:
            truth = rep.true_effect[e.outcome]
            rows.append({"replicate": r, "effect": effect, "method": e.method, "outcome": e.outcome,
                         "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high, "truth": truth,
                         "recommended": result["recommended"][e.outcome][0] == e.method, "seconds": seconds})
        pd.DataFrame(rows).to_csv(PARTIAL, index=False)  # what is done so far, for a look while it runs
        print(f"replicate {r + 1}/{replicates} (effect {effect}): {seconds:.1f} s", flush=True)
    return rows


def coverage_table(rows: pd.DataFrame) -> str:
    """Markdown: per method (and the recommended one), coverage, bias and false positives."""
    rows = rows.assign(covers=(rows.ci_low <= rows.truth) & (rows.truth <= rows.ci_high),
                       excludes_zero=(rows.ci_high < 0) | (rows.ci_low > 0), error=rows.estimate - rows.truth)
    chosen = rows[rows.recommended].assign(method="recommended")
    out = ["| method | outcome | replicates | covers the truth | mean bias (points) | RMSE (points) | "
           "no effect: intervals excluding 0 |", "|---|---|---|---|---|---|---|"]
    for (method, outcome), g in pd.concat([rows, chosen]).groupby(["method", "outcome"], sort=False):
        live, null = g[g.effect != 0], g[g.effect == 0]
        out.append(f"| {method} | {outcome} | {len(live)} | {int(live.covers.sum())}/{len(live)} | "
                   f"{100 * live.error.mean():+.1f} | {100 * np.sqrt((live.error ** 2).mean()):.1f} | "
                   f"{int(null.excludes_zero.sum())}/{len(null)} |")
    return "\n".join(out)


def timed_evaluation(db: Path, work: Path, practices) -> float:
    """Seconds for one whole `openphm evaluate` (every method, default options) on the database."""
    units = practices.sort("size", descending=True)["unit"].to_list()[: max(2, len(practices) // 3)]
    spec = {"name": "timing", "intervention": {"level": "practice", "starts": {u: "2023-04" for u in units}},
            "outcomes": OUTCOMES, "period": {"start": "2021-04", "end": "2026-03"}}
    path = work / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    seconds, _ = run_stage(["evaluate", str(path), "--db", str(db), "--out", str(work / "evaluation")])
    return seconds


def run() -> str:
    work = Path(tempfile.mkdtemp(prefix="openphm-bench-evaluate-"))
    db = person_record(work, PEOPLE)
    panel, practices = base_panel(db)
    rows = replicate_rows(panel, practices, NULL_REPLICATES, 0.0, 5000, [])
    rows = replicate_rows(panel, practices, REPLICATES, EFFECT, 1000, rows)
    frame = pd.DataFrame(rows)
    per_replicate = frame.groupby(["effect", "replicate"]).seconds.first().mean()
    seconds = timed_evaluation(db, work, practices)
    return (f"## Evaluating a care model: coverage on replicates\n\n"
            f"{PEOPLE:,}-person synthetic ICS without the care model, {panel.frame['unit'].n_unique()} practices "
            f"by month (April 2021 to March 2026), population aged 75+ or in a care home. {REPLICATES} "
            f"replicates with a true effect of {EFFECT:+.0%} (adopters drawn by the generator's rule, larger and "
            f"more deprived practices likelier, in two waves six months apart; events thinned binomially) and "
            f"{NULL_REPLICATES} with none. Bootstrap 199, placebo 50 per replicate "
            f"({per_replicate:.1f} s per replicate for every method and both outcomes).\n\n"
            f"{coverage_table(frame)}\n\n"
            f"Goal: the recommended method's interval covers the truth in at least 85% of replicates, mean bias "
            f"within a fifth of the effect (4 points), and at most 10% of no-effect intervals exclude zero.\n\n"
            f"| work | wall time |\n|---|---|\n| one `openphm evaluate` at {PEOPLE:,} people (every method, "
            f"both outcomes, default bootstrap and placebo) | {seconds:.0f} s (goal 300 s: "
            f"{'meets' if seconds <= 300 else 'misses'}) |\n")
