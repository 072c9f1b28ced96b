"""Small SVG charts made from the benchmark's results (the per-process CPU charts come from the
loadgen itself, --svg)."""
from __future__ import annotations

from xml.sax.saxutils import escape

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def _nice(v: float) -> float:
    import math
    if v <= 0:
        return 1
    p = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * p >= v:
            return m * p
    return 10 * p


def line_chart(title: str, x_label: str, y_label: str, series: dict[str, list[tuple[float, float]]],
               hline: float | None = None, hline_label: str = "", width=900, height=420,
               y_max: float | None = None) -> str:
    left, right, top, bottom = 70, 190, 36, 46
    pw, ph = width - left - right, height - top - bottom
    xs = [x for pts in series.values() for x, _ in pts] or [0, 1]
    ys = [y for pts in series.values() for _, y in pts] or [1]
    x0, x1 = 0.0, max(xs) * 1.05 or 1
    top_y = max(ys + ([hline * 1.2] if hline else []))
    if y_max:
        top_y = min(top_y, y_max)
    ystep = _nice(top_y / 5)
    y1 = ystep * (int(top_y / ystep) + 1)
    xstep = _nice((x1 - x0) / 8)

    def X(x):
        return left + (x - x0) / (x1 - x0) * pw

    def Y(y):
        return top + ph - min(y, y1) / y1 * ph

    o = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
         f"font-family='sans-serif' font-size='12'>",
         "<rect width='100%' height='100%' fill='white'/>",
         f"<text x='{width / 2:.0f}' y='20' text-anchor='middle' font-size='14'>{escape(title)}</text>"]
    y = 0.0
    while y <= y1 + 1e-9:
        o.append(f"<line x1='{left}' x2='{left + pw}' y1='{Y(y):.1f}' y2='{Y(y):.1f}' stroke='#ddd'/>"
                 f"<text x='{left - 6}' y='{Y(y) + 4:.1f}' text-anchor='end'>{y:g}</text>")
        y += ystep
    x = 0.0
    while x <= x1 + 1e-9:
        o.append(f"<text x='{X(x):.1f}' y='{top + ph + 16}' text-anchor='middle'>{x:g}</text>")
        x += xstep
    o.append(f"<rect x='{left}' y='{top}' width='{pw}' height='{ph}' fill='none' stroke='#444'/>")
    o.append(f"<text x='{left + pw / 2:.0f}' y='{height - 8}' text-anchor='middle'>{escape(x_label)}</text>")
    o.append(f"<text transform='translate(16,{top + ph / 2:.0f}) rotate(-90)' text-anchor='middle'>"
             f"{escape(y_label)}</text>")
    if hline:
        o.append(f"<line x1='{left}' x2='{left + pw}' y1='{Y(hline):.1f}' y2='{Y(hline):.1f}' "
                 f"stroke='#999' stroke-dasharray='5,4'/><text x='{left + 4}' y='{Y(hline) - 4:.1f}' "
                 f"fill='#555'>{escape(hline_label)}</text>")
    for i, (name, pts) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        pts = sorted(pts)
        if pts:
            o.append(f"<polyline fill='none' stroke='{c}' stroke-width='2' points='"
                     + " ".join(f"{X(a):.1f},{Y(b):.1f}" for a, b in pts) + "'/>")
            for a, b in pts:
                o.append(f"<circle cx='{X(a):.1f}' cy='{Y(b):.1f}' r='3' fill='{c}'/>")
        ly = top + 10 + 18 * i
        o.append(f"<line x1='{left + pw + 10}' x2='{left + pw + 30}' y1='{ly}' y2='{ly}' stroke='{c}' "
                 f"stroke-width='3'/><text x='{left + pw + 36}' y='{ly + 4}'>{escape(name)}</text>")
    o.append("</svg>")
    return "\n".join(o) + "\n"
