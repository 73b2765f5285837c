"""Statements that rest on no source-checked record.

Every gate, option rule (and its `otherwise`), criterion item and pathway step cites evidence records; a
clinician can trace a statement to a publication only when at least one of those records was checked against
the publication or its abstract (`verified: source`). This module lists the statements whose sources are all
`review` or `unverified`, and pins that list: a new statement must cite a checked record, and when one of the
listed statements gains a checked source it is taken off the list here.

Run as a script to print the list with each source's verification state:
    PYTHONPATH=src python tests/knowledge/test_unverified_citations.py
"""
from __future__ import annotations

from functools import cache

from nelm.evidence import EVIDENCE_DIR, load_records
from nelm.knowledge import KNOWLEDGE_DIR
from nelm.yamlio import read_yaml

REVIEW002_ONLY = "review 002 only: a source of unknown identity (identity: unknown), not source-checked"

# Pinned 2026 (evidence pass 5). Each line: where the statement lives -> why no checked record is cited yet.
KNOWN_UNVERIFIED = {
    # Surveillance for stable, asymptomatic low-grade pancreatic NET: the ESMO 2020 and ENETS 2023 records behind it
    # could not be checked against their texts, and no checked record speaks to watch-and-wait in this setting.
    "pathway pancreatic_g1g2 nothing_now": "esmo2020, enets2023_liver unverified",
    # Merged from main (plan v3 assumptions): they cite review 002 beside records that are not source-checked either.
    "pathway assumption liver.lesion_count": REVIEW002_ONLY,
    "pathway assumption liver.pattern": REVIEW002_ONLY,
    # Issue 19: review 002's identity is not established (our copy lacks its title page), so it is no longer
    # counted as source-checked; these statements rest on it (and on no other checked record) and say so.
    "gate repeat_embolization": REVIEW002_ONLY,
    # the knowledge base's default interval (red-line test, session 15), beside review 002's "worthwhile time"
    "gate repeat_after_short_liver_control": REVIEW002_ONLY,
    "rule ssa.neuroendocrine_carcinoma": REVIEW002_ONLY,
    "rule ssa.curative_resection_planned": REVIEW002_ONLY,
    "rule ssa.no_shrinkage": REVIEW002_ONLY,
    "rule ssa.otherwise": REVIEW002_ONLY,
    "rule interferon_alpha.neuroendocrine_carcinoma": REVIEW002_ONLY,
    "rule interferon_alpha.curative_resection_available": REVIEW002_ONLY,
    "rule interferon_alpha.carcinoid_syndrome": REVIEW002_ONLY,
    "rule interferon_alpha.otherwise": REVIEW002_ONLY,
    "rule capecitabine_temozolomide.over_75_percent_liver": REVIEW002_ONLY,
    "rule capecitabine_temozolomide.curative_resection_available": REVIEW002_ONLY,
    "rule streptozocin_based.over_75_percent_liver": REVIEW002_ONLY,
    "rule streptozocin_based.curative_resection_available": REVIEW002_ONLY,
    "rule clinical_trial.otherwise": REVIEW002_ONLY,
    "rule group arterial_exclusions.pvt_or_impaired_liver": REVIEW002_ONLY,
    "rule group arterial_indications.progressive_liver_disease": REVIEW002_ONLY,
    "rule group arterial_indications.unresectable_liver_disease": REVIEW002_ONLY,
    "rule tae.high_grade_prefers_tace": REVIEW002_ONLY,
    "rule tae.otherwise": REVIEW002_ONLY,
    "rule tace.high_grade_net": REVIEW002_ONLY,
    "rule tace.first_line_response": REVIEW002_ONLY,
    "rule tace.otherwise": REVIEW002_ONLY,
    "rule sirt.disseminated_without_syndrome": REVIEW002_ONLY,
    "rule sirt.disseminated_hormonal_palliation": REVIEW002_ONLY,
    "rule sirt.only_arterial_option": REVIEW002_ONLY,
    "rule sirt.works_best_below_50": REVIEW002_ONLY,
    "rule sirt.limited_availability": REVIEW002_ONLY,
    "rule sirt.otherwise": REVIEW002_ONLY,
    "rule prrt.curative_resection_available": REVIEW002_ONLY,
    "rule prrt.stable_disease": REVIEW002_ONLY,
    "rule prrt.cytoreductive_potential": REVIEW002_ONLY,
    "rule prrt.otherwise": REVIEW002_ONLY,
    "rule liver_resection.right_heart_failure": REVIEW002_ONLY,
    "rule liver_resection.diffuse_peritoneal_disease": REVIEW002_ONLY,
    "rule thermal_ablation.pvt_or_impaired_liver": REVIEW002_ONLY,
    "rule thermal_ablation.disseminated_type_iii": REVIEW002_ONLY,
    # Session 10 board review: curative ablation beside unremovable extrahepatic disease rests on the ENETS
    # conditions for curative liver surgery, which only review 002 (and the unverified ENETS 2012 record) gives,
    # as for liver_resection.diffuse_peritoneal_disease and the enets_curative_resection items.
    "rule thermal_ablation.extrahepatic_disease_left_behind": REVIEW002_ONLY,
    # Real-patient review: curative resection of a NET G3 beside unremovable nodal or distant deposits, the same ENETS
    # condition for curative liver surgery, given by review 002 only.
    "rule liver_resection.net_g3_extrahepatic_left_behind": REVIEW002_ONLY,
    "rule group targeted_exclusions.neuroendocrine_carcinoma": REVIEW002_ONLY,
    "rule group targeted_exclusions.curative_resection_available": REVIEW002_ONLY,
    "criterion enets_curative_resection.resectable_g1_g2": REVIEW002_ONLY,
    "criterion enets_curative_resection.no_right_heart_insufficiency": REVIEW002_ONLY,
    "criterion enets_curative_resection.no_unresectable_nodal_or_extra_abdominal": REVIEW002_ONLY,
    "criterion enets_curative_resection.no_diffuse_peritoneal_carcinomatosis": REVIEW002_ONLY,
    "criterion milan_transplant.primary_removed": REVIEW002_ONLY,
    "criterion milan_transplant.no_extrahepatic_disease": REVIEW002_ONLY,
    "pathway assumption liver.resectable": REVIEW002_ONLY,
    "pathway assumption extrahepatic.resectable": REVIEW002_ONLY,
    "pathway assumption extrahepatic.peritoneal_carcinomatosis": REVIEW002_ONLY,
    "pathway ablation_instead_of_surgery nothing_now": REVIEW002_ONLY,
}


