"""Issue 10: the board's screen and paper — guideline switch, versions and diff, If-Match,
the board's decision, empty cases, the plan-first page, offline docs."""
from __future__ import annotations

import copy
import re
from html import unescape

import pytest

from nelm.knowledge import load
from nelm.knowledge.ruleset import OPTION_LABELS
from nelm.web.api import GUIDELINES

API = "/api/v1"


def _store(client, doc) -> str:
    r = client.post(f"{API}/assessments", json=doc)
    assert r.status_code == 201, r.text
    assert r.headers["ETag"] == '"1"'
    return r.json()["id"]


def _decision(**over):
    return {"chosen": ["liver_resection"], "rationale": "Curative resection as planned.",
            "attendees": ["A. Surgeon (surgery)", "B. Oncologist (oncology)"], "decided_on": "2026-11-20",
            "signed_by": "A. Surgeon"} | over


# ------------------------------------------------------------------ guideline

def test_an_unknown_guideline_is_refused_with_the_allowed_ones(client, example):
    r = client.post(f"{API}/assess", params={"guideline": "nccn"}, json=example)
    assert r.status_code == 422
    [problem] = r.json()["detail"]
    assert problem["field"] == "guideline"
    assert all(g in problem["message"] for g in GUIDELINES)


@pytest.mark.parametrize("guideline", GUIDELINES)
def test_the_guideline_asked_for_governs_the_assessment(client, example, guideline):
    r = client.post(f"{API}/assess", params={"guideline": guideline}, json=example)
    assert r.status_code == 200
    assert r.json()["knowledge_base"]["guideline"] == guideline


def test_guideline_comparison_lists_only_what_changes(client, example):
    doc = copy.deepcopy(example)
    doc["age_years"] = 55  # Milan's age limit: <=55 in review 000, <55 in review 002
    r = client.post(f"{API}/assess/guidelines", json=doc)
    assert r.status_code == 200
    body = r.json()
    assert body["guidelines"] == list(GUIDELINES)
    for row in body["rows"]:
        assert len(set(row["raw"].values())) > 1, row


# ------------------------------------------------------------------ versions, diff, If-Match

