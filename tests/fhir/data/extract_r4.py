"""Regenerate r4_definitions.json from the official FHIR R4 (4.0.1) StructureDefinitions.

The definitions come from the npm registry package ``hl7.fhir.r4.examples@4.0.1`` (HL7's R4
package; it carries every core StructureDefinition with its snapshot; ``hl7.fhir.r4.core`` is
listed on npm with no version). Run from the repository root:

    npm pack hl7.fhir.r4.examples@4.0.1 --pack-destination /tmp
    python tests/fhir/data/extract_r4.py /tmp/hl7.fhir.r4.examples-4.0.1.tgz

Kept: for the resources nelm emits or reads as input (ROOTS) and every type reachable from
them, each snapshot element's path, type codes, contentReference, max, and its constraints
(key, severity, human, expression) exactly as the package gives them. Nothing is hand-picked:
the tests evaluate every constraint kept here.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tarfile
from pathlib import Path

ROOTS = ["GuidanceResponse", "RequestGroup", "CarePlan", "PlanDefinition", "Bundle", "OperationOutcome",
         "Parameters"]
OUT = Path(__file__).with_name("r4_definitions.json")


def main(tgz: str) -> None:
    sds: dict[str, dict] = {}
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if not (name.startswith("StructureDefinition-") and name.endswith(".json")):
                continue
            d = json.load(tar.extractfile(member))  # type: ignore[arg-type]
            if d.get("derivation") == "specialization" or d.get("id") in ("Element", "Resource", "Base"):
                sds[d["type"] if d.get("derivation") == "specialization" else d["id"]] = d
    wanted: list[str] = []
    todo = list(ROOTS) + ["Element", "BackboneElement", "Resource", "DomainResource", "Extension", "Narrative"]
    while todo:
        t = todo.pop()
        if t in wanted or t not in sds or sds[t].get("kind") == "primitive-type":
            continue
        wanted.append(t)
        for e in sds[t]["snapshot"]["element"]:
            for ty in e.get("type", []):
                code = ty.get("code", "")
                if code and code[0].isupper() and code not in wanted:
                    todo.append(code)
    types = {}
    for t in sorted(wanted):
        d = sds[t]
        types[t] = {"kind": d["kind"], "base": (d.get("baseDefinition") or "").rsplit("/", 1)[-1] or None,
                    "elements": [{k: v for k, v in {
                        "path": e["path"], "types": [ty["code"] for ty in e.get("type", [])],
                        "contentReference": e.get("contentReference"), "max": e.get("max"),
                        "constraints": [{k2: c.get(k2) for k2 in ("key", "severity", "human", "expression", "source")}
                                        for c in e.get("constraint", [])]}.items() if v not in (None, [])}
                        for e in d["snapshot"]["element"]]}
    digest = hashlib.sha256(Path(tgz).read_bytes()).hexdigest()
    out = {"source": {"package": "hl7.fhir.r4.examples", "version": "4.0.1", "registry": "npm",
                      "tarball_sha256": digest, "made_by": "tests/fhir/data/extract_r4.py"},
           "roots": ROOTS, "types": types}
    OUT.write_text(json.dumps(out, indent=0, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(types)} types")


if __name__ == "__main__":
    main(sys.argv[1])