@cache
def states() -> dict[str, str]:
    return {r.id: r.verified for r in load_records()}


def _cited() -> list[tuple[str, list[str]]]:
    """(where, sources) for every gate, option rule (shared groups included), otherwise, criterion item, pathway,
    pathway step, 'nothing now' advice, choice between options and plan assumption."""
    out: list[tuple[str, list[str]]] = []
    for g in read_yaml(KNOWLEDGE_DIR / "gates.yaml")["gates"]:
        out.append((f"gate {g['id']}", g["sources"]))
    for path in sorted((KNOWLEDGE_DIR / "rules").glob("*.yaml")):
        data = read_yaml(path)
        for group, rules in (data.get("groups") or {}).items():   # shared rules, pulled in with `use:`
            for r in rules:
                out.append((f"rule group {group}.{r['id']}", r["sources"]))
        for opt in data["options"]:
            for r in opt.get("rules", []):
                if "use" in r:
                    continue
                out.append((f"rule {opt['id']}.{r['id']}", r["sources"]))
            if opt.get("otherwise"):
                out.append((f"rule {opt['id']}.otherwise", opt["otherwise"]["sources"]))
    for path in sorted((KNOWLEDGE_DIR / "criteria").glob("*.yaml")):
        cs = read_yaml(path)
        for it in cs["items"]:
            out.append((f"criterion {cs['id']}.{it['id']}", it["sources"]))
    pathways = read_yaml(KNOWLEDGE_DIR / "pathways.yaml")
    for c in pathways.get("choices", []):
        out.append((f"pathway choice {c['id']}", c["sources"]))
    for a in pathways["assumptions"]:
        out.append((f"pathway assumption {a['field']}", a["sources"]))
    for pw in pathways["pathways"]:
        out.append((f"pathway {pw['id']}", pw["sources"]))
        out.append((f"pathway {pw['id']} nothing_now", pw["nothing_now"]["sources"]))
        for i, step in enumerate(pw["steps"], start=1):
            out.append((f"pathway {pw['id']} step {i}", step["sources"]))
    return out


def unverified_citations() -> list[tuple[str, list[str]]]:
    """Statements none of whose sources is source-checked, in file order."""
    st = states()
    return [(where, srcs) for where, srcs in _cited() if all(st[s] != "source" for s in srcs)]


def test_the_walk_finds_every_kind_of_statement():
    kinds = {where.split()[0] for where, _ in _cited()}
    assert kinds == {"gate", "rule", "criterion", "pathway"}
    assert len(_cited()) > 150


def test_statements_without_a_source_checked_record_are_exactly_the_pinned_ones():
    found = {where for where, _ in unverified_citations()}
    new = sorted(found - set(KNOWN_UNVERIFIED))
    assert not new, f"statements citing no source-checked record (cite a checked one): {new}"
    fixed = sorted(set(KNOWN_UNVERIFIED) - found)
    assert not fixed, f"now cite a checked record, take them off KNOWN_UNVERIFIED: {fixed}"


if __name__ == "__main__":
    for where, srcs in unverified_citations():
        print(f"{where:55s} {', '.join(f'{s} ({states()[s]})' for s in srcs)}")
