"""Checks parametrized over every option and every rule of the knowledge base."""
import random

import polars as pl
import pytest

from nelm.engine import evaluate_frame, first_rule, patients_frame
from nelm.knowledge import load, placeholders, rule_column
from nelm.patient import OPTION_IDS, flatten, validate_patient
from nelm.testing import perturbed_patient_dict, random_patient_dict

KB = load()
RULES = [(o.id, r.id) for o in KB.options for r in o.rules]
DECIDING = [(o.id, r.id) for o in KB.options for r in o.deciding]


HISTORIES = [
    [{"therapy": "ssa", "outcome": "stable", "ongoing": True}],
    [{"therapy": "ssa", "outcome": "response", "ongoing": True}],
    [{"therapy": "ssa", "outcome": "progression", "ongoing": True}],
    [{"therapy": "ssa", "outcome": "progression", "ongoing": True}, {"therapy": "prrt", "outcome": "progression",
                                                                      "months_to_progression": 24}],
    [{"therapy": "ssa", "outcome": "progression", "ongoing": True}, {"therapy": "everolimus", "outcome": "intolerance"}],
    [{"therapy": "ssa", "outcome": "progression"}, {"therapy": "everolimus", "outcome": "progression"},
     {"therapy": "prrt", "outcome": "progression", "months_to_progression": 12}],
    [{"therapy": "ssa", "outcome": "progression"}, {"therapy": "sunitinib", "outcome": "progression"}],
    [{"therapy": "capecitabine_temozolomide", "outcome": "progression"}],
]


def _population(n: int, unknown_share: float, seed: int) -> pl.DataFrame:
    rng = random.Random(seed)
    docs = [random_patient_dict(rng, unknown_share) for _ in range(n)]
    return _with_first_rules(evaluate_frame(patients_frame([flatten(validate_patient(d)) for d in docs]), KB))


def _with_first_rules(frame: pl.DataFrame) -> pl.DataFrame:
    """Which deciding rule held first, per option (the verdicts themselves do not need it)."""
    return frame.with_columns([first_rule(o) for o in KB.options])


@pytest.fixture(scope="module")
def known():
    """Random fully known patients, and neighbours of an ordinary patient, evaluated as one table."""
    rng = random.Random(2028)
    near = [perturbed_patient_dict(rng, rng.randrange(1, 5)) for _ in range(8000)]
    # neighbours with a treatment history a board sees often (analogue, then other lines): independent
    # draws rarely make one, and the rules of later lines and of disease stable on an analogue read it
    for _ in range(4000):
        doc = perturbed_patient_dict(rng, rng.randrange(1, 5))
        doc["prior_therapies"] = [h for h in rng.choice(HISTORIES)]
        near.append(doc)
    near_frame = _with_first_rules(evaluate_frame(patients_frame([flatten(validate_patient(d)) for d in near]), KB))
    return pl.concat([_population(16000, 0.0, 2026), near_frame])


@pytest.fixture(scope="module")
def population(known):
    """The known patients and as many again with 30 % of their facts unknown."""
    return pl.concat([known, _population(16000, 0.3, 2027)])


def test_every_contract_option_has_rules():
    assert sorted(KB.option_ids) == sorted(OPTION_IDS)


@pytest.mark.parametrize("option,rule", RULES)
def test_rule_cites_existing_evidence_and_its_reason_renders(option, rule):
    r = next(x for o in KB.options if o.id == option for x in o.rules if x.id == rule)
    assert r.sources and all(s in KB.evidence for s in r.sources)
    # principle 1: a reason quotes the patient's own values, in its text or in the facts
    # the engine adds from the columns its condition reads
    assert placeholders(r.reason) or KB.roots[rule_column(option, rule)], f"{option}.{rule}"


@pytest.mark.parametrize("option,rule", DECIDING)
def test_every_deciding_rule_decides_for_some_patient(option, rule, population):
    """No dead rules: among fully known patients, each rule is the first to hold for someone."""
    opt = next(o for o in KB.options if o.id == option)
    idx = [r.id for r in opt.deciding].index(rule)
    decided = population.filter(pl.col(f"first__{option}") == idx)
    assert decided.height > 0, f"{option}.{rule} never decides: shadowed or impossible"


@pytest.mark.parametrize("option", OPTION_IDS)
def test_every_option_is_on_the_table_for_some_patient_and_off_for_another(option, known):
    verdicts = set(known[f"verdict__{option}"].to_list())
    assert verdicts & {"preferred", "reasonable"}, option
    if option != "clinical_trial":  # a trial is always at least reasonable where one is open
        assert verdicts & {"not_recommended", "contraindicated"}, option
    assert "undetermined" not in verdicts, "fully known patients must get determined verdicts"


@pytest.mark.parametrize("option", OPTION_IDS)
def test_otherwise_is_reachable(option, population):
    opt = next(o for o in KB.options if o.id == option)
    assert population.filter(pl.col(f"first__{option}") == len(opt.deciding)).height > 0


def test_rule_columns_exist(population):
    for option, rule in RULES:
        assert rule_column(option, rule) in population.columns


THRESHOLDS = {0, 1, 2, 3, 4, 5, 6, 10, 12, 25, 50, 70, 75, 80, 90, 100}  # cut-offs the rules apply, not results


def _record_numbers(rec) -> set[float]:
    import re
    out = {float(rec.n)} if rec.n is not None else set()
    # eligibility limits and guideline thresholds live in a record's population and criteria texts
    for text in [rec.population, rec.intervention] + [c.text for c in rec.criteria or []]:
        out |= {float(x) for x in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", text)}
    for o in rec.outcomes:
        out |= {round(float(v), 2) for v in (o.value, o.ci_low, o.ci_high, o.time_point_months) if v is not None}
        if o.p_value and o.p_value.strip("<>= ").replace(".", "", 1).isdigit():
            out.add(float(o.p_value.strip("<>= ")))
    return out


@pytest.mark.parametrize("option,rule", RULES + [(o.id, "otherwise") for o in KB.options])
def test_numbers_a_reason_quotes_are_in_the_records_it_cites(option, rule):
    """Numbers carry over from the sources: every result a reason quotes is in a cited record."""
    import re
    opt = next(o for o in KB.options if o.id == option)
    r = opt.otherwise if rule == "otherwise" else next(x for x in opt.rules if x.id == rule)
    text = re.sub(r"\{[^}]*\}", "", r.reason)
    text = re.sub(r"(Ki-67|177Lu|E2211|CALGB 80701|RADIANT-\d|NETTER-\d|\b(19|20)\d\d\b)", "", text)
    quoted = {float(x) for x in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", text)}
    pool = set().union(*[_record_numbers(KB.evidence[s]) for s in r.sources])
    assert not quoted - pool - THRESHOLDS, f"not in {r.sources}"
