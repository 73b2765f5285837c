"""The tumour-board report: self-contained HTML with its charts, and a PDF that opens and renders."""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from nelm.cli import app
from nelm.evidence import evidence_index
from nelm.outcomes.charts import CAPTION, group_by_cohort
from nelm.report import build_html, build_pdf, cited_ids

from .conftest import EXAMPLE


def expected_charts(assessment) -> int:
    """Each cohort of a preferred/reasonable option once (under the first option it serves),
    plus each other multi-arm cohort once."""
    drawn, extra = set(), set()
    for o in assessment["options"]:
        if o["verdict"] in ("preferred", "reasonable"):
            drawn |= {g[0]["cohort"] for g in group_by_cohort(o["outcomes"])}
    for o in assessment["options"]:
        for g in group_by_cohort(o["outcomes"]):
            if len(g) >= 2 and g[0]["cohort"] not in drawn:
                extra.add(g[0]["cohort"])
    return len(drawn) + len(extra)


def test_a_cohort_serving_several_options_is_drawn_once_and_pointed_to():
    """Three arterial options resting on one comparison: one chart, naming all three, and a
    link to it under the other two (the same chart three times made the report pages longer)."""
    from nelm.assessment import assess
    from nelm.patient import load_patient

    patient = load_patient(EXAMPLE.parent / "progressive_ileal_net.json")
    a = assess(patient)
    shared = {}
    for o in a["options"]:
        if o["verdict"] in ("preferred", "reasonable"):
            for g in group_by_cohort(o["outcomes"]):
                shared.setdefault(g[0]["cohort"], []).append(o)
    cohort, users = next((c, us) for c, us in shared.items() if len(us) >= 2)
    page = build_html(patient, a)
    assert len(re.findall(rf'<figure class="chart" id="chart-{re.escape(cohort)}-', page)) == 1
    first = users[0]
    assert f'href="#chart-{cohort}-{first["id"]}"' in page
    figure = page[page.index(f'id="chart-{cohort}-{first["id"]}"'):]
    figure = figure[:figure.index("</figure>")]
    assert "Applies also to:" in figure and all(u["label"] in figure for u in users[1:])


@pytest.fixture(scope="module")
def html(example_patient, example_assessment):
    return build_html(example_patient, example_assessment)


@pytest.fixture(scope="module")
def pdf(example_patient, example_assessment):
    return build_pdf(example_patient, example_assessment, full=True)


def test_html_contains_its_charts(html, example_assessment):
    n = expected_charts(example_assessment)
    assert n >= 3
    assert html.count("<svg") == n
    assert html.count('class="chart"') == n
    assert "mayo2010" in html and "Hepatic resection ± ablation" in html
    assert html.count(CAPTION) >= n


def test_html_is_self_contained(html):
    assert "<link" not in html and "<script" not in html
    assert not re.search(r'src="(https?:)?//', html)  # nothing is loaded from elsewhere
    # the only outward links are the evidence identifiers a clinician follows (issue 9 item 6)
    for target in re.findall(r'href="((?:https?:)?//[^"]*)"', html):
        assert re.match(r"https://(doi\.org/10\.|pubmed\.ncbi\.nlm\.nih\.gov/\d+/$)", target), target
    assert "url(http" not in html
    assert "<style>" in html


def test_html_has_every_section(html, example_assessment):
    a = example_assessment
    assert a["disclaimer"] in html
    assert a["knowledge_base"]["sha256"] in html and a["knowledge_base"]["version"] in html
    assert a["assessed_on"] in html
    for cs in a["criteria"].values():
        assert cs["label"] in html
        for it in cs["items"]:
            assert it["text"].replace("'", "&#39;") in html or it["text"] in html
    for o in a["options"]:
        assert f'id="option-{o["id"]}"' in html
    for d in a["disagreements"]:
        assert (d.get("label") or d["topic"]) in html
    for section in ("patient", "classification", "criteria", "options", "outcomes", "comparisons",
                    "missing", "disagreements", "evidence"):
        assert f'<section id="{section}">' in html


def test_evidence_table_lists_every_cited_record(html, example_assessment):
    ids = {i for i in cited_ids(example_assessment) if i in evidence_index()}
    assert "mayo2010" in ids and "enets2012_resection" in ids
    for i in ids:
        assert f'id="ev-{i}"' in html, i
    rec = evidence_index()["mayo2010"]
    assert rec.citation.title in html


def test_unknowns_are_shown_as_unknown(unknowns_patient, unknowns_assessment):
    page = build_html(unknowns_patient, unknowns_assessment)
    assert re.search(r"Ki-67</th><td class=\"unknown\">unknown</td>", page)
    assert re.search(r"Portal vein thrombosis</th><td class=\"unknown\">unknown</td>", page)
    from html import escape

    missing = re.search(r'<section id="missing">.*?</section>', page, re.S).group(0)
    for m in unknowns_assessment["missing_data"]:
        assert escape(m["label"]) in missing  # readable labels, not the contract's dotted ids
        assert m["field"] not in missing


def test_dict_patient_and_png_charts(example_assessment):
    page = build_html(json.loads(EXAMPLE.read_text(encoding="utf-8")), example_assessment, chart_format="png")
    assert page.count("data:image/png;base64,") == expected_charts(example_assessment)
    assert "<svg" not in page


def test_pdf_opens_and_renders(pdf, tmp_path):
    from pypdf import PdfReader

    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 1
    text = reader.pages[0].extract_text()
    assert "tumour-board report" in text
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: cannot check that the PDF renders")
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "2", str(path), str(tmp_path / "page")],
                   check=True, capture_output=True, timeout=120)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert pngs and pngs[0].read_bytes().startswith(b"\x89PNG") and pngs[0].stat().st_size > 2000


