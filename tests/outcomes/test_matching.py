"""outcomes.yaml: references, conditions, and which cohorts a patient gets."""
from __future__ import annotations

import polars as pl
import pytest

from nelm.outcomes.matching import (OutcomesFile, build_matcher, compile_condition, kb_schema, load_spec,
                                    matcher, placeholders)
from nelm.patient import OPTION_IDS

from .conftest import BIG, cohorts_of, option, run, variant


def test_file_validates_and_covers_every_option():
    spec = load_spec()
    assert set(spec.options) == set(OPTION_IDS), "every option is listed (an empty list when no cohort applies)"


def test_every_cohort_references_an_existing_record_and_arm(kb):
    spec = load_spec()
    for c in spec.cohorts:
        rec = kb.evidence.get(c.source)
        assert rec is not None, f"{c.id}: unknown record {c.source}"
        arms = {o.arm for o in rec.outcomes}
        for a in c.arms:
            assert a.arm in arms, f"{c.id}: {c.source} has no arm {a.arm!r}"
        if c.hazard_ratio:
            assert any(o.endpoint == "hazard_ratio" and o.arm == c.hazard_ratio for o in rec.outcomes), c.id
    for r in spec.risk_factors:
        rec = kb.evidence[r.source]
        if r.arm is not None:
            assert any(o.endpoint == "hazard_ratio" and o.arm == r.arm for o in rec.outcomes), r.id


def test_every_cohort_is_offered_somewhere():
    spec = load_spec()
    used = {e.cohort for entries in spec.options.values() for e in entries}
    assert used == {c.id for c in spec.cohorts}


def test_conditions_compile_and_read_known_columns(kb):
    spec = load_spec()
    schema = kb_schema(kb)
    conditions = [e.when for entries in spec.options.values() for e in entries if e.when]
    conditions += [r.when for r in spec.risk_factors]
    assert conditions
    for sql in conditions:
        expr = compile_condition(sql, "test")
        assert set(expr.meta.root_names()) <= set(schema), sql
    templates = [e.reason for entries in spec.options.values() for e in entries] + [r.reason for r in spec.risk_factors]
    for t in templates:
        assert placeholders(t) <= set(schema), t
    m = matcher(kb)
    assert m is matcher(kb), "compiled once per knowledge base"


def test_a_bad_condition_is_refused(kb):
    schema = kb_schema(kb)
    spec = OutcomesFile.model_validate({
        "cohorts": [{"id": "x", "source": "mayo2010", "endpoint": "os", "title": "t", "start": "s",
                     "arms": [{"arm": "all patients"}]}],
        "options": {"liver_resection": [{"cohort": "x", "when": "no_such_column > 1", "reason": "r"}]}})
    with pytest.raises(ValueError, match="no_such_column"):
        build_matcher(spec, schema)
    spec.options["liver_resection"][0].when = "liver_burden_percent > 1"
    spec.options["liver_resection"][0].reason = "{nope}"
    with pytest.raises(ValueError, match="placeholder"):
        build_matcher(spec, schema)


def test_unknown_is_not_a_match(kb):
    m = matcher(kb)
    got = m.evaluate({})  # every column unknown
    assert got and all(v is None or v is False for v in got.values())


def test_p01_gets_mayo2010_resection_curves(p01_assessment, kb):
    res = option(p01_assessment, "liver_resection")
    mayo = [o for o in res["outcomes"] if o["source"] == "mayo2010"]
    assert mayo, "the p01-like patient gets Mayo 2010 resection curves"
    assert mayo[0]["arm"] == "all patients" and mayo[0]["match"] == "specific"
    rec = kb.evidence["mayo2010"]
    expected_median = next(o.value for o in rec.outcomes if o.endpoint == "os_median" and o.arm == "all patients")
    assert mayo[0]["median_months"] == pytest.approx(expected_median)
    rates = {(o.time_point_months, o.value / 100) for o in rec.outcomes if o.endpoint == "os_rate" and o.arm == "all patients"}
    assert {(p["months"], p["value"]) for p in mayo[0]["reported"] if p["kind"] == "rate"} == rates


def test_p01_risk_factors_with_hazard_ratios(p01_assessment, kb):
    factors = {f["id"]: f for f in option(p01_assessment, "liver_resection")["risk_factors"]}
    rec = kb.evidence["mayo2010"]
    hrs = {o.arm: o.value for o in rec.outcomes if o.endpoint == "hazard_ratio"}
    assert factors["mayo2010_synchronous"]["applies"] is True          # synchronous liver disease
    assert factors["mayo2010_nonfunctional"]["applies"] is True        # functional_syndrome none
    assert factors["mayo2010_extrahepatic"]["applies"] is False
    for f in factors.values():
        assert f["hazard_ratio"] == hrs[f["compared"]]


