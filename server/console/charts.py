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


def bar_chart(bars: list[Bar], title: str, label_every: int = 5) -> Markup:
    """An SVG bar chart; `title` names it for screen readers. Every text is escaped here."""
    top = nice_max(max((b.value for b in bars), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for tick in (0, top // 2 if top % 2 == 0 else None, top):
        if tick is None:
            continue
        y = TOP + plot_h - plot_h * tick / top
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>')
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
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
