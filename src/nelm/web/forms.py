"""The case form: the whole patient document as fields grouped the way a clinician thinks.

Field types, allowed values, bounds and help texts are read from the pydantic
:class:`~nelm.patient.Patient` model, so the form cannot drift from the contract; only
the grouping is written here, the labels and units come from the one labels table
(``nelm/labels.yaml``). Every field may be left blank, which
means *unknown* (booleans are tri-state selects, never checkboxes, because an unticked
box would read as "no").

Parsing never judges values: text that is not a number is passed on as text so that
:func:`nelm.patient.validate_patient` refuses it with the same message and dotted path
as the API and the command line give.
"""
from __future__ import annotations

import math
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .. import labels
from ..knowledge.ruleset import OPTION_LABELS
from ..patient import OPTION_IDS, Patient, PriorTherapy, set_field

Kind = Literal["text", "number", "integer", "bool", "choice"]

BOOL_CHOICES = (("yes", "yes"), ("no", "no"))
PRIOR_ROWS_EXTRA = 3  # blank prior-therapy rows offered below the recorded ones (no JavaScript to add rows)


@dataclass(frozen=True)
class FormField:
    path: str
    label: str
    kind: Kind
    choices: tuple[tuple[str, str], ...] = ()
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    help: str | None = None

    @property
    def dom_id(self) -> str:
        return "f-" + self.path

    @property
    def allowed(self) -> str:
        """What may be entered, in words, shown beside the field."""
        if self.kind in ("number", "integer"):
            lo = "" if self.minimum is None else f"{self.minimum:g}"
            hi = "" if self.maximum is None else f"{self.maximum:g}"
            whole = "whole number" if self.kind == "integer" else "number"
            if lo and hi:
                return f"{whole} {lo}–{hi}"
            return f"{whole} ≥ {lo}" if lo else whole
        return ""


@dataclass(frozen=True)
class Group:
    id: str
    title: str
    fields: tuple[FormField, ...]
    # model-level problems (e.g. "present is false but sites lists lung") land on the group
    prefixes: tuple[str, ...] = ()
    extra: tuple[str, ...] = field(default=())  # special widgets rendered by the template


# ---------------------------------------------------------------- reading the model

def _model_of(annotation: Any) -> type[BaseModel] | None:
    for a in get_args(annotation) or (annotation,):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def _field_info(path: str) -> FieldInfo:
    model: type[BaseModel] | None = Patient
    parts = path.split(".")
    for part in parts[:-1]:
        assert model is not None, path
        model = _model_of(model.model_fields[part].annotation)
    assert model is not None, path
    return model.model_fields[parts[-1]]


