"""The literature curves, fitted once and stored with the knowledge base.

Fitting (numpy, sometimes scipy) takes longer than a whole assessment and its result
depends only on what the sources report, so it is done once, when the knowledge base
changes, and written to ``knowledge/fitted_curves.json``: for every cohort arm of
``outcomes.yaml`` the model, its parameters, the method text, the sampled curve and
the largest miss at a reported point. The file records the hash of what the fits read
(``outcomes.yaml``, the evidence records and the fitting code itself); while that hash
matches, assessments read the file and never import numpy or scipy. When it does not
match (a knowledge-base edit not yet followed by regenerating), the curves are fitted
at run time, as before, so results never depend on a stale file;
tests/outcomes/test_fitted.py fails until the file is regenerated:

    make fitted        # python -c "from nelm.outcomes.fitted import write; write()"
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..evidence import EVIDENCE_DIR
from .curves import Fit

_PACKAGE = Path(__file__).resolve().parent.parent
FITTED_FILE = _PACKAGE / "knowledge" / "fitted_curves.json"
_INPUTS = ("knowledge/outcomes.yaml", "outcomes/curves.py")


def inputs_sha256() -> str:
    """Hash of everything a fit reads: outcomes.yaml, the evidence files and curves.py."""
    base = _PACKAGE
    paths = [base / p for p in _INPUTS] + sorted(EVIDENCE_DIR.glob("*.yaml"))
    h = hashlib.sha256()
    for path in paths:
        h.update(path.relative_to(base).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def key(cohort: str, arm: str) -> str:
    return f"{cohort}|{arm}"


@lru_cache(maxsize=1)
def stored() -> dict[str, Fit] | None:
    """The stored fits by :func:`key`, or None when the file is missing or not current."""
    try:
        data = json.loads(FITTED_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("inputs_sha256") != inputs_sha256():
        return None
    return {k: Fit(method=f["method"], curve=f["curve"], model=f["model"], params=f["params"],
                   max_error=f["max_error"]) for k, f in data["fits"].items()}


def fit_all() -> dict[str, Fit]:
    """Fit every cohort arm of outcomes.yaml from its evidence record (numpy/scipy)."""
    from ..evidence import load_records
    from .curves import CurveError, fit, reported_points
    from .matching import load_spec

    records = {r.id: r for r in load_records()}
    out: dict[str, Fit] = {}
    for c in load_spec().cohorts:
        rec = records.get(c.source)
        for a in c.arms:
            if rec is None:
                continue
            try:
                out[key(c.id, a.arm)] = fit(reported_points(rec.outcomes, c.endpoint, a.arm))
            except CurveError:
                continue  # reported as a knowledge-base problem by the outcomes loader
    return out


def document(fits: dict[str, Fit]) -> dict[str, Any]:
    from ..knowledge import KNOWLEDGE_DIR
    from ..yamlio import read_yaml

    return {
        "generated_by": "make fitted (nelm.outcomes.fitted.write)",
        "knowledge_base_version": read_yaml(KNOWLEDGE_DIR / "manifest.yaml")["version"],
        "inputs_sha256": inputs_sha256(),
        "fits": {k: {"model": f.model, "params": f.params, "max_error": f.max_error, "method": f.method,
                     "curve": f.curve} for k, f in sorted(fits.items())},
    }


def dumps(doc: dict[str, Any]) -> str:
    """JSON with one line per fit, so that a regenerated file diffs arm by arm."""
    head = {k: v for k, v in doc.items() if k != "fits"}
    lines = [json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "fits": {']
    fits = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in doc["fits"].items()]
    return "\n".join(lines) + "\n" + ",\n".join(fits) + "\n }\n}\n"


def write(path: Path = FITTED_FILE) -> Path:
    path.write_text(dumps(document(fit_all())), encoding="utf-8")
    stored.cache_clear()
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
