"""Charts of the Results page, drawn on the server as SVG (SPEC §16 V1): bars and stacked bars, laid out here
and written by ``templates/results/_chart.html``. Each chart has a title and a description for assistive
technology (``role="img"``, ``aria-labelledby``), and the page prints the same figures as a table beside it.

No library: pygal (the maintained SVG charting package) writes inline ``<style>`` and presentation attributes
that the Content-Security-Policy (``style-src 'self'``) refuses, and loads its tooltip script from a CDN by
default; these charts are a few dozen rectangles, coloured by classes in ``static/css/app.css``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 560
ROW = 26  # height of one horizontal bar's row
LEFT = 170  # room for the labels of horizontal bars
TOP, BOTTOM, RIGHT = 12, 34, 70


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str  # shown as a tooltip by browsers, read with the bar


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"
    css: str = "chart-label"


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    css: str = "chart-axis"


@dataclass
class Chart:
    slug: str
    title: str
    description: str
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css class, series name)

    @property
    def empty(self) -> bool:
        return not self.rects

    def svg(self) -> SafeString:
        """The chart as inline SVG: written here, not by the template engine (a chart is hundreds of elements,
        and every value is escaped)."""
        ids = f"chart-{escape(self.slug)}"
        out = [
            f'<svg class="chart" role="img" aria-label="{escape(self.title)}" aria-labelledby="{ids}-title {ids}-desc" '
            f'viewBox="0 0 {self.width} {self.height}" width="{self.width}" height="{self.height}" '
            'preserveAspectRatio="xMinYMin meet">',
            f'<title id="{ids}-title">{escape(self.title)}</title>',
            f'<desc id="{ids}-desc">{escape(self.description)}</desc>',
        ]
        out += [
            f'<line class="{escape(ln.css)}" x1="{ln.x1:.1f}" y1="{ln.y1:.1f}" x2="{ln.x2:.1f}" y2="{ln.y2:.1f}"/>'
            for ln in self.lines
        ]
        out += [
            f'<rect class="{escape(r.css)}" x="{r.x:.1f}" y="{r.y:.1f}" width="{r.width:.1f}" height="{r.height:.1f}">'
            f"<title>{escape(r.title)}</title></rect>"
            for r in self.rects
        ]
        out += [
            f'<text class="{escape(t.css)}" x="{t.x:.1f}" y="{t.y:.1f}" text-anchor="{escape(t.anchor)}">{escape(t.text)}</text>'
            for t in self.texts
        ]
        out.append("</svg>")
        return mark_safe("".join(out))  # noqa: S308  (every value above is escaped)


def dollars(value: Decimal | float) -> str:
    amount = Decimal(str(value))
    return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"


def whole(value: Decimal | float) -> str:
    return f"{Decimal(str(value)):,.0f}"


def _nice_top(value: float) -> float:
    """A round upper bound for an axis: 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def horizontal_bars(
    *, slug: str, title: str, description: str, items: Sequence[tuple[str, Decimal | float]],
    fmt: Callable[[Decimal | float], str] = whole, css: str = "bar",
) -> Chart:  # fmt: skip
    """One bar per item, from a common zero; negative values (refunds) go left of it."""
    height = TOP + ROW * max(len(items), 1) + 8
    chart = Chart(slug, title, description, WIDTH, height)
    values = [float(v) for _, v in items]
    high, low = max([0.0, *values]), min([0.0, *values])
    span = (high - low) or 1.0
    plot = WIDTH - LEFT - RIGHT
    zero = LEFT + plot * (-low / span)
    for index, (label, value) in enumerate(items):
        y = TOP + index * ROW
        length = plot * abs(float(value)) / span
        x = zero - length if float(value) < 0 else zero
        css_name = f"{css} negative" if float(value) < 0 else css
        if length > 0:
            chart.rects.append(Rect(x, y + 4, max(length, 1.0), ROW - 8, css_name, f"{label}: {fmt(value)}"))
        chart.texts.append(Text(LEFT - 8, y + ROW / 2 + 4, label, "end"))
        chart.texts.append(
            Text(max(x + length, zero) + 6, y + ROW / 2 + 4, fmt(value), "start", "chart-value")
        )
    chart.lines.append(Line(zero, TOP, zero, height - 8))
    if not any(values):
        chart.rects.clear()
    return chart


