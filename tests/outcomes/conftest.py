"""Shared patients for the outcome tests: a p01-like patient and variations of it."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from nelm.engine import assess
from nelm.knowledge import load
from nelm.patient import validate_patient

# p01 of the public vignettes: solitary resectable G1 small-bowel metastasis, non-functional
P01: dict[str, Any] = {
    "age_years": 58, "ecog": 0, "fit_for_major_surgery": True,
    "primary": {"site": "jejunum_ileum", "resected": True},
    "pathology": {"differentiation": "well", "ki67_percent": 1.0, "mitoses_per_10hpf": 1},
    "functional_syndrome": "none", "symptomatic": False,
    "liver": {"timing": "synchronous", "burden_percent": 10, "lesion_count": 1, "largest_lesion_cm": 3.0,
              "lobes": "unilobar", "pattern": "single", "resectable_fraction_percent": 100,
              "portal_vein_thrombosis": False, "liver_function": "normal"},
    "extrahepatic": {"present": False, "sites": [], "resectable": None, "peritoneal_carcinomatosis": "none"},
    "right_heart_insufficiency": False, "sstr_imaging": "positive",
    "course": {"status": "stable", "stable_months": 12, "progression_within_12_months": False},
    "transplant_contraindication": False, "prior_therapies": [],
}


def variant(**changes: Any) -> dict[str, Any]:
    """P01 with dotted fields changed, e.g. variant(**{"liver.burden_percent": 40})."""
    doc = copy.deepcopy(P01)
    for dotted, value in changes.items():
        node = doc
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return doc


def run(doc: dict[str, Any]) -> dict[str, Any]:
    return assess(validate_patient(doc))


def option(assessment: dict[str, Any], option_id: str) -> dict[str, Any]:
    return next(o for o in assessment["options"] if o["id"] == option_id)


def cohorts_of(assessment: dict[str, Any], option_id: str) -> list[str]:
    seen: list[str] = []
    for o in option(assessment, option_id)["outcomes"]:
        if o["cohort"] not in seen:
            seen.append(o["cohort"])
    return seen


@pytest.fixture(scope="session")
def kb():
    return load()


@pytest.fixture(scope="session")
def p01_assessment() -> dict[str, Any]:
    return run(P01)
