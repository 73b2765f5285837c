"""The plan's assumptions in words (summary.assumption_lines, read by the text output, the web
page and both PDFs): a field's label reads inside the sentence, proper names and symbols
keep their capitals, and a number carries its unit (board review 7: 'ki-67: 5')."""
from __future__ import annotations

import pytest

from nelm import labels
from nelm.summary import assumption_lines


def _line(field: str, assumed) -> str:
    plan = {"assumptions": [{"field": field, "label": labels.field_label(field), "assumed": assumed,
                             "if_not": "something else would lead."}]}
    [(text, _)] = assumption_lines(plan)
    return text


@pytest.mark.parametrize("field,assumed,expected", [
    ("pathology.ki67_percent", 5, "Ki-67"),
    ("liver.child_pugh", "A", "Child-Pugh"),
    ("ecog", 1, "ECOG"),
])
def test_a_name_keeps_its_capitals(field, assumed, expected):
    assert _line(field, assumed).startswith(expected)


def test_a_common_label_reads_in_lower_case_and_a_number_carries_its_unit():
    assert _line("liver.burden_percent", 30.0) == "hepatic tumour burden: 30 % (to be confirmed)"
    assert _line("pathology.ki67_percent", 5) == "Ki-67: 5 % (to be confirmed)"


def test_a_yes_no_fact_reads_yes_or_no():
    assert _line("liver.resectable", False).endswith(": no (to be confirmed)")
