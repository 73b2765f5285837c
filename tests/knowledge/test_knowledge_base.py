"""The knowledge base as a whole: loads, is consistent, is versioned, cites what exists."""
from collections import Counter

import pytest

from nelm.assessment import assess
from nelm.evidence import load_records
from nelm.knowledge import KNOWLEDGE_DIR, content_hash, load
from nelm.testing import make_patient
from nelm.yamlio import read_yaml

KB = load()
RECORDS = load_records()


def cited_ids() -> set[str]:
    ids: set[str] = set()
    for d in KB.derived:
        ids |= set(d.sources) | {s for v in d.variants for s in v.sources}
    for cs in KB.criteria:
        ids |= set(cs.sources)
        for it in cs.items:
            ids |= set(it.sources) | {s for v in it.variants for s in v.sources}
    for o in KB.options:
        ids |= set(o.otherwise.sources)
        for r in o.rules:
            ids |= set(r.sources)
    for c in KB.checks:
        ids |= set(c.sources)
    for a in KB.assumptions:
        ids |= set(a.sources)
    for c in KB.choices:
        ids |= set(c.sources)
    for pw in KB.pathways:
        ids |= set(pw.sources) | set(pw.nothing_now.sources) | {s for st in pw.steps for s in st.sources}
    outcomes = KNOWLEDGE_DIR / "outcomes.yaml"
    if outcomes.exists():
        text = outcomes.read_text()
        ids |= {r.id for r in RECORDS if r.id in text}
    return ids


def test_record_count_per_modality(capsys):
    counts = Counter(t for r in RECORDS for t in r.topics)
    with capsys.disabled():
        print("\nevidence records per topic: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for topic, minimum in {"liver_resection": 10, "liver_transplant": 5, "sirt": 5, "prrt": 5, "ssa": 4,
                           "everolimus": 3, "sunitinib": 1, "capecitabine_temozolomide": 3, "streptozocin_based": 2,
                           "thermal_ablation": 2, "tace": 2, "ebrt": 1, "interferon_alpha": 1, "cabozantinib": 1}.items():
        assert counts[topic] >= minimum, topic


def test_ids_are_unique_and_every_citation_resolves():
    ids = [r.id for r in RECORDS]
    assert len(ids) == len(set(ids))
    assert cited_ids() <= set(ids)


def test_every_record_is_cited_or_listed_as_background():
    background = read_yaml(KNOWLEDGE_DIR / "background.yaml")["background"]
    assert set(background) <= {r.id for r in RECORDS}
    assert not set(background) & cited_ids(), "a cited record need not be listed as background"
    uncited = {r.id for r in RECORDS} - cited_ids() - set(background)
    assert not uncited, f"records neither cited nor background: {sorted(uncited)}"


def test_newer_trials_are_marked():
    newer = {r.id for r in RECORDS if r.newer_than_sources}
    assert {"netter1_final_os", "netter2", "cabinet", "e2211", "compete", "clarinet_ole", "esmo2020",
            "enets2023_liver"} <= newer
    assert "mayo2010" not in newer and "promid2009" not in newer


def test_guideline_criteria_sets_are_records_too():
    by_id = {r.id: r for r in RECORDS}
    for rid in ("enets2012_resection", "mazzaferro2007", "esmo2020"):
        assert by_id[rid].criteria, rid


def test_no_nccn_text_is_carried():
    # NCCN's licence forbids reuse: records may say what NCCN concluded, never quote it.
    for r in RECORDS:
        blob = r.model_dump_json()
        assert "NCCN Guidelines" not in blob or r.id == "nccn2012_transplant"
    nccn = next(r for r in RECORDS if r.id == "nccn2012_transplant")
    assert '"' not in (nccn.summary or "")


def test_every_assessment_prints_version_and_hash():
    a = assess(make_patient())
    assert a["knowledge_base"]["version"] == KB.version
    assert a["knowledge_base"]["sha256"] == content_hash() == KB.sha256


def test_same_input_same_output():
    assert assess(make_patient()) == assess(make_patient())


def test_hash_changes_when_a_file_changes(tmp_path, monkeypatch):
    before = content_hash()
    path = KNOWLEDGE_DIR / "manifest.yaml"
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# touched\n")
        assert content_hash() != before
    finally:
        path.write_bytes(original)
    assert content_hash() == before


@pytest.mark.parametrize("guideline", list(KB.manifest.guidelines))
def test_every_guideline_profile_loads_and_assesses(guideline):
    a = assess(make_patient(), guideline)
    assert a["knowledge_base"]["guideline"] == guideline


def test_every_variant_names_a_known_source():
    sources = set(KB.manifest.guidelines) | {"who2010_table1", "sarmiento2003"}
    for _, g, _ in KB.variant_nodes:
        assert g in sources
