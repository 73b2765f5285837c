"""Every text an assessment can show a person reads as clinical prose (issue 8, item 6):
no internal identifiers (snake_case names such as net_g1g2, option or field ids), no
template leftovers, no unit after an unknown value ("Ki-67 unknown %")."""
import random
import re

import pytest

from nelm.assessment import assess
from nelm.patient import validate_patient
from nelm.testing import perturbed_patient_dict, random_patient_dict

SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
UNIT_AFTER_UNKNOWN = re.compile(r"\bunknown ?(%|cm\b|months?\b|years?\b|mg/dL|mL/min|×10⁹/L|/10 HPF)")
LEFTOVER = re.compile(r"[{}]|rule__|\bNone\b|\bTrue\b|\bFalse\b")


def texts(a):
    """(where, text) for every sentence of an assessment meant for a person."""
    for cid, cs in a["criteria"].items():
        yield f"criteria {cid}", cs["label"]
        for it in cs["items"]:
            yield f"criteria {cid}.{it['id']}", it["text"]
            yield f"criteria {cid}.{it['id']} reason", it["reason"]
    for o in a["options"]:
        yield f"option {o['id']} label", o["label"]
        for r in o["reasons"]:
            yield f"option {o['id']} reason {r.get('rule')}", r["text"]
        for c in o.get("conditions", []):
            yield f"option {o['id']} condition", c["requirement"]
    for m in a["missing_data"]:
        yield f"missing {m['field']}", m["label"]
        yield f"missing {m['field']} obtain", m["obtain"]
    plan = a["plan"]
    for s in plan["steps"]:
        yield f"plan step {s['step']}", s["reason"]
    for x in plan.get("assumptions", []):
        yield f"plan assumption {x['field']}", x["if_not"]
        yield f"plan assumption {x['field']} label", x["label"]
    for label in plan.get("missing_labels", []):
        yield "plan missing", label
    if plan.get("pathway_label"):
        yield "plan pathway", plan["pathway_label"]


def patients(n):
    rng = random.Random(2026)
    for i in range(n):
        if i % 3 == 0:
            yield perturbed_patient_dict(rng, rng.randrange(1, 6))
        else:
            yield random_patient_dict(rng, [0.0, 0.2, 0.5, 0.8][i % 4])


@pytest.mark.parametrize("chunk", range(4))
def test_no_internal_names_or_template_leftovers_in_any_text(chunk):
    problems = {}
    for i, doc in enumerate(patients(2000)):
        if i % 4 != chunk:
            continue
        for where, text in texts(assess(validate_patient(doc))):
            for rx in (SNAKE, UNIT_AFTER_UNKNOWN, LEFTOVER):
                hit = rx.search(text)
                if hit:
                    problems.setdefault((where, hit.group(0)), text)
    assert not problems, "\n".join(f"{w} «{h}»: {t[:160]}" for (w, h), t in list(problems.items())[:15])


def test_the_scanner_catches_what_it_looks_for():
    assert SNAKE.search("[net_g1g2: yes; enets_curative_resection: not met]")
    assert UNIT_AFTER_UNKNOWN.search("Ki-67 unknown % and largest lesion unknown cm")
    assert LEFTOVER.search("grade {who_grade}") and LEFTOVER.search("fit: None")
    assert not SNAKE.search("Ki-67 under 10 %, G1/G2, 177Lu-DOTATATE, NETTER-1")
