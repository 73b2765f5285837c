"""The two-page board summary (the default PDF) and the decision printed in it."""
from __future__ import annotations

import io
import random

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from nelm.assessment import assess
from nelm.cli import app
from nelm.knowledge.ruleset import OPTION_LABELS
from nelm.outcomes import charts
from nelm.patient import validate_patient
from nelm.report import build_html, build_pdf
from nelm.testing import random_patient_dict

from .conftest import EXAMPLE

DECISION = {"chosen": ["liver_resection", "thermal_ablation"], "rationale": "Curative intent, ENETS criteria met.",
            "deviation_reason": None, "attendees": ["A. Surgeon (HPB surgery)", "B. Radiologist"],
            "decided_on": "2026-11-20", "signed_by": "A. Surgeon", "departures": []}


def _pages(pdf: bytes) -> list[str]:
    return [p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages]


def test_the_default_pdf_is_two_pages_with_plan_grid_and_sign_off(example_patient, example_assessment):
    pages = _pages(build_pdf(example_patient, example_assessment))
    assert len(pages) == 2
    first, second = pages
    assert "Treatment plan" in first and "Every option" in first
    for o in example_assessment["options"]:
        assert o["label"].split(" (")[0][:25] in first.replace("\n", " "), o["id"]
    assert "The board's decision" in second and "Signature" in second
    assert example_assessment["knowledge_base"]["version"] in second


@pytest.mark.parametrize("seed", range(6))
def test_the_summary_stays_two_pages_for_any_patient(seed):
    """Random patients (unknowns, long plans, many missing facts) still fit the two pages."""
    rng = random.Random(seed)
    for _ in range(50):  # a patient the model accepts
        try:
            patient = validate_patient(random_patient_dict(rng))
            break
        except Exception:  # noqa: BLE001 - contradictory random documents are refused; draw again
            continue
    pages = _pages(build_pdf(patient, assess(patient)))
    assert len(pages) == 2


def test_a_recorded_decision_is_printed_and_departures_said(example_patient, example_assessment):
    text = " ".join(_pages(build_pdf(example_patient, example_assessment, decision=DECISION))).replace("\n", " ")
    assert "Curative intent, ENETS criteria met." in text and "follows the plan" in text
    departing = DECISION | {"chosen": ["ssa"], "departures": ["somatostatin analogue first"],
                            "deviation_reason": "Patient declines surgery."}
    page = build_html(example_patient, example_assessment, full=False, decision=departing)
    assert "Departs: somatostatin analogue first." in page and "Patient declines surgery." in page
    full = build_html(example_patient, example_assessment, full=True, decision=departing)
    assert 'id="decision"' in full and "Patient declines surgery." in full and OPTION_LABELS["ssa"] in full


def test_full_report_is_longer_than_the_summary(example_patient, example_assessment):
    assert len(_pages(build_pdf(example_patient, example_assessment, full=True))) > 2


def test_cli_prints_the_summary_by_default_and_the_whole_report_with_full(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(EXAMPLE), "--out", str(tmp_path / "s.pdf")])
    assert res.exit_code == 0, res.output
    assert len(_pages((tmp_path / "s.pdf").read_bytes())) == 2
    res = runner.invoke(app, ["report", str(EXAMPLE), "--out", str(tmp_path / "f.pdf"), "--full"])
    assert res.exit_code == 0, res.output
    assert len(_pages((tmp_path / "f.pdf").read_bytes())) > 2


def test_a_curve_from_a_single_median_says_so_in_the_chart(example_assessment):
    arms = [a for o in example_assessment["options"] for g in charts.group_by_cohort(o["outcomes"]) for a in g
            if charts.single_median(a)]
    assert arms, "the example has at least one curve drawn from a median alone"
    svg = charts.render([arms[0]], "svg").decode()
    assert "single reported median" in svg and "from a single median" in svg
    several = [a for o in example_assessment["options"] for g in charts.group_by_cohort(o["outcomes"]) for a in g
               if len(a["reported"]) > 1]
    assert "single reported median" not in charts.render([several[0]], "svg").decode()
