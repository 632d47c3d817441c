"""Evaluation on whole generated ICSs with the care model (not thinned replicates): for each seed,
generate, ingest, link and build, evaluate the generator's own adopters, and set the recommended
estimate beside the truth (the prevented events over the adopters' months after their start:
-prevented / (observed + prevented), observed counted in the evaluation's own panel).

Slow (about 8 minutes a seed at 200,000 people), so not part of `make bench`:
    python bench/whole_generations.py PEOPLE SEED [SEED ...]
Prints one line per seed, method and outcome, and a summary of the recommended method's coverage.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import polars as pl
import yaml

from stages import run_stage

OUTCOMES = {"emergency_admissions": "emergency admissions", "ae_attendances": "a&e attendances"}


def truth(root: Path, spec_path: Path) -> dict[str, float]:
    """The true relative effect on each outcome, for the spec's population and adopters."""
    from openphm.evaluate.panel import build_panel
    from openphm.evaluate.spec import load_spec
    from openphm.ingest.loader import open_store

    _, con = open_store(root / "db" / "openphm.duckdb")
    panel = build_panel(con, load_spec(spec_path)).frame
    con.close()
    effects = pl.read_csv(root / "ics" / "truth" / "care_model_effects.csv", try_parse_dates=True).with_columns(
        pl.col("month").cast(pl.Date), pl.col("outcome").str.to_lowercase()).rename({"practice_code": "unit"})
    post = panel.filter((pl.col("first_treated") > 0) & (pl.col("t") >= pl.col("first_treated")))
    out = {}
    for column, name in OUTCOMES.items():
        observed = post[f"{column}_events"].sum()
        prevented = effects.filter(pl.col("outcome") == name).join(post.select("unit", "month"),
                                                                     on=["unit", "month"])["prevented"].sum()
        out[column] = -prevented / (observed + prevented)
    return out


def one(people: int, seed: int) -> list[dict]:
    root = Path(tempfile.mkdtemp(prefix=f"openphm-whole-{seed}-"))
    db = root / "db" / "openphm.duckdb"
    run_stage(["generate", "--people", str(people), "--format", "parquet", "--care-model", "--care-model-waves", "2",
               "--seed", str(seed), "--out", str(root / "ics"), "--quiet"])
    run_stage(["ingest", str(root / "ics"), "--db", str(db)])
    run_stage(["build", "--db", str(db)])
    model = json.loads((root / "ics" / "truth" / "care_model.json").read_text())
    spec = {"name": f"whole generation {seed}", "population": "aged_75_plus_or_care_home",
            "intervention": {"level": "practice", "starts": {k: v[:7] for k, v in model["practice_starts"].items()}},
            "outcomes": list(OUTCOMES), "period": {"start": "2021-04", "end": "2026-03"}}
    spec_path = root / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    run_stage(["evaluate", str(spec_path), "--db", str(db), "--out", str(root / "out")])
    result = json.loads((root / "out" / "result.json").read_text())
    true = truth(root, spec_path)
    rows = []
    for r in result["results"]:
        outcome = r["outcome"]
        rows.append({"seed": seed, "method": r["method"], "outcome": outcome, "truth": true[outcome],
                     "estimate": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                     "recommended": result["recommended"][outcome]["method"] == r["method"]})
    return rows


def main() -> None:
    people, seeds = int(sys.argv[1]), [int(s) for s in sys.argv[2:]]
    rows = []
    for seed in seeds:
        for row in one(people, seed):
            rows.append(row)
            covers = row["ci_low"] <= row["truth"] <= row["ci_high"]
            print(f"seed {seed} {row['outcome']:<21} {row['method']:<19} truth {row['truth']:+.3f} estimate "
                  f"{row['estimate']:+.3f} ({row['ci_low']:+.3f} to {row['ci_high']:+.3f}) "
                  f"{'covers' if covers else 'MISSES'}{' [recommended]' if row['recommended'] else ''}", flush=True)
    chosen = [r for r in rows if r["recommended"]]
    covered = sum(r["ci_low"] <= r["truth"] <= r["ci_high"] for r in chosen)
    print(f"recommended: {covered} of {len(chosen)} intervals cover the truth", flush=True)


if __name__ == "__main__":
    main()
