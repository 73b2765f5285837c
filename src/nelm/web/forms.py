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
    decides: bool = False  # one of the facts that decide the plan (shown first, marked)
    units: tuple[str, ...] = ()  # units the form accepts besides the contract's (converted on saving)

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
            # the unit once: beside the range, unless the label says it ("Hepatic tumour burden (% of
            # liver volume)") or a unit choice sits beside the field
            unit = f" {self.unit}" if self.unit and not self.units and self.unit not in self.label else ""
            if lo and hi:
                return f"{whole} {lo}–{hi}{unit}"
            return (f"{whole} ≥ {lo}{unit}" if lo else f"{whole}{unit}")
        return ""

    @property
    def label_text(self) -> str:
        """The label without a unit the label already states: the unit is said once, beside the value."""
        return self.label


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


# Krenning score as the five grades a nuclear-medicine report gives (contract v2: 2 = as liver,
# 3 = above liver, 4 = above spleen)
KRENNING_CHOICES = (("0", "0 — no uptake"), ("1", "1 — below normal liver"), ("2", "2 — as normal liver"),
                    ("3", "3 — above normal liver"), ("4", "4 — above spleen"))
# bilirubin: µmol/L (most European laboratories) or the contract's mg/dL; 1 mg/dL = 17.1 µmol/L
BILIRUBIN_UMOL_PER_MG_DL = 17.1
BILIRUBIN_UNITS = ("mg/dL", "µmol/L")
# the facts that decide the plan: the definition of the disease and the choice of pathway
# (pathways.yaml reads them; the plan is undetermined or conditional while they are missing)
DECIDING = ("pathology.differentiation", "pathology.ki67_percent", "primary.site", "sstr_imaging",
            "course.status", "liver.resectable", "liver.resectable_fraction_percent", "liver.burden_percent",
            "liver.pattern", "extrahepatic.present", "symptomatic", "functional_syndrome", "fit_for_major_surgery")


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
    if help and unit:  # "Ki-67 proliferation index, %": the unit is said beside the value already
        bare = unit.lstrip("×")  # "×10⁹/L" is written "10⁹/L" in the model's words
        help = re.sub(rf",?\s*\(?×?{re.escape(bare)}\)?\s*$", "", help) or None
    units: tuple[str, ...] = ()
    if path == "sstr_uptake_krenning":
        kind, choices = "integer_choice", KRENNING_CHOICES
    elif path == "liver.bilirubin_mg_dl":
        units = BILIRUBIN_UNITS
    return FormField(path=path, label=label, kind=kind, choices=choices, unit=unit, minimum=minimum,
                     maximum=maximum, help=help, decides=path in DECIDING, units=units)


# ---------------------------------------------------------------- the groups

_GROUPS_BY_TOPIC: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    # id, title, fields, prefixes of model-level problems, special widgets
    ("case", "Case", ("id",), (), ()),
    ("pathology", "Primary tumour and pathology", (
        "primary.site", "pathology.differentiation", "pathology.ki67_percent", "pathology.mitoses_per_10hpf",
        "functional_syndrome", "symptomatic", "sstr_imaging", "pathology.ki67_specimen", "pathology.reported_grade",
        "functional_control", "sstr_uptake_krenning", "fdg_pet"), ("primary", "pathology"), ()),
    ("liver", "Liver disease", (
        "liver.timing", "liver.burden_percent", "liver.lesion_count", "liver.largest_lesion_cm", "liver.lobes",
        "liver.pattern", "liver.resectable_fraction_percent", "liver.portal_vein_thrombosis", "liver.liver_function",
        "liver.resectable", "liver.child_pugh", "liver.bilirubin_mg_dl", "liver.biliary_enteric_bypass",
        "liver.lung_shunt_percent"), ("liver",), ()),
    ("extrahepatic", "Extrahepatic disease", (
        "extrahepatic.present", "extrahepatic.resectable", "extrahepatic.peritoneal_carcinomatosis",
        "extrahepatic.symptomatic"), ("extrahepatic",), ("extrahepatic.sites",)),
    ("patient", "Patient", (
        "age_years", "ecog", "fit_for_major_surgery", "right_heart_insufficiency", "carcinoid_heart_disease",
        "transplant_contraindication"), (), ()),
    ("labs", "Laboratory", ("labs.egfr_ml_min", "labs.platelets_10e9_per_l", "labs.neutrophils_10e9_per_l"),
     ("labs",), ()),
    ("course", "Course and prior therapy", (
        "primary.resected", "course.status", "course.stable_months", "course.progression_within_12_months"),
     ("course", "prior_therapies"), ("prior_therapies",)),
)

# The facts that decide the plan come first, in their own marked group; every other field keeps
# its topic. The case label stays at the very top.
GROUPS: tuple[Group, ...] = (
    Group("case", "Case", (_make("id"),)),
    Group("decides", "What decides the plan", tuple(_make(p) for p in DECIDING)),
) + tuple(Group(gid, title, tuple(_make(p) for p in paths if p not in DECIDING), prefixes, extra)
          for gid, title, paths, prefixes, extra in _GROUPS_BY_TOPIC if gid != "case")

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


