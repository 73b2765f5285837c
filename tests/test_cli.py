"""The `nelm` command line, run as a user runs it (a subprocess)."""
import json
import os
import subprocess
import sys

import pytest

from nelm.testing import patient_dict

NELM = [sys.executable, "-m", "nelm.cli"]


def run(*args, input_doc=None, tmp_path=None, suffix=".json"):
    cmd = list(NELM) + list(args)
    if input_doc is not None:
        f = tmp_path / f"p{suffix}"
        f.write_text(input_doc if isinstance(input_doc, str) else json.dumps(input_doc))
        cmd.insert(len(NELM) + 1, str(f))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_assess_json_follows_the_contract(tmp_path):
    p = run("assess", "--format", "json", input_doc=patient_dict(), tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    a = json.loads(p.stdout)
    assert set(a) >= {"classification", "criteria", "options", "missing_data", "knowledge_base"}
    assert a["classification"] == a["classification"] | {"who_grade": "G1", "category": "NET", "frilling_type": "I"}
    assert len(a["knowledge_base"]["sha256"]) == 64


def test_text_output_is_a_readable_summary(tmp_path):
    p = run("assess", input_doc=patient_dict(**{"sstr_imaging": None}), tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for needle in ("Classification: NET G1", "Treatment plan", "1. Now: liver resection", "ENETS criteria",
                   "Milan criteria", "✓", "Hepatic resection", "preferred", "To complete this assessment, obtain",
                   "somatostatin-receptor imaging", "does not replace"):
        assert needle in out, needle


def test_yaml_input(tmp_path):
    import yaml
    p = run("assess", "-f", "json", input_doc=yaml.safe_dump(patient_dict()), tmp_path=tmp_path, suffix=".yaml")
    assert p.returncode == 0 and json.loads(p.stdout)["classification"]["who_grade"] == "G1"


@pytest.mark.parametrize("doc,field", [
    (patient_dict(**{"pathology.ki67_percent": -3}), "pathology.ki67_percent"),
    (patient_dict(sstr="positive"), "sstr"),
    (patient_dict(**{"liver.pattern": "diffuse"}), "liver.pattern"),
    ('{"age_years": 5', "not valid JSON"),
    ("[1, 2]", "object"),
])
def test_invalid_documents_exit_2_naming_the_field_without_traceback(tmp_path, doc, field):
    p = run("assess", "--format", "json", input_doc=doc, tmp_path=tmp_path)
    assert p.returncode == 2
    assert field in p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert p.stdout == ""


def test_missing_file_exits_2(tmp_path):
    p = subprocess.run(NELM + ["assess", str(tmp_path / "nope.json")], capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_unknown_guideline_is_refused(tmp_path):
    p = run("assess", "--guideline", "nccn", input_doc=patient_dict(), tmp_path=tmp_path)
    assert p.returncode == 2 and "esmo2020" in p.stderr


def test_schema_is_json_schema_with_every_section():
    p = subprocess.run(NELM + ["schema"], capture_output=True, text=True)
    s = json.loads(p.stdout)
    assert {"pathology", "liver", "extrahepatic", "course"} <= set(s["properties"])
    assert s["additionalProperties"] is False


def test_evidence_json_text_and_filters():
    p = subprocess.run(NELM + ["evidence", "--format", "json"], capture_output=True, text=True)
    records = json.loads(p.stdout)["records"]
    assert len(records) > 50 and {"mayo2010", "promid2009", "netter2"} <= {r["id"] for r in records}
    p = subprocess.run(NELM + ["evidence", "--format", "json", "--option", "sunitinib"], capture_output=True, text=True)
    ids = {r["id"] for r in json.loads(p.stdout)["records"]}
    assert "sunitinib_phase3" in ids and "mayo2010" not in ids
    p = subprocess.run(NELM + ["evidence", "--search", "CLARINET"], capture_output=True, text=True)
    assert "clarinet2014" in p.stdout and p.returncode == 0


def test_version_and_help_list_the_allowed_values(tmp_path):
    p = subprocess.run([*NELM, "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("nelm ")
    p = subprocess.run([*NELM, "assess", "--help"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "COLUMNS": "200"})
    assert "esmo2020" in p.stdout and "reviews" in p.stdout
    p = subprocess.run([*NELM, "evidence", "--help"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "COLUMNS": "200"})
    assert "telotristat" in p.stdout
