"""The case form ↔ patient document mapping: every field, unknowns, tri-states, problems."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nelm.patient import OPTION_IDS, SCALAR_FIELDS, InvalidPatient, set_field, validate_patient
from nelm.web import forms


def _items(state: forms.FormState) -> list[tuple[str, str]]:
    """What a browser would submit for a form showing ``state``."""
    items = [(path, state.values.get(path, "")) for path in forms.FIELDS]
    items += [("extrahepatic.sites", s) for s in state.sites]
    items.append(("prior_therapies", state.prior_mode))
    for i, row in enumerate(state.padded_rows()):
        items += [(f"prior_therapies.{i}.{part}", value) for part, value in row.items()]
    return items


def test_the_form_covers_the_whole_patient_document():
    covered = set(forms.FIELDS) | {"extrahepatic.sites", "prior_therapies"}
    assert set(SCALAR_FIELDS) | {"id", "extrahepatic.sites", "prior_therapies"} == covered
    assert [g.title for g in forms.GROUPS][1:] == ["What decides the plan", "Primary tumour and pathology",
                                                   "Liver disease", "Extrahepatic disease", "Patient", "Laboratory",
                                                   "Course and prior therapy"]
    # each field once; the facts that decide the plan first, and marked
    paths = [f.path for g in forms.GROUPS for f in g.fields]
    assert len(paths) == len(set(paths))
    assert [f.path for f in forms.GROUPS[1].fields] == list(forms.DECIDING)
    assert all(f.decides for f in forms.GROUPS[1].fields)
    assert not any(f.decides for g in forms.GROUPS[2:] for f in g.fields)


def test_kinds_units_and_bounds_come_from_the_model():
    ki67 = forms.FIELDS["pathology.ki67_percent"]
    assert (ki67.kind, ki67.unit, ki67.minimum, ki67.maximum) == ("number", "%", 0, 100)
    # the unit is said once: beside the allowed range, or in the label when the label has it
    assert ki67.allowed == "number 0–100 %" and "%" not in ki67.label_text
    burden = forms.FIELDS["liver.burden_percent"]
    assert "%" in burden.label and "%" not in burden.allowed
    assert forms.FIELDS["sstr_uptake_krenning"].kind == "integer_choice"
    assert [v for v, _ in forms.FIELDS["sstr_uptake_krenning"].choices] == ["0", "1", "2", "3", "4"]
    assert forms.FIELDS["ecog"].kind == "integer" and forms.FIELDS["ecog"].maximum == 4
    assert forms.FIELDS["symptomatic"].kind == "bool"
    assert [v for v, _ in forms.FIELDS["liver.pattern"].choices] == ["single", "dominant_with_satellites", "disseminated"]
    assert {v for v, _ in forms.THERAPY_CHOICES} == set(OPTION_IDS)


def test_blank_is_unknown_and_tri_states_map_to_booleans():
    parsed = forms.document_from_form([("age_years", " "), ("symptomatic", "yes"), ("liver.portal_vein_thrombosis", "no"),
                                       ("fit_for_major_surgery", ""), ("pathology.ki67_percent", "2,5"),
                                       ("ecog", "1"), ("liver.lesion_count", "3.0")])
    assert parsed.document == {"symptomatic": True, "liver": {"portal_vein_thrombosis": False, "lesion_count": 3},
                               "pathology": {"ki67_percent": 2.5}, "ecog": 1}
    assert forms.document_from_form([]).document == {}


def test_text_that_is_not_a_number_reaches_validation_unchanged():
    doc = forms.document_from_form([("pathology.ki67_percent", "abc"), ("ecog", "1.5"), ("age_years", "inf")]).document
    assert doc == {"pathology": {"ki67_percent": "abc"}, "ecog": 1.5, "age_years": "inf"}


def test_sites_and_prior_therapies_keep_unknown_apart_from_none():
    assert "sites" not in forms.document_from_form([("extrahepatic.present", "yes")]).document["extrahepatic"]
    assert forms.document_from_form([("extrahepatic.present", "no")]).document["extrahepatic"]["sites"] == []
    assert forms.document_from_form([("extrahepatic.sites", "lung"), ("extrahepatic.sites", "bone")]
                                    ).document["extrahepatic"]["sites"] == ["lung", "bone"]
    assert "prior_therapies" not in forms.document_from_form([("prior_therapies", "")]).document
    assert forms.document_from_form([("prior_therapies", "none")]).document["prior_therapies"] == []
    parsed = forms.document_from_form([("prior_therapies", ""), ("prior_therapies.0.therapy", ""),
                                       ("prior_therapies.1.therapy", "ssa"), ("prior_therapies.1.outcome", "progression"),
                                       ("prior_therapies.2.outcome", "stable")])
    assert parsed.document["prior_therapies"] == [{"therapy": "ssa", "outcome": "progression"}, {"outcome": "stable"}]
    assert parsed.renames == {"prior_therapies.0": "prior_therapies.1", "prior_therapies.1": "prior_therapies.2"}


def test_problems_land_beside_their_fields_or_on_their_group():
    items = [("pathology.ki67_percent", "150"), ("extrahepatic.present", "no"), ("extrahepatic.sites", "lung"),
             ("prior_therapies.3.outcome", "stable")]
    parsed = forms.document_from_form(items)
    try:
        validate_patient(parsed.document)
    except Exception as exc:  # InvalidPatient
        problems = exc.problems
    state = forms.state_from_form(items)
    forms.place_problems(state, problems, parsed.renames)
    assert "must be between 0 and 100 %" in state.errors["pathology.ki67_percent"][0]
    assert state.errors["prior_therapies.3.therapy"] == ["Therapy is required here"]  # row 3 as the user saw it
    # a contradiction (knowledge/consistency.yaml) lands beside each field it names, in words
    assert "Extrahepatic disease present no contradicts Extrahepatic sites" in state.errors["extrahepatic.present"][0]
    assert state.errors["extrahepatic.sites"] == state.errors["extrahepatic.present"]
    assert {anchor for _, _, anchor in state.problems} == {
        "f-pathology.ki67_percent", "f-prior_therapies.3.therapy", "f-extrahepatic.present", "f-extrahepatic.sites"}
    assert state.values["pathology.ki67_percent"] == "150" and state.sites == ["lung"]
    blank = dict.fromkeys(forms.PRIOR_PARTS, "")
    assert state.prior_rows == [blank, blank, blank, blank | {"outcome": "stable"}]


# ---------------------------------------------------------------- round trip

def _value(f: forms.FormField):
    if f.kind in ("bool",):
        return st.booleans()
    if f.kind == "choice":
        return st.sampled_from([v for v, _ in f.choices])
    if f.kind == "integer":
        return st.integers(min_value=int(f.minimum or 0), max_value=int(f.maximum if f.maximum is not None else 500))
    if f.kind == "number":
        return st.floats(min_value=f.minimum or 0, max_value=f.maximum if f.maximum is not None else 1000,
                         allow_nan=False, allow_infinity=False)
    return st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=30)


@st.composite
def documents(draw):
    doc: dict = {}
    for path, f in forms.FIELDS.items():
        if draw(st.booleans()):
            set_field(doc, path, draw(_value(f)))
    present = doc.get("extrahepatic", {}).get("present")
    sites = forms.SITE_CHOICES
    if present is False:
        set_field(doc, "extrahepatic.sites", [])
        doc["extrahepatic"].pop("peritoneal_carcinomatosis", None)
    elif draw(st.booleans()):
        set_field(doc, "extrahepatic.sites", draw(st.lists(st.sampled_from([v for v, _ in sites]), min_size=1,
                                                           max_size=3, unique=True)))
    kind = draw(st.sampled_from(["unknown", "none", "listed"]))
    if kind == "none":
        doc["prior_therapies"] = []
    elif kind == "listed":
        doc["prior_therapies"] = draw(st.lists(st.builds(
            dict, therapy=st.sampled_from(OPTION_IDS),
            outcome=st.sampled_from([v for v, _ in forms.OUTCOME_CHOICES])), min_size=1, max_size=4))
    return doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_any_document_survives_the_form_round_trip(doc):
    try:
        original = validate_patient(doc)
    except InvalidPatient:  # random fields can contradict each other (e.g. pattern vs lesion count)
        assume(False)
    state = forms.state_from_document(doc)
    again = forms.document_from_form(_items(state)).document
    assert validate_patient(again).model_dump() == original.model_dump()


def test_krenning_is_a_choice_and_bilirubin_is_taken_in_umol_per_l_or_mg_per_dl():
    doc = forms.document_from_form([("sstr_uptake_krenning", "3"), ("liver.bilirubin_mg_dl", "34,2"),
                                    ("liver.bilirubin_mg_dl.unit", "µmol/L")]).document
    assert doc["sstr_uptake_krenning"] == 3
    assert doc["liver"]["bilirubin_mg_dl"] == 2.0  # 34.2 µmol/L / 17.1
    doc = forms.document_from_form([("liver.bilirubin_mg_dl", "1.2"), ("liver.bilirubin_mg_dl.unit", "mg/dL")]).document
    assert doc["liver"]["bilirubin_mg_dl"] == 1.2


@pytest.mark.parametrize("typed", ["١٢", "５８", "1_000", "12e", "--3"])
def test_form_numbers_refuse_digits_other_than_ascii(typed):
    """Python's float() reads full-width and Arabic-Indic digits and underscores; the form passes them on
    as text, which validation refuses with the field's own message (issue 24 item 7)."""
    doc = forms.document_from_form([("age_years", typed)]).document
    assert doc["age_years"] == typed
    with pytest.raises(InvalidPatient) as exc:
        validate_patient(doc)
    assert exc.value.problems[0][0] == "age_years"


def test_a_contradiction_names_both_fields_in_the_forms_labels_and_marks_both():
    items = [("liver.pattern", "single"), ("liver.lesion_count", "6")]
    parsed = forms.document_from_form(items)
    with pytest.raises(InvalidPatient) as exc:
        validate_patient(parsed.document)
    state = forms.state_from_form(items)
    forms.place_problems(state, exc.value.problems, parsed.renames)
    for path in ("liver.pattern", "liver.lesion_count"):
        assert state.errors.get(path), path
    message = state.errors["liver.pattern"][0]
    assert "Pattern of liver involvement" in message and "Number of liver lesions" in message
    assert "liver.pattern" not in message and "liver.lesion_count" not in message
