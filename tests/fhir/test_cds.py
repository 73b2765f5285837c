"""CDS Hooks 2.0 on the app: discovery, patient-view, order-select, prefetch or fetch, 412, feedback."""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from nelm.assessment import assess
from nelm.fhir.cds import INDICATOR, PREFETCH
from nelm.patient import validate_patient
from nelm.text import VERDICT_ORDER

from bundles import ATC, OPTION, SUBJECT, bundle_of, observation, readable_part
from cds_schemas import DISCOVERY, FEEDBACK, HOOK_REQUEST, RESPONSE, conforms

ROOT = Path(__file__).parents[2]
EXAMPLE = json.loads((ROOT / "examples" / "solitary_resectable.json").read_text())


def _prefetch(doc: dict[str, Any]) -> dict[str, Any]:
    """The Bundle of ``doc`` split into the services' prefetch keys (searchset Bundles)."""
    resources = [e["resource"] for e in bundle_of(doc)["entry"]]

    def search(kind: str) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset",
                "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources if r["resourceType"] == kind]}

    return {"patient": next(r for r in resources if r["resourceType"] == "Patient"),
            "conditions": search("Condition"), "observations": search("Observation"),
            "procedures": search("Procedure"), "medications": search("MedicationStatement"),
            "medicationRequests": search("MedicationRequest")}


def hook(kind: str = "patient-view", prefetch: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"hook": kind, "hookInstance": str(uuid.uuid4()),
                               "context": {"userId": "Practitioner/1", "patientId": "p1", **context}}
    if prefetch is not None:
        request["prefetch"] = prefetch
    conforms(HOOK_REQUEST, request)
    return request


def draft_orders(*orders: tuple[str, str, str]) -> dict[str, Any]:
    """(id, system, code) → a Bundle of draft MedicationRequests."""
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "MedicationRequest", "id": oid, "status": "draft", "intent": "order",
                      "subject": SUBJECT, "medicationCodeableConcept": {"coding": [{"system": system, "code": code}]}}}
        for oid, system, code in orders]}


def expected(doc: dict[str, Any]) -> dict[str, Any]:
    """What ``nelm assess`` gives on the facts a Bundle of ``doc`` carries."""
    return assess(validate_patient(readable_part(doc)))


def _comparable(a: dict[str, Any]) -> tuple[Any, Any]:
    return ({k: v for k, v in a["plan"].items()}, [(o["id"], o["verdict"], o.get("intent")) for o in a["options"]])


# ------------------------------------------------------------------ discovery

def test_discovery_has_the_specification_shape(client):
    r = client.get("/cds-services")
    assert r.status_code == 200
    conforms(DISCOVERY, r.json())
    services = {s["hook"]: s for s in r.json()["services"]}
    assert set(services) == {"patient-view", "order-select", "order-sign"}
    for s in services.values():
        assert s["prefetch"] == PREFETCH
        kinds = {t.split("/")[0].split("?")[0] for t in s["prefetch"].values()}
        assert kinds == {"Patient", "Condition", "Observation", "Procedure", "MedicationStatement", "MedicationRequest"}
    # EHRs refuse an Observation search without a code or category: every template names them,
    # newest first where the server pages, MedicationRequest with the Medications it names
    assert "&code=http://loinc.org|29593-1" in PREFETCH["observations"] and "_sort=-date" in PREFETCH["observations"]
    assert "_include=MedicationRequest:medication" in PREFETCH["medicationRequests"]


# ------------------------------------------------------------------ patient-view

VIGNETTES = sorted((ROOT / "tests" / "vignettes").glob("v*.json"))


