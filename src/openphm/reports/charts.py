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


def variation_icon_svg(icon: str) -> str:
    """A Making Data Count variation icon (NHS England's "Making Data Count" guidance): a grey circle
    for common cause; blue for special cause improvement, orange for concern, purple where the
    indicator has no preferred direction, with H or L for a high or low special cause. `icon` is the
    text `openphm.variation.variation_icon` gives; the text is also the icon's accessible name."""
    if icon.startswith("common"):
        colour, letter = GREY, ""
    else:
        colour = BLUE if "improvement" in icon else ORANGE if "concern" in icon else "#330072"
        letter = "H" if "(high)" in icon else "L"
    mark = (f"<text x='20' y='26' font-size='18' font-weight='bold' text-anchor='middle' fill='{colour}'>"
            f"{letter}</text>" if letter else
            f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='8,22 14,18 20,23 26,17 32,21'/>")
    return (f"<svg role='img' aria-label='{escape(icon)}' class='openphm-icon' viewBox='0 0 40 40' width='40' "
            f"height='40' xmlns='http://www.w3.org/2000/svg'><title>{escape(icon)}</title>"
            f"<circle cx='20' cy='20' r='17' fill='white' stroke='{colour}' stroke-width='3'/>{mark}</svg>")


SERIES_COLOURS = [BLUE, "#ffb81c", "#007f3b", ORANGE, "#330072", RED, "#00a499", GREY, "#ae2573", "#425563"]


def lines_svg(labels: list[str], series: dict[str, list[float | None]], title: str, unit: str) -> str:
    """Several series over the same periods (`labels`), one coloured line each, with a key; a missing
    (suppressed) point breaks its line."""
    values = [v for vs in series.values() for v in vs if v is not None]
    lo, hi = (min([*values, 0.0]), max([*values, 1.0])) if values else (0.0, 1.0)
    n = len(labels)
    xs = _scale(0, max(n - 1, 1), L, W - 10)
    ys = _scale(lo, hi + (hi - lo) * 0.05, H - B, T + 20)
    body = []
    for k, (name, vs) in enumerate(series.items()):
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        runs, run = [], []
        for i, v in enumerate(vs):
            if v is None:
                runs, run = [*runs, run] if run else runs, []
            else:
                run.append(f"{xs(i):.1f},{ys(v):.1f}")
        runs = [*runs, run] if run else runs
        body.extend(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{' '.join(r)}'>"
                    f"<title>{escape(name)}</title></polyline>" for r in runs)
        body.append(f"<rect x='{L + 10 + 150 * (k % 4)}' y='{4 + 14 * (k // 4)}' width='10' height='10' "
                    f"fill='{colour}'/><text x='{L + 24 + 150 * (k % 4)}' y='{13 + 14 * (k // 4)}' "
                    f"font-size='10'>{escape(name[:24])}</text>")
    step = max(1, n // 8)
    body.extend(f"<text x='{xs(i):.1f}' y='{H - B + 16}' font-size='10' text-anchor='middle'>{escape(labels[i])}"
                "</text>" for i in range(0, n, step))
    return _frame(title, "", unit, "".join(body), xs, ys, [], np.linspace(lo, hi, 5))


def pyramid_svg(bands: list[str], female: list[int | None], male: list[int | None], title: str) -> str:
    """A population pyramid: women to the left, men to the right, youngest band at the bottom; a
    suppressed band (None) is drawn empty and says so in its tooltip."""
    n = len(bands)
    top = max([v for v in female + male if v] + [1])
    height, mid, half, row = 24 + 16 * n, W / 2, W / 2 - 70, 16
    parts = [f"<svg role='img' viewBox='0 0 {W} {height + 20}' width='100%' xmlns='http://www.w3.org/2000/svg'>",
             f"<title>{escape(title)}</title>",
             f"<text x='{mid - 40}' y='12' font-size='11' text-anchor='end'>Women</text>"
             f"<text x='{mid + 40}' y='12' font-size='11'>Men</text>"]
    for i, band in enumerate(bands):
        y = 20 + (n - 1 - i) * row
        parts.append(f"<text x='{mid}' y='{y + 11}' font-size='10' text-anchor='middle'>{escape(band)}</text>")
        for value, colour, sign in ((female[i], "#ae2573", -1), (male[i], BLUE, 1)):
            width = 0 if not value else half * value / top
            x = mid - 30 - width if sign < 0 else mid + 30
            shown = "suppressed" if value is None else f"{value:,}"
            parts.append(f"<rect x='{x:.1f}' y='{y}' width='{width:.1f}' height='{row - 3}' fill='{colour}'>"
                         f"<title>{escape(band)}, {'women' if sign < 0 else 'men'}: {shown}</title></rect>")
    parts.append("</svg>")
    return f"<figure><figcaption><strong>{escape(title)}</strong></figcaption>{''.join(parts)}</figure>"
