"""One table of human labels: every field of the contract and every value of its
enumerations has words a clinician reads, and every interface uses them."""
from __future__ import annotations

import types
from typing import Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from nelm import labels
from nelm.patient import Patient
from nelm.web import forms


def _leaves(model: type[BaseModel], prefix: str = ""):
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        args = [a for a in (get_args(info.annotation) or (info.annotation,)) if a is not type(None)]
        sub = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        inner = [x for a in args for x in (get_args(a) or (a,))]
        listed = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if sub is not None:
            yield from _leaves(sub, path + ".")
        elif listed is not None:
            yield path, info.annotation
            yield from _leaves(listed, path + ".")
        else:
            yield path, info.annotation


def _literals(annotation) -> list[str]:
    out = []
    for a in get_args(annotation) or (annotation,):
        if get_origin(a) is Literal:
            out += [v for v in get_args(a) if isinstance(v, str)]
        elif get_origin(a) in (list, Union, types.UnionType):
            out += _literals(a)
    return out


FIELDS = list(_leaves(Patient))
ENUM_VALUES = [(path, v) for path, ann in FIELDS for v in _literals(ann)
               if path != "prior_therapies.therapy"]  # therapies are options: labelled with the option rules


@pytest.mark.parametrize("path", [p for p, _ in FIELDS])
def test_every_contract_field_has_a_label(path):
    assert path in labels.fields(), f"{path} has no entry in nelm/labels.yaml"
    assert labels.field_section(path)


@pytest.mark.parametrize("path, value", ENUM_VALUES)
def test_every_enumeration_value_has_words(path, value):
    assert value in labels.table()["values"].get(path, {}), f"{path} = {value!r} has no label"


def test_the_form_asks_with_the_tables_words():
    for path, f in forms.FIELDS.items():
        assert f.label == labels.field_question(path)
        assert (f.unit or "") == labels.field_unit(path)


def test_the_table_names_no_field_the_contract_lacks():
    known = {p for p, _ in FIELDS}
    assert set(labels.fields()) <= known
    assert set(labels.table()["values"]) <= known


def test_a_list_position_carries_no_words():
    assert labels.field_label("prior_therapies.2.outcome") == labels.field_label("prior_therapies.outcome")


def test_every_entry_of_the_table_is_words():
    """A YAML slip (an unquoted comma in a flow mapping) turns a label into a key with no value."""
    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{where}.{k}")
        else:
            assert isinstance(node, str) and node.strip(), where
    walk(labels.table(), "labels")
