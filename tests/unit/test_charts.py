"""The dashboard's charts: inline SVG with a bar or a line per value, labels escaped."""

from __future__ import annotations

from gateway.web.ops import charts


def test_bars_draw_one_bar_per_value_scaled_to_the_peak() -> None:
    svg = charts.bars("Jobs", [("outbound queued", 4), ("default failed", 2), ("reminders queued", 0)])
    assert svg.startswith("<svg") and svg.count('class="bar"') == 3
    assert ">4</text>" in svg and "outbound queued: 4" in svg


def test_lines_draw_one_series_each_with_its_total() -> None:
    svg = charts.lines("Messages", ["-2", "-1", "now"], {"in twilio": [1, 0, 3], "out console": [0, 2, 1]})
    assert svg.count("<polyline") == 2 and "in twilio (4)" in svg and "out console (3)" in svg


def test_labels_cannot_inject_markup() -> None:
    svg = charts.bars("<script>x</script>", [('"><script>alert(1)</script>', 1)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_nothing_to_show_still_draws_an_empty_chart() -> None:
    assert charts.bars("Empty", []).startswith("<svg") and charts.lines("Empty", [], {}).endswith("</svg>")
