"""The patient document: strict, every field nullable, every problem named by dotted path."""
import json

import pytest

from nelm.patient import InvalidPatient, Patient, flatten, load_patient, parse_text, validate_patient
from nelm.testing import BASE, patient_dict


def problems(doc):
    with pytest.raises(InvalidPatient) as exc:
        validate_patient(doc)
    return dict(exc.value.problems)


def test_base_patient_is_valid():
    assert validate_patient(BASE).pathology.ki67_percent == 1.0


def test_empty_document_is_a_patient_with_everything_unknown():
    p = validate_patient({})
    assert all(v is None for k, v in flatten(p).items())


@pytest.mark.parametrize("field,value", [
    ("pathology.ki67_percent", -3), ("pathology.ki67_percent", 150), ("liver.burden_percent", 101),
    ("liver.resectable_fraction_percent", -1), ("age_years", 121), ("ecog", 5), ("liver.lesion_count", -2),
    ("pathology.mitoses_per_10hpf", -1), ("course.stable_months", -6),
])
def test_out_of_range_numbers_are_refused_with_their_path(field, value):
    p = problems(patient_dict(**{field: value}))
    assert field in p
    assert f"{value} was entered" in p[field] and "must be between" in p[field]


@pytest.mark.parametrize("field,value,allowed", [
    ("primary.site", "ileum", "jejunum_ileum"),
    ("pathology.differentiation", "moderate", "'well' or 'poor'"),
    ("liver.pattern", "diffuse", "disseminated"),
    ("sstr_imaging", "yes", "positive"),
    ("extrahepatic.sites", ["liver"], "lymph_nodes"),
    ("prior_therapies", [{"therapy": "octreotide", "outcome": "progression"}], "ssa"),
])
def test_values_outside_enumerations_name_what_is_allowed(field, value, allowed):
    p = problems(patient_dict(**{field: value}))
    (path, msg), = [(k, v) for k, v in p.items() if k.startswith(field)]
    assert allowed in msg


def test_unknown_keys_are_errors_and_list_the_allowed_fields():
    doc = patient_dict()
    doc["ki67"] = 5
    doc["liver"]["burden"] = 10
    p = problems(doc)
    assert set(p) == {"ki67", "liver.burden"}
    assert "burden_percent" in p["liver.burden"]
    assert "pathology" in p["ki67"]


def test_every_problem_is_reported_at_once():
    p = problems(patient_dict(**{"pathology.ki67_percent": -1, "liver.burden_percent": 200, "ecog": "0"}))
    assert set(p) == {"pathology.ki67_percent", "liver.burden_percent", "ecog"}


def test_no_coercion_of_strings_or_numbers_to_booleans():
    assert "symptomatic" in problems(patient_dict(symptomatic="yes"))
    assert "symptomatic" in problems(patient_dict(symptomatic=1))
    assert "pathology.ki67_percent" in problems(patient_dict(**{"pathology.ki67_percent": "5"}))


def test_contradictions_are_refused_not_resolved():
    p = problems(patient_dict(**{"extrahepatic.present": False, "extrahepatic.sites": ["bone"]}))
    assert any(k.startswith("extrahepatic") and "bone" in v for k, v in p.items())
    p = problems(patient_dict(**{"extrahepatic.present": False,
                                 "extrahepatic.peritoneal_carcinomatosis": "diffuse_unresectable"}))
    assert any("peritoneal" in v for v in p.values())


def test_malformed_json_and_yaml(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"age_years": 50,,}')
    with pytest.raises(InvalidPatient) as exc:
        load_patient(bad)
    assert "not valid JSON" in str(exc.value)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("age_years: [50\n")
    with pytest.raises(InvalidPatient) as exc:
        load_patient(bad_yaml)
    assert "not valid YAML" in str(exc.value)


def test_duplicate_keys_are_refused():
    with pytest.raises(InvalidPatient):
        parse_text('{"age_years": 50, "age_years": 60}', "json")
    with pytest.raises(InvalidPatient):
        parse_text("age_years: 50\nage_years: 60\n", "yaml")


