"""Inline SVG charts: funnel plots, SPC (XmR) charts and league tables with intervals."""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd

BLUE, GREY, ORANGE, RED, LIGHT = "#005eb8", "#768692", "#ed8b00", "#d5281b", "#e8edee"
W, H, L, B, T = 760, 360, 60, 45, 20


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _frame(title: str, x_label: str, y_label: str, body: str, xs, ys, x_ticks, y_ticks) -> str:
    parts = [f"<svg role='img' viewBox='0 0 {W} {H}' width='100%' xmlns='http://www.w3.org/2000/svg'>",
             f"<title>{escape(title)}</title>"]
    for v in y_ticks:
        y = ys(v)
        parts.append(f"<line x1='{L}' x2='{W - 10}' y1='{y:.1f}' y2='{y:.1f}' stroke='{LIGHT}'/>"
                     f"<text x='{L - 5}' y='{y + 4:.1f}' font-size='11' text-anchor='end'>{v:,.3g}</text>")
    for v in x_ticks:
        x = xs(v)
        parts.append(f"<text x='{x:.1f}' y='{H - B + 16}' font-size='11' text-anchor='middle'>{v:,.4g}</text>")
    parts.append(f"<text x='{(L + W) / 2:.0f}' y='{H - 8}' font-size='12' text-anchor='middle'>"
                 f"{escape(x_label)}</text>")
    parts.append(f"<text x='14' y='{(H - B) / 2:.0f}' font-size='12' text-anchor='middle' "
                 f"transform='rotate(-90 14 {(H - B) / 2:.0f})'>{escape(y_label)}</text>")
    parts.append(body)
    parts.append("</svg>")
    return f"<figure><figcaption><strong>{escape(title)}</strong></figcaption>{''.join(parts)}</figure>"


def funnel_svg(frame: pd.DataFrame, labels: list[str], target: float, title: str, unit: str) -> str:
    """A funnel plot: each unit's value against its denominator, with 95% and 99.8% limits."""
    den = frame["denominator"].to_numpy(dtype=float)
    order = np.argsort(den)
    lo = float(np.nanmin(frame[["value", "lower998"]].to_numpy()))
    hi = float(np.nanmax(frame[["value", "upper998"]].to_numpy()))
    xs = _scale(0, den.max() * 1.05, L, W - 10)
    ys = _scale(lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05, H - B, T)
    body = [f"<line x1='{L}' x2='{W - 10}' y1='{ys(target):.1f}' y2='{ys(target):.1f}' stroke='{GREY}'/>"]
    for col, colour, dash in (("lower95", ORANGE, "4 3"), ("upper95", ORANGE, "4 3"), ("lower998", RED, ""),
                              ("upper998", RED, "")):
        pts = " ".join(f"{xs(den[i]):.1f},{ys(frame[col].iloc[i]):.1f}" for i in order)
        body.append(f"<polyline fill='none' stroke='{colour}' stroke-dasharray='{dash}' points='{pts}'/>")
    for i in range(len(frame)):
        flag = frame["flag"].iloc[i]
        colour = RED if flag.endswith("998") else ORANGE if flag.endswith("95") else BLUE
        body.append(f"<circle cx='{xs(den[i]):.1f}' cy='{ys(frame['value'].iloc[i]):.1f}' r='4' fill='{colour}'>"
                    f"<title>{escape(labels[i])}: {frame['value'].iloc[i]:,.2f} ({escape(flag)})</title></circle>")
    x_ticks = np.linspace(0, den.max(), 5)
    y_ticks = np.linspace(lo, hi, 5)
    return _frame(title, "denominator", unit, "".join(body), xs, ys, x_ticks, y_ticks)


def spc_svg(chart: pd.DataFrame, labels: list[str], title: str, unit: str) -> str:
    """An XmR chart: points coloured by special cause, mean and process limits."""
    n = len(chart)
    lo = float(min(chart["lower"].min(), chart["value"].min()))
    hi = float(max(chart["upper"].max(), chart["value"].max()))
    xs = _scale(0, max(n - 1, 1), L, W - 10)
    ys = _scale(lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05, H - B, T)
    body = []
    for col, colour, dash in (("mean", GREY, ""), ("lower", GREY, "4 3"), ("upper", GREY, "4 3")):
        pts = " ".join(f"{xs(i):.1f},{ys(v):.1f}" for i, v in enumerate(chart[col]))
        body.append(f"<polyline fill='none' stroke='{colour}' stroke-dasharray='{dash}' points='{pts}'/>")
    pts = " ".join(f"{xs(i):.1f},{ys(v):.1f}" for i, v in enumerate(chart["value"]))
    body.append(f"<polyline fill='none' stroke='{BLUE}' points='{pts}'/>")
    for i in range(n):
        rule = chart["rule"].iloc[i]
        colour = ORANGE if rule else BLUE
        body.append(f"<circle cx='{xs(i):.1f}' cy='{ys(chart['value'].iloc[i]):.1f}' r='3.5' fill='{colour}'>"
                    f"<title>{escape(labels[i])}: {chart['value'].iloc[i]:,.2f}{' (' + rule + ')' if rule else ''}"
                    "</title></circle>")
    step = max(1, n // 8)
    body.extend(f"<text x='{xs(i):.1f}' y='{H - B + 16}' font-size='10' text-anchor='middle'>{escape(labels[i])}"
                "</text>" for i in range(0, n, step))
    return _frame(title, "", unit, "".join(body), xs, ys, [], np.linspace(lo, hi, 5))


def league_svg(frame: pd.DataFrame, labels: list[str], title: str, unit: str) -> str:
    """Units ranked by value, each with its 95% interval."""
    order = np.argsort(frame["value"].to_numpy())
    n = len(frame)
    height = max(120, 18 * n + 50)
    lo, hi = float(frame["lower95"].min()), float(frame["upper95"].max())
    xs = _scale(lo, hi, 180, W - 20)
    parts = [f"<svg role='img' viewBox='0 0 {W} {height}' width='100%' xmlns='http://www.w3.org/2000/svg'>",
             f"<title>{escape(title)}</title>"]
    for row, i in enumerate(order):
        y = 20 + row * 18
        r = frame.iloc[i]
        parts.append(f"<text x='170' y='{y + 4}' font-size='11' text-anchor='end'>{escape(labels[i])}</text>"
                     f"<line x1='{xs(r['lower95']):.1f}' x2='{xs(r['upper95']):.1f}' y1='{y}' y2='{y}' "
                     f"stroke='{GREY}' stroke-width='2'/><circle cx='{xs(r['value']):.1f}' cy='{y}' r='4' "
                     f"fill='{BLUE}'><title>{escape(labels[i])}: {r['value']:,.2f} ({r['lower95']:,.2f} to "
                     f"{r['upper95']:,.2f}) {escape(unit)}</title></circle>")
    parts.append("</svg>")
    return f"<figure><figcaption><strong>{escape(title)}</strong></figcaption>{''.join(parts)}</figure>"
