"""API: curves for drawing only with ?outcomes=full (tests/test_outcomes_size.py has the rest)."""
from __future__ import annotations

from nelm.testing import patient_dict


def _arms(a):
    return [item for o in a["options"] for item in o["outcomes"]]


def test_api_default_is_the_summary_and_full_adds_curves(client):
    doc = patient_dict()
    summary = client.post("/api/v1/assess", json=doc)
    full = client.post("/api/v1/assess?outcomes=full", json=doc)
    assert summary.status_code == full.status_code == 200
    assert not any("curve" in item for item in _arms(summary.json()))
    assert all("curve" in item for item in _arms(full.json()))
    assert client.post("/api/v1/assess?outcomes=all", json=doc).status_code == 422
