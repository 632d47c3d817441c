"""Variation in an analyst's own aggregate data: a CSV with one row per organisation and period
(published NHS statistics, for example), turned into a funnel plot for the latest period, an SPC
chart per organisation, a league table, and CSV files of each.

Rows with the same organisation and period are summed first (NHS England's A&E file, for
example, has a row per department type). Every problem names the file, and the row and column
where there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from openphm.reports.charts import funnel_svg, league_svg, spc_svg
from openphm.reports.html import page, table
from openphm.stats.intervals import count_limits_arrays, wilson_arrays
from openphm.variation.funnel import KINDS, funnel
from openphm.variation.spc import variation_icon, xmr


class DatasetError(ValueError):
    """An input file that cannot be used; the message says which file, row and column."""


@dataclass(frozen=True)
class Columns:
    """Which columns of the analyst's file hold what."""

    org: str
    period: str
    numerator: str
    denominator: str


def read_dataset(path: Path, cols: Columns) -> pd.DataFrame:
    """The file's rows summed by organisation and period, with numeric checks."""
    try:
        data = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DatasetError(f"{path}: cannot be read as CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in (cols.org, cols.period, cols.numerator, cols.denominator) if c not in data.columns]
    if missing:
        raise DatasetError(f"{path}: no column {', '.join(repr(c) for c in missing)}; the file has "
                           f"{', '.join(data.columns)}")
    for col in (cols.numerator, cols.denominator):
        values = pd.to_numeric(data[col], errors="coerce")
        bad = values.isna() | (values < 0)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DatasetError(f"{path}: row {row + 2}, column {col!r}: {data[col].iloc[row]!r} is not a "
                               "non-negative number")
        data[col] = values
    if (data[cols.org] == "").any() or (data[cols.period] == "").any():
        row = int(np.flatnonzero(((data[cols.org] == "") | (data[cols.period] == "")).to_numpy())[0])
        raise DatasetError(f"{path}: row {row + 2}: the organisation or period is blank")
    summed = (data.groupby([cols.org, cols.period], as_index=False)[[cols.numerator, cols.denominator]].sum()
              .rename(columns={cols.org: "org", cols.period: "period", cols.numerator: "numerator",
                               cols.denominator: "denominator"}))
    return summed.sort_values(["org", "period"]).reset_index(drop=True)


def _values(frame: pd.DataFrame, kind: str, per: float) -> pd.DataFrame:
    num, den = frame["numerator"].to_numpy(float), frame["denominator"].to_numpy(float)
    if kind == "proportion":
        value, lo, hi = wilson_arrays(num, den)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            safe = np.where(den > 0, den, np.nan)
            value = num / safe
            lo, hi = (x / safe for x in count_limits_arrays(num))
    return frame.assign(value=value * per, lower95=lo * per, upper95=hi * per)


def analyse(data: pd.DataFrame, kind: str = "proportion", per: float = 100.0, min_points: int = 12,
            polarity: str = "no_judgement") -> dict[str, pd.DataFrame]:
    """Funnel (latest period, random-effects limits), league table (latest period) and SPC per
    organisation with at least `min_points` periods."""
    if kind not in KINDS:
        raise DatasetError(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})")
    if kind == "proportion" and (data["numerator"] > data["denominator"]).any():
        row = data[data["numerator"] > data["denominator"]].iloc[0]
        raise DatasetError(f"{row['org']} {row['period']}: the numerator exceeds the denominator, so it is not a "
                           "proportion (use --kind rate)")
    latest = data["period"].max()
    now = data[(data["period"] == latest) & (data["denominator"] > 0)].reset_index(drop=True)
    f = funnel(now["numerator"], now["denominator"], kind=kind, overdispersion=True)
    funnel_frame = pd.concat([now[["org", "period", "numerator", "denominator"]], f], axis=1)
    for col in ("value", "lower95", "upper95", "lower998", "upper998"):
        funnel_frame[col] = funnel_frame[col] * per
    league = _values(now, kind, per).sort_values("value").reset_index(drop=True)
    charts = []
    for org, series in data[data["denominator"] > 0].groupby("org"):
        if len(series) < min_points:
            continue
        values = _values(series, kind, per)
        chart = xmr(values["value"].to_numpy())
        chart.insert(0, "period", series["period"].to_numpy())
        chart.insert(0, "org", org)
        chart["icon"] = variation_icon(chart, polarity)
        charts.append(chart)
    spc = pd.concat(charts, ignore_index=True) if charts else pd.DataFrame()
    return {"funnel": funnel_frame, "league": league, "spc": spc}


def write_outputs(results: dict[str, pd.DataFrame], out: Path, source: Path, unit: str, per: float = 100.0,
                  show: int = 12) -> Path:
    """CSV files of each result and variation.html; returns the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in results.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    f, league, spc = results["funnel"], results["league"], results["spc"]
    target = float(f["numerator"].sum() / f["denominator"].sum()) * per
    period = f["period"].iloc[0]
    outside = f[f["flag"].isin(["high_998", "low_998"])]
    parts = [f"<p>From <code>{source.name}</code>: {f['org'].nunique()} organisations in the latest period "
             f"({period}); {len(outside)} outside the 99.8% limits after allowing for overdispersion.</p>",
             funnel_svg(f, f["org"].tolist(), target, f"Funnel plot, {period}", unit),
             league_svg(league.tail(40).reset_index(drop=True), league.tail(40)["org"].tolist(),
                        f"League table, {period} (highest 40, 95% intervals)", unit)]
    if not spc.empty:
        icons = spc.groupby("org")["icon"].last()
        summary = [[org, icon] for org, icon in sorted(icons.items(), key=lambda kv: (kv[1] == "common cause", kv[0]))]
        parts.append("<h2>SPC by organisation</h2><p>Special causes at the latest point first.</p>"
                     + table(["organisation", "latest point"], summary))
        # the organisations with the most recent special cause first, then the largest
        latest_special = spc.groupby("org")["special_cause"].last().sort_values(ascending=False)
        for org in latest_special.index[:show]:
            chart = spc[spc["org"] == org].reset_index(drop=True)
            parts.append(spc_svg(chart, chart["period"].astype(str).tolist(), f"{org}: {icons[org]}", unit))
    path = out / "variation.html"
    path.write_text(page("Variation", "".join(parts)), encoding="utf-8")
    return path
