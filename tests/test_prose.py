"""Every text an assessment can show a person reads as clinical prose (issue 8, item 6):
no internal identifiers (snake_case names such as net_g1g2, option or field ids), no
template leftovers, no unit after an unknown value ("Ki-67 unknown %"), and (issue 21,
item 1) no parenthesised dump of the inputs a rule read ("(fit: no; ECOG 0)"): those stay
in each reason's structured ``facts``."""
import random
import re

import pytest

from nelm.assessment import assess
from nelm.patient import validate_patient
from nelm.summary import depends_line
from nelm.testing import perturbed_patient_dict, random_patient_dict

SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
UNIT_AFTER_UNKNOWN = re.compile(r"\bunknown ?(%|cm\b|months?\b|years?\b|mg/dL|mL/min|×10⁹/L|/10 HPF)")
# Python's None/True/False where a value was formatted ("fit: None"); "None of the treatments ..." is English
LEFTOVER = re.compile(r"[{}]|rule__|\bNone\b(?! of\b)|\bTrue\b|\bFalse\b")
# a list announced by a colon with nothing in it (board review 9: "... rest on facts assumed until confirmed: .")
EMPTY_LIST = re.compile(r":\s*[.;]")
# an unknown value dropped into a sentence built for a known one (board review 10: "Primary in the unknown",
# "progressed unknown after this procedure")
UNKNOWN_IN_PROSE = re.compile(r"\bin the unknown\b|\bprogressed unknown\b")
_BOOL_FACT = re.compile(r": (yes|no|met|not met)$")
_NESTED = re.compile(r"\([^()]*\)")


def fact_dump(text: str) -> str | None:
    """The first parenthesised group that lists facts as "label: value" pairs, as the engine
    used to append to every reason: two or more pairs with short values ("(fit: no; ECOG 0)",
    "(Ki-67: 12 %, ECOG: 1)"), or one yes/no/met fact ("(Symptomatic (hormonal or bulk): no)").
    A source's statement in parentheses ("(review 000's Table 3: 6 months before transplantation;
    …)") is prose, not a dump."""
    stack = []
    for i, ch in enumerate(text):
        if ch == "(":
            stack.append(i)
        elif ch == ")" and stack:
            group = text[stack.pop() + 1:i]
            flat = _NESTED.sub("", group)
            pairs = [seg.split(": ", 1) for seg in re.split(r"[;,] ", flat) if ": " in seg]
            short = [v for _, v in pairs if len(v.split()) <= 3]
            if len(short) >= 2 or any(_BOOL_FACT.search(f": {v.strip()}") for _, v in pairs):
                return f"({group})"
    return None


class _Dump:
    """fact_dump with the interface of a compiled pattern (``search`` → match-like or None)."""

    def search(self, text):
        got = fact_dump(text)
        return None if got is None else type("Hit", (), {"group": lambda self, i=0: got})()


DUMP = _Dump()


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
    for b, branch in enumerate(plan.get("branches") or []):  # contract v3, when the engine gives them
        for cond in branch.get("if", []):
            yield f"plan branch {b} if", cond.get("label") or ""
        for s in branch.get("steps", []):
            yield f"plan branch {b} step {s['step']}", s.get("reason", "")
    for w in plan.get("workup") or []:
        yield "plan workup order", w.get("order") or ""
        yield "plan workup decides", w.get("decides") or ""
    for o in a["options"]:
        if o["verdict"] == "undetermined":
            yield f"option {o['id']} depends", depends_line(o, a)


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
            for rx in (SNAKE, UNIT_AFTER_UNKNOWN, LEFTOVER, DUMP, EMPTY_LIST, UNKNOWN_IN_PROSE):
                hit = rx.search(text)
                if hit:
                    problems.setdefault((where, hit.group(0)), text)
    assert not problems, "\n".join(f"{w} «{h}»: {t[:160]}" for (w, h), t in list(problems.items())[:15])