@pytest.mark.parametrize("path", [ROOT / "examples" / "solitary_resectable.json", *VIGNETTES], ids=lambda p: p.stem)
def test_patient_view_cards_restate_nelm_assess(client, path):
    data = json.loads(path.read_text())
    doc = data.get("patient", data)
    r = client.post("/cds-services/nelm-plan", json=hook(prefetch=_prefetch(doc)))
    assert r.status_code == 200, r.text
    conforms(RESPONSE, r.json())
    [card] = r.json()["cards"]
    if not any(v is not None for k, v in readable_part(doc).items() if k != "id"):
        # what FHIR carries of this patient holds no fact (no code for it is mapped yet):
        # no case is stored, the card says why
        assert card["indicator"] == "warning" and "holds no facts" in card["detail"] and "links" not in card
        return
    want = expected(doc)
    # the card's link is the stored assessment: the same plan and verdicts as nelm assess
    case_id = card["links"][0]["url"].rsplit("/", 1)[1]
    stored = client.get(f"/api/v1/assessments/{case_id}").json()["assessment"]
    assert _comparable(stored) == _comparable(want)
    # and the card itself says them: every option's verdict, every step's options in order
    labels = {o["id"]: o["label"] for o in want["options"]}
    for o in want["options"]:
        assert f"- {o['label']}: **{o['verdict'].replace('_', ' ')}**" in card["detail"].replace("\\", "")
    for step in want["plan"]["steps"]:
        names = ", ".join(f"{labels[i]} (" for i in step["options"])
        assert all(n in card["detail"].replace("\\", "") for n in names.split(", "))
    assert card["summary"].startswith(f"NELM plan ({want['plan']['status']})") or \
        card["summary"].startswith(f"NELM plan {want['plan']['status']}")
    assert card["indicator"] == ("warning" if want["plan"]["status"] == "undetermined" else "info")
    assert card["source"]["url"].startswith("http://testserver/evidence")
    assert card["links"][0]["type"] == "absolute"


def test_null_prefetch_means_none_found_not_fetch(client):
    pre = _prefetch(EXAMPLE) | {"procedures": None, "medications": None}
    r = client.post("/cds-services/nelm-plan", json=hook(prefetch=pre))
    assert r.status_code == 200


def test_conflicts_and_unread_resources_are_in_the_card(client):
    pre = _prefetch(EXAMPLE)
    pre["observations"]["entry"].append({"resource": observation("ki-old", "29593-1", 30, "%", date="2019-01-01")})
    pre["observations"]["entry"].append({"resource": observation("crp", "1988-5", 3, "mg/L")})
    [card] = client.post("/cds-services/nelm-plan", json=hook(prefetch=pre)).json()["cards"]
    assert card["indicator"] == "warning"
    assert "**Conflicting records**" in card["detail"] and "Observation/ki-old" in card["detail"]
    assert "**Not read** (1 records)" in card["detail"] and "LOINC 1988-5" in card["detail"]


def test_invalid_record_gives_a_warning_card_naming_the_field(client):
    pre = _prefetch(EXAMPLE)
    pre["observations"]["entry"].append({"resource": observation("ki-bad", "29593-1", 130, "%", date="2026-11-01")})
    r = client.post("/cds-services/nelm-plan", json=hook(prefetch=pre))
    conforms(RESPONSE, r.json())
    [card] = r.json()["cards"]
    assert card["indicator"] == "warning" and "Ki-67" in card["summary"]  # the field in words, not its path
    assert "pathology.ki67_percent" not in card["summary"] + card["detail"]
    assert "Observation/ki-bad" in card["detail"]


# ------------------------------------------------------------------ order-select

def _renal(egfr: float) -> dict[str, Any]:
    doc = copy.deepcopy(EXAMPLE)
    doc["labs"]["egfr_ml_min"] = egfr
    return doc


def test_contraindicated_order_gets_a_critical_card(client):
    doc = _renal(20)
    assert {o["id"]: o["verdict"] for o in expected(doc)["options"]}["capecitabine_temozolomide"] == "contraindicated"
    orders = draft_orders(("rx1", ATC, "L01BC06"))  # capecitabine
    r = client.post("/cds-services/nelm-order-check",
                    json=hook("order-select", _prefetch(doc), selections=["MedicationRequest/rx1"], draftOrders=orders))
    assert r.status_code == 200, r.text
    conforms(RESPONSE, r.json())
    [card] = r.json()["cards"]
    assert card["indicator"] == "critical"
    assert "contraindicated" in card["summary"] and len(card["summary"]) < 140
    assert "eGFR 20 mL/min" in card["detail"] and "ATC L01BC06" in card["detail"]
    assert card["links"][0]["url"].startswith("http://testserver/cases/")


