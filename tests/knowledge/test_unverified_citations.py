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

# Pinned 2026 (evidence pass 5). Each line: where the statement lives -> why no checked record is cited yet.
KNOWN_UNVERIFIED = {
    # Surveillance for stable, asymptomatic low-grade pancreatic NET: the ESMO 2020 and ENETS 2023 records behind it
    # could not be checked against their texts, and no checked record speaks to watch-and-wait in this setting.
    "pathway pancreatic_g1g2 nothing_now": "esmo2020, enets2023_liver unverified",
}


@cache
def states() -> dict[str, str]:
    return {r.id: r.verified for r in load_records()}


def _cited() -> list[tuple[str, list[str]]]:
    """(where, sources) for every gate, option rule (shared groups included), otherwise, criterion item, pathway,
    pathway step, 'nothing now' advice and plan assumption."""
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