def test_surgery_vs_iat_by_symptoms_and_burden():
    sympt = run(variant(**{"symptomatic": True, "liver.burden_percent": 40, "functional_syndrome": "carcinoid",
                           **BIG}))
    asym = run(variant(**{"symptomatic": False, "liver.burden_percent": 40, **BIG}))
    unknown = run(variant(**{"symptomatic": None, "liver.burden_percent": 40, **BIG}))
    for opt in ("liver_resection", "tae", "tace"):
        assert "mayo2011_symptomatic_over25" in cohorts_of(sympt, opt)
        assert "mayo2011_asymptomatic_over25" not in cohorts_of(sympt, opt)
        assert "mayo2011_asymptomatic_over25" in cohorts_of(asym, opt)
        assert "mayo2011_symptomatic_over25" not in cohorts_of(asym, opt)
        u = cohorts_of(unknown, opt)
        assert "mayo2011_symptomatic_over25" not in u and "mayo2011_asymptomatic_over25" not in u
    arms = [o["arm"] for o in option(sympt, "liver_resection")["outcomes"] if o["cohort"] == "mayo2011_symptomatic_over25"]
    assert arms == ["surgery, >25% burden, symptomatic", "IAT, >25% burden, symptomatic"]
    # the reason quotes the patient's own values
    reason = next(o["match_reason"] for o in option(sympt, "tace")["outcomes"] if o["cohort"] == "mayo2011_symptomatic_over25")
    assert "40 %" in reason


PROGRESSIVE = {"course.status": "progressive", "course.stable_months": 0, "course.progression_within_12_months": True}


def test_general_cohort_only_when_nothing_specific_matches(p01_assessment):
    # resection: a specific cohort matched, so the general series is not added
    assert "glazer2010_resection" not in cohorts_of(p01_assessment, "liver_resection")
    nogr = run(variant(**{"pathology.ki67_percent": None, "pathology.mitoses_per_10hpf": None}))
    assert cohorts_of(nogr, "liver_resection") == ["glazer2010_resection"]
    # sunitinib: its trial enrolled progressive pancreatic NET only; no general fallback reaches others
    assert option(p01_assessment, "sunitinib")["outcomes"] == []
    panc = run(variant(**{"primary.site": "pancreas", **PROGRESSIVE}))
    sun = option(panc, "sunitinib")["outcomes"]
    assert sun and all(o["match"] == "specific" for o in sun)
    assert len({o["cohort"] for o in sun}) == 1, "a cohort appears once even when two entries select it"


def test_trial_populations_by_site_receptor_status_and_progression():
    stable = run(variant())
    assert "promid_ttp" in cohorts_of(stable, "ssa")           # treatment-naive midgut: PROMID
    assert "netter1_pfs" not in cohorts_of(stable, "prrt")     # NETTER-1 enrolled progression on an SSA
    assert "radiant4_pfs" not in cohorts_of(stable, "everolimus")
    midgut = run(variant(**PROGRESSIVE))
    assert "netter1_pfs" in cohorts_of(midgut, "prrt")
    assert "radiant4_pfs" in cohorts_of(midgut, "everolimus")
    neg = run(variant(sstr_imaging="negative", **PROGRESSIVE))
    assert "netter1_pfs" not in cohorts_of(neg, "prrt")
    assert "clarinet_pfs" not in cohorts_of(neg, "ssa")
    panc = run(variant(**{"primary.site": "pancreas", **PROGRESSIVE}))
    assert "radiant3_pfs" in cohorts_of(panc, "everolimus")
    assert "radiant4_pfs" not in cohorts_of(panc, "everolimus")
    assert "sunitinib_pfs" in cohorts_of(panc, "sunitinib")
    assert "e2211_pfs" in cohorts_of(panc, "capecitabine_temozolomide")
    assert cohorts_of(panc, "cabozantinib") == []              # CABINET: after prior systemic therapy
    after = run(variant(**{"primary.site": "pancreas", **PROGRESSIVE},
                        prior_therapies=[{"therapy": "everolimus", "outcome": "progression"}]))
    assert "cabinet_pancreatic_pfs" in cohorts_of(after, "cabozantinib")
    cup = run(variant(**{"primary.site": "unknown_primary", "primary.resected": False}))
    assert "clarinet_pfs" in cohorts_of(cup, "ssa")            # CLARINET enrolled unknown primaries too