def test_the_scanner_catches_what_it_looks_for():
    assert SNAKE.search("[net_g1g2: yes; enets_curative_resection: not met]")
    assert UNIT_AFTER_UNKNOWN.search("Ki-67 unknown % and largest lesion unknown cm")
    assert LEFTOVER.search("grade {who_grade}") and LEFTOVER.search("fit: None")
    assert not LEFTOVER.search("None of the tumour-directed treatments fits today.")
    assert EMPTY_LIST.search("Its other options rest on facts assumed until confirmed: .")
    assert not EMPTY_LIST.search("rest on facts assumed until confirmed: Ki-67 below 20 %.")
    assert UNKNOWN_IN_PROSE.search("Primary in the unknown, not drained by the portal system")
    assert UNKNOWN_IN_PROSE.search("The liver disease progressed unknown after this procedure")
    assert not UNKNOWN_IN_PROSE.search("Primary site unknown, not drained by the portal system")
    assert not SNAKE.search("Ki-67 under 10 %, G1/G2, 177Lu-DOTATATE, NETTER-1")
    # the dumps the engine used to append, and what a clinical sentence may still hold
    assert fact_dump("Resection. (Symptomatic (hormonal or bulk): no)")
    assert fact_dump("Not fit for major liver surgery (fit: no; ECOG 0).")
    assert fact_dump("x (well-differentiated G1/G2 NET: yes; Somatostatin-receptor imaging: positive (uptake))")
    assert fact_dump("(Ki-67: 12 %, ECOG: 1)")
    assert not fact_dump("35 % of the liver involved, no symptoms: no survival advantage (median 16.7 vs 18.5 months, "
                         "p=0.78, Mayo 2011).")
    assert not fact_dump("After platinum-etoposide (earlier outcome: progression): second-line chemotherapy follows.")
    assert not fact_dump("stable for 12 months (review 000's Table 3: 6 months before transplantation; the Milan "
                         "group's 2023 statement: 3-6 months of stability observed before listing)")
    assert not fact_dump("(the nearest retrieved limits: RETNET's 2.0 mg/dL for embolization; a secondary page's "
                         "about 2 mg/dL for radioembolization, unverified)")


def test_an_undetermined_option_says_in_one_line_what_it_depends_on():
    from nelm.testing import patient_dict

    # NET or NEC unknown (no differentiation, no index), SSTR imaging and the course unknown
    a = assess(validate_patient(patient_dict(**{"sstr_imaging": ..., "course.status": ...,
                                                "course.progression_within_12_months": ...,
                                                "pathology.differentiation": ..., "pathology.ki67_percent": ...,
                                                "pathology.mitoses_per_10hpf": ...})))
    undecided = [o for o in a["options"] if o["verdict"] == "undetermined"]
    assert undecided
    for o in undecided:
        line = depends_line(o, a)
        assert "\n" not in line and line.startswith("Depends on ")
        assert "Would be" not in line and "if this holds" not in line
    prrt = next(o for o in a["options"] if o["id"] == "prrt")
    assert prrt["verdict"] == "undetermined" and "somatostatin-receptor imaging" in depends_line(prrt, a).lower()
    # the rule-by-rule logic stays in the JSON: each open rule's verdict and what it waits for
    assert any(r.get("unknown") and r.get("verdict_if_true") for r in prrt["reasons"])
    assert all("Would be" not in r["text"] for o in a["options"] for r in o["reasons"])


# ------------------------------------------------------------------ the command line's texts (issue 21)

def test_cli_text_cites_author_year_and_explain_shows_the_rule_logic(tmp_path):
    from pathlib import Path

    from typer.testing import CliRunner

    from nelm.cli import app

    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.json"))
    runner = CliRunner()
    res = runner.invoke(app, ["assess", str(examples[0]), str(examples[1])], env={"COLUMNS": "120"})
    assert res.exit_code == 0, res.output
    assert res.output.count("Treatment plan") == 2  # several files: each assessed
    assert "review002" not in res.output and "mayo2010" not in res.output  # author-year, not ids
    assert "Mayo 20" in res.output
    explained = runner.invoke(app, ["assess", str(examples[1]), "--explain"], env={"COLUMNS": "120"})
    assert explained.exit_code == 0 and "read: " in explained.output
    both = runner.invoke(app, ["assess", str(examples[0]), str(examples[1]), "--format", "json"])
    import json

    docs = json.loads(both.output)
    assert isinstance(docs, list) and len(docs) == 2 and docs[0]["options"][0]["reasons"][0]["sources"]


def test_cli_evidence_fits_a_narrow_terminal():
    from typer.testing import CliRunner

    from nelm.cli import app

    res = CliRunner().invoke(app, ["evidence", "--option", "prrt"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert max(len(line) for line in res.output.splitlines()) <= 80
    assert "Strosberg 2017" in res.output


def test_cli_sql_write_table_writes_the_table_the_view_reads(tmp_path):
    import polars as pl
    from typer.testing import CliRunner

    from nelm.cli import app
    from nelm.screen.sql import sql_table
    from nelm.screen.synth import synthesize, write_table

    patients = synthesize(300, seed=3, unknown_fraction=0.2)
    write_table(patients, tmp_path / "p.csv")
    res = CliRunner().invoke(app, ["sql", "--write-table", str(tmp_path / "p.csv"), "--out", str(tmp_path / "t.parquet")])
    assert res.exit_code == 0, res.output
    got = pl.read_parquet(tmp_path / "t.parquet")
    expected = sql_table(patients.with_row_index("__row", offset=1))
    assert got.columns == expected.columns and got.height == 300
    for c in expected.columns:
        assert got[c].cast(pl.String).to_list() == expected[c].cast(pl.String).to_list(), c
