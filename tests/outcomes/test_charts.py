"""Charts: one endpoint per axis, legible in grey-scale, captioned, every cohort drawable."""
from __future__ import annotations

import io

import pytest

from nelm.outcomes import charts, cohort_arms


def _arms(kb, cohort, **extra):
    return [dict(a, match_reason="test", match="specific", **extra) for a in cohort_arms(kb)[cohort]]


def test_every_cohort_renders_as_svg_png_and_pdf(kb):
    for cid in cohort_arms(kb):
        svg = charts.render(_arms(kb, cid), "svg")
        assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg, cid
        assert b"not patient-level data" in svg, cid
    cid = "promid_ttp"
    assert charts.render(_arms(kb, cid), "png").startswith(b"\x89PNG")
    assert charts.render(_arms(kb, cid), "pdf").startswith(b"%PDF")


def test_chart_labels_endpoint_months_source_and_hazard_ratio(kb):
    svg = charts.render(_arms(kb, "promid_ttp"), "svg").decode()
    assert "Months from randomisation" in svg
    assert "time to progression" in svg
    assert "Rinke" in svg and "promid2009" not in svg   # author and year for people; the id stays in the JSON (issue 21)
    assert "HR 0.34" in svg          # read from the record, drawn in the chart
    assert "median 14.3 mo" in svg and "median 6 mo" in svg
    nr = charts.render(_arms(kb, "clarinet_pfs"), "svg").decode()
    assert "median not reached" in nr and "Progression-free survival" in nr


def test_mixed_endpoints_are_refused(kb):
    mixed = _arms(kb, "e2211_pfs")[:1] + _arms(kb, "e2211_os")[:1]
    with pytest.raises(ValueError, match="one endpoint"):
        charts.render(mixed, "svg")


def test_arms_differ_in_line_style_and_marker_not_only_colour():
    styles = [s[1] for s in charts.STYLES]
    markers = [s[2] for s in charts.STYLES]
    assert len({str(s) for s in styles}) == len(styles)
    assert len(set(markers)) == len(markers)


def test_png_is_drawn_in_distinguishable_grey_levels(kb):
    from matplotlib import image

    png = charts.render(_arms(kb, "radiant3_pfs"), "png", dpi=60)
    img = image.imread(io.BytesIO(png))
    grey = (img[..., :3] @ [0.299, 0.587, 0.114])
    # black curve/markers and a lighter second arm both present
    assert (grey < 0.15).sum() > 50
    assert ((grey > 0.25) & (grey < 0.7)).sum() > 50


def test_inline_svg_is_embeddable(kb):
    s = charts.inline_svg(_arms(kb, "mayo2010_resection"))
    assert s.startswith("<svg") and "<?xml" not in s and "DOCTYPE" not in s
    assert 'width="100%"' in s and "viewBox" in s
    assert "at risk" not in s.replace("Numbers at risk are not reported", "")
