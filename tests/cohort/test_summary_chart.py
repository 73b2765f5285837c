"""The screening summary chart (issue 21 item 7): two panels, human labels, title with n,
colours ordered by luminance (grey-scale distinct) with a hatching per category, no red/green."""
from __future__ import annotations

from collections import Counter

import pytest

from nelm.screen.summary import STATUS_ORDER, STYLE, VERDICT_ORDER, Summary, luminance


@pytest.mark.parametrize("kind,order", [("verdicts", VERDICT_ORDER), ("criteria", STATUS_ORDER)])
def test_palette_is_ordered_by_luminance_with_distinct_steps(kind, order):
    lum = [luminance(STYLE[kind][k]["color"]) for k in order]
    assert lum == sorted(lum)
    # WCAG contrast ratio between neighbours: distinct in grey scale, not only in hue
    ratios = [(b + 0.05) / (a + 0.05) for a, b in zip(lum, lum[1:])]
    assert min(ratios) >= 1.3, ratios
    hatches = [STYLE[kind][k]["hatch"] for k in order]
    assert len(set(hatches)) == len(hatches)


def _hue_is_red_or_green(colour: str) -> bool:
    import colorsys

    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    h, _, s = colorsys.rgb_to_hls(r, g, b)
    deg = h * 360
    return s > 0.25 and (deg < 15 or deg > 345 or 75 < deg < 165)


def test_no_red_green_pair():
    colours = [v["color"] for panel in STYLE.values() for v in panel.values()]
    assert not any(_hue_is_red_or_green(c) for c in colours)


def test_chart_has_two_panels_human_labels_title_and_n(tmp_path):
    s = Summary()
    s.counts = {"criteria.milan_transplant": Counter({"met": 3, "not_met": 5, "unknown": 2}),
                "options.liver_resection.verdict": Counter({"preferred": 4, "contraindicated": 6}),
                "options.tace.verdict": Counter({"reasonable": 7, "undetermined": 3})}
    path = tmp_path / "chart.svg"
    s.chart(path)
    svg = path.read_text()
    for text in ("Eligibility criteria", "Treatment options: verdict", "n = 10 patients assessed",
                 "Liver resection", "Chemoembolization (TACE)", "not recommended", "contraindicated", "not met"):
        assert text in svg, text
    assert "liver_resection" not in svg and "milan_transplant" not in svg
