"""The patient document of ../shared/CONTRACT.md and its validation.

Every field may be null or absent, which means *unknown* (never "no"). Unknown keys,
out-of-range numbers and values outside the enumerations are refused, each with its
dotted path and what is allowed: :func:`load_patient` raises :class:`InvalidPatient`
carrying every problem at once. Facts that contradict each other are refused by one model
validator that reads its checks from ``knowledge/consistency.yaml`` (:mod:`nelm.consistency`,
the same definitions ``nelm screen`` applies column-wise); each such refusal names every
field the check reads.
"""
from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from . import follows, inputgate, labels

OPTION_IDS: tuple[str, ...] = (
    "liver_resection", "thermal_ablation", "liver_transplant", "tae", "tace", "deb_tace",
    "sirt", "prrt", "ebrt", "ssa", "everolimus", "sunitinib", "platinum_etoposide",
    "capecitabine_temozolomide", "streptozocin_based", "interferon_alpha", "cabozantinib",
    "telotristat", "clinical_trial",
)

PrimarySite = Literal["pancreas", "duodenum", "stomach", "jejunum_ileum", "appendix", "colon",
                      "rectum", "lung", "thymus", "unknown_primary", "other"]
Syndrome = Literal["none", "carcinoid", "insulinoma", "gastrinoma", "glucagonoma", "vipoma", "other"]
ExtrahepaticSite = Literal["lymph_nodes", "lung", "bone", "peritoneum", "other"]
Therapy = Literal[OPTION_IDS]  # type: ignore[valid-type]
Outcome = Literal["response", "stable", "progression", "intolerance"]
Grade = Literal["G1", "G2", "G3"]


def ki67_grade(ki67: float | None) -> int | None:
    """WHO 2019 band of a Ki-67 index (the same cut-offs as knowledge/classification.yaml)."""
    return None if ki67 is None else 1 if ki67 < 3 else 2 if ki67 <= 20 else 3


def mitotic_grade(mitoses: float | None) -> int | None:
    return None if mitoses is None else 1 if mitoses < 2 else 2 if mitoses <= 20 else 3

Percent = Field(None, ge=0, le=100)


