"""Verification as data: every evidence record says how far it was checked, identifiers are
well-formed, no 'from memory' wording survives, guideline thresholds that change a verdict rest on
source-checked records, and unverified records are marked wherever records are shown."""
from __future__ import annotations

import re
import warnings
from io import StringIO

import pytest
from pydantic import ValidationError
from rich.console import Console

from nelm.assessment import assess
from nelm.evidence import DOI_PATTERN, EVIDENCE_DIR, PMID_PATTERN, EvidenceRecord, evidence_index, load_records
from nelm.evidence_view import render_table
from nelm.knowledge import KNOWLEDGE_DIR, load
from nelm.report import evidence_rows
from nelm.testing import make_patient
from nelm.yamlio import read_yaml

KB = load()
RECORDS = load_records()
BY_ID = {r.id: r for r in RECORDS}

FORBIDDEN = ("from memory", "as we recall", "we recall", "recalled", "should be checked", "unknown journal")


def _raw_records():
    for path in sorted(EVIDENCE_DIR.glob("*.yaml")):
        for rec in (read_yaml(path) or {}).get("records", []):
            yield path.name, rec


def test_every_record_states_its_verification_explicitly():
    for name, rec in _raw_records():
        assert rec.get("verified") in ("source", "review", "unverified"), f"{name}: {rec['id']}"


def test_verified_is_required_by_the_schema():
    raw = next(rec for _, rec in _raw_records())
    data = {k: v for k, v in raw.items() if k != "verified"}
    with pytest.raises(ValidationError):
        EvidenceRecord.model_validate(data)


@pytest.mark.parametrize("field,bad", [("doi", "doi:10.1000/x"), ("doi", "11.1000/x"), ("doi", "10.1/x"),
                                       ("pmid", "PMID123"), ("pmid", "0123"), ("pmid", "12 34")])
def test_malformed_identifiers_are_refused(field, bad):
    raw = next(rec for _, rec in _raw_records())
    with pytest.raises(ValidationError):
        EvidenceRecord.model_validate({**raw, field: bad})


def test_identifiers_are_well_formed_and_unique():
    dois = [r.doi for r in RECORDS if r.doi]
    pmids = [r.pmid for r in RECORDS if r.pmid]
    assert all(re.fullmatch(DOI_PATTERN, d) for d in dois)
    assert all(re.fullmatch(PMID_PATTERN, p) for p in pmids)
    assert len(dois) == len(set(d.lower() for d in dois)), "one DOI on two records"
    assert len(pmids) == len(set(pmids)), "one PMID on two records"
    assert len(dois) >= 20 and len(pmids) >= 10


def test_identifiers_only_on_checked_records():
    # a DOI or PMID is given only when a retrieved page confirmed it, i.e. on source-checked records
    for r in RECORDS:
        if r.doi or r.pmid:
            assert r.verified == "source", r.id


def test_identifier_links():
    r = BY_ID["e2211"]
    assert r.doi_url == "https://doi.org/10.1200/JCO.22.01013"
    assert r.pubmed_url == "https://pubmed.ncbi.nlm.nih.gov/36260828/"
    assert BY_ID["esmo2020"].doi_url is None and BY_ID["esmo2020"].pubmed_url is None


