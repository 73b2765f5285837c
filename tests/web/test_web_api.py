"""REST API /api/v1: stateless assessment, stored cases with versions, evidence, errors."""
from __future__ import annotations

import json

from nelm.assessment import assess
from nelm.patient import OPTION_IDS, validate_patient

API = "/api/v1"


def test_health(client):
    r = client.get(f"{API}/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["knowledge_base"]["sha256"] and body["knowledge_base"]["version"]


def test_assess_is_stateless_and_is_the_engines_assessment(client, example):
    r = client.post(f"{API}/assess", json=example)
    assert r.status_code == 200
    got = r.json()
    expected = assess(validate_patient(example))
    assert {o["id"]: o["verdict"] for o in got["options"]} == {o["id"]: o["verdict"] for o in expected["options"]}
    assert got["classification"] == expected["classification"]
    assert sorted(o["id"] for o in got["options"]) == sorted(OPTION_IDS)
    assert client.get(f"{API}/assessments").json()["total"] == 0  # nothing stored


def test_invalid_documents_name_each_field_by_dotted_path(client, example):
    example["pathology"]["ki67_percent"] = 150
    example["liver"]["lobes"] = "three"
    example["ki67"] = 3
    r = client.post(f"{API}/assess", json=example)
    assert r.status_code == 422
    detail = r.json()["detail"]
    fields = {d["field"] for d in detail}
    assert fields == {"pathology.ki67_percent", "liver.lobes", "ki67"}
    ki67 = next(d for d in detail if d["field"] == "pathology.ki67_percent")
    assert "100" in ki67["message"] and "150" in ki67["message"]
    assert all(set(d) == {"field", "message"} for d in detail)


def test_bodies_that_are_not_a_patient_object(client):
    cases = {
        b"[1, 2]": "",
        b"{\"age_years\": 50,": "",
        b"": "",
        b"{\"age_years\": 50, \"age_years\": 60}": "age_years",
        b"{\"pathology\": {\"mitoses_per_10hpf\": Infinity}}": "pathology.mitoses_per_10hpf",
        b"\xff\xfe": "",
    }
    for body, field in cases.items():
        r = client.post(f"{API}/assess", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, body
        assert r.json()["detail"][0]["field"] == field, (body, r.json())


def test_only_json_is_accepted(client, example):
    # a cross-site HTML form can post text/plain without a preflight: refuse it
    r = client.post(f"{API}/assessments", content=json.dumps(example), headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert client.get(f"{API}/assessments").json()["total"] == 0


def test_store_read_and_version_a_case(client, example):
    r = client.post(f"{API}/assessments", json=example)
    assert r.status_code == 201
    first = r.json()
    assert set(first) >= {"id", "version", "assessment", "patient", "created_at", "knowledge_base"}
    assert first["version"] == 1 and first["patient"] == example
    assert r.headers["location"] == f"{API}/assessments/{first['id']}"
    assert first["knowledge_base"]["sha256"] == first["assessment"]["knowledge_base"]["sha256"]

    changed = example | {"age_years": 80, "ecog": 3}
    r = client.put(f"{API}/assessments/{first['id']}", json=changed, headers={"If-Match": '"1"'})
    assert r.status_code == 200
    assert (r.json()["id"], r.json()["version"]) == (first["id"], 2)

    latest = client.get(f"{API}/assessments/{first['id']}").json()
    assert latest["version"] == 2 and latest["patient"]["age_years"] == 80
    assert [v["version"] for v in latest["versions"]] == [1, 2]
    old = client.get(f"{API}/assessments/{first['id']}/versions/1").json()
    assert old["patient"] == example and old["assessment"] == first["assessment"]  # never overwritten


def test_unknown_ids_are_404(client, example):
    assert client.get(f"{API}/assessments/nope").status_code == 404
    assert client.put(f"{API}/assessments/nope", json=example).status_code == 404
    case = client.post(f"{API}/assessments", json=example).json()["id"]
    assert client.get(f"{API}/assessments/{case}/versions/2").status_code == 404
    assert client.get(f"{API}/assessments/nope/versions/1").status_code == 404
    assert client.get(f"{API}/evidence/nope").status_code == 404
    assert "detail" in client.get(f"{API}/assessments/nope").json()


def test_an_invalid_update_stores_nothing(client, example):
    case = client.post(f"{API}/assessments", json=example).json()["id"]
    r = client.put(f"{API}/assessments/{case}", json=example | {"ecog": 7}, headers={"If-Match": '"1"'})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "ecog"
    assert [v["version"] for v in client.get(f"{API}/assessments/{case}").json()["versions"]] == [1]


def test_list_is_paged_and_searchable(client, example):
    for i in range(5):
        assert client.post(f"{API}/assessments", json=example | {"id": f"MDT-{i}"}).status_code == 201
    page = client.get(f"{API}/assessments", params={"page": 1, "page_size": 2}).json()
    assert (page["total"], len(page["items"]), page["page"], page["page_size"]) == (5, 2, 1, 2)
    last = client.get(f"{API}/assessments", params={"page": 3, "page_size": 2}).json()
    assert len(last["items"]) == 1
    labels = {i["patient_label"] for i in page["items"] + last["items"]}
    labels |= {i["patient_label"] for i in client.get(f"{API}/assessments", params={"page": 2, "page_size": 2}).json()["items"]}
    assert labels == {f"MDT-{i}" for i in range(5)}
    found = client.get(f"{API}/assessments", params={"search": "mdt-3"}).json()
    assert [i["patient_label"] for i in found["items"]] == ["MDT-3"]
    r = client.get(f"{API}/assessments", params={"page": 0})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "page"
    assert client.get(f"{API}/assessments", params={"page_size": 101}).status_code == 422
    assert client.get(f"{API}/assessments", params={"date": "yesterday"}).json()["detail"][0]["field"] == "date"


def test_evidence_list_filter_and_record(client):
    everything = client.get(f"{API}/evidence").json()["records"]
    assert len(everything) > 10
    prrt = client.get(f"{API}/evidence", params={"option": "prrt"}).json()["records"]
    assert prrt and all("prrt" in r["topics"] for r in prrt) and len(prrt) < len(everything)
    netter = client.get(f"{API}/evidence", params={"search": "NETTER"}).json()["records"]
    assert netter and all("netter" in json.dumps(r).lower() for r in netter)
    one = client.get(f"{API}/evidence/{prrt[0]['id']}").json()
    assert one == prrt[0]
    r = client.get(f"{API}/evidence", params={"option": "homeopathy"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "option"


def test_openapi_documents_the_patient_body(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for p in ("/api/v1/health", "/api/v1/assess", "/api/v1/assessments", "/api/v1/assessments/{case_id}",
              "/api/v1/assessments/{case_id}/versions/{n}", "/api/v1/evidence", "/api/v1/evidence/{record_id}"):
        assert p in paths, p
    body = paths["/api/v1/assessments"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Patient"}
    schemas = spec["components"]["schemas"]
    assert "pathology" in schemas["Patient"]["properties"]
    assert schemas["Pathology"]["properties"]["ki67_percent"]
    assert not any(p.startswith("/cases") for p in paths)  # pages are not API
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower() and 'href="/openapi.json"' in docs.text


def test_body_size_limit(client, example):
    big = example | {"id": "x" * 300_000}
    r = client.post(f"{API}/assess", json=big)
    assert r.status_code == 413

    def chunks():  # no Content-Length: the limit must hold for a streamed body too
        yield b'{"id": "'
        for _ in range(40):
            yield b"y" * 10_000
        yield b'"}'

    r = client.post(f"{API}/assessments", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.get(f"{API}/assessments").json()["total"] == 0