def _whole_number(value: Any) -> Any:
    """``0.0`` read as ``0`` for an integer field; ``0.5`` is left to be refused.

    JSON has one number type and JSON Schema's ``integer`` (what /openapi.json and
    ``nelm schema`` declare for these fields) includes 1.0, so a client whose serializer
    writes ``1.0`` sends a valid document: accept it rather than declare a narrower type
    JSON Schema cannot express. Strings, booleans and fractions stay refused (strict).
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class _Strict(BaseModel):
    # strict: "5" is not 5 and "yes" is not true; a typo'd key is an error, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True)


class Primary(_Strict):
    site: PrimarySite | None = Field(None, description="site of the primary tumour")
    resected: bool | None = Field(None, description="primary tumour removed")


class Pathology(_Strict):
    differentiation: Literal["well", "poor"] | None = Field(None, description="tumour differentiation")
    ki67_percent: float | None = Field(None, ge=0, le=100, description="Ki-67 proliferation index, %")
    mitoses_per_10hpf: float | None = Field(None, ge=0, le=1000, description="mitotic count per 10 high-power fields (2 mm²)")
    ki67_specimen: Literal["primary", "liver_metastasis", "other"] | None = Field(
        None, description="where Ki-67 was counted")
    reported_grade: Grade | None = Field(
        None, description="WHO grade as the pathology report states it, when it gives no index")



class Liver(_Strict):
    timing: Literal["synchronous", "metachronous"] | None = Field(None, description="liver metastases found with the primary (synchronous) or later")
    burden_percent: float | None = Field(None, ge=0, le=100, description="share of the liver replaced by tumour, %")
    # le: far beyond any countable number of liver lesions, and inside every column type
    # the count reaches (Polars Float64/Int64, the database); a 400-digit count was an overflow
    lesion_count: int | None = Field(None, ge=0, le=10_000, description="number of liver metastases")
    largest_lesion_cm: float | None = Field(None, ge=0, le=50, description="diameter of the largest metastasis, cm")
    lobes: Literal["unilobar", "bilobar"] | None = Field(None, description="one or both liver lobes involved")
    pattern: Literal["single", "dominant_with_satellites", "disseminated"] | None = Field(
        None, description="Frilling type I / II / III")
    resectable_fraction_percent: float | None = Field(
        None, ge=0, le=100,
        description="share of the hepatic tumour burden removable by surgery ± ablation with an adequate remnant, %")
    portal_vein_thrombosis: bool | None = Field(None, description="portal vein thrombosis")
    liver_function: Literal["normal", "impaired"] | None = Field(None, description="liver function")
    resectable: bool | None = Field(
        None, description="the liver surgeon judges all hepatic disease removable (for records without a percentage)")
    child_pugh: Literal["A", "B", "C"] | None = Field(None, description="Child-Pugh class")
    bilirubin_mg_dl: float | None = Field(None, ge=0, le=60, description="serum bilirubin, mg/dL")
    biliary_enteric_bypass: bool | None = Field(
        None, description="sphincter of Oddi bypassed or incompetent (bilio-enteric anastomosis, sphincterotomy, biliary stent)")
    lung_shunt_percent: float | None = Field(None, ge=0, le=100, description="hepatopulmonary shunt fraction on SIRT work-up, %")

    _whole_lesion_count = field_validator("lesion_count", mode="before")(_whole_number)

class Extrahepatic(_Strict):
    present: bool | None = Field(None, description="any disease outside the liver (the primary excepted)")
    sites: list[ExtrahepaticSite] | None = Field(None, description="sites of extrahepatic disease")
    resectable: bool | None = Field(None, description="all extrahepatic disease can be removed")
    peritoneal_carcinomatosis: Literal["none", "limited_resectable", "diffuse_unresectable"] | None = Field(
        None, description="peritoneal carcinomatosis")
    symptomatic: bool | None = Field(
        None, description="an extrahepatic site causes pain, compression or bleeding that local treatment could palliate")

class Course(_Strict):
    status: Literal["stable", "progressive"] | None = Field(None, description="stable includes response")
    stable_months: float | None = Field(None, ge=0, le=600, description="months of stable disease or response")
    progression_within_12_months: bool | None = Field(None, description="radiological progression within the last 12 months")


class Labs(_Strict):
    # Lower bounds: the lowest values a living patient's laboratory reports (a count or an eGFR
    # of 0 is a missing value or a unit slip, not a measurement); this knowledge base's
    # plausibility bounds, not clinical thresholds.
    egfr_ml_min: float | None = Field(None, ge=1, le=250, description="estimated glomerular filtration rate, mL/min")
    platelets_10e9_per_l: float | None = Field(None, ge=1, le=3000, description="platelet count, 10⁹/L")
    neutrophils_10e9_per_l: float | None = Field(None, ge=0.01, le=200, description="neutrophil count, 10⁹/L")


class PriorTherapy(_Strict):
    therapy: Therapy = Field(description="an option id")
    outcome: Outcome | None = None
    months_to_progression: float | None = Field(
        None, ge=0, le=600, description="months from the start of that therapy to progression")
    ongoing: bool | None = Field(None, description="still being given")

    @model_validator(mode="after")
    def _months_only_with_progression(self) -> "PriorTherapy":
        if self.months_to_progression is not None and self.outcome not in ("progression", None):
            raise ValueError(f"months_to_progression {self.months_to_progression:g} given but the outcome is "
                             f"{self.outcome!r}; allowed: outcome 'progression', or no months_to_progression")
        return self


class Patient(_Strict):
    """A patient with neuroendocrine liver metastases, as the tumour board knows them."""

    id: str | None = Field(None, description="optional free text, never required")
    age_years: float | None = Field(None, ge=0, le=120, description="age in years")
    ecog: int | None = Field(None, ge=0, le=4, description="ECOG performance status 0-4")
    fit_for_major_surgery: bool | None = Field(None, description="fit for major liver surgery")
    primary: Primary | None = None
    pathology: Pathology | None = None
    functional_syndrome: Syndrome | None = Field(None, description="hormonal (functional) syndrome")
    symptomatic: bool | None = Field(None, description="hormonal or tumour-bulk symptoms present")
    liver: Liver | None = None
    extrahepatic: Extrahepatic | None = None
    right_heart_insufficiency: bool | None = Field(None, description="right heart failure, e.g. carcinoid heart disease")
    sstr_imaging: Literal["positive", "negative"] | None = Field(None, description="somatostatin-receptor imaging")
    course: Course | None = None
    transplant_contraindication: bool | None = Field(
        None, description="another condition ruling out transplantation, previous cancers included")
    prior_therapies: list[PriorTherapy] | None = Field(None, description="earlier treatments and how the disease responded")
    # contract v2
    fdg_pet: Literal["positive", "negative"] | None = Field(None, description="FDG-PET")
    sstr_uptake_krenning: int | None = Field(
        None, ge=0, le=4, description="SSTR uptake of the target lesions, Krenning score 0-4 (2 = as liver, 3 = above liver, 4 = above spleen)")
    carcinoid_heart_disease: Literal["none", "present", "valves_replaced"] | None = Field(
        None, description="carcinoid heart disease on echocardiography")
    functional_control: Literal["untreated", "controlled", "refractory"] | None = Field(
        None, description="control of the hormonal syndrome")
    labs: Labs | None = None

    _whole_scores = field_validator("ecog", "sstr_uptake_krenning", mode="before")(_whole_number)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "Patient":
        # Facts that contradict each other are refused, never resolved by a guess. The checks
        # are data (knowledge/consistency.yaml, nelm.consistency), the same the batch validator
        # of `nelm screen` applies column-wise; each refusal names every field it reads.
        if info.context and info.context.get("consistency") is False:
            return self
        from .consistency import Inconsistent, refusals

        found = refusals(flatten(self))
        if found:
            raise Inconsistent(found)
        return self


# --------------------------------------------------------------------------- errors

class InvalidPatient(Exception):
    """A document that is not a valid patient; ``problems`` holds (dotted field, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{f}: {m}" if f else m for f, m in problems))

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"field": f, "message": m} for f, m in self.problems]


