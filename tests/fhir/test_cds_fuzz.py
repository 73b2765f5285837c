"""The CDS Hooks endpoints fuzzed against their own OpenAPI document (issue 24 item 3): no
request, however malformed, gets a 500; every answer is one the document declares, as JSON.
schemathesis in process (fixed seed, bounded examples), plus hypothesis on the reader and the
card builders with arbitrary JSON in every prefetch key and draft order."""
from __future__ import annotations

import shutil
import tempfile
import atexit

import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis import Config
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from nelm.fhir.cds import PREFETCH
from nelm.web import create_app

from conftest import TestClient

_DIR = tempfile.mkdtemp(prefix="nelm-cds-fuzz-")
atexit.register(shutil.rmtree, _DIR, True)
_app = create_app(f"sqlite:///{_DIR}/cases.sqlite3", allowed_hosts=["testserver"])
_config = Config.from_dict({"seed": 20_261_206,
                            "generation": {"max-examples": 40, "deterministic": True, "database": "none"}})
schema = schemathesis.openapi.from_asgi("/cds-services/openapi.json", _app, config=_config)


@schema.parametrize()
def test_cds_endpoints_keep_their_document_and_never_fail(case):
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False,
                                                                                      allow_infinity=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                    max_leaves=20)
RESOURCE_TYPES = st.sampled_from(["Patient", "Observation", "Condition", "Procedure", "MedicationStatement",
                                  "MedicationRequest", "MedicationAdministration", "Medication", "Bundle",
                                  "OperationOutcome", "DiagnosticReport"])
RESOURCE = st.builds(lambda rt, rid, extra: {**extra, "resourceType": rt, "id": rid}, RESOURCE_TYPES,
                     st.sampled_from(["p1", "x", "other"]), st.dictionaries(
                         st.sampled_from(["subject", "code", "status", "valueQuantity", "component", "link",
                                          "verificationStatus", "clinicalStatus", "medicationReference",
                                          "medicationCodeableConcept", "contained", "entry", "issue", "intent",
                                          "identifier", "extension", "birthDate", "valueCodeableConcept"]),
                         JSON, max_size=6))
PREFETCH_VALUE = st.none() | JSON | RESOURCE | st.builds(
    lambda rs: {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in rs]},
    st.lists(RESOURCE, max_size=4)) | st.builds(
    # a Bundle or OperationOutcome whose parts are anything at all
    lambda rt, entry, link, issue: {"resourceType": rt, "entry": entry, "link": link, "issue": issue},
    st.sampled_from(["Bundle", "OperationOutcome"]), JSON, JSON, JSON)


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(prefetch=st.fixed_dictionaries({k: PREFETCH_VALUE for k in PREFETCH}),
       orders=st.lists(RESOURCE, max_size=3), hook=st.sampled_from(["patient-view", "order-select", "order-sign"]))
def test_arbitrary_prefetch_and_orders_never_give_a_server_error(prefetch, orders, hook):
    service = {"patient-view": "nelm-plan", "order-select": "nelm-order-check", "order-sign": "nelm-order-sign"}[hook]
    prefetch["patient"] = prefetch["patient"] if isinstance(prefetch["patient"], dict) else {
        "resourceType": "Patient", "id": "p1"}
    body = {"hook": hook, "hookInstance": "h", "prefetch": prefetch,
            "context": {"patientId": "p1", "draftOrders": {"resourceType": "Bundle",
                                                            "entry": [{"resource": o} for o in orders]}}}
    with TestClient(_app) as client:
        r = client.post(f"/cds-services/{service}", json=body)
    assert r.status_code in (200, 412, 422), r.text
    assert r.headers["content-type"].startswith("application/json")
