"""Server-rendered pages: case form, assessment, case list, evidence browser, reports."""
from __future__ import annotations

import re
from html import unescape

import pytest

from nelm.engine import DISCLAIMER
from nelm.evidence import evidence_index
from nelm.patient import SCALAR_FIELDS

API = "/api/v1"


def _form_items(doc: dict, csrf: str) -> dict:
    """The form fields a clinician would fill in for ``doc`` (one prior-therapy row)."""
    from nelm.web import forms

    state = forms.state_from_document(doc)
    data: dict = {"csrf_token": csrf, **state.values, "prior_therapies": state.prior_mode}
    if state.sites:
        data["extrahepatic.sites"] = state.sites
    for i, row in enumerate(state.prior_rows):
        for part, value in row.items():
            data[f"prior_therapies.{i}.{part}"] = value
    return data


def _field_block(html: str, path: str) -> str:
    """The HTML of one field's container (label, input, messages)."""
    m = re.search(rf'<div class="field[^"]*" id="f-{re.escape(path)}">(.*?)</div>', html, re.S)
    assert m, f"no field {path}"
    return m.group(1)


def test_form_has_every_field_grouped_with_units_and_unknown_choices(client):
    html = client.get("/cases/new").text
    for path in SCALAR_FIELDS:
        assert f'name="{path}"' in html, path
    assert 'name="extrahepatic.sites"' in html and 'name="prior_therapies.0.therapy"' in html
    for legend in ("Primary tumour and pathology", "Liver disease", "Extrahepatic disease", "Patient",
                   "Course and prior therapy"):
        assert f"<legend>{legend}</legend>" in html
    ki67 = _field_block(html, "pathology.ki67_percent")
    assert "0–100 %" in ki67 and "(%)" not in ki67  # the unit once, beside the range
    assert "decides the plan" in ki67  # one of the facts that decide the plan: first, and marked
    assert html.index('id="g-decides"') < html.index('id="g-pathology"')
    krenning = _field_block(html, "sstr_uptake_krenning")
    assert re.findall(r'<option value="([^"]*)"', krenning) == ["", "0", "1", "2", "3", "4"]
    bilirubin = _field_block(html, "liver.bilirubin_mg_dl")
    assert "µmol/L" in bilirubin and "mg/dL" in bilirubin
    symptomatic = _field_block(html, "symptomatic")
    assert re.findall(r'<option value="([^"]*)"', symptomatic) == ["", "yes", "no"]
    assert ">unknown<" in symptomatic


def test_submitting_the_form_stores_and_shows_the_assessment(client, example, csrf_of):
    r = client.post("/cases", data=_form_items(example, csrf_of(client)), follow_redirects=False)
    assert r.status_code == 303
    case_url = r.headers["location"]
    page = client.get(case_url)
    assert page.status_code == 200
    html = page.text
    # classification, criteria, options with verdict badges and intent
    assert "NET" in html and "G1" in html
    assert "ENETS criteria for curative liver resection" in html and "✓ met" in html
    resection = re.search(r'<tr id="option-liver_resection".*?</tr>', html, re.S).group(0)
    assert 'verdict-preferred">preferred<' in resection and "intent: curative" in resection
    assert "Surgery and ablation" in html and "Chemotherapy" in html
    # sources link to their evidence pages, and each of those exists
    linked = set(re.findall(r'href="/evidence/([a-z0-9_]+)"', html))
    assert "mayo2010" in linked and linked <= set(evidence_index())
    assert client.get("/evidence/mayo2010").status_code == 200
    # report downloads for this version
    case_id = case_url.rsplit("/", 1)[1]
    assert f"/cases/{case_id}/versions/1/report.html" in html and f"/cases/{case_id}/versions/1/report.pdf" in html
    assert "Board summary (PDF, 1–2 pages)" in html and "Full report (PDF)" in html and "/full-report" in html
    stored = client.get(f"{API}/assessments/{case_id}").json()
    from nelm.patient import validate_patient

    assert validate_patient(stored["patient"]).model_dump() == validate_patient(example).model_dump()


def test_missing_data_prompts_link_back_to_the_form(client, csrf_of):
    r = client.post("/cases", data={"csrf_token": csrf_of(client), "pathology.differentiation": "well",
                                    "liver.burden_percent": "30"}, follow_redirects=False)
    case_id = r.headers["location"].rsplit("/", 1)[1]
    html = client.get(f"/cases/{case_id}").text
    section = re.search(r'<section id="missing".*?</section>', html, re.S).group(0)
    assert f'href="/cases/{case_id}/edit#f-pathology.ki67_percent"' in section
    assert "undetermined" in html and "Depends on " in html and "could be " in html  # one line per open option
    # the anchor exists on the edit form, prefilled with what was entered
    edit = client.get(f"/cases/{case_id}/edit").text
    assert 'id="f-pathology.ki67_percent"' in edit
    assert 'value="30"' in _field_block(edit, "liver.burden_percent")


