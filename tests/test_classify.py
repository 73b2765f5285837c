"""Classification: WHO grade, NET/NEC, Frilling type, burden band (classification.yaml)."""
import pytest

from nelm.assessment import assess
from nelm.testing import make_patient


def classify(**changes):
    return assess(make_patient(**changes))["classification"]


@pytest.mark.parametrize("ki67,mitoses,grade", [
    (1, 1, "G1"), (2.9, 1, "G1"), (3, 1, "G2"), (20, 1, "G2"), (20.1, 1, "G3"),
    (1, 2, "G2"), (1, 20, "G2"), (1, 21, "G3"), (25, 0, "G3"), (10, 30, "G3"),
])
def test_who_2019_grade_is_the_higher_of_ki67_and_mitoses(ki67, mitoses, grade):
    c = classify(**{"pathology.ki67_percent": ki67, "pathology.mitoses_per_10hpf": mitoses})
    assert c["who_grade"] == grade


def test_one_known_index_grades_alone_and_says_so():
    """Contract v2: with one index, that index's grade, as pathologists grade biopsies."""
    c = classify(**{"pathology.mitoses_per_10hpf": None, "pathology.ki67_percent": 7})
    assert (c["who_grade"], c["grade_basis"]) == ("G2", "ki67")
    assert classify(**{"pathology.mitoses_per_10hpf": None, "pathology.ki67_percent": 40})["who_grade"] == "G3"
    c = classify(**{"pathology.ki67_percent": None, "pathology.mitoses_per_10hpf": 30})
    assert (c["who_grade"], c["grade_basis"]) == ("G3", "mitoses")
    assert classify()["grade_basis"] == "both"


def test_reported_grade_only_when_no_index_is_known():
    c = classify(**{"pathology.ki67_percent": None, "pathology.mitoses_per_10hpf": None, "pathology.reported_grade": "G2"})
    assert (c["who_grade"], c["grade_basis"], c["category"]) == ("G2", "reported", "NET")
    c = classify(**{"pathology.ki67_percent": None, "pathology.mitoses_per_10hpf": None})
    assert (c["who_grade"], c["grade_basis"]) == (None, None)


def test_reported_grade_contradicting_an_index_is_refused():
    from nelm.patient import InvalidPatient, validate_patient
    from nelm.testing import patient_dict
    import pytest
    with pytest.raises(InvalidPatient, match="Grade stated in the report G1 contradicts"):
        validate_patient(patient_dict(**{"pathology.ki67_percent": 12, "pathology.mitoses_per_10hpf": None,
                                         "pathology.reported_grade": "G1"}))
    # an index that gives G1 leaves room for a G2 from the other, unmeasured, index
    validate_patient(patient_dict(**{"pathology.ki67_percent": 1, "pathology.mitoses_per_10hpf": None,
                                     "pathology.reported_grade": "G2"}))


def test_well_differentiated_g3_is_a_net_and_poor_differentiation_is_a_nec():
    c = classify(**{"pathology.ki67_percent": 35})
    assert (c["category"], c["who_grade"]) == ("NET", "G3")
    c = classify(**{"pathology.differentiation": "poor", "pathology.ki67_percent": 70, "pathology.mitoses_per_10hpf": 40})
    assert (c["category"], c["who_grade"]) == ("NEC", "G3")


def test_unrecorded_differentiation_with_low_grade_is_net_but_with_g3_is_unknown():
    assert classify(**{"pathology.differentiation": None})["category"] == "NET"
    assert classify(**{"pathology.differentiation": None, "pathology.ki67_percent": 40})["category"] is None


@pytest.mark.parametrize("pattern,count,expected", [
    ("single", 1, "I"), ("dominant_with_satellites", 6, "II"), ("disseminated", 40, "III"),
    (None, 1, "I"), (None, 4, None),
])
def test_frilling_type(pattern, count, expected):
    # (a disseminated pattern is not completely resectable: the removable share goes below 100 %)
    assert classify(**{"liver.pattern": pattern, "liver.lesion_count": count,
                       "liver.resectable_fraction_percent": 20})["frilling_type"] == expected


@pytest.mark.parametrize("burden,band", [(10, "<=25"), (25, "<=25"), (26, ">25-50"), (50, ">25-50"),
                                         (51, ">50-75"), (75, ">50-75"), (76, ">75"), (None, None)])
def test_burden_bands(burden, band):
    # one 15 cm lesion: any burden is plausible (knowledge/consistency.yaml); BASE's 3 cm one holds at most 25 %
    assert classify(**{"liver.burden_percent": burden, "liver.largest_lesion_cm": 15})["burden_band"] == band


def test_who2000_behaviour_of_table_1():
    assert classify()["who2000_behaviour"] == "low_grade_malignant"
    assert classify(**{"pathology.differentiation": "poor", "pathology.ki67_percent": 60})["who2000_behaviour"] == "high_grade_malignant"


def test_ki67_between_the_table_1_and_who_2019_cut_offs_is_shown_as_a_disagreement():
    a = assess(make_patient(**{"pathology.ki67_percent": 2.5}))
    d = {x["topic"]: x for x in a["disagreements"]}
    assert a["classification"]["ki67_grade"] == "G1"
    assert {v["source"]: v["value"] for v in d["ki67_grade"]["values"]} == {"reviews": "G1", "who2010_table1": "G2"}


def test_classify_module_gives_the_assessment_classification():
    from nelm.classify import classify
    p = make_patient(**{"pathology.ki67_percent": 12})
    assert classify(p) == assess(p)["classification"]


def test_who2000_has_no_row_for_a_well_differentiated_tumour_above_20_percent():
    """The 2000 table's high-grade row is a poorly differentiated carcinoma: a NET G3 (well
    differentiated, Ki-67 50 %) is not labelled poorly differentiated against its own record
    (board review 7), nor is a Ki-67 above 20 % of unstated differentiation."""
    assert classify(**{"pathology.differentiation": "well", "pathology.ki67_percent": 50})["who2000_behaviour"] is None
    assert classify(**{"pathology.differentiation": None, "pathology.ki67_percent": 50})["who2000_behaviour"] is None
