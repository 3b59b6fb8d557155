"""Server-rendered SVG charts for the reports page: no script, no external library (the CSP allows only 'self').

Colours come from CSS classes (``chart-series-0`` …) in ``static/app.css``; every text is escaped.
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup, escape

WIDTH = 760
LABEL_WIDTH = 230
BAR_HEIGHT = 14
MAX_BARS = 25
LINE_HEIGHT = 260


def _number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}".replace(",", "\u202f")
    return f"{value:,.1f}".replace(",", "\u202f").replace(".", ",")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _short(text: str, length: int = 34) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _legend(series_labels: list[str], y: float) -> list[str]:
    parts = []
    x = LABEL_WIDTH
    for index, label in enumerate(series_labels):
        parts.append(f'<rect class="chart-series-{index}" x="{x}" y="{y - 10}" width="12" height="12"/>')
        parts.append(f'<text class="chart-legend" x="{x + 18}" y="{y}">{escape(label)}</text>')
        x += 30 + 8 * len(label)
    return parts


def bar_chart(categories: list[str], series: list[tuple[str, list[Any]]], title: str) -> Markup:
    """Horizontal grouped bars: one group per category, one bar per series."""
    categories = categories[:MAX_BARS]
    values = [[float(v or 0) for v in values[:MAX_BARS]] for _, values in series]
    top = _nice_max(max((v for row in values for v in row), default=0))
    group_height = BAR_HEIGHT * len(series) + 10
    height = 30 + group_height * max(1, len(categories)) + 10
    plot_width = WIDTH - LABEL_WIDTH - 70
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    parts += _legend([label for label, _ in series], 16)
    for index, category in enumerate(categories):
        y0 = 30 + index * group_height
        parts.append(
            f'<text class="chart-label" x="{LABEL_WIDTH - 8}" y="{y0 + group_height / 2 + 2}" '
            f'text-anchor="end">{escape(_short(category))}</text>'
        )
        for series_index, row in enumerate(values):
            value = row[index] if index < len(row) else 0
            width = max(0.0, plot_width * value / top)
            y = y0 + series_index * BAR_HEIGHT
            parts.append(
                f'<rect class="chart-series-{series_index}" x="{LABEL_WIDTH}" y="{y}" '
                f'width="{width:.1f}" height="{BAR_HEIGHT - 2}"/>'
            )
            parts.append(
                f'<text class="chart-value" x="{LABEL_WIDTH + width + 4:.1f}" y="{y + BAR_HEIGHT - 4}">'
                f"{_number(value)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(x_labels: list[str], series: list[tuple[str, list[Any]]], title: str) -> Markup:
    """Lines over time (one per series) with a value axis and some of the period labels."""
    left, right, top_margin, bottom = 50, 20, 30, 40
    plot_width = WIDTH - left - right
    plot_height = LINE_HEIGHT - top_margin - bottom
    values = [[float(v or 0) for v in values] for _, values in series]
    top = _nice_max(max((v for row in values for v in row), default=0))
    count = max(1, len(x_labels))

    def x_at(index: int) -> float:
        return left + (plot_width * index / (count - 1) if count > 1 else plot_width / 2)

    def y_at(value: float) -> float:
        return top_margin + plot_height * (1 - value / top)

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {LINE_HEIGHT}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    parts += _legend([label for label, _ in series], 16)
    for step in range(5):
        value = top * step / 4
        y = y_at(value)
        parts.append(f'<line class="chart-grid" x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="chart-axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(value)}</text>'
        )
    every = max(1, math.ceil(count / 10))
    for index, label in enumerate(x_labels):
        if index % every == 0 or index == count - 1:
            parts.append(
                f'<text class="chart-axis" x="{x_at(index):.1f}" y="{LINE_HEIGHT - bottom + 18}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    for series_index, row in enumerate(values):
        points = " ".join(f"{x_at(i):.1f},{y_at(v):.1f}" for i, v in enumerate(row))
        parts.append(f'<polyline class="chart-line chart-stroke-{series_index}" points="{points}"/>')
        if len(row) <= 62:
            for i, v in enumerate(row):
                parts.append(
                    f'<circle class="chart-series-{series_index}" cx="{x_at(i):.1f}" cy="{y_at(v):.1f}" r="2.5">'
                    f"<title>{escape(x_labels[i])} : {_number(v)}</title></circle>"
                )
    parts.append("</svg>")
    return Markup("".join(parts))


def chart_for(report: dict[str, Any]) -> Markup | None:
    """The chart a report asks for (``report["chart"]``), or None."""
    chart = report.get("chart")
    rows = [row for row in report.get("rows") or [] if row.get(chart["x"]) != "Toutes"] if chart else []
    if not chart or not rows:
        return None
    labels = {column["key"]: column["label"] for column in report["columns"]}
    x = [str(row.get(chart["x"]) or "") for row in rows]
    series = [(labels.get(key, key), [row.get(key) for row in rows]) for key in chart["series"]]
    if chart["kind"] == "line":
        return line_chart(x, series, report["title"])
    return bar_chart(x, series, report["title"])