@pytest.mark.parametrize("option", ["capecitabine_temozolomide", "prrt", "ssa", "liver_resection", "sunitinib"])
def test_order_card_indicator_follows_the_verdict(client, option):
    doc = _renal(40)
    verdict = {o["id"]: o["verdict"] for o in expected(doc)["options"]}[option]
    orders = draft_orders(("o1", OPTION, option))
    r = client.post("/cds-services/nelm-order-check",
                    json=hook("order-select", _prefetch(doc), selections=["MedicationRequest/o1"], draftOrders=orders))
    [card] = r.json()["cards"]
    assert card["indicator"] == INDICATOR.get(verdict, "info")
    assert f"**{verdict.replace('_', ' ')}**" in card["detail"]


def test_only_selected_and_mapped_orders_get_cards(client):
    orders = draft_orders(("a", ATC, "L01BC06"), ("b", ATC, "H01CB02"), ("c", ATC, "B01AC06"))
    body = hook("order-select", _prefetch(_renal(20)), selections=["MedicationRequest/b", "MedicationRequest/c"],
                draftOrders=orders)
    cards = client.post("/cds-services/nelm-order-check", json=body).json()["cards"]
    # capecitabine is not selected: no card; aspirin is not in the table: a card saying nelm has no
    # rule on it (silence would read as "no concern")
    assert len(cards) == 2
    assert "omatostatin" in cards[0]["summary"]
    assert cards[1]["summary"] == "NELM has no rule on this order: ATC B01AC06" and cards[1]["indicator"] == "info"


def test_verdict_order_known():
    assert set(INDICATOR) <= set(VERDICT_ORDER)


# ------------------------------------------------------------------ fetching what was not prefetched

def _serve(server, doc: dict[str, Any]) -> None:
    pre = _prefetch(doc)
    for key, template in PREFETCH.items():
        server.routes[template.replace("{{context.patientId}}", "p1")] = pre[key]


def test_missing_prefetch_is_fetched_from_the_fhir_server(client, fhir_server):
    _serve(fhir_server, EXAMPLE)
    body = hook(prefetch={"patient": _prefetch(EXAMPLE)["patient"]})
    body |= {"fhirServer": fhir_server.url,
             "fhirAuthorization": {"access_token": "tok-123", "token_type": "Bearer", "expires_in": 300,
                                   "scope": "patient/*.read", "subject": "nelm"}}
    conforms(HOOK_REQUEST, body)
    r = client.post("/cds-services/nelm-plan", json=body)
    assert r.status_code == 200, r.text
    fetched = sorted(p for p, _ in fhir_server.requests)
    assert fetched == sorted("/fhir/" + t.replace("{{context.patientId}}", "p1")
                             for k, t in PREFETCH.items() if k != "patient")
    assert all(h.get("Authorization") == "Bearer tok-123" for _, h in fhir_server.requests)
    with_prefetch = client.post("/cds-services/nelm-plan", json=hook(prefetch=_prefetch(EXAMPLE))).json()["cards"][0]
    assert r.json()["cards"][0]["summary"] == with_prefetch["summary"]


def test_searchset_pages_are_followed(client, fhir_server):
    _serve(fhir_server, EXAMPLE)
    key = PREFETCH["observations"].replace("{{context.patientId}}", "p1")
    obs = fhir_server.routes[key]
    first, rest = obs["entry"][:2], obs["entry"][2:]
    fhir_server.routes[key] = {"resourceType": "Bundle", "type": "searchset", "entry": first,
                                                    "link": [{"relation": "next", "url": fhir_server.url + "/page2"}]}
    fhir_server.routes["page2"] = {"resourceType": "Bundle", "type": "searchset", "entry": rest}
    r = client.post("/cds-services/nelm-plan", json=hook() | {"fhirServer": fhir_server.url})
    case_id = r.json()["cards"][0]["links"][0]["url"].rsplit("/", 1)[1]
    stored = client.get(f"/api/v1/assessments/{case_id}").json()["patient"]
    assert stored.pop("id").startswith("FHIR Patient/p1 (127.0.0.1:")  # the case is labelled with the FHIR patient
    assert stored == readable_part(EXAMPLE)