def test_versions_list_and_diff_name_the_changed_fact_grade_and_verdicts(client, example):
    cid = _store(client, example)
    changed = copy.deepcopy(example)
    changed["pathology"]["ki67_percent"] = 25
    changed["pathology"]["mitoses_per_10hpf"] = 25
    r = client.put(f"{API}/assessments/{cid}", json=changed, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    versions = client.get(f"{API}/assessments/{cid}/versions").json()
    assert [v["version"] for v in versions] == [1, 2]
    d = client.get(f"{API}/assessments/{cid}/diff", params={"from": 1, "to": 2}).json()
    assert {f["field"] for f in d["facts"]} == {"pathology.ki67_percent", "pathology.mitoses_per_10hpf"}
    assert any(c["label"] == "WHO grade" and c["before"] == "G1" and c["after"] == "G3" for c in d["classification"])
    assert d["verdicts"], "a G3 tumour changes verdicts"
    page = client.get(f"/cases/{cid}/diff", params={"from": 1, "to": 2})
    assert page.status_code == 200 and "Ki-67" in page.text


def test_a_stale_if_match_is_refused_with_412_and_nothing_is_stored(client, example):
    cid = _store(client, example)
    assert client.put(f"{API}/assessments/{cid}", json=example, headers={"If-Match": '"1"'}).status_code == 200
    r = client.put(f"{API}/assessments/{cid}", json=example, headers={"If-Match": '"1"'})
    assert r.status_code == 412
    assert "version 2" in r.json()["detail"]
    assert len(client.get(f"{API}/assessments/{cid}/versions").json()) == 2
    assert client.get(f"{API}/assessments/{cid}").headers["ETag"] == '"2"'


def test_a_malformed_if_match_is_412_not_a_silent_overwrite(client, example):
    cid = _store(client, example)
    assert client.put(f"{API}/assessments/{cid}", json=example, headers={"If-Match": "latest"}).status_code == 412


# ------------------------------------------------------------------ the board's decision

def test_a_decision_that_follows_the_plan_is_recorded_in_the_audit_log_and_shown(client, app, example):
    cid = _store(client, example)
    r = client.post(f"{API}/assessments/{cid}/versions/1/decisions", json=_decision())
    assert r.status_code == 201, r.text
    assert r.json()["decision"]["departures"] == []
    entries = [e for e in app.state.store.audit(cid) if e.action == "board_decision"]
    assert len(entries) == 1 and '"liver_resection"' in entries[0].detail
    page = client.get(f"/cases/{cid}").text
    assert "Curative resection as planned." in page and "Follows the plan" in page


def test_a_departing_decision_needs_its_reason_and_says_it_departs(client, example):
    cid = _store(client, example)
    r = client.post(f"{API}/assessments/{cid}/versions/1/decisions", json=_decision(chosen=["ssa"]))
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "deviation_reason"
    r = client.post(f"{API}/assessments/{cid}/versions/1/decisions",
                    json=_decision(chosen=["ssa"], deviation_reason="Patient declines surgery."))
    assert r.status_code == 201
    gone = r.json()["decision"]["departures"]
    assert any("first" in g for g in gone) and any("not recommended" in g for g in gone)
    assert "departs from the plan" in client.get(f"/cases/{cid}").text
    listed = client.get(f"{API}/assessments/{cid}/decisions").json()
    assert [d["decision"]["chosen"] for d in listed] == [["ssa"]]


@pytest.mark.parametrize("bad, field", [({"chosen": ["surgery"]}, "chosen.0"), ({"attendees": []}, "attendees"),
                                         ({"decided_on": "yesterday"}, "decided_on"), ({"signed_by": " "}, "signed_by"),
                                         ({"chosen": ["tae", "tae"]}, "chosen")])
def test_an_invalid_decision_names_its_field(client, example, bad, field):
    cid = _store(client, example)
    r = client.post(f"{API}/assessments/{cid}/versions/1/decisions", json=_decision(**bad))
    assert r.status_code == 422
    assert field in [p["field"] for p in r.json()["detail"]]


def test_the_decision_form_on_the_page_records_it(client, example):
    cid = _store(client, example)
    page = client.get(f"/cases/{cid}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text) or re.search(r'value="([^"]{20,})"', page.text)
    form = {"csrf_token": token.group(1), "chosen": "liver_resection", "rationale": "as planned",
            "attendees": "A (surgery)\nB (oncology)", "decided_on": "2026-11-20", "signed_by": "A"}
    r = client.post(f"/cases/{cid}/versions/1/decision", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    assert "as planned" in client.get(f"/cases/{cid}").text


# ------------------------------------------------------------------ empty cases

def test_an_empty_case_is_refused_by_the_api(client):
    r = client.post(f"{API}/assessments", json={"id": "nothing"})
    assert r.status_code == 422
    assert "holds no facts" in r.json()["detail"][0]["message"]


def test_an_empty_form_is_refused_on_the_page(client):
    page = client.get("/cases/new")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text) or re.search(r'value="([^"]{20,})"', page.text)
    r = client.post("/cases", data={"csrf_token": token.group(1)}, follow_redirects=False)
    assert r.status_code == 422
    assert "holds no facts" in unescape(r.text)


# ------------------------------------------------------------------ the page

def test_the_page_opens_with_classification_plan_grid_and_obtain_list(client, example):
    doc = copy.deepcopy(example)
    doc.pop("labs", None)
    cid = _store(client, doc)
    html = client.get(f"/cases/{cid}").text
    top = html[:html.index('id="plan-reasons"')]
    assert 'id="classification-line"' in top and 'id="plan"' in top and 'id="verdicts"' in top
    for oid in load().option_ids:
        assert f'href="#option-{oid}"' in top, oid
    assert 'id="obtain"' in top and "To complete this assessment, obtain:" in top


def test_no_raw_contract_ids_reach_the_page_text(client, example):
    cid = _store(client, example)
    html = client.get(f"/cases/{cid}").text
    body = html[html.index("<main"):html.index("</main>")]
    text = re.sub(r"<(code|select|script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    text = unescape(re.sub(r"<[^>]+>", " ", text))
    raw = sorted({w for w in re.findall(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b", text)} - set(load().evidence))
    assert raw == [], raw


def test_the_docs_page_uses_local_assets(client):
    html = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_saving_an_edit_over_a_newer_version_is_refused_and_keeps_the_entries(client, example):
    cid = _store(client, example)
    form_page = client.get(f"/cases/{cid}/edit").text
    assert 'name="_base_version" value="1"' in form_page
    token = re.search(r'name="csrf_token" value="([^"]+)"', form_page) or re.search(r'value="([^"]{20,})"', form_page)
    # someone else saves version 2 meanwhile
    assert client.put(f"{API}/assessments/{cid}", json=example, headers={"If-Match": '"1"'}).status_code == 200
    r = client.post(f"/cases/{cid}", data={"csrf_token": token.group(1), "_base_version": "1",
                                           "pathology.ki67_percent": "7", "primary.site": "pancreas"},
                    follow_redirects=False)
    assert r.status_code == 409
    assert "someone else saved this case meanwhile" in r.text and 'value="7"' in r.text
    assert len(client.get(f"{API}/assessments/{cid}/versions").json()) == 2