def test_yaml_and_json_give_the_same_patient(tmp_path):
    import yaml
    j = tmp_path / "p.json"
    y = tmp_path / "p.yaml"
    j.write_text(json.dumps(BASE))
    y.write_text(yaml.safe_dump(BASE))
    assert load_patient(j) == load_patient(y)


def test_a_document_must_be_an_object():
    assert "" in problems([1, 2])


def test_flatten_spreads_sites_and_prior_therapies():
    row = flatten(validate_patient(patient_dict(**{
        "extrahepatic": {"present": True, "sites": ["bone"]},
        "prior_therapies": [{"therapy": "ssa", "outcome": "response"}, {"therapy": "ssa", "outcome": "progression"},
                            {"therapy": "prrt", "outcome": "progression"}]})))
    assert row["extrahepatic_sites_bone"] is True and row["extrahepatic_sites_lung"] is False
    assert row["prior_ssa"] == "progression" and row["prior_everolimus"] == "none"
    assert row["prior_progression_count"] == 2


def test_empty_site_list_is_unknown_unless_no_extrahepatic_disease():
    row = flatten(validate_patient({"extrahepatic": {"present": True, "sites": []}}))
    assert row["extrahepatic_sites_bone"] is None
    row = flatten(validate_patient({"extrahepatic": {"present": False, "sites": []}}))
    assert row["extrahepatic_sites_bone"] is False
    assert row["extrahepatic_peritoneal_carcinomatosis"] == "none"


def test_unknown_prior_therapies_stay_unknown():
    row = flatten(Patient())
    assert row["prior_ssa"] is None and row["prior_progression_count"] is None


def test_poor_differentiation_with_low_grade_proliferation_is_a_contradiction():
    p = problems(patient_dict(**{"pathology.differentiation": "poor", "pathology.ki67_percent": 5,
                                 "pathology.mitoses_per_10hpf": 1}))
    assert any("high grade by definition" in m for m in p.values())
    # contract v2: one index grades alone, so a single low index contradicts 'poor' too
    p = problems(patient_dict(**{"pathology.differentiation": "poor", "pathology.ki67_percent": 5,
                                 "pathology.mitoses_per_10hpf": None}))
    assert any("high grade by definition" in m for m in p.values())
    validate_patient(patient_dict(**{"pathology.differentiation": "poor", "pathology.ki67_percent": None,
                                     "pathology.mitoses_per_10hpf": None}))


@pytest.mark.parametrize("pattern,count", [("single", 3), ("disseminated", 1), ("dominant_with_satellites", 1)])
def test_liver_pattern_must_agree_with_the_lesion_count(pattern, count):
    p = problems(patient_dict(**{"liver.pattern": pattern, "liver.lesion_count": count,
                                 "liver.resectable_fraction_percent": 20}))
    assert {"liver.pattern", "liver.lesion_count"} <= set(p)  # both fields named, in words too
    assert f"Number of liver lesions {count}" in p["liver.pattern"] and "Pattern of liver involvement" in p["liver.pattern"]


def test_disseminated_disease_is_not_completely_resectable():
    p = problems(patient_dict(**{"liver.pattern": "disseminated", "liver.lesion_count": 20}))  # BASE: 100 % removable
    assert any("Frilling type III" in m for m in p.values())
    validate_patient(patient_dict(**{"liver.pattern": "disseminated", "liver.lesion_count": 20,
                                     "liver.resectable_fraction_percent": 30}))


def test_a_misspelt_key_gets_a_suggestion():
    p = problems({"ecgo": 1, "pathology": {"ki67": 3}})
    assert "did you mean 'ecog'" in p["ecgo"]
    assert "did you mean 'ki67_percent'" in p["pathology.ki67"]
    assert "did you mean" not in problems({"zzz": 1})["zzz"]
