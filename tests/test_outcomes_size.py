"""Curves for drawing only when asked: `nelm assess --outcomes full`, API `?outcomes=full`.

The default assessment keeps every matched cohort with its reported points, median,
model and method, and leaves out the sampled curve (most of the document's size); the
full document is exactly the summary plus the curves.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nelm.assessment import assess
from nelm.patient import validate_patient
from nelm.testing import patient_dict

NELM = [sys.executable, "-m", "nelm.cli"]


def _arms(a):
    return [item for o in a["options"] for item in o["outcomes"]]


def _without_curves(a):
    a = json.loads(json.dumps(a))
    for item in _arms(a):
        item.pop("curve")
    return a


def test_summary_is_full_without_the_curves():
    p = validate_patient(patient_dict())
    full, summary = assess(p, outcomes="full"), assess(p, outcomes="summary")
    assert _arms(full) and all(item["curve"] for item in _arms(full))
    assert not any("curve" in item for item in _arms(summary))
    assert all(item["reported"] and item["method"] for item in _arms(summary))
    assert _without_curves(full) == summary
    assert len(json.dumps(summary, indent=2)) < 0.6 * len(json.dumps(full, indent=2))
    assert assess(p) == full, "the Python function's default stays the full document (report, web charts)"


def test_unknown_outcomes_value_is_refused():
    with pytest.raises(ValueError):
        assess(validate_patient(patient_dict()), outcomes="everything")


def test_cli_default_is_the_summary_and_full_adds_curves(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps(patient_dict()))
    out = {}
    for mode in ("default", "full", "summary"):
        args = ["assess", str(f), "--format", "json"] + ([] if mode == "default" else ["--outcomes", mode])
        run = subprocess.run(NELM + args, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        out[mode] = json.loads(run.stdout)
    assert out["default"] == out["summary"]
    assert _without_curves(out["full"]) == out["summary"]
    assert all("curve" in item for item in _arms(out["full"]))
    bad = subprocess.run(NELM + ["assess", str(f), "--outcomes", "all"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "summary, full" in bad.stderr and "Traceback" not in bad.stderr
