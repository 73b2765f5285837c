"""The same input and knowledge base give the same output in every process.

Python randomises string hashing per process, so anything built by iterating a set of
column names (an option's conditions, the plan's assumptions) must be put in a fixed
order first. Two processes with different hash seeds must print identical assessments.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from nelm.testing import patient_dict

# unknown pre-treatment checks: several conditions per option, several plan assumptions
DOC = patient_dict(**{"liver.child_pugh": None, "liver.bilirubin_mg_dl": None, "ecog": None,
                      "fit_for_major_surgery": None, "labs": None})


def test_assessment_does_not_depend_on_the_hash_seed(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps(DOC))
    outs = []
    for seed in ("1", "2", "3"):
        env = os.environ | {"PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-m", "nelm.cli", "assess", str(f), "--format", "json"],
                             capture_output=True, text=True, timeout=120, env=env)
        assert run.returncode == 0, run.stderr
        outs.append(run.stdout)
    assert any(o.get("conditions") for o in json.loads(outs[0])["options"]), "the case must exercise conditions"
    assert outs[0] == outs[1] == outs[2]
