"""Every R4 invariant of the resources nelm emits (issue 20 item 6), read from the official
StructureDefinitions (data/r4_definitions.json, HL7's R4 4.0.1 package), not hand-picked: each
constraint there is evaluated with fhirpathpy on every node of its element or type, or checked
in Python where fhirpathpy lacks the function (r4_check.PYTHON, with the reason)."""
from __future__ import annotations

import copy
import json

import pytest
from fhirpathpy.models import models

from emitted import emitted
from r4_check import DEFINITIONS, PYTHON, REWRITES, compiled, constraint_keys, violations, walk

RESOURCES = {n: r for n, r in emitted().items() if "contained" not in n}  # contained ones: inside theirs


def test_the_definitions_are_the_official_r4_ones():
    assert DEFINITIONS["source"]["package"] == "hl7.fhir.r4.examples" and DEFINITIONS["source"]["version"] == "4.0.1"
    keys = constraint_keys()
    # the ones the issue names are all there, found in the package rather than typed in
    for key in ("rqg-1", "cpl-3", "pdf-0", "bdl-1", "bdl-2", "bdl-3", "bdl-4", "bdl-5", "bdl-7", "bdl-8", "bdl-9",
                "txt-1", "txt-2", "ref-1", "per-1", "qty-3", "dom-2", "dom-3", "dom-4", "dom-5", "dom-6", "ele-1",
                "ext-1", "inv-1", "drq-1", "exp-1"):
        assert key in keys, key
    # R4 4.0.1 has no rqg-2 (a later version's) and no bdl-6
    assert "rqg-2" not in keys and "bdl-6" not in keys


@pytest.mark.parametrize("key", sorted(constraint_keys()))
def test_every_constraint_is_evaluated_or_checked_in_python(key):
    """No constraint is skipped silently: its FHIRPath (after the listed rewrites) runs under
    fhirpathpy on an empty node of its element, or the test checks it in Python (PYTHON)."""
    definition = next(c for t in DEFINITIONS["types"].values() for e in t["elements"]
                      for c in e.get("constraints", []) if c["key"] == key)
    if key in PYTHON:
        assert PYTHON[key][0]  # the reason fhirpathpy cannot run it
        return
    from fhirpathpy.engine.nodes import ResourceNode

    path = constraint_keys()[key][0]
    compiled(definition["expression"])(ResourceNode.create_node({"id": "x"}, path),
                                       {"resource": {}, "rootResource": {}, "refs": [],
                                        "ucum": "http://unitsofmeasure.org"})


def test_the_rewrites_say_why():
    assert all(why for _, _, why in REWRITES)
    assert models["r4"]


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_every_emitted_resource_passes_every_r4_invariant(name):
    assert violations(RESOURCES[name], foreign=True) == []


def _keys(resource: dict) -> set[str]:
    problems: list[str] = []
    return {c["key"] for *_, cs in walk(resource, resource["resourceType"], resource["resourceType"], resource,
                                          resource, resource["resourceType"], problems) for c in cs}


def test_the_walk_reaches_the_nested_and_contained_nodes():
    keys = _keys(RESOURCES["CarePlan ($apply)"])
    # the RequestGroup's actions (nested), references, narrative, extensions, data requirements
    assert {"cpl-3", "dom-3", "rqg-1", "ref-1", "txt-1", "txt-2", "ext-1", "ele-1"} <= keys
    assert {"pdf-0", "exp-1"} & _keys(RESOURCES["PlanDefinition"]) == {"pdf-0"}  # no Expression is emitted
    assert {"bdl-1", "bdl-5", "bdl-8"} <= _keys(RESOURCES["Bundle (CDS hook records)"])


def _bad(name: str, change) -> list[str]:
    resource = copy.deepcopy(RESOURCES[name])
    change(resource)
    return [v.split(" ")[0] for v in violations(resource, foreign=True)]


def _contained(r: dict, rid: str) -> dict:
    return next(c for c in r["contained"] if c.get("id") == rid)


@pytest.mark.parametrize("name, change, key", [
    ("GuidanceResponse example", lambda r: _contained(r, "plan")["action"][0].update(action=[{"title": "leaf"}]), "rqg-1"),
    ("GuidanceResponse example", lambda r: r["contained"].append({"resourceType": "OperationOutcome", "id": "orphan",
                                                                  "issue": [{"severity": "information",
                                                                             "code": "informational"}]}), "dom-3"),
    ("GuidanceResponse example", lambda r: r.update(result={"reference": "#nothing"}), "ref-1"),
    ("GuidanceResponse example", lambda r: _contained(r, "plan").update(contained=[{"resourceType": "Basic",
                                                                                      "id": "b"}]), "dom-2"),
    ("GuidanceResponse example", lambda r: _contained(r, "plan").update(meta={"versionId": "1"}), "dom-4"),
    ("GuidanceResponse example", lambda r: r.pop("text"), "dom-6"),
    ("GuidanceResponse example", lambda r: r["text"].update(div='<div xmlns="http://www.w3.org/1999/xhtml"> </div>'),
     "txt-2"),
    ("GuidanceResponse example", lambda r: r["text"].update(
        div='<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div>'), "txt-1"),
    ("GuidanceResponse example", lambda r: r.update(extension=[{"url": "urn:x", "valueString": "a",
                                                               "extension": [{"url": "urn:y", "valueString": "b"}]}]),
     "ext-1"),
    ("GuidanceResponse example", lambda r: r.update(subject={}), "ele-1"),
    ("CarePlan ($apply)", lambda r: r["activity"][0].update(detail={"status": "not-started"}), "cpl-3"),
    ("CarePlan ($apply)", lambda r: r.update(period={"start": "2026-12-06", "end": "2026-01-01"}), "per-1"),
    ("PlanDefinition", lambda r: r.update(name="nelm pathways"), "pdf-0"),
    ("PlanDefinition", lambda r: r["action"][0]["condition"][0].update(expression={"language": "text/fhirpath"}),
     "exp-1"),
    ("Bundle (CDS hook records)", lambda r: r.update(total=3), "bdl-1"),
    ("Bundle (CDS hook records)", lambda r: r["entry"][0].update(fullUrl="Patient/p1/_history/2"), "bdl-8"),
    ("Bundle (CDS hook records)", lambda r: r["entry"][0].update(search={"mode": "match"}), "bdl-2"),
])
def test_the_checker_catches_each_kind_of_violation(name, change, key):
    assert key in _bad(name, change)


def test_a_data_requirement_with_path_and_search_param_breaks_drq_1():
    gr = copy.deepcopy(RESOURCES["GuidanceResponse example"])
    gr["dataRequirement"] = [{"type": "Observation", "codeFilter": [{"path": "code", "searchParam": "code"}]}]
    assert "drq-1" in [v.split(" ")[0] for v in violations(gr)]


def test_an_unknown_element_is_reported_not_skipped():
    gr = copy.deepcopy(RESOURCES["GuidanceResponse example"])
    gr["contained"][0]["action"][0]["notAnElement"] = 1
    assert any("notAnElement" in v for v in violations(gr))
    assert json.dumps(gr)
