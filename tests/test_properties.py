"""Properties that must hold for every valid patient (hypothesis)."""
import os
import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nelm.assessment import assess
from nelm.engine import evaluate_frame, patients_frame, resolve_verdict
from nelm.knowledge import load
from nelm.patient import OPTION_IDS, InvalidPatient, flatten, validate_patient
from nelm.testing import forget, known_fields, patient_strategy, random_patient_dict

SETTINGS = settings(max_examples=int(os.environ.get("NELM_HYPOTHESIS_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
GRADES = [None, "G1", "G2", "G3"]


@SETTINGS
@given(patient_strategy())
def test_every_option_appears_exactly_once_with_a_valid_verdict(doc):
    a = assess(validate_patient(doc))
    ids = [o["id"] for o in a["options"]]
    assert sorted(ids) == sorted(OPTION_IDS)
    for o in a["options"]:
        assert o["verdict"] in {"preferred", "reasonable", "not_recommended", "contraindicated", "undetermined"}
        assert o["intent"] in {"curative", "cytoreductive", "disease_control", "symptom_control", "palliative"}
        assert o["reasons"], o["id"]
        assert all(r["sources"] for r in o["reasons"])
        assert "{" not in "".join(r["text"] for r in o["reasons"])


# Facts whose absence the knowledge base reads on purpose (see their comments there):
# FDG-PET is an optional modifier, a pancreatic syndrome opens pancreatic indications
# only when recorded. A Ki-67 or mitotic count grades alone (contract v2), so forgetting
# one index while the other is known may change the grade.
# Contract v3's facts that follow from facts are read on purpose too: with no analogue ever given,
# an unrecorded syndrome control is taken as untreated (rules/embolization.yaml), which a recorded
# "refractory" (to another treatment) overrides.
NOT_MONOTONE = {"fdg_pet", "functional_syndrome", "functional_control"}
INDICES = {"pathology.ki67_percent", "pathology.mitoses_per_10hpf", "pathology.reported_grade"}
CHECKS = {c.field for c in load().checks}


def _settled_by_others(doc: dict, field: str) -> bool:
    """Whether a fact that follows from facts (knowledge/follows.yaml) fills ``field`` in ``doc``."""
    from nelm import follows
    from nelm.patient import column_of, recorded_row

    return column_of(field) in follows.filled_from(recorded_row(validate_patient(doc).model_dump()))


@SETTINGS
@given(patient_strategy(), st.data())
def test_forgetting_a_fact_never_settles_or_flips_anything(doc, data):
    """Kleene monotonicity: less information can only turn answers into unknowns —
    except a pre-treatment check, whose absence gives the passing verdict and is then
    listed among the option's conditions."""
    fields = [f for f in known_fields(doc) if f not in NOT_MONOTONE]
    if not fields:
        return
    field = data.draw(st.sampled_from(fields))
    if field in INDICES and len(INDICES & set(known_fields(doc))) > 1:
        return
    forgotten = forget(doc, field)
    if _settled_by_others(forgotten, field):
        # the other facts settle it again (knowledge/follows.yaml): nothing was forgotten, and a
        # record that says otherwise (no symptoms beside a painful deposit, our own vignette v15)
        # then reads as the other facts say
        return
    full = assess(validate_patient(doc))
    less = assess(validate_patient(forgotten))
    for cid, cs in full["criteria"].items():
        assert less["criteria"][cid]["status"] in (cs["status"], "unknown")
        for a, b in zip(cs["items"], less["criteria"][cid]["items"]):
            assert b["status"] in (a["status"], "unknown")
    for a, b in zip(full["options"], less["options"]):
        if field in CHECKS and b["verdict"] != a["verdict"]:
            # offered now only with its unknown checks named as conditions (the forgotten one, or
            # one whose passing value it governed, as liver function governs Child-Pugh)
            assert (b.get("conditions") or b["verdict"] in ("undetermined", "not_recommended", "contraindicated")), \
                (field, a["id"])
            continue
        # the verdict stays, becomes undetermined, or becomes the milder verdict of its side
        # (contract v3) with the one it had still possible
        assert b["verdict"] in (a["verdict"], "undetermined") or a["verdict"] in b.get("possible_verdicts", ()), \
            (field, a["id"])
    for key in ("who_grade", "category", "frilling_type", "burden_band"):
        assert less["classification"][key] in (full["classification"][key], None)


@SETTINGS
@given(patient_strategy())
def test_unknown_inputs_never_yield_met(doc):
    """A criterion item whose every input is unknown is never met."""
    p = validate_patient(doc)
    a = assess(p)
    row = flatten(p)
    kb = load()
    from nelm.knowledge import input_roots
    for cs in kb.criteria:
        for item, out in zip(cs.items, a["criteria"][cs.id]["items"]):
            col = f"{cs.id}__{item.id}"
            nulls = {c for c, v in row.items() if v is None}
            all_inputs = input_roots(kb, col, set(row) | {n.column for b in kb.nodes for n in b})
            if all_inputs and all_inputs <= nulls:
                assert out["status"] == "unknown", col


@SETTINGS
@given(patient_strategy(), st.floats(0, 100), st.floats(0, 100))
def test_raising_ki67_never_lowers_the_grade(doc, k1, k2):
    lo, hi = sorted((k1, k2))
    doc.setdefault("pathology", {})
    g = []
    for k in (lo, hi):
        d = {**doc, "pathology": {**(doc["pathology"] or {}), "ki67_percent": k}}
        try:
            p = validate_patient(d)
        except InvalidPatient:  # 'poorly differentiated' with a low Ki-67 is refused as contradictory
            assume(False)
        g.append(assess(p)["classification"]["who_grade"])
    if g[0] is not None and g[1] is not None:
        assert GRADES.index(g[1]) >= GRADES.index(g[0])
    if g[0] == "G3":
        assert g[1] == "G3"


def test_vectorised_and_single_patient_verdicts_agree():
    """The frame resolution (for tables) and the per-patient resolution give the same verdicts."""
    rng = random.Random(7)
    docs = [random_patient_dict(rng, unknown_share=s) for s in (0.0, 0.2, 0.5) for _ in range(300)]
    kb = load()
    frame = evaluate_frame(patients_frame([flatten(validate_patient(d)) for d in docs]), kb)
    for row in frame.iter_rows(named=True):
        for opt in kb.options:
            mask, verdict = resolve_verdict(opt, row)
            assert (mask, verdict) == (row[f"possible__{opt.id}"], row[f"verdict__{opt.id}"]), opt.id