def test_an_invalid_submission_comes_back_with_messages_beside_the_fields(client, example, csrf_of):
    data = _form_items(example, csrf_of(client)) | {"pathology.ki67_percent": "150", "ecog": "abc"}
    r = client.post("/cases", data=data)
    assert r.status_code == 422
    html = r.text
    ki67 = _field_block(html, "pathology.ki67_percent")
    assert "Ki-67 must be between 0 and 100 %; 150 was entered" in unescape(ki67) and 'value="150"' in ki67
    ecog = _field_block(html, "ecog")
    assert "must be a whole number" in ecog and 'value="abc"' in ecog
    assert 'class="field invalid" id="f-age_years"' not in html  # only the bad fields are marked
    assert 'value="58"' in _field_block(html, "age_years")  # the rest of the entry is kept
    assert "2 problems" in html
    assert client.get(f"{API}/assessments").json()["total"] == 0  # nothing stored


def test_forms_need_their_csrf_token(client, example, csrf_of):
    csrf_of(client)  # the browser has the cookie...
    r = client.post("/cases", data=_form_items(example, "forged-token-value-forged-token-value"))
    assert r.status_code == 403  # ...but the form does not carry the matching token
    r = client.post("/cases", data={k: v for k, v in _form_items(example, "x").items() if k != "csrf_token"})
    assert r.status_code == 403
    client.cookies.clear()
    r = client.post("/cases", data=_form_items(example, "x" * 43))
    assert r.status_code == 403
    assert client.get(f"{API}/assessments").json()["total"] == 0


