"""Evidence corrections of issue 19, each pinned."""
import re

from nelm.evidence import load_records
from nelm.knowledge import load

KB = load()
R = {r.id: r for r in load_records()}


def test_oclurandom_records_the_result_not_the_design_assumption():
    o = R["oclurandom"]
    rates = {x.arm: x.value for x in o.outcomes if x.endpoint == "pfs_rate"}
    assert rates == {"177Lu-octreotate": 80, "sunitinib (internal control)": 42}
    medians = {x.arm: x.value for x in o.outcomes if x.endpoint == "pfs_median"}
    assert medians == {"177Lu-octreotate": 20.7, "sunitinib (internal control)": 11.0}
    assert "design assumption" in o.summary


def test_the_sunitinib_reason_quotes_the_reported_oclurandom_result():
    r = next(x for o in KB.options if o.id == "sunitinib" for x in o.rules if x.id == "progressive_pancreatic")
    assert "42 %" in r.reason and "80 %" in r.reason and "35 %" not in r.reason


def test_prrt_toxicity_records_are_split_and_the_kidney_gate_quotes_177lu():
    marrow, kidney = R["prrt_long_term_toxicity"], R["bodei2015_kidney"]
    assert not any("Bodei" in x.arm for x in marrow.outcomes)
    assert {x.value for x in kidney.outcomes} >= {34.6, 13.4, 1.5}
    gate = next(x for o in KB.options if o.id == "prrt" for x in o.rules if x.id == "renal_failure_prrt")
    assert "bodei2015_kidney" in gate.sources and "prrt_long_term_toxicity" not in gate.sources
    assert "13.4 %" in gate.reason and "third" not in gate.reason


def test_a_source_of_unknown_identity_is_never_source_checked():
    assert R["review002"].identity == "unknown" and R["review002"].verified != "source"
    for r in R.values():
        if r.identity == "unknown":
            assert r.verified != "source" and not r.doi and not r.pmid, r.id


def test_milan_group_statement_is_a_checked_record():
    c = R["citterio2023"]
    assert c.verified == "source" and c.doi == "10.1007/s11864-023-01124-w"
    assert any("Ki-67 under 10 %" in x.text for x in c.criteria)


def test_every_default_threshold_says_so_and_cites_the_defaults_record():
    """A rule citing nelm_defaults says in its reason that the value is this knowledge base's default."""
    cited = [(o.id, r) for o in KB.options for r in o.rules if hasattr(r, "sources") and "nelm_defaults" in r.sources]
    assert len({r.id for _, r in cited}) >= 10
    for oid, r in cited:
        assert re.search(r"default", r.reason), (oid, r.id)
    # the list, each marked
    marked = {r.id for _, r in cited}
    assert {"performance_status_two", "trial_organ_function", "child_pugh_b_surgery", "bilirubin_surgery_ablation",
            "bilirubin_sirt", "renal_failure_prrt", "renal_impairment_nephrotoxic", "renal_impairment_chemotherapy",
            "marrow_prrt", "low_sstr_uptake_prrt", "prrt_short_first_response"} <= marked


def test_cabinet_identifiers():
    assert R["cabinet"].pmid == "39282913" and R["cabinet"].doi == "10.1056/NEJMoa2403991"
