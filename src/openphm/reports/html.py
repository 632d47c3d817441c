"""Small builders for self-contained HTML pages with inline SVG charts."""

from __future__ import annotations

from html import escape

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#212b32;line-height:1.45;padding:0 1rem}
h1{color:#005eb8}h2{border-bottom:2px solid #005eb8;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{padding:.35rem .5rem;
border-bottom:1px solid #d8dde0;text-align:left}th{background:#f0f4f5}td.num{text-align:right;
font-variant-numeric:tabular-nums}.ok{color:#007f3b;font-weight:600}.bad{color:#d5281b;font-weight:600}
.note{color:#4c6272;font-size:.9rem}
"""


def page(title: str, body: str) -> str:
    """A whole HTML document."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>\n")


def table(headers: list[str], rows: list[list[object]], numeric: set[int] | None = None) -> str:
    """An HTML table; cells given as str are escaped, numbers formatted."""
    numeric = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if isinstance(cell, bool):
                cells.append(f"<td class='{'ok' if cell else 'bad'}'>{'yes' if cell else 'NO'}</td>")
            elif isinstance(cell, float):
                cells.append(f"<td class='num'>{cell:,.2f}</td>")
            else:
                cls = " class='num'" if i in numeric else ""
                cells.append(f"<td{cls}>{escape(str(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def paired_bars(title: str, labels: list[str], series: dict[str, list[float]], unit: str = "") -> str:
    """A grouped bar chart (one group per label, one bar per series) as inline SVG."""
    colours = ["#005eb8", "#ffb81c", "#007f3b", "#d5281b"]
    width, height, left, bottom = 1000, 300, 50, 40
    n = len(labels)
    top = max((max(v) for v in series.values() if v), default=1) or 1
    group_w = (width - left - 10) / max(n, 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    parts = [f"<svg role='img' aria-label='{escape(title)}' viewBox='0 0 {width} {height + 30}' "
             f"width='100%' xmlns='http://www.w3.org/2000/svg'><title>{escape(title)}</title>"]
    for t in range(5):
        y = bottom / 2 + (height - bottom) * (1 - t / 4)
        parts.append(f"<line x1='{left}' x2='{width}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e8edee'/>"
                     f"<text x='{left - 4}' y='{y + 4:.1f}' font-size='11' text-anchor='end'>"
                     f"{top * t / 4:,.1f}{escape(unit)}</text>")
    for s, (name, values) in enumerate(series.items()):
        for i, v in enumerate(values):
            h = (height - bottom) * v / top
            x = left + i * group_w + group_w * 0.1 + s * bar_w
            y = bottom / 2 + (height - bottom) - h
            parts.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{bar_w:.1f}' height='{h:.1f}' "
                         f"fill='{colours[s % 4]}'><title>{escape(name)} {escape(labels[i])}: "
                         f"{v:,.2f}{escape(unit)}</title></rect>")
    for i, label in enumerate(labels):
        x = left + i * group_w + group_w / 2
        parts.append(f"<text x='{x:.1f}' y='{height - bottom / 2 + 14:.1f}' font-size='11' "
                     f"text-anchor='middle'>{escape(label)}</text>")
    for s, name in enumerate(series):
        parts.append(f"<rect x='{left + s * 160}' y='{height + 12}' width='12' height='12' "
                     f"fill='{colours[s % 4]}'/><text x='{left + s * 160 + 18}' y='{height + 22}' "
                     f"font-size='12'>{escape(name)}</text>")
    parts.append("</svg>")
    return f"<figure><figcaption><strong>{escape(title)}</strong></figcaption>{''.join(parts)}</figure>"