def test_no_prefetch_and_no_fhir_server_is_412(client):
    r = client.post("/cds-services/nelm-plan", json=hook())
    assert r.status_code == 412 and "fhirServer" in r.json()["detail"]


@pytest.mark.parametrize("broken", ["status", "no-patient", "unreachable"])
def test_fhir_server_that_cannot_answer_is_412(client, fhir_server, broken):
    _serve(fhir_server, EXAMPLE)
    url = fhir_server.url
    if broken == "status":
        fhir_server.routes[PREFETCH["observations"].replace("{{context.patientId}}", "p1")] = 500
    elif broken == "no-patient":
        del fhir_server.routes["Patient/p1"]
    else:
        fhir_server.stop()
    r = client.post("/cds-services/nelm-plan", json=hook() | {"fhirServer": url})
    assert r.status_code == 412, r.text
    assert r.headers["content-type"].startswith("application/json")


# ------------------------------------------------------------------ feedback and refusals

def test_feedback_is_stored_in_the_audit_log(client, app):
    [card] = client.post("/cds-services/nelm-plan", json=hook(prefetch=_prefetch(EXAMPLE))).json()["cards"]
    case_id = card["links"][0]["url"].rsplit("/", 1)[1]
    feedback = {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-22T10:00:00Z",
                              "overrideReason": {"reason": {"system": "http://example.org/reasons", "code": "disagree",
                                                            "display": "Disagree"},
                                                 "userComment": "Mrs Example prefers no surgery"}}]}
    conforms(FEEDBACK, feedback)
    r = client.post("/cds-services/nelm-plan/feedback", json=feedback)
    assert r.status_code == 200
    [entry] = [e for e in app.state.store.audit() if e.action == "cds_feedback"]
    assert entry.case_id == case_id
    detail = json.loads(entry.detail)
    assert detail["card"] == card["uuid"] and detail["outcome"] == "overridden"
    assert detail["overrideReason"]["code"] == "disagree" and detail["userComment"] is True
    assert "Mrs Example" not in entry.detail  # free text may name the patient: not kept


@pytest.mark.parametrize("body, field", [({}, "feedback"), ({"feedback": [{"outcome": "accepted"}]}, "feedback.0.card"),
                                         ({"feedback": [{"card": "x", "outcome": "maybe"}]}, "feedback.0.outcome")])
def test_bad_feedback_is_refused_by_field(client, body, field):
    r = client.post("/cds-services/nelm-plan/feedback", json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == field


@pytest.mark.parametrize("path, body, status", [
    ("/cds-services/nope", {"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "p1"}}, 404),
    ("/cds-services/nelm-plan", {"hook": "order-select", "hookInstance": "x", "context": {"patientId": "p1"}}, 422),
    ("/cds-services/nelm-plan", {"hook": "patient-view", "context": {"patientId": "p1"}}, 422),
    ("/cds-services/nelm-plan", {"hook": "patient-view", "hookInstance": "x", "context": {}}, 422),
    ("/cds-services/nelm-plan", [1, 2], 422),
])
def test_bad_hook_requests_are_refused_in_json(client, path, body, status):
    r = client.post(path, json=body)
    assert r.status_code == status and "detail" in r.json()


def test_hooks_take_json_only(client):
    r = client.post("/cds-services/nelm-plan", content=b"hook=patient-view",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


def test_hook_body_is_capped(client):
    big = hook(prefetch={"patient": {"resourceType": "Patient", "id": "p1", "text": {"div": "x" * 300_000}}})
    assert client.post("/cds-services/nelm-plan", json=big).status_code == 413


def test_a_next_page_that_cannot_be_fetched_is_reported(client):
    pre = _prefetch(EXAMPLE)
    pre["observations"]["link"] = [{"relation": "next", "url": "http://fhir.example/Observation?page=2"}]
    [card] = client.post("/cds-services/nelm-plan", json=hook(prefetch=pre)).json()["cards"]
    detail = card["detail"].replace("\\", "")
    assert "search page http://fhir.example/Observation?…: WARNING: records may be missing: not read: no fhirServer" in detail
    assert card["indicator"] == "warning"  # records may be missing: never the calmer card
