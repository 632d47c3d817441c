"""The calibration report: generated figures beside REFERENCE.md, as HTML and CSV."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from openphm.reports.html import page, paired_bars, table
from openphm.synth.calibration import ESP_BANDS, Check, calibration_frame, registered_on
from openphm.synth.parameters import load_parameters


def write_calibration_report(folder: Path, checks: list[Check], out_dir: Path) -> tuple[Path, Path]:
    """Write calibration.html and calibration.csv into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = calibration_frame(checks)
    csv_path = out_dir / "calibration.csv"
    frame.write_csv(csv_path)
    years = sorted({p.stem.split("_")[-1] for p in (Path(folder) / "extracts" / "apc").glob("apc_*")})
    first = registered_on(Path(folder), dt.date(int(years[0][:4]), 10, 1))
    counts = first.group_by(pl.min_horizontal(pl.col("age") // 5, pl.lit(18)).alias("b")).len()
    by_band = dict(zip(counts["b"].to_list(), counts["len"].to_list(), strict=True))
    share = load_parameters()["population"]["age_band_share"]
    generated = [100 * by_band.get(b, 0) / first.height for b in range(19)]
    reference = [100 * s / sum(share) for s in share]
    n_ok = sum(c.ok for c in checks)
    body = (
        f"<p>Synthetic ICS in <code>{Path(folder).resolve()}</code>: {first.height:,} people registered "
        f"on {years[0][:4]}-10-01. {n_ok} of {len(checks)} figures fall within their accepted range.</p>"
        + paired_bars("Age structure: % of registered people by age band",
                      list(ESP_BANDS), {"generated": generated, "England, Census 2021": reference}, "%")
        + "<h2>Generated figures beside published ones</h2>"
        + table(["measure", "generated", "reference", "accepted range", "within range", "source"],
                [[r["measure"], float(r["generated"]), float(r["reference"]), r["accepted"], r["ok"],
                  r["source"]] for r in frame.iter_rows(named=True)])
        + "<p class='note'>Sources and tolerances: see REFERENCE.md and "
          "src/openphm/synth/calibration.py. Activity figures are for the middle financial year.</p>"
    )
    html_path = out_dir / "calibration.html"
    html_path.write_text(page("OpenPHM synthetic ICS: calibration", body), encoding="utf-8")
    return html_path, csv_path