def test_cli_writes_html_and_refuses_other_suffixes(tmp_path):
    runner = CliRunner()
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", str(EXAMPLE), "--out", str(out), "--full"])
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8").count("<svg") >= 3
    res = runner.invoke(app, ["report", str(EXAMPLE), "--out", str(tmp_path / "r.txt")])
    assert res.exit_code == 2


# ------------------------------------------------------------------ contract v3 display (issue 21)

def _with_v3_plan(assessment):
    """The assessment with the contract v3 plan fields another part of nelm adds: a branch, the
    work-up and expected verdicts beside later steps."""
    import copy

    a = copy.deepcopy(assessment)
    plan = a["plan"]
    for st in plan["steps"]:
        st["expected_verdicts"] = {o: ("preferred" if st["when"] != "now" else
                                       next(x["verdict"] for x in a["options"] if x["id"] == o)) for o in st["options"]}
    plan["workup"] = [{"fields": ["liver.resectable"], "order": "hepatobiliary surgical review with liver MRI",
                       "decides": "resection or systemic therapy"}]
    plan["branches"] = [{"if": [{"field": "liver.resectable", "value": False,
                                 "label": "the surgeon judges the liver disease unresectable"}],
                         "status": "determined",
                         "steps": [{"step": 1, "when": "now", "options": ["ssa"], "intent": "disease_control",
                                    "reason": "x", "sources": [], "expected_verdicts": {"ssa": "preferred"}}]}]
    return a


def test_v3_branches_workup_and_expected_verdicts_are_shown_in_text_and_both_reports(example_patient,
                                                                                    example_assessment):
    import io

    from rich.console import Console

    from nelm.text import render

    a = _with_v3_plan(example_assessment)
    later = [st for st in a["plan"]["steps"] if st["when"] != "now"]
    assert later, "the example's plan has a later step"
    out = io.StringIO()
    render(a, Console(file=out, width=140, color_system=None))
    text = out.getvalue()
    assert "To decide the plan, obtain: hepatobiliary surgical review with liver MRI" in text
    assert "If the surgeon judges the liver disease unresectable" in text
    assert "expected then: preferred" in text
    for full in (False, True):
        html = build_html(example_patient, a, full=full)
        assert "hepatobiliary surgical review with liver MRI" in html
        assert "the surgeon judges the liver disease unresectable" in html
        assert "expected then" in html


def test_without_expected_verdicts_a_later_step_shows_no_verdict_of_today_alone(example_patient, example_assessment):
    import copy

    from nelm.summary import plan_view

    a = copy.deepcopy(example_assessment)
    for st in a["plan"]["steps"]:
        st.pop("expected_verdicts", None)  # an engine without contract v3's expected verdicts
    view = plan_view(a)
    for st in view["steps"]:
        for o in st["options"]:
            if st["now"]:
                assert o["verdict"] in ("preferred", "reasonable", "undetermined")
            else:
                assert o["verdict"] == "" and o["note"] == ""


def test_every_chart_a_report_draws_is_drawn_ahead(tmp_path, monkeypatch):
    """nelm serve draws every cohort's chart into the cache when it starts (report.draw_every_chart):
    a printed report then draws none, whichever patient it is for (a chart shows the published
    curves, never why the cohort matches the patient)."""
    import random

    import nelm.report as report
    from nelm.assessment import assess
    from nelm.patient import InvalidPatient, load_patient, validate_patient
    from nelm.testing import random_patient_dict

    monkeypatch.setenv("NELM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("NELM_CACHE", raising=False)
    report._png.cache_clear()
    n = report.draw_every_chart()
    drawn = sorted(p.name for p in tmp_path.glob("chart-png-*"))
    assert n >= 20 and len(drawn) == n
    patients = [load_patient(p) for p in sorted(EXAMPLE.parent.glob("*.json"))]
    rng = random.Random(21)
    while len(patients) < 12:
        try:
            patients.append(validate_patient(random_patient_dict(rng, 0.2)))
        except InvalidPatient:
            continue
    report._png.cache_clear()
    for p in patients:
        report.build_html(p, assess(p), chart_format="png", full=True)
    assert sorted(p.name for p in tmp_path.glob("chart-png-*")) == drawn
    report._png.cache_clear()


def test_a_server_start_draws_the_charts_once_in_a_worker(tmp_path, monkeypatch):
    """nelm serve's start (web.serve.settled -> reportjob.warm_charts) draws the charts in a
    worker process and marks them drawn; the next start finds the mark and starts nothing."""
    import time

    from nelm.cache import has
    from nelm.knowledge import load
    from nelm.web import reportjob

    monkeypatch.setenv("NELM_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("NELM_WARM_CHARTS", "1")
    monkeypatch.delenv("NELM_CACHE", raising=False)
    kb = load()
    assert not has("charts-drawn", kb.sha256)
    reportjob.warm_charts()
    deadline = time.monotonic() + 300
    while not has("charts-drawn", kb.sha256) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert has("charts-drawn", kb.sha256)
    assert len(list(tmp_path.glob("chart-png-*"))) >= 20
    started = []
    monkeypatch.setattr(reportjob, "_mp", lambda: started.append(1))
    reportjob.warm_charts()
    assert not started
    monkeypatch.setenv("NELM_WARM_CHARTS", "0")
    monkeypatch.setenv("NELM_CACHE_DIR", str(tmp_path / "other"))
    reportjob.warm_charts()
    assert not started