def test_kouvaraki_by_liver_burden():
    low = run(variant(**{"primary.site": "pancreas", "liver.burden_percent": 30, **BIG}))
    high = run(variant(**{"primary.site": "pancreas", "liver.burden_percent": 80, **BIG}))
    assert set(cohorts_of(low, "streptozocin_based")) == {"kouvaraki_os_below75", "kouvaraki_pfs_below75"}
    assert cohorts_of(high, "streptozocin_based") == ["kouvaraki_os_above75"]
    other = run(variant(**{"liver.burden_percent": 80, **BIG}))
    assert cohorts_of(other, "streptozocin_based") == []       # a pancreatic series only


# What each trial excluded, written independently of outcomes.yaml's SQL, as facts of the
# patient and the assessment's classification; None for "unknown" never counts as eligible.
def _gep(p): return (p.get("primary") or {}).get("site") in ("pancreas", "duodenum", "stomach", "jejunum_ileum",
                                                            "appendix", "colon", "rectum")
def _site(p): return (p.get("primary") or {}).get("site")
def _net12(c): return c["category"] == "NET" and c["who_grade"] in ("G1", "G2")
def _prog(p): return (p.get("course") or {}).get("status") == "progressive" or (p.get("course") or {}).get("progression_within_12_months") is True
def _lines(p): return len({t["therapy"] for t in (p.get("prior_therapies") or []) if t["therapy"] not in ("telotristat",
                           "liver_resection", "thermal_ablation", "liver_transplant", "tae", "tace", "deb_tace", "sirt",
                           "ebrt", "clinical_trial")})
def _ki67(p): return (p.get("pathology") or {}).get("ki67_percent")


DIGESTIVE = ("pancreas", "duodenum", "stomach", "jejunum_ileum", "appendix", "colon", "rectum")
TRIALS = {
    "netter1_pfs": lambda p, c: p.get("sstr_imaging") == "positive" and _net12(c) and _prog(p) and _site(p) in ("jejunum_ileum", "appendix"),
    "netter2_pfs": lambda p, c: p.get("sstr_imaging") == "positive" and c["category"] == "NET" and _ki67(p) is not None
                   and 10 <= _ki67(p) <= 55 and _gep(p) and p.get("prior_therapies") is not None and _lines(p) == 0,
    "radiant3_pfs": lambda p, c: _site(p) == "pancreas" and _net12(c) and _prog(p),
    "radiant4_pfs": lambda p, c: _net12(c) and _prog(p) and p.get("functional_syndrome") == "none" and _site(p) != "pancreas",
    "sunitinib_pfs": lambda p, c: _site(p) == "pancreas" and _net12(c) and _prog(p),
    "e2211_pfs": lambda p, c: _site(p) == "pancreas" and _net12(c) and _prog(p),
    "cabinet_pancreatic_pfs": lambda p, c: c["category"] == "NET" and _prog(p) and _lines(p) >= 1,
    "cabinet_extrapancreatic_pfs": lambda p, c: c["category"] == "NET" and _prog(p) and _lines(p) >= 1,
    "nordic_nec2_nec_os": lambda p, c: c["category"] == "NEC" and _site(p) in DIGESTIVE,
    "nordic_nec2_netg3_os": lambda p, c: c["category"] == "NET" and c["who_grade"] == "G3" and _site(p) in DIGESTIVE,
    "clarinet_pfs": lambda p, c: p.get("sstr_imaging") == "positive" and p.get("functional_syndrome") == "none"
                    and _ki67(p) is not None and _ki67(p) < 10,
}


def test_no_cohort_is_shown_to_a_patient_its_trial_excluded():
    import random
    from nelm.testing import perturbed_patient_dict, random_patient_dict
    rng = random.Random(31)
    shown = dict.fromkeys(TRIALS, 0)
    for i in range(1500):
        doc = perturbed_patient_dict(rng, rng.randrange(1, 5)) if i % 2 else random_patient_dict(rng, 0.2)
        a = run(doc)
        for o in a["options"]:
            for cohort in {x["cohort"] for x in o["outcomes"]}:
                if cohort in TRIALS:
                    assert TRIALS[cohort](doc, a["classification"]), (cohort, o["id"])
                    shown[cohort] += 1
    assert all(shown.values()), {k: v for k, v in shown.items() if not v}


def test_matching_reads_the_same_dtypes_as_the_engine(kb):
    m = matcher(kb)
    assert all(isinstance(d, pl.DataType) for d in m.schema.values())
    assert "liver_burden_percent" in m.schema and m.schema["liver_burden_percent"] == pl.Float64