def _allowed_here(loc: tuple[Any, ...]) -> str:
    """Names of the fields allowed at the object that holds ``loc``'s last key."""
    model: type[BaseModel] | None = Patient
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return ""
        model = next((a for a in _flat_args(field.annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return ", ".join(model.model_fields) if model else ""


def _flat_args(tp: Any) -> list[Any]:
    out = []
    for a in get_args(tp) or [tp]:
        out += _flat_args(a) if get_args(a) else [a]
    return out


def _inconsistent() -> type:
    from .consistency import Inconsistent

    return Inconsistent


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p.startswith("function-") or p in _NOISE)))
        field = ".".join(str(p) for p in loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_here(loc)
            # a misspelt key ("ki67") is the usual cause: name the nearest allowed field
            names = allowed.split(", ")
            key = str(loc[-1]) if loc else ""
            near = ([n for n in names if key and n.startswith(key)][:1]
                    or difflib.get_close_matches(key, names, n=1, cutoff=0.6))
            msg = (f"unknown field; did you mean {near[0]!r}? " if near else "unknown field; ") + f"allowed here: {allowed}"
        elif kind == "value_error" and isinstance(err.get("ctx", {}).get("error"), _inconsistent()):
            # a consistency check names each field it reads (knowledge/consistency.yaml)
            problems += err["ctx"]["error"].problems
            continue
        elif kind == "value_error":
            msg = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        else:
            msg = _for_clinicians(field, loc, err)
        problems.append((field, msg))
    return problems


def _bounds(loc: tuple[Any, ...]) -> tuple[Any, Any]:
    """The (minimum, maximum) the model allows for the field at ``loc``."""
    model: Any = Patient
    info = None
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or str(part) not in model.model_fields:
            return None, None
        info = model.model_fields[str(part)]
        model = next((a for a in _flat_args(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    if info is None:
        return None, None
    lo = next((getattr(m, "ge", None) for m in info.metadata if getattr(m, "ge", None) is not None), None)
    hi = next((getattr(m, "le", None) for m in info.metadata if getattr(m, "le", None) is not None), None)
    return lo, hi


def _num_text(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _for_clinicians(field: str, loc: tuple[Any, ...], err: Any) -> str:
    """pydantic's wording rewritten as a clinician reads it: the field's label, what is
    allowed, what was entered ("Ki-67 must be between 0 and 100 %; 150 was entered").
    The dotted path stays beside the message in every interface."""
    kind = err["type"]
    label = labels.field_label(field) if field else "The document"
    unit = labels.field_unit(field) if field else ""
    unit = f" {unit}" if unit and unit != "%" else (" %" if unit == "%" else "")
    has_input = "input" in err and not isinstance(err["input"], (dict, list))
    entered = f"; {_echo(err['input'])} was entered" if has_input else ""
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        lo, hi = _bounds(loc)
        if lo is not None and hi is not None:
            allowed = f"between {_num_text(lo)} and {_num_text(hi)}{unit}"
        elif lo is not None:
            allowed = f"at least {_num_text(lo)}{unit}"
        else:
            allowed = err["msg"].removeprefix("Input should be ")
        return f"{label} must be {allowed}{entered.replace(repr(err.get('input')), _num_text(err.get('input')))}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{label} must be a whole number{entered}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"{label} must be a number{entered}"
    if kind in ("bool_type", "bool_parsing"):
        return f"{label} must be true or false{entered} (in JSON and YAML 1.2 only true and false are booleans)"
    if kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return f"{label} must be one of {expected}{entered}"
    if kind in ("list_type", "dict_type", "model_type", "model_attributes_type"):
        what = "a list" if kind == "list_type" else "a group of fields (an object)"
        return f"{label} must be {what}{entered}"
    if kind == "missing":
        return f"{label} is required here"
    return f"{label}: {err['msg']}{entered}"


def _echo(value: Any, limit: int = 80) -> str:
    """The offending input as a message quotes it: repr (control characters escaped), cut short."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "…"


# pydantic inserts the union/list member type names into locations; they are not field names.
_NOISE = {"list[literal['lymph_nodes','lung','bone','peritoneum','other']]", "list[PriorTherapy]"}


def validate_patient(data: Any, *, consistency: bool = True) -> Patient:
    """The patient a JSON-like document describes; InvalidPatient names every problem.

    ``consistency=False`` leaves out the checks between fields (knowledge/consistency.yaml):
    the batch validator checks fields alone this way and the consistency checks column-wise.

    The input gate's limits (finite numbers, valid text, depth, ...) hold here too, for
    documents built in Python (the web form, a FHIR mapping) rather than parsed from text.
    """
    inputgate.check_document(data)
    if not isinstance(data, dict):
        raise InvalidPatient([("", f"the document must be a JSON/YAML object (a mapping of fields), got {type(data).__name__}")])
    try:
        return Patient.model_validate(data, context=None if consistency else {"consistency": False})
    except ValidationError as exc:
        problems = _problems(exc)
        if consistency and not _has_inconsistent(exc):
            # fields were refused, so the model's consistency validator did not run: run it on
            # the rest (each refused field unknown), so that every problem is named at once
            problems += _consistency_beside(data, [f for f, _ in problems])
        if len(problems) > inputgate.MAX_PROBLEMS:  # a crafted document must not make a 60,000-line answer
            problems = problems[:inputgate.MAX_PROBLEMS] + [
                ("", f"{len(problems) - inputgate.MAX_PROBLEMS} more problems are not listed")]
        raise InvalidPatient(problems) from None


def _has_inconsistent(exc: ValidationError) -> bool:
    kind = _inconsistent()
    return any(isinstance(e.get("ctx", {}).get("error"), kind) for e in exc.errors(include_url=False))


def refused_key(path: str) -> str:
    """The part of a problem's dotted path that is left unknown when the rest of the document
    is checked for consistency: a list (sites, prior therapies) as a whole."""
    parts = path.split(".")
    cut = next((i for i, p in enumerate(parts) if p.isdigit()), len(parts))
    return ".".join(parts[:cut])


def _consistency_beside(data: dict[str, Any], paths: list[str]) -> list[tuple[str, str]]:
    """The consistency refusals of ``data`` with every refused field made unknown."""
    import copy

    keys = {refused_key(p) for p in paths}
    if "" in keys:
        return []
    rest = copy.deepcopy(data)
    for key in keys:
        *parents, leaf = key.split(".")
        node: Any = rest
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    try:
        patient = Patient.model_validate(rest, context={"consistency": False})
    except ValidationError:
        return []
    from .consistency import refusals

    return refusals(flatten(patient))


def parse_text(text: str, fmt: str | None = None) -> Any:
    """Parse JSON or YAML text through the input gate (see :mod:`nelm.inputgate`):
    duplicate keys, non-finite numbers, invalid text and oversized or over-nested
    documents are refused by path; YAML is read as YAML 1.2 (only true/false are booleans)."""
    return inputgate.parse_text(text, fmt)


def load_patient(path: str | Path) -> Patient:
    """Read a JSON or YAML file (at most :data:`nelm.inputgate.MAX_DOCUMENT_BYTES`)."""
    text, fmt = inputgate.read_file(path)
    return validate_patient(parse_text(text, fmt))


# --------------------------------------------------------------------------- flat view

# The engine sees a patient as one row of a table: dotted contract fields become
# columns (dots → underscores). Sites and prior therapies are spread into one column
# each so that SQL conditions can test them; each column remembers its contract field.
SITE_COLUMNS = {f"extrahepatic_sites_{s}": "extrahepatic.sites" for s in get_args(ExtrahepaticSite)}
PRIOR_COLUMNS = {f"prior_{t}": "prior_therapies" for t in OPTION_IDS}
PRIOR_MONTHS_COLUMNS = {f"prior_{t}_months": "prior_therapies.months_to_progression" for t in OPTION_IDS}
PRIOR_ONGOING_COLUMNS = {f"prior_{t}_ongoing": "prior_therapies.ongoing" for t in OPTION_IDS}
# anticancer systemic lines (telotristat treats the syndrome, not the tumour)
SYSTEMIC_LINES = ("ssa", "everolimus", "sunitinib", "cabozantinib", "interferon_alpha", "prrt",
                  "platinum_etoposide", "capecitabine_temozolomide", "streptozocin_based")

SCALAR_FIELDS: dict[str, str] = {
    "age_years": "float", "ecog": "float", "fit_for_major_surgery": "bool",
    "primary.site": "str", "primary.resected": "bool",
    "pathology.differentiation": "str", "pathology.ki67_percent": "float", "pathology.mitoses_per_10hpf": "float",
    "functional_syndrome": "str", "symptomatic": "bool",
    "liver.timing": "str", "liver.burden_percent": "float", "liver.lesion_count": "float",
    "liver.largest_lesion_cm": "float", "liver.lobes": "str", "liver.pattern": "str",
    "liver.resectable_fraction_percent": "float", "liver.portal_vein_thrombosis": "bool",
    "liver.liver_function": "str",
    "extrahepatic.present": "bool", "extrahepatic.resectable": "bool",
    "extrahepatic.peritoneal_carcinomatosis": "str",
    "right_heart_insufficiency": "bool", "sstr_imaging": "str",
    "course.status": "str", "course.stable_months": "float", "course.progression_within_12_months": "bool",
    "transplant_contraindication": "bool",
    # contract v2
    "pathology.ki67_specimen": "str", "pathology.reported_grade": "str",
    "liver.resectable": "bool", "liver.child_pugh": "str", "liver.bilirubin_mg_dl": "float",
    "liver.biliary_enteric_bypass": "bool", "liver.lung_shunt_percent": "float",
    "extrahepatic.symptomatic": "bool",
    "fdg_pet": "str", "sstr_uptake_krenning": "float", "carcinoid_heart_disease": "str",
    "functional_control": "str",
    "labs.egfr_ml_min": "float", "labs.platelets_10e9_per_l": "float", "labs.neutrophils_10e9_per_l": "float",
}


def column_of(field: str) -> str:
    return field.replace(".", "_")


COLUMN_FIELDS: dict[str, str] = {column_of(f): f for f in SCALAR_FIELDS}


_CONSTRAINTS: dict[str, dict[str, Any]] = {}


def field_constraints() -> dict[str, dict[str, Any]]:
    """Each scalar field's own constraints as the patient model states them (its JSON schema):
    ``minimum``/``maximum`` (and the exclusive forms), ``enum`` and ``integer``. What another
    executor of the model's refusals reads (the SQL view's ``refused`` column), so the bounds
    are written once, on the model's fields."""
    if not _CONSTRAINTS:
        schema = Patient.model_json_schema()
        defs = schema.get("$defs", {})

        def resolve(node: dict[str, Any]) -> dict[str, Any]:
            branches = node.get("anyOf", [node])
            got = next((b for b in branches if b.get("type") != "null"), {})
            return defs[got["$ref"].rsplit("/", 1)[1]] if "$ref" in got else got

        for field in SCALAR_FIELDS:
            node: dict[str, Any] = schema
            for part in field.split("."):
                node = resolve(node["properties"][part])
            keep = {k: node[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum") if k in node}
            if node.get("type") == "integer":
                keep["integer"] = True
            _CONSTRAINTS[field] = keep
    return _CONSTRAINTS
COLUMN_FIELDS.update(SITE_COLUMNS)
COLUMN_FIELDS.update(PRIOR_COLUMNS)
COLUMN_FIELDS.update(PRIOR_MONTHS_COLUMNS)
COLUMN_FIELDS.update(PRIOR_ONGOING_COLUMNS)
COLUMN_FIELDS["prior_progression_count"] = "prior_therapies"
COLUMN_FIELDS["prior_systemic_lines"] = "prior_therapies"
COLUMN_TYPES: dict[str, str] = {column_of(f): t for f, t in SCALAR_FIELDS.items()}
COLUMN_TYPES.update({c: "bool" for c in SITE_COLUMNS})
COLUMN_TYPES.update({c: "str" for c in PRIOR_COLUMNS})
COLUMN_TYPES.update({c: "float" for c in PRIOR_MONTHS_COLUMNS})
COLUMN_TYPES.update({c: "bool" for c in PRIOR_ONGOING_COLUMNS})
COLUMN_TYPES["prior_progression_count"] = "float"
COLUMN_TYPES["prior_systemic_lines"] = "float"

# worst outcome wins when a therapy was given more than once; intolerance ranks above
# progression: a drug the patient could not take is not given again whatever it did
_OUTCOME_RANK = {"intolerance": 3, "progression": 2, "stable": 1, "response": 0, None: -1}
# an ongoing therapy's outcome is the current course of the disease (contract v3: facts
# that follow from facts): the next restaging says whether it still works
_COURSE_OUTCOME = {"progressive": "progression", "stable": "stable"}


def worst_outcome(outcomes: list[str | None], ongoing: list[bool | None], course: str | None) -> str | None:
    """A therapy's outcome in the flat view: the worst of its records; an unrecorded outcome
    of a therapy still given is the current course; any other unrecorded outcome leaves it
    unknown (NULL) unless a recorded intolerance already decides."""
    known = [o if o is not None else (_COURSE_OUTCOME.get(course) if on else None) for o, on in zip(outcomes, ongoing)]
    worst = max(known, key=lambda o: _OUTCOME_RANK[o])
    if None in known and worst != "intolerance":
        return None
    return worst


def set_field(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Put ``value`` at a dotted contract path of a document being built (``liver.burden_percent``),
    creating the groups on the way; how the form and the FHIR reader assemble a patient."""
    *parents, leaf = dotted.split(".")
    node = doc
    for p in parents:
        if node.get(p) is None:   # absent, or a section given as null (unknown)
            node[p] = {}
        node = node[p]
    node[leaf] = value


# the walks flatten_document makes, worked out once: (column, section or None, key)
_SCALAR_PATHS = [(column_of(f), *(f.split(".") if "." in f else (None, f))) for f in SCALAR_FIELDS]
_PRIOR_COLUMNS = [(t, f"prior_{t}", f"prior_{t}_months", f"prior_{t}_ongoing") for t in OPTION_IDS]


# The scalar fields flatten_document reads into their own column (a fact that follows from
# them is filled in afterwards from knowledge/follows.yaml, nelm.follows). The extrahepatic
# section's fields and the course are read elsewhere too (the sites list; an ongoing
# therapy's unrecorded outcome) and are handled in patched_row.
_DERIVING = ("extrahepatic.", "course.status")
PLAIN_COLUMNS: dict[str, str] = {f: column_of(f) for f in SCALAR_FIELDS if not f.startswith(_DERIVING)}
_EHD_SCALARS = {f.split(".", 1)[1]: column_of(f) for f in SCALAR_FIELDS if f.startswith("extrahepatic.")}
_EHD_COLUMNS = frozenset([*_EHD_SCALARS.values(), *SITE_COLUMNS])
_PRIOR_ALL = frozenset([*PRIOR_COLUMNS, *PRIOR_MONTHS_COLUMNS, *PRIOR_ONGOING_COLUMNS,
                        "prior_progression_count", "prior_systemic_lines"])


def patched_row(doc: dict[str, Any], row: dict[str, Any], values: dict[str, Any]
                ) -> tuple[dict[str, Any], frozenset[str]] | None:
    """``flatten_document`` of ``doc`` with ``values`` (dotted fields; ``prior_therapies`` a whole
    history) set in it, worked out from ``row`` (``flatten_document(doc)``) by replacing the
    columns the values decide; and those columns. None for a field not worked out here (then
    flatten the document). The plan builds tens of what-if patients this way (nelm.plan);
    tests/test_plan_speed.py checks the rows are flatten_document's."""
    out = dict(row)
    changed: set[str] = set()
    ehd: dict[str, Any] | None = None
    for f, v in values.items():
        col = PLAIN_COLUMNS.get(f)
        if col is not None:
            out[col] = v
            changed.add(col)
        elif f.startswith("extrahepatic."):
            leaf = f[len("extrahepatic."):]
            if leaf not in _EHD_SCALARS and leaf != "sites":
                return None
            if ehd is None:
                ehd = dict(doc.get("extrahepatic") or {})   # as set_field fills the section in
            ehd[leaf] = v
        elif f not in ("course.status", "prior_therapies"):
            return None
    if ehd is not None:
        for leaf, col in _EHD_SCALARS.items():
            out[col] = ehd.get(leaf)
        _extrahepatic_columns(out, ehd or None)
        changed |= _EHD_COLUMNS
    if changed & follows.columns():
        # the facts that follow, again from the recorded values (a column the row holds may
        # have been filled in: read each from the document with the values set in it)
        recorded = {c: _recorded(doc, values, ehd, c) for c in follows.columns()}
        follows.fill(recorded)
        for c in follows.by_column():
            if recorded[c] != out[c] or c in changed:
                out[c] = recorded[c]
                changed.add(c)
    if "prior_therapies" in values or "course.status" in values:
        course = values["course.status"] if "course.status" in values else (doc.get("course") or {}).get("status")
        if "course.status" in values:
            out["course_status"] = course
            changed.add("course_status")
        prior = values["prior_therapies"] if "prior_therapies" in values else doc.get("prior_therapies")
        # the course decides only an ongoing therapy's unrecorded outcome (worst_outcome): with
        # the history as it was and no such record, the history's columns stay as they were
        if "prior_therapies" in values or any(r.get("outcome") is None and r.get("ongoing") for r in prior or ()):
            _prior_columns(out, prior, course)
            changed |= _PRIOR_ALL
    return out, frozenset(changed)


def _recorded(doc: dict[str, Any], values: dict[str, Any], ehd: dict[str, Any] | None, column: str) -> Any:
    """A scalar column's value as recorded in ``doc`` with ``values`` set in it (``ehd``: the
    extrahepatic section with them, when they touch it)."""
    dotted = COLUMN_FIELDS[column]
    if dotted in values:
        return values[dotted]
    section, _, leaf = dotted.rpartition(".")
    if section == "extrahepatic" and ehd is not None:
        return ehd.get(leaf)
    node = doc.get(section) if section else doc
    return node.get(leaf) if node else None


def flatten(patient: Patient) -> dict[str, Any]:
    """One row of column values; None means unknown."""
    return flatten_document(patient.model_dump())


def flatten_document(data: dict[str, Any]) -> dict[str, Any]:
    """The flat row of a patient document in the model's dumped shape (a section may be
    absent or hold only some keys). The plan's what-if patients are documents derived from a
    validated one, flattened without building a model each time (nelm.plan)."""
    return follows.fill(recorded_row(data))


def recorded_row(data: dict[str, Any]) -> dict[str, Any]:
    """The flat row of a document's values as recorded, before the facts that follow from them
    are filled in (:mod:`nelm.follows`)."""
    row: dict[str, Any] = {}
    for column, section, leaf in _SCALAR_PATHS:
        if section is None:
            row[column] = data.get(leaf)
        else:
            node = data.get(section)
            row[column] = node.get(leaf) if node else None
    _extrahepatic_columns(row, data.get("extrahepatic") or None)
    _prior_columns(row, data.get("prior_therapies"), (data.get("course") or {}).get("status"))
    return row


def _extrahepatic_columns(row: dict[str, Any], ehd: dict[str, Any] | None) -> None:
    """The site columns, read from the extrahepatic section's list (``ehd``: None when absent or empty)."""
    sites = ehd.get("sites") if ehd else None
    present = ehd.get("present") if ehd else None
    # An empty list only says "no sites" when the patient is known to have no extrahepatic disease.
    known_sites = sites is not None and (sites or present is False)
    for col in SITE_COLUMNS:
        site = col.removeprefix("extrahepatic_sites_")
        row[col] = (site in sites) if known_sites else None


def _prior_columns(row: dict[str, Any], prior: list[dict[str, Any]] | None, course: str | None) -> None:
    """The columns of the treatment history (the course decides an ongoing therapy's unrecorded outcome)."""
    by_therapy: dict[str, list[dict[str, Any]]] = {}
    for p in prior or ():
        by_therapy.setdefault(p["therapy"], []).append(p)
    for therapy, col, col_months, col_ongoing in _PRIOR_COLUMNS:
        if prior is None:
            row[col] = row[col_months] = row[col_ongoing] = None
            continue
        given = by_therapy.get(therapy)
        if not given:
            row[col], row[col_months], row[col_ongoing] = "none", None, False
            continue
        ongoing = [p.get("ongoing") for p in given]
        row[col] = worst_outcome([p.get("outcome") for p in given], ongoing, course)
        # the shortest response governs re-treatment
        months = [p["months_to_progression"] for p in given if p.get("months_to_progression") is not None]
        row[col_months] = min(months) if months else None
        row[col_ongoing] = True if True in ongoing else (False if all(o is False for o in ongoing) else None)
    # an outcome not recorded is neither progression nor its absence (contract v3): the
    # count is unknown while any therapy's outcome is
    outcomes = [row[f"prior_{t}"] for t in OPTION_IDS]
    row["prior_progression_count"] = None if prior is None or None in outcomes else float(
        outcomes.count("progression"))
    row["prior_systemic_lines"] = None if prior is None else float(
        len({p["therapy"] for p in prior if p["therapy"] in SYSTEMIC_LINES}))


@lru_cache(maxsize=1)
def column_values() -> dict[str, tuple[str, ...]]:
    """The values each text column of the flat view can take (contract enumerations, and the
    history's worst outcome), so that tables may hold them as categories (Polars Enum)."""
    out: dict[str, tuple[str, ...]] = {}
    for dotted, kind in SCALAR_FIELDS.items():
        if kind != "str":
            continue
        model: Any = Patient
        field = None
        for part in dotted.split("."):
            field = model.model_fields[part]
            model = next((a for a in _flat_args(field.annotation) if isinstance(a, type) and issubclass(a, BaseModel)),
                         None)
        values = tuple(a for a in _flat_args(field.annotation) if isinstance(a, str))
        if not values:
            raise TypeError(f"{dotted}: a text field without an enumeration")
        out[column_of(dotted)] = values
    outcomes = tuple(a for a in get_args(Outcome) if isinstance(a, str))
    for col in PRIOR_COLUMNS:
        out[col] = ("none", "given", *outcomes)
    return out


def column_dtype(column: str) -> Any:
    """A flat-view column's Polars dtype: text columns as an Enum of their values, so that a
    table of patients compares categories, not strings (Polars imported only when asked)."""
    import polars as pl

    kind = COLUMN_TYPES[column]
    if kind == "str":
        return pl.Enum(column_values()[column])
    return {"float": pl.Float64, "bool": pl.Boolean}[kind]


def json_schema() -> dict[str, Any]:
    schema = Patient.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "nelm patient document (contract v2; v1 documents stay valid)"
    return schema


def field_label(dotted: str) -> str:
    """A person's name for a contract field: its description, or its name in words."""
    model: type[BaseModel] | None = Patient
    field = None
    for part in dotted.split("."):
        if model is None:
            break
        field = model.model_fields.get(part)
        if field is None:
            break
        model = next((a for a in _flat_args(field.annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    if field is not None and field.description:
        return field.description
    return dotted.replace(".", ": ").replace("_", " ")
