"""The SVG bar chart: axis, one bar per day, escaped text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from server.console.charts import Bar, bar_chart, nice_max

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("value, top", [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20), (99, 100), (101, 200), (4999, 5000)])
def test_nice_max(value, top):
    assert nice_max(value) == top


def test_one_bar_per_day_with_heights_in_proportion():
    bars = [Bar(f"11-{d:02d}", v, f"2026-11-{d:02d}: {v}") for d, v in zip(range(1, 31), [0, 5, 10] * 10, strict=True)]
    root = ET.fromstring(str(bar_chart(bars, "Alerts per day")))
    rects = root.findall(f"{SVG}rect")
    assert len(rects) == 30
    heights = [float(r.get("height")) for r in rects]
    assert heights[0] == 0 and heights[2] == pytest.approx(2 * heights[1]) and max(heights) == heights[2]
    labels = [t.text for t in root.findall(f"{SVG}text") if t.get("class") == "label"]
    assert labels == ["11-01", "11-06", "11-11", "11-16", "11-21", "11-26", "11-30"]
    ticks = [t.text for t in root.findall(f"{SVG}text") if t.get("class") == "tick"]
    assert ticks == ["0", "5", "10"]
    assert rects[1].find(f"{SVG}title").text == "2026-11-02: 5"


def test_text_is_escaped_and_nothing_is_inline_styled():
    svg = str(bar_chart([Bar("<b>", 1, '<script>alert(1)</script>"')], '<img src=x onerror=alert(1)>'))
    root = ET.fromstring(svg)  # still well-formed
    assert "<script" not in svg and "<img" not in svg and "<b>" not in svg
    assert root.get("aria-label") == "<img src=x onerror=alert(1)>"  # as text, in an attribute
    attributes = {name for element in root.iter() for name in element.attrib}
    assert not {a for a in attributes if a == "style" or a.startswith("on")}


def test_empty_chart_draws_an_axis():
    root = ET.fromstring(str(bar_chart([], "nothing")))
    assert root.findall(f"{SVG}rect") == [] and root.findall(f"{SVG}line")
