"""Classification: WHO grade, NET vs NEC, Frilling type, hepatic burden band.

For a lung or thymic primary the WHO thoracic scheme applies (typical / atypical carcinoid, by
mitoses and necrosis): ``grading_system`` says which scheme, ``thoracic_type`` what the mitotic
count settles, and ``grade_note`` that ``who_grade`` is then only the digestive grade of the same
indices (the band the treatment rules read), not the tumour's WHO grade.

The definitions are data — the derived variables of ``knowledge/classification.yaml``
(WHO 2019 cut-offs, the Frilling patterns, the burden bands the sources use) — and the
engine evaluates them with everything else. This module turns an evaluated row into
the ``classification`` section of an assessment, and offers :func:`classify` for one
patient.
"""
from __future__ import annotations

from typing import Any

from .patient import Patient

# what the contract's classification holds; the first four are asked for when unknown
KEYS = ("who_grade", "category", "frilling_type", "burden_band", "grade_basis", "ki67_grade", "mitotic_grade",
        "who2000_behaviour", "grading_system", "thoracic_type", "grade_note")
REPORTED_WHEN_UNKNOWN = KEYS[:4]
GRADES = ("who_grade", "ki67_grade", "mitotic_grade")


def grade_label(value: Any) -> str | None:
    """1 -> 'G1'; unknown stays None."""
    return None if value is None else f"G{int(value)}"


def classification_from_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: grade_label(row[k]) if k in GRADES else row[k] for k in KEYS}


def classify(patient: Patient, guideline: str | None = None) -> dict[str, Any]:
    """The classification of one patient (evaluates the knowledge base once)."""
    from .engine import evaluate_frame, patients_frame
    from .knowledge import load
    from .patient import flatten

    row = evaluate_frame(patients_frame([flatten(patient)]), load(guideline), verdicts=False).row(0, named=True)
    return classification_from_row(row)
