"""What the API and the pages share: parse, assess, store."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ..assessment import assess
from ..patient import InvalidPatient, Patient, parse_text, validate_patient
from ..store import CaseStore, StoredVersion


def patient_from_json(raw: bytes) -> Patient:
    """A patient from a request body, refused with dotted paths exactly as the CLI does."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPatient([("", "the body is not UTF-8 text")]) from None
    if not text.strip():
        raise InvalidPatient([("", "empty body: send the patient document as a JSON object")])
    data = parse_text(text, "json")
    return validated(data)


def validated(data: Any) -> Patient:
    # json.loads accepts NaN and Infinity, which no clinical value is and which neither
    # strict JSON nor PostgreSQL's jsonb can store: refuse them by path, like any bad value.
    bad = [(path, f"not a finite number (got {value!r})") for path, value in _non_finite(data, "")]
    if bad:
        raise InvalidPatient(bad)
    return validate_patient(data)


def _non_finite(node: Any, path: str) -> Iterator[tuple[str, float]]:
    if isinstance(node, float) and not math.isfinite(node):
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _non_finite(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _non_finite(v, f"{path}.{i}" if path else str(i))


def document(patient: Patient) -> dict[str, Any]:
    """The document as stored: the fields the user gave (null included), nothing invented."""
    return patient.model_dump(mode="json", exclude_unset=True)


def _has_facts(node: Any) -> bool:
    if isinstance(node, dict):
        return any(_has_facts(v) for v in node.values())
    return node is not None  # an empty list is a fact too: prior_therapies [] = none given


def refuse_empty(patient: Patient) -> None:
    """A case is stored only with at least one fact besides its label: an empty form saved
    by mistake would otherwise become an 'Unlabelled case' whose every verdict is open.
    A case with few facts is stored and shown as a draft (its plan is undetermined)."""
    doc = {k: v for k, v in document(patient).items() if k != "id"}
    if not _has_facts(doc):
        raise InvalidPatient([("", "the case holds no facts: enter at least the ones an assessment starts from "
                                   "(primary site, Ki-67 or grade, liver lesions or burden, extrahepatic disease, ...)")])


def assess_and_store(store: CaseStore, patient: Patient, *, actor: str, case_id: str | None = None,
                     guideline: str | None = None, expected_latest: int | None = None,
                     origin: str | None = None) -> StoredVersion:
    """``origin="cds"``: a new case the CDS service keeps for a FHIR patient (its retention applies)."""
    refuse_empty(patient)
    result = assess(patient, guideline)
    if case_id is None:
        return store.create(document(patient), result, actor=actor, origin=origin)
    return store.add_version(case_id, document(patient), result, actor=actor, expected_latest=expected_latest)


def seed_examples(store: CaseStore, directory: Any) -> int:
    """Load the example patients of ``directory`` (*.json, *.yaml) into an EMPTY store, so a
    first run shows cases on the home page; a store that holds any case is left alone.
    Returns how many were stored. An invalid example is refused like any document."""
    from pathlib import Path

    from ..patient import load_patient

    if store.list(page=1, page_size=1).total:
        return 0
    files = sorted(p for p in Path(directory).iterdir() if p.suffix.lower() in (".json", ".yaml", ".yml"))
    for path in files:
        assess_and_store(store, load_patient(path), actor="examples")
    return len(files)
