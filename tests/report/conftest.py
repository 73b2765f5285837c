from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nelm.assessment import assess
from nelm.patient import load_patient, validate_patient

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "solitary_resectable.json"

# p07-like: Ki-67 and mitoses unknown, plus a few other unknowns
UNKNOWNS: dict[str, Any] = {
    "age_years": 45, "ecog": 0, "fit_for_major_surgery": True,
    "primary": {"site": "jejunum_ileum", "resected": True},
    "pathology": {"differentiation": "well", "ki67_percent": None, "mitoses_per_10hpf": None},
    "functional_syndrome": "carcinoid", "symptomatic": True,
    "liver": {"timing": "synchronous", "burden_percent": 30, "lesion_count": 25, "largest_lesion_cm": 2.0,
              "lobes": "bilobar", "pattern": "disseminated", "resectable_fraction_percent": 40},
    "sstr_imaging": "positive",
}


@pytest.fixture(scope="session")
def example_patient():
    return load_patient(EXAMPLE)


@pytest.fixture(scope="session")
def example_assessment(example_patient):
    return assess(example_patient)


@pytest.fixture(scope="session")
def unknowns_patient():
    return validate_patient(UNKNOWNS)


@pytest.fixture(scope="session")
def unknowns_assessment(unknowns_patient):
    return json.loads(json.dumps(assess(unknowns_patient)))  # as stored by the web app
