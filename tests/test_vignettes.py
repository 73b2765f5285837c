"""Clinical vignettes: the project's own (tests/vignettes) and the public ones in ../shared."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nelm.assessment import assess
from nelm.patient import InvalidPatient, validate_patient

HERE = Path(__file__).parent / "vignettes"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "vignettes"
# the project's own (top level) and the blind review sets in subfolders (tests/vignettes/blind8, ...)
OWN = sorted(HERE.glob("**/*.json"))
OWN_IDS = [str(p.relative_to(HERE).with_suffix("")) for p in OWN]


def lookup(doc, path):
    head, _, rest = path.partition(".")
    if head == "options":
        oid, _, field = rest.partition(".")
        (hit,) = [o for o in doc["options"] if o["id"] == oid]
        return hit[field]
    node = doc
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


@pytest.mark.parametrize("path", OWN, ids=OWN_IDS)
def test_own_vignette(path):
    v = json.loads(path.read_text())
    if "expect_error" in v:
        with pytest.raises(InvalidPatient) as exc:
            validate_patient(v["patient"])
        for word in v["expect_error"]["mentions"]:
            assert word in str(exc.value)
        return
    a = assess(validate_patient(v["patient"]), v.get("guideline"))
    for key, allowed in v.get("expect", {}).items():
        assert lookup(a, key) in allowed, f"{v['title']}: {key} = {lookup(a, key)!r}, wanted {allowed}"
    fields = {m["field"] for m in a["missing_data"]}
    for f in v.get("expect_missing", []):
        assert f in fields, f
    if v.get("expect_one_preferred"):
        assert any(lookup(a, f"options.{i}.verdict") == "preferred" for i in v["expect_one_preferred"])
    planned = {o for s in a["plan"]["steps"] for o in s["options"]}
    for o in v.get("expect_not_in_plan", []):
        assert o not in planned, f"{v['title']}: the plan names {o}"
    for o in v.get("expect_in_plan", []):
        assert o in planned, f"{v['title']}: the plan does not name {o}"


def test_public_vignettes_through_the_command_line():
    checker = SHARED / "check.py"
    if not checker.exists():
        pytest.skip(f"public vignettes not found at {SHARED} (../shared is absent outside the workplace)")
    nelm = Path(sys.executable).parent / "nelm"
    # public (v1), public-v2 and real-public (published patients as sparse as case reports)
    folders = sorted(str(d) for d in [*SHARED.glob("public*"), *SHARED.glob("real-public*")] if d.is_dir())
    assert any(f.endswith("real-public") for f in folders)
    p = subprocess.run([sys.executable, str(checker), "--nelm", str(nelm), *folders],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