# a number as a form takes it: ASCII digits, one decimal point or comma, an optional exponent.
# Python's float() also reads "１２" (full-width), "١٢" (Arabic-Indic) and "1_000"; those stay text,
# which validation refuses with the field's own message (issue 24 item 7).
_ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?")


def _number(raw: str, integer: bool) -> Any:
    text = raw.strip().replace(",", ".")  # a decimal comma is how much of Europe writes 2,5
    if not _ASCII_NUMBER.fullmatch(raw.strip()):
        return raw.strip()
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
        elif f.kind == "integer_choice":
            set_field(doc, path, _number(raw, True))
        elif f.kind in ("number", "integer"):
            value = _number(raw, f.kind == "integer")
            unit = (single.get(path + ".unit") or "").strip()
            if f.units and unit == "µmol/L" and isinstance(value, (int, float)):
                value = round(value / BILIRUBIN_UMOL_PER_MG_DL, 3)  # the contract's mg/dL
            set_field(doc, path, value)
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
    state.values |= {p + ".unit": single[p + ".unit"] for p, f in FIELDS.items() if f.units and single.get(p + ".unit")}
    state.sites = [v for k, v in items if k == "extrahepatic.sites"]
    state.prior_mode = single.get("prior_therapies", "")
    rows = [{part: single.get(f"prior_therapies.{i}.{part}", "") for part in PRIOR_PARTS}
            for i in range(_row_count(single))]
    while rows and not any(rows[-1].values()):
        rows.pop()
    state.prior_rows = rows
    return state


def _field_tokens() -> dict[str, str]:
    """Words a model message uses for a field (its dotted path, or its last part where that is
    unambiguous: "reported_grade", "sstr_uptake_krenning") -> the field's path."""
    out = {p: p for p in FIELDS}
    last: dict[str, list[str]] = {}
    for p in FIELDS:
        last.setdefault(p.rsplit(".", 1)[-1], []).append(p)
    out |= {k: v[0] for k, v in last.items() if len(v) == 1 and k not in out}
    out |= {"extrahepatic.sites": "extrahepatic.sites", "sites": "extrahepatic.sites"}
    return out


_TOKEN = re.compile(r"\b([a-z][a-z0-9]*(?:_[a-z0-9]+)*(?:\.[a-z][a-z0-9_]*)*)(?: ('[^']*'|[0-9][0-9.]*|true|false))?")


def in_form_words(message: str) -> tuple[str, list[str]]:
    """A model message in the form's own labels ("liver.pattern 'single' contradicts liver.lesion_count 6"
    -> "“Pattern of liver involvement” single … contradicts “Number of liver lesions” 6"), and the
    fields it names, in order."""
    tokens = _field_tokens()
    named: list[str] = []

    def sub(m: re.Match) -> str:
        path = tokens.get(m.group(1))
        if path is None or ("." not in m.group(1) and "_" not in m.group(1) and m.group(1) != "symptomatic"):
            return m.group(0)
        if path not in named:
            named.append(path)
        value = m.group(2)
        if value is None:
            return f"“{labels.field_label(path)}”"
        raw = value.strip("'")
        shown = {"true": "yes", "false": "no"}.get(raw) or (labels.value_label(path, raw) if value.startswith("'") else raw)
        return f"“{labels.field_label(path)}” {shown}"

    worded = _TOKEN.sub(sub, message).replace("” is false", "” is “no”").replace("” is true", "” is “yes”")
    # the other named fields' values still quoted as ids ('dominant_with_satellites') in their words
    choices = {v: label for n in named if n in FIELDS for v, label in FIELDS[n].choices}
    worded = re.sub(r"'([a-z0-9_]+)'", lambda m: f"“{choices[m.group(1)]}”" if m.group(1) in choices else m.group(0),
                    worded)
    return worded, named


def place_problems(state: FormState, problems: list[tuple[str, str]], renames: Mapping[str, str]) -> None:
    """Put each validation message beside its field (by dotted path), else on its group. A
    message about two fields that contradict each other is put beside both, in their labels."""
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
        if target not in FIELDS or target in (None, "extrahepatic.sites", "prior_therapies"):
            worded, named = in_form_words(message)
            named = [n for n in named if n in known]
            if len(named) >= 2 or (named and target is None):
                for n in named:
                    state.errors.setdefault(n, []).append(worded)
                state.problems.append((" and ".join(labels.field_label(n) for n in named), worded, "f-" + named[0]))
                continue
        if target:
            state.errors.setdefault(target, []).append(message)
            state.problems.append((labels.field_label(target) if target in FIELDS else path, message, "f-" + target))
            continue
        group = next((g.id for g in GROUPS if parts and parts[0] in g.prefixes), None)
        state.group_errors.setdefault(group or "", []).append(message)
        state.problems.append((path, message, f"g-{group}" if group else "problems"))
