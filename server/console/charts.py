"""Bar charts as SVG, drawn on the server: readable without JavaScript and allowed by a strict CSP.

No maintained Python library draws a small, dependency-free SVG without inline style attributes
(pygal embeds styles and scripts), so this module draws one: a bar per day, a y axis with a few
round ticks, every label escaped. Colours come from classes the console's stylesheet defines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 200
WIDE = 960  # a chart across the page: its text stays near its size at common screen widths
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 36


@dataclass(frozen=True)
class Bar:
    label: str  # e.g. "11-26"
    value: int
    title: str  # the hover text, e.g. "2026-11-26: 4"


def nice_max(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n at or above value (at least 1): the top tick of the axis."""
    if value <= 1:
        return 1
    magnitude = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(bars: list[Bar], title: str, label_every: int = 5, width: int = WIDTH) -> Markup:
    """An SVG bar chart; `title` names it for screen readers. Every text is escaped here."""
    top = nice_max(max((b.value for b in bars), default=0))
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for tick in (0, top // 2 if top % 2 == 0 else None, top):
        if tick is None:
            continue
        y = TOP + plot_h - plot_h * tick / top
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / top
        x = LEFT + i * slot + slot * 0.15
        y = TOP + plot_h - h
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}">'
            f"<title>{escape(bar.title)}</title></rect>"
        )
        if i % label_every == 0 or i == len(bars) - 1:
            parts.append(
                f'<text class="label" x="{x + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(bar.label)}</text>'
            )
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{width - RIGHT}" y2="{TOP + plot_h}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


# --- the dashboard's charts: horizontal bars, pairs (this week against last), stacked days ---------


@dataclass(frozen=True)
class HBar:
    label: str
    value: int
    title: str  # the hover text
    css: str = "bar"  # the fill's class (console.css: bar, fill-<severity>, s0..s5)
    href: str | None = None  # where a click on the row leads


@dataclass(frozen=True)
class Pair:
    label: str
    now: int
    before: int
    title: str
    href: str | None = None


@dataclass(frozen=True)
class Series:
    name: str
    values: list[int]
    css: str  # s0..s5, s-other


def short(text: str, chars: int) -> str:
    """At most `chars` characters, a CJK character counted twice (it is about twice as wide)."""
    used, out = 0, []
    for ch in text:
        used += 2 if ord(ch) >= 0x2E80 else 1
        if used > chars:
            return "".join(out) + "…"
        out.append(ch)
    return text


def _open(width: float, height: float, title: str) -> list[str]:
    return [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]


def _link(href: str | None, inner: str) -> str:
    return f'<a href="{escape(href)}">{inner}</a>' if href else inner


def hbar_chart(rows: list[HBar], title: str, width: int = 360, label_chars: int = 18) -> Markup:
    """One row per item: its label, a bar as long as its share of the largest, the figure."""
    row_h, label_w, value_w = 22, width * 0.42, 44
    height = max(len(rows), 1) * row_h + 4
    top = max((r.value for r in rows), default=0) or 1
    plot_w = width - label_w - value_w
    parts = _open(width, height, title)
    for i, r in enumerate(rows):
        y = 2 + i * row_h
        w = plot_w * r.value / top
        inner = (
            f"<title>{escape(r.title)}</title>"
            f'<text class="label" x="{label_w - 6:.1f}" y="{y + 15}" text-anchor="end">{escape(short(r.label, label_chars))}</text>'
            f'<rect class="{escape(r.css)}" x="{label_w:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}"/>'
            f'<text class="value" x="{label_w + w + 4:.1f}" y="{y + 15}">{r.value}</text>'
        )
        parts.append(f"<g>{_link(r.href, inner)}</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def pair_chart(
    rows: list[Pair], now_name: str, before_name: str, title: str, width: int = WIDE, label_chars: int = 24
) -> Markup:
    """Per item two bars, now (dark) above before (light), on one scale, with a legend."""
    row_h, label_w, value_w, legend_h = 30, width * 0.32, 48, 22
    height = legend_h + max(len(rows), 1) * row_h + 4
    top = max((max(r.now, r.before) for r in rows), default=0) or 1
    plot_w = width - label_w - value_w
    parts = _open(width, height, title)
    for x, css, name in ((label_w, "now", now_name), (label_w + plot_w / 2, "before", before_name)):
        parts.append(f'<rect class="{css}" x="{x:.1f}" y="4" width="12" height="12"/>')
        parts.append(f'<text class="label" x="{x + 16:.1f}" y="14">{escape(name)}</text>')
    for i, r in enumerate(rows):
        y = legend_h + i * row_h
        inner = [f"<title>{escape(r.title)}</title>"]
        inner.append(
            f'<text class="label" x="{label_w - 6:.1f}" y="{y + 18}" text-anchor="end">{escape(short(r.label, label_chars))}</text>'
        )
        for offset, css, value in ((3, "now", r.now), (15, "before", r.before)):
            w = plot_w * value / top
            inner.append(f'<rect class="{css}" x="{label_w:.1f}" y="{y + offset}" width="{w:.1f}" height="11"/>')
            inner.append(f'<text class="value" x="{label_w + w + 4:.1f}" y="{y + offset + 10}">{value}</text>')
        parts.append(f"<g>{_link(r.href, ''.join(inner))}</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_chart(
    labels: list[str],
    series: list[Series],
    title: str,
    label_every: int = 5,
    titles: list[str] | None = None,
    width: int = WIDE,
) -> Markup:
    """A bar per day, stacked by series, with a y axis and a legend under the plot."""
    legend_rows = -(-len(series) // 3)
    height = HEIGHT + legend_rows * 18
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = nice_max(max(totals, default=0))
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(labels), 1)
    parts = _open(width, height, title)
    for tick in (0, top // 2 if top % 2 == 0 else None, top):
        if tick is None:
            continue
        y = TOP + plot_h - plot_h * tick / top
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    for i, label in enumerate(labels):
        x = LEFT + i * slot + slot * 0.15
        base = TOP + plot_h
        for s in series:
            value = s.values[i]
            if not value:
                continue
            h = plot_h * value / top
            base -= h
            day = titles[i] if titles else label
            parts.append(
                f'<rect class="{escape(s.css)}" x="{x:.1f}" y="{base:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}">'
                f"<title>{escape(day)} {escape(s.name)}: {value}</title></rect>"
            )
        if i % label_every == 0 or i == len(labels) - 1:
            parts.append(
                f'<text class="label" x="{x + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{width - RIGHT}" y2="{TOP + plot_h}"/>')
    for j, s in enumerate(series):
        x, y = LEFT + (j % 3) * (plot_w / 3), HEIGHT + (j // 3) * 18
        parts.append(f'<rect class="{escape(s.css)}" x="{x:.1f}" y="{y - 10}" width="12" height="12"/>')
        parts.append(
            f'<text class="label" x="{x + 16:.1f}" y="{y}">{escape(short(s.name, 28))} ({sum(s.values)})</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