def test_editing_stores_a_new_version_and_keeps_the_old(client, example, csrf_of):
    case_id = client.post(f"{API}/assessments", json=example).json()["id"]
    data = _form_items(example, csrf_of(client, f"/cases/{case_id}/edit")) | {"age_years": "77", "_base_version": "1"}
    r = client.post(f"/cases/{case_id}", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/cases/{case_id}"
    latest = client.get(f"/cases/{case_id}").text
    assert "version 2 of 2" in latest
    old = client.get(f"/cases/{case_id}/versions/1").text
    assert "version 1 of 2" in old and "This is an earlier version" in old
    assert client.get(f"{API}/assessments/{case_id}/versions/1").json()["patient"]["age_years"] == 58
    assert client.get(f"{API}/assessments/{case_id}").json()["patient"]["age_years"] == 77


def test_case_list_search_by_label_and_date(client, example):
    for label in ("MDT-2026-041", "MDT-2026-042", "<script>alert(1)</script>"):
        client.post(f"{API}/assessments", json=example | {"id": label})
    html = client.get("/cases").text
    assert "3 cases" in html and "MDT-2026-041" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html  # escaped, never executed
    found = client.get("/cases", params={"q": "2026-042"}).text
    assert "1 case found" in found and "MDT-2026-042" in found and "MDT-2026-041" not in found
    from datetime import datetime

    today = datetime.now().astimezone().date().isoformat()
    assert "3 cases found" in client.get("/cases", params={"date": today}).text
    assert "0 cases found" in client.get("/cases", params={"date": "2001-01-01"}).text
    bad = client.get("/cases", params={"date": "31/12/2026"})
    assert bad.status_code == 200 and "is not a date" in bad.text


def test_case_list_pages(client, example):
    for i in range(27):
        client.post(f"{API}/assessments", json=example | {"id": f"case-{i:02d}"})
    first = client.get("/cases").text
    assert "page 1 of 2" in first and 'rel="next"' in first and first.count('href="/cases/') >= 25
    second = client.get("/cases", params={"page": 2}).text
    assert "case-00" in second and "case-26" not in second


def test_evidence_browser_filters_and_shows_a_record(client):
    everything = client.get("/evidence").text
    ssa = client.get("/evidence", params={"option": "ssa"}).text
    n_all = int(re.search(r"(\d+) records?\.", everything).group(1))
    n_ssa = int(re.search(r"(\d+) records?\.", ssa).group(1))
    assert 0 < n_ssa < n_all
    assert "PROMID" in client.get("/evidence", params={"q": "promid"}).text
    record = next(r for r in evidence_index().values() if r.outcomes and r.comparator)
    html = client.get(f"/evidence/{record.id}").text
    for text in (record.citation.journal, record.population, record.intervention, record.comparator, record.level):
        assert unescape(text) in unescape(html)
    assert '<table class="outcomes">' in html
    assert html.count("<tr>") >= len(record.outcomes)
    assert client.get("/evidence/no_such_record").status_code == 404


def test_every_page_carries_the_disclaimer(client, example):
    case_id = client.post(f"{API}/assessments", json=example).json()["id"]
    for path in ("/cases", "/cases/new", f"/cases/{case_id}", f"/cases/{case_id}/edit", "/evidence",
                 "/evidence/mayo2010", "/cases/no-such-case", "/nowhere", "/docs"):
        r = client.get(path)
        assert DISCLAIMER in unescape(r.text), path


def test_unknown_case_page_is_404(client):
    r = client.get("/cases/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and "No case with this id" in r.text


@pytest.mark.parametrize("fmt", ["html", "pdf"])
def test_report_download(client, example, fmt):
    case_id = client.post(f"{API}/assessments", json=example).json()["id"]
    r = client.get(f"/cases/{case_id}/versions/1/report.{fmt}")
    if r.status_code == 501:  # the route's answer to NotImplementedError from nelm.report
        pytest.skip(f"nelm.report.build_{fmt} raises NotImplementedError: the report is not built yet (issue 5)")
    assert r.status_code == 200
    if fmt == "pdf":
        assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
        assert "attachment" in r.headers["content-disposition"]
    else:
        assert r.headers["content-type"].startswith("text/html") and "<html" in r.text.lower()
    assert client.get(f"/cases/{case_id}/versions/9/report.{fmt}").status_code == 404
    assert [e.action for e in client.app.state.store.audit(case_id)][-1:] == ["export"]


def test_a_report_not_built_yet_is_501_not_a_crash(client, example, monkeypatch):
    import nelm.report

    def not_yet(*_, **__):
        raise NotImplementedError("report not built yet")

    monkeypatch.setattr(nelm.report, "build_pdf", not_yet)
    case_id = client.post(f"{API}/assessments", json=example).json()["id"]
    r = client.get(f"/cases/{case_id}/versions/1/report.pdf")
    assert r.status_code == 501 and "not available" in r.text and DISCLAIMER in unescape(r.text)


# ------------------------------------------------------------------ issue 21: what people read

def _case(client, csrf_of, doc) -> str:
    r = client.post("/cases", data=_form_items(doc, csrf_of(client)), follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    return r.headers["location"]


def test_case_page_cites_author_year_and_shows_logic_behind_a_toggle(client, example, csrf_of):
    html = client.get(_case(client, csrf_of, example)).text
    links = re.findall(r'<a class="src" href="/evidence/([a-z0-9_]+)">([^<]+)</a>', html)
    assert links, "reasons link their sources"
    for rid, text in links:
        assert text != rid and re.search(r"\d{4}|unidentified|not identified", text), (rid, text)
    assert ">Mayo 2010<" in html
    assert "<summary>show logic</summary>" in html and ">read: " in html
    assert "Would be " not in html


def test_an_undetermined_option_is_one_line_and_only_profiles_that_change_something_are_offered(client, csrf_of):
    url = _case(client, csrf_of, {"id": "sparse", "pathology": {"differentiation": "well"},
                                  "liver": {"burden_percent": 30}})
    html = client.get(url).text
    assert "Depends on " in html
    options = re.findall(r'<select id="guideline" name="guideline">(.*?)</select>', html, re.S)[0]
    assert 'value="reviews"' in options and 'value="review002"' in options
    assert "esmo2020" not in options and "enets2023" not in options  # no thresholds of their own: nothing changes
    assert ">Review 002&#39;s thresholds<" in options or ">Review 002's thresholds<" in options
    other = client.get(url + "?guideline=review002").text
    assert 'id="profile-change"' in other and "For this patient it changes" in other


def test_evidence_pages_say_when_a_source_is_not_identified_and_show_no_repository_path(client):
    page = client.get("/evidence/review002").text
    assert "Source not identified." in page and ">source not identified<" in page
    assert 'class="badge status-met"' not in page  # never the checked badge
    for path in ("shared/sources", "README.md", "GitHub "):
        assert path not in page
    listing = client.get("/evidence").text
    assert ">Review 002 (unidentified source)<" in listing and "shared/sources" not in listing


def test_case_list_shows_classification_plan_and_decision_with_filters(client, example, csrf_of):
    _case(client, csrf_of, example)
    _case(client, csrf_of, {"id": "sparse", "pathology": {"differentiation": "well"}})
    html = client.get("/cases").text
    assert "classification" in html and "leading option" in html and "decision" in html
    assert "NET G1" in html and "liver resection" in html and "no decision yet" in html
    determined = client.get("/cases?plan=determined").text
    assert "example-1" in determined and ">sparse<" not in determined
    by_label = client.get("/cases?sort=label").text
    assert by_label.index("example-1") < by_label.index(">sparse<")
    assert client.get("/cases?plan=nonsense&sort=nonsense").status_code == 200


def test_the_full_report_is_built_in_the_background_with_progress(client, example, csrf_of):
    import time

    url = _case(client, csrf_of, example)
    case_id = url.rsplit("/", 1)[1]
    page = client.get(f"/cases/{case_id}/versions/1/full-report")
    assert page.status_code == 200 and 'id="full-progress"' in page.text
    for _ in range(600):  # a generous bound: the build runs in a worker thread
        page = client.get(f"/cases/{case_id}/versions/1/full-report")
        if "is ready" in page.text:
            break
        assert "Building the full report" in page.text and "<progress" in page.text
        time.sleep(0.2)
    assert "is ready" in page.text
    pdf = client.get(f"/cases/{case_id}/versions/1/report.pdf?full=1")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