def test_no_from_memory_wording_anywhere_in_the_knowledge_folder():
    offenders = []
    for path in sorted(KNOWLEDGE_DIR.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8").lower()
        offenders += [f"{path.relative_to(KNOWLEDGE_DIR)}: {w!r}" for w in FORBIDDEN if w in text]
    assert not offenders, offenders


def test_the_source_reviews_are_labelled_plainly():
    assert BY_ID["mayo2012_review"].citation.journal == "J Am Coll Surg"
    assert "Mayo SC" in BY_ID["mayo2012_review"].citation.authors
    r2 = BY_ID["review002"].citation
    assert "not established" in r2.authors and r2.journal == "source review of this knowledge base"
    assert not any(r.citation.journal.lower().startswith("unknown") for r in RECORDS)


def test_every_guideline_variant_rests_on_source_checked_records():
    """A variant of a guideline profile (manifest) changes verdicts when that profile governs: all of its
    sources must be source-checked. Other labelled variants (a study's threshold as a review reports it)
    need at least one source-checked record and none unverified."""
    profiles = set(KB.manifest.guidelines)
    variants = [(d.name, v) for d in KB.derived for v in d.variants]
    variants += [(f"{cs.id}.{it.id}", v) for cs in KB.criteria for it in cs.items for v in it.variants]
    assert variants
    for where, v in variants:
        states = {s: BY_ID[s].verified for s in v.sources}
        if v.guideline in profiles:
            # a source review's own profile rests on that review's text, even where the review's identity is not
            # established (review 002, identity: unknown); every other source must be source-checked
            own = {s for s in v.sources if s == v.guideline and BY_ID[s].identity == "unknown"}
            assert {st for s, st in states.items() if s not in own} <= {"source"}, (where, v.guideline, states)
        else:
            assert "source" in states.values() and "unverified" not in states.values(), (where, v.guideline, states)


def test_unconfirmed_guideline_variants_are_gone():
    guidelines = {v.guideline for d in KB.derived for v in d.variants}
    guidelines |= {v.guideline for cs in KB.criteria for it in cs.items for v in it.variants}
    assert not guidelines & {"esmo2020", "enets2023"}
    assert "sarmiento2003" in guidelines  # review_000: debulking when 80 % can be removed


def test_the_new_trial_records_are_all_source_checked():
    new = [rec for name, rec in _raw_records() if name == "newer_trials.yaml"]
    assert {r["id"] for r in new} >= {"brabander2017", "sanet_p", "sanet_ep", "spinet", "seqtor", "oclurandom"}
    for rec in new:
        r = BY_ID[rec["id"]]
        assert r.verified == "source" and r.newer_than_sources, r.id
    for rid in ("sanet_p", "sanet_ep"):
        assert "NOT APPROVED IN EUROPE OR THE US" in BY_ID[rid].summary


def test_the_cli_table_marks_unverified_records_and_links_identifiers():
    console = Console(file=StringIO(), width=200, force_terminal=False, color_system=None)
    render_table([BY_ID["platinum_nec"], BY_ID["e2211"]], console)
    out = console.file.getvalue()
    assert "UNVERIFIED" in out and "source-checked" in out
    assert "doi:10.1200/JCO.22.01013" in out and "PMID 36260828" in out
    assert "level 2b" in out


def test_the_report_rows_carry_verification_and_identifier_links():
    a = assess(make_patient())
    rows = {r["id"]: r for r in evidence_rows(a)}
    assert rows
    for rid, row in rows.items():
        assert row["verified"] == BY_ID[rid].verified
        assert row["doi_url"] == BY_ID[rid].doi_url and row["pubmed_url"] == BY_ID[rid].pubmed_url


def test_the_report_html_marks_unverified_sources():
    from nelm.report import build_html

    a = assess(make_patient())
    rows = evidence_rows(a)
    html = build_html(make_patient(), a)
    section = html[html.index('id="evidence"'):]
    if any(r["verified"] == "unverified" for r in rows):
        assert "UNVERIFIED" in section
    for r in rows:
        if r["doi"]:
            assert f'href="https://doi.org/{r["doi"]}"' in section


@pytest.fixture
def client(tmp_path):
    from nelm.web import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    app = create_app(f"sqlite:///{tmp_path / 'cases.sqlite3'}", allowed_hosts=["testserver"])
    with TestClient(app) as c:
        yield c


def test_the_web_evidence_pages_show_level_verification_and_links(client):
    listing = client.get("/evidence").text
    assert "unverified" in listing and 'href="https://doi.org/10.1200/JCO.22.01013"' in listing
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/36260828/"' in listing
    page = client.get("/evidence/platinum_nec").text
    assert "Unverified record." in page
    page = client.get("/evidence/e2211").text
    assert "Level of evidence" in page and "checked against the publication or its abstract" in page
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/36260828/"' in page
    assert evidence_index()["e2211"].verified == "source"


def _gate(gid):
    gates = read_yaml(KNOWLEDGE_DIR / "gates.yaml")["gates"]
    return next(g for g in gates if g["id"] == gid)


def test_therapy_history_gates_rest_on_checked_sources():
    """The progressed-on and not-tolerated gates once cited only the unverified ESMO 2020 record; each now cites
    checked studies that enrolled or treated patients after progression on (or intolerance of) an earlier therapy."""
    progressed, intolerant = _gate("progressed_on_this_drug"), _gate("not_tolerated")
    assert {"netter1_2017", "cabinet", "hentic2012"} <= set(progressed["sources"])
    assert {"cabinet", "hentic2012"} <= set(intolerant["sources"])
    for gate in (progressed, intolerant):
        assert "source" in {BY_ID[s].verified for s in gate["sources"]}, gate["id"]
    assert "intolerance of" in BY_ID["cabinet"].population


def test_platinum_rules_rest_on_checked_sources():
    opt = next(o for o in KB.options if o.id == "platinum_etoposide")
    rules = {r.id: r for r in opt.rules}
    assert "enets2023_nec" in rules["neuroendocrine_carcinoma"].sources
    assert {"net_g3_first_line_2021", "nordic_nec2_2025"} <= set(rules["net_grade_3_first_line"].sources)
    assert "net_g3_first_line_2021" in rules["net_grade_3_highest_proliferation"].sources
    assert BY_ID["platinum_nec"].verified == "unverified"  # Moertel 1991 / NORDIC NEC abstracts still not retrieved


def test_second_line_and_net_g3_records_as_retrieved():
    h = BY_ID["hentic2012"]
    # DOI added in the 2026 identifier pass (doi.org resolver copy; see test_evidence_identifiers.py); no PMID found
    assert (h.verified, h.n, h.doi, h.pmid) == ("source", 19, "10.1530/ERC-12-0002", None)
    assert {(o.endpoint, o.value) for o in h.outcomes} >= {("objective_response", 31), ("pfs_median", 4)}
    g3 = BY_ID["net_g3_first_line_2021"]
    assert (g3.verified, g3.doi, g3.n) == ("source", "10.3390/cancers13081936", 142)
    pe = next(o for o in g3.outcomes if "platinum-etoposide" in o.arm)
    assert pe.value == 35.1
