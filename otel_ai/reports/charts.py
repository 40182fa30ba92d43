"""Server-side SVG line charts (plain SVG: no plotting library, no fonts or scripts to fetch).

One chart per top service and metric (request rate, error rate, p95 latency): the window as a
solid line, the comparison period (the previous window, shifted onto the same axis) dashed,
anomalies shaded in red. Each chart has a title with its unit, labelled axes and a legend, so it
reads on its own in an e-mail, a Markdown viewer or the HTML page.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from otel_ai.timeutil import parse_instant

W, H = 440, 190
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 44, 28
CURRENT, PREVIOUS, ANOMALY = "#2563eb", "#9ca3af", "#dc2626"
METRICS: tuple[tuple[str, str, str], ...] = (
    ("rate", "request rate", "req/s"),
    ("error_rate", "error rate", "%"),
    ("p95_ms", "p95 latency", "ms"),
)


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 4, 6, 8, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def _time_label(t: datetime, span_s: float) -> str:
    return (
        t.strftime("%H:%M" if span_s <= 86400 else "%d %b %H:%M") if span_s >= 120 else t.strftime("%H:%M:%S")
    )


def _segments(values: list[float | None], x: Any, y: Any) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    for i, v in enumerate(values):
        if v is None:
            if cur:
                out.append(" ".join(cur))
            cur = []
            continue
        cur.append(f"{x(i):.1f},{y(v):.1f}")
    if cur:
        out.append(" ".join(cur))
    return out


def line_chart(
    title: str,
    unit: str,
    current: list[float | None],
    previous: list[float | None],
    *,
    start: datetime,
    bucket_s: int,
    spans: list[tuple[datetime, datetime]] = (),  # type: ignore[assignment]
    scale: float = 1.0,
) -> str:
    """One self-contained ``<svg>`` element."""
    n = max(len(current), 1)
    cur = [None if v is None else v * scale for v in current]
    prev = [None if v is None else v * scale for v in previous]
    top = _nice_max(max([v for v in cur + prev if v is not None] or [0.0]))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(i: float) -> float:
        return LEFT + pw * (i + 0.5) / n

    def y(v: float) -> float:
        return TOP + ph * (1 - v / top)

    span_s = n * bucket_s
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="{escape(title)} ({escape(unit)})" font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{escape(title)} ({escape(unit)})</title>",
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="600" fill="#111827">{escape(title)} '
        f'<tspan fill="#6b7280" font-weight="400">({escape(unit)})</tspan></text>',
    ]
    for a, b in spans:  # anomaly spans first, under the lines
        i0 = (a - start).total_seconds() / bucket_s
        i1 = (b - start).total_seconds() / bucket_s
        x0, x1 = LEFT + pw * max(i0, 0) / n, LEFT + pw * min(i1, n) / n
        if x1 > x0:
            parts.append(f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 2):.1f}" height="{ph}" '
                         f'fill="{ANOMALY}" fill-opacity="0.13"/>')  # fmt: skip
    for k in range(5):  # horizontal grid and y labels
        v = top * k / 4
        yy = y(v)
        parts.append(f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{W - RIGHT}" y2="{yy:.1f}" stroke="#e5e7eb"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#6b7280">{_fmt_tick(v)}</text>'
        )
    for k in range(5):  # time labels
        i = (n - 1) * k / 4 if n > 1 else 0
        t = start + timedelta(seconds=bucket_s * (i + 0.5))
        anchor = "start" if k == 0 else "end" if k == 4 else "middle"
        parts.append(f'<text x="{x(i):.1f}" y="{H - 10}" text-anchor="{anchor}" fill="#6b7280">'
                     f"{escape(_time_label(t, span_s))}</text>")  # fmt: skip
    for pts in _segments(prev, x, y):
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{PREVIOUS}" stroke-width="1.5" '
                     f'stroke-dasharray="4 3"/>')  # fmt: skip
    for pts in _segments(cur, x, y):
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{CURRENT}" stroke-width="2"/>')
        if " " not in pts:  # a single point: draw it
            cx, cy = pts.split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{CURRENT}"/>')
    # legend
    lx, ly = LEFT, 32
    parts.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 18}" y2="{ly}" stroke="{CURRENT}" stroke-width="2"/>'
                 f'<text x="{lx + 22}" y="{ly + 4}" fill="#374151">this window</text>')  # fmt: skip
    lx += 100
    parts.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 18}" y2="{ly}" stroke="{PREVIOUS}" stroke-width="1.5" '
                 f'stroke-dasharray="4 3"/><text x="{lx + 22}" y="{ly + 4}" fill="#374151">previous window</text>')  # fmt: skip
    lx += 122
    parts.append(f'<rect x="{lx}" y="{ly - 5}" width="14" height="10" fill="{ANOMALY}" fill-opacity="0.25"/>'
                 f'<text x="{lx + 18}" y="{ly + 4}" fill="#374151">anomaly</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def service_charts(series: dict[str, Any]) -> list[dict[str, str]]:
    """``[{"service", "metric", "title", "svg"}]`` for every top service of a report's series."""
    start = parse_instant(series["start"]).astimezone(UTC)
    b = int(series["bucket_s"])
    out = []
    for name, sides in series["services"].items():
        spans = [
            (parse_instant(s["start"]), parse_instant(s["end"]))
            for s in series.get("anomaly_spans", [])
            if name in s.get("services", [])
        ]
        for key, label, unit in METRICS:
            title = f"{name} — {label}"
            svg = line_chart(title, unit, sides["current"][key], sides["previous"][key], start=start, bucket_s=b,
                             spans=spans, scale=100.0 if unit == "%" else 1.0)  # fmt: skip
            out.append({"service": name, "metric": key, "title": f"{title} ({unit})", "svg": svg})
    return out