def column_bars(
    *, slug: str, title: str, description: str, items: Sequence[tuple[str, Decimal | float]],
    fmt: Callable[[Decimal | float], str] = dollars, every: int = 1,
) -> Chart:  # fmt: skip
    """Vertical bars over time (one per week), labelled every ``every`` bars."""
    height = 220
    chart = Chart(slug, title, description, WIDTH, height)
    left = 64
    plot_w, plot_h = WIDTH - left - 16, height - TOP - BOTTOM
    values = [float(v) for _, v in items]
    top = _nice_top(max([0.0, *values]))
    bottom = -_nice_top(-min(values)) if values and min(values) < 0 else 0.0
    span = top - bottom
    zero_y = TOP + plot_h * (top / span)
    slot = plot_w / max(len(items), 1)
    for tick in (top, top / 2, 0.0) + ((bottom,) if bottom else ()):
        y = TOP + plot_h * ((top - tick) / span)
        chart.lines.append(Line(left, y, WIDTH - 16, y, "chart-grid"))
        chart.texts.append(Text(left - 6, y + 4, fmt(tick), "end", "chart-tick"))
    for index, (label, value) in enumerate(items):
        x = left + index * slot + slot * 0.15
        size = plot_h * abs(float(value)) / span
        y = zero_y - size if float(value) >= 0 else zero_y
        if size > 0:
            css = "bar negative" if float(value) < 0 else "bar"
            chart.rects.append(
                Rect(x, y, max(slot * 0.7, 1.0), max(size, 1.0), css, f"{label}: {fmt(value)}")
            )
        if index % every == 0:
            chart.texts.append(Text(x + slot * 0.35, height - BOTTOM + 16, label, "middle", "chart-tick"))
    chart.lines.append(Line(left, zero_y, WIDTH - 16, zero_y))
    if not any(values):
        chart.rects.clear()
    return chart


def stacked_columns(
    *, slug: str, title: str, description: str, series: Sequence[str],
    points: Sequence[tuple[str, Sequence[Decimal | float]]], every: int = 1,
) -> Chart:  # fmt: skip
    """One column per point, its series stacked (negative parts, credits, are left out of the stack)."""
    height = 240
    chart = Chart(slug, title, description, WIDTH, height)
    chart.legend = [(f"series-{n}", name) for n, name in enumerate(series)]
    left = 76
    plot_w, plot_h = WIDTH - left - 16, height - TOP - BOTTOM
    totals = [sum(max(float(v), 0.0) for v in values) for _, values in points]
    top = _nice_top(max([0.0, *totals]))
    slot = plot_w / max(len(points), 1)
    for tick in (top, top / 2, 0.0):
        y = TOP + plot_h * (1 - tick / top)
        chart.lines.append(Line(left, y, WIDTH - 16, y, "chart-grid"))
        chart.texts.append(Text(left - 6, y + 4, dollars(tick), "end", "chart-tick"))
    for index, (label, values) in enumerate(points):
        x = left + index * slot + slot * 0.12
        base: float = TOP + plot_h
        for n, value in enumerate(values):
            size = plot_h * max(float(value), 0.0) / top
            if size > 0:
                base -= size
                chart.rects.append(
                    Rect(
                        x,
                        base,
                        max(slot * 0.76, 1.0),
                        size,
                        f"series-{n}",
                        f"{label}, {series[n]}: {dollars(value)}",
                    )
                )
        if index % every == 0:
            chart.texts.append(Text(x + slot * 0.38, height - BOTTOM + 16, label, "middle", "chart-tick"))
    chart.lines.append(Line(left, TOP + plot_h, WIDTH - 16, TOP + plot_h))
    return chart


def label_every(count: int, *, room: int = 8) -> int:
    """Label one bar in this many, so that at most ``room`` labels share the axis."""
    return max(1, math.ceil(count / room))
