"""Shared patients for the outcome tests: a p01-like patient and variations of it."""
from __future__ import annotations

from typing import Any

import pytest

from nelm.assessment import assess
from nelm.knowledge import load
from nelm.patient import validate_patient
from nelm.testing import patient_dict

# p01 of the public vignettes: solitary resectable G1 small-bowel metastasis, non-functional,
# synchronous (nelm.testing's BASE patient is metachronous)
P01: dict[str, Any] = patient_dict(**{"liver.timing": "synchronous"})


# P01's one lesion is 3 cm, which holds at most 25 % of the liver (knowledge/consistency.yaml's
# plausibility bounds): variants with a higher burden have one larger lesion
BIG = {"liver.largest_lesion_cm": 11}


def variant(**changes: Any) -> dict[str, Any]:
    """P01 with dotted fields changed, e.g. variant(**{"liver.burden_percent": 40})."""
    return patient_dict(**{"liver.timing": "synchronous", **changes})


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