def _base_type(annotation: Any) -> Any:
    """``float | None`` → float; ``Literal[...] | None`` → the Literal."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _choice_label(path: str, value: str) -> str:
    return labels.value_label(path, value)


def _make(path: str) -> FormField:
    """One form field: its type and bounds from the model, its words from the labels table."""
    label, unit = labels.field_question(path), labels.field_unit(path) or None
    info = _field_info(path)
    base = _base_type(info.annotation)
    minimum = next((m.ge for m in info.metadata if hasattr(m, "ge")), None)
    maximum = next((m.le for m in info.metadata if hasattr(m, "le")), None)
    if get_origin(base) is Literal:
        kind: Kind = "choice"
        choices = tuple((v, _choice_label(path, v)) for v in get_args(base))
    elif base is bool:
        kind, choices = "bool", BOOL_CHOICES
    elif base is int:
        kind, choices = "integer", ()
    elif base is float:
        kind, choices = "number", ()
    else:
        kind, choices = "text", ()
    # the model's description as help, unless it only repeats the label
    help = info.description if info.description and info.description.lower() != label.lower() else None
    return FormField(path=path, label=label, kind=kind, choices=choices, unit=unit, minimum=minimum,
                     maximum=maximum, help=help)


# ---------------------------------------------------------------- the groups

GROUPS: tuple[Group, ...] = (
    Group("case", "Case", (
        _make("id"),
    )),
    Group("pathology", "Primary tumour and pathology", (
        _make("primary.site"),
        _make("pathology.differentiation"),
        _make("pathology.ki67_percent"),
        _make("pathology.mitoses_per_10hpf"),
        _make("functional_syndrome"),
        _make("symptomatic"),
        _make("sstr_imaging"),
        _make("pathology.ki67_specimen"),
        _make("pathology.reported_grade"),
        _make("functional_control"),
        _make("sstr_uptake_krenning"),
        _make("fdg_pet"),
    ), prefixes=("primary", "pathology")),
    Group("liver", "Liver disease", (
        _make("liver.timing"),
        _make("liver.burden_percent"),
        _make("liver.lesion_count"),
        _make("liver.largest_lesion_cm"),
        _make("liver.lobes"),
        _make("liver.pattern"),
        _make("liver.resectable_fraction_percent"),
        _make("liver.portal_vein_thrombosis"),
        _make("liver.liver_function"),
        _make("liver.resectable"),
        _make("liver.child_pugh"),
        _make("liver.bilirubin_mg_dl"),
        _make("liver.biliary_enteric_bypass"),
        _make("liver.lung_shunt_percent"),
    ), prefixes=("liver",)),
    Group("extrahepatic", "Extrahepatic disease", (
        _make("extrahepatic.present"),
        _make("extrahepatic.resectable"),
        _make("extrahepatic.peritoneal_carcinomatosis"),
        _make("extrahepatic.symptomatic"),
    ), prefixes=("extrahepatic",), extra=("extrahepatic.sites",)),
    Group("patient", "Patient", (
        _make("age_years"),
        _make("ecog"),
        _make("fit_for_major_surgery"),
        _make("right_heart_insufficiency"),
        _make("carcinoid_heart_disease"),
        _make("transplant_contraindication"),
    )),
    Group("labs", "Laboratory", (
        _make("labs.egfr_ml_min"),
        _make("labs.platelets_10e9_per_l"),
        _make("labs.neutrophils_10e9_per_l"),
    ), prefixes=("labs",)),
    Group("course", "Course and prior therapy", (
        _make("primary.resected"),
        _make("course.status"),
        _make("course.stable_months"),
        _make("course.progression_within_12_months"),
    ), prefixes=("course", "prior_therapies"), extra=("prior_therapies",)),
)

FIELDS: dict[str, FormField] = {f.path: f for g in GROUPS for f in g.fields}
_SITE_LITERAL = get_args(_base_type(_field_info("extrahepatic.sites").annotation))[0]  # list[Literal[...]] → Literal
SITE_CHOICES = tuple((v, labels.value_label("extrahepatic.sites", v)) for v in get_args(_SITE_LITERAL))
THERAPY_CHOICES = tuple((t, OPTION_LABELS.get(t, t)) for t in OPTION_IDS)
OUTCOME_CHOICES = tuple((o, labels.value_label("prior_therapies.outcome", o)) for o in get_args(_base_type(PriorTherapy.model_fields["outcome"].annotation)))
PRIOR_PARTS = ("therapy", "outcome", "months_to_progression", "ongoing")
# "prior_therapies" select: blank = unknown, "none" = none given, rows = as listed
PRIOR_MODES = (("", "unknown"), ("none", "none given"), ("listed", "as listed below"))


# ---------------------------------------------------------------- form → document

@dataclass
class Parsed:
    document: dict[str, Any]
    # document path prefix → form path prefix, for prior-therapy rows compacted past blanks
    renames: dict[str, str]


def _number(raw: str, integer: bool) -> Any:
    text = raw.strip().replace(",", ".")  # a decimal comma is how much of Europe writes 2,5
    try:
        value = float(text)
    except ValueError:
        return raw.strip()  # validation names it: "Input should be a valid number (got 'abc')"
    if not math.isfinite(value):
        return raw.strip()
    if value.is_integer() and (integer or "." not in text and "e" not in text.lower()):
        return int(value)
    return value




def document_from_form(items: Iterable[tuple[str, str]]) -> Parsed:
    """The patient document a submitted form describes; blank fields are left out (unknown)."""
    single: dict[str, str] = {}
    sites: list[str] = []
    for key, value in items:
        if key == "extrahepatic.sites":
            sites.append(value)
        else:
            single[key] = value
    doc: dict[str, Any] = {}
    for path, f in FIELDS.items():
        raw = (single.get(path) or "").strip()
        if not raw:
            continue
        if f.kind == "bool":
            set_field(doc, path, {"yes": True, "no": False}.get(raw, raw))
        elif f.kind in ("number", "integer"):
            set_field(doc, path, _number(raw, f.kind == "integer"))
        else:
            set_field(doc, path, raw)

    present = doc.get("extrahepatic", {}).get("present")
    if sites:
        set_field(doc, "extrahepatic.sites", sites)
    elif present is False:
        set_field(doc, "extrahepatic.sites", [])  # no extrahepatic disease: certainly no sites

    renames: dict[str, str] = {}
    rows = []
    for i in range(_row_count(single)):
        cells = {part: (single.get(f"prior_therapies.{i}.{part}") or "").strip() for part in PRIOR_PARTS}
        if not any(cells.values()):
            continue
        row: dict[str, Any] = {}
        for part in ("therapy", "outcome"):
            if cells[part]:
                row[part] = cells[part]
        if cells["months_to_progression"]:
            row["months_to_progression"] = _number(cells["months_to_progression"], False)
        if cells["ongoing"]:
            row["ongoing"] = {"yes": True, "no": False}.get(cells["ongoing"], cells["ongoing"])
        renames[f"prior_therapies.{len(rows)}"] = f"prior_therapies.{i}"
        rows.append(row)
    mode = (single.get("prior_therapies") or "").strip()
    if rows:
        doc["prior_therapies"] = rows  # rows entered say more than the mode select
    elif mode in ("none", "listed"):
        doc["prior_therapies"] = []
    return Parsed(document=doc, renames=renames)


MAX_PRIOR_ROWS = 100
# a row index as the form writes it: ASCII digits, short ("²" is a digit to str.isdigit and
# int() refuses 5,000 digits with an error, so neither may reach int())
_ROW_INDEX = re.compile(r"prior_therapies\.([0-9]{1,3})\..*", re.S)


def _row_count(single: Mapping[str, str]) -> int:
    idx = [int(m.group(1)) for k in single if (m := _ROW_INDEX.fullmatch(k))]
    return min(max(idx, default=-1) + 1, MAX_PRIOR_ROWS)  # bounded: a crafted form cannot make us loop long


# ---------------------------------------------------------------- document → form

@dataclass
class FormState:
    """What the template shows: entered values, sites, prior-therapy rows and problems."""
    values: dict[str, str] = field(default_factory=dict)
    sites: list[str] = field(default_factory=list)
    prior_mode: str = ""
    prior_rows: list[dict[str, str]] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)      # form path → messages
    group_errors: dict[str, list[str]] = field(default_factory=dict)  # group id → messages
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (path, message, anchor) for the summary

    def padded_rows(self) -> list[dict[str, str]]:
        return self.prior_rows + [dict.fromkeys(PRIOR_PARTS, "") for _ in range(PRIOR_ROWS_EXTRA)]


_show = labels.plain  # yes/no, 2.0 as 2


def state_from_document(doc: Mapping[str, Any]) -> FormState:
    state = FormState()
    for path in FIELDS:
        node: Any = doc
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            state.values[path] = _show(node)
    sites = (doc.get("extrahepatic") or {}).get("sites")
    state.sites = list(sites or [])
    prior = doc.get("prior_therapies")
    if prior is not None:
        state.prior_mode = "listed" if prior else "none"
        state.prior_rows = [{part: "" if p.get(part) is None else _show(p.get(part)) for part in PRIOR_PARTS}
                            for p in prior]
    return state


def state_from_form(items: Iterable[tuple[str, str]]) -> FormState:
    """The submission exactly as typed, for re-showing it beside its problems."""
    items = list(items)
    single = dict(items)
    state = FormState(values={p: single[p] for p in FIELDS if single.get(p)})
    state.sites = [v for k, v in items if k == "extrahepatic.sites"]
    state.prior_mode = single.get("prior_therapies", "")
    rows = [{part: single.get(f"prior_therapies.{i}.{part}", "") for part in PRIOR_PARTS}
            for i in range(_row_count(single))]
    while rows and not any(rows[-1].values()):
        rows.pop()
    state.prior_rows = rows
    return state


def place_problems(state: FormState, problems: list[tuple[str, str]], renames: Mapping[str, str]) -> None:
    """Put each validation message beside its field (by dotted path), else on its group."""
    known = set(FIELDS) | {"extrahepatic.sites", "prior_therapies"}
    for i in range(len(state.padded_rows())):
        known |= {f"prior_therapies.{i}.{part}" for part in PRIOR_PARTS}
    for path, message in problems:
        for doc_prefix, form_prefix in renames.items():
            if path == doc_prefix or path.startswith(doc_prefix + "."):
                path = form_prefix + path[len(doc_prefix):]
                break
        parts = path.split(".") if path else []
        target = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in known), None)
        if target:
            state.errors.setdefault(target, []).append(message)
            state.problems.append((path, message, "f-" + target))
            continue
        group = next((g.id for g in GROUPS if parts and parts[0] in g.prefixes), None)
        state.group_errors.setdefault(group or "", []).append(message)
        state.problems.append((path, message, f"g-{group}" if group else "problems"))
