"""The code → field table (mapping.yaml), validated once and indexed by (system, code)."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..patient import OPTION_IDS, SCALAR_FIELDS, InvalidPatient, set_field, validate_patient
from ..yamlio import read_yaml

MAPPING_FILE = Path(__file__).with_name("mapping.yaml")
OPTION_SYSTEM = "urn:nelm:option"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Code(_Record):
    system: str
    code: str


class Answer(_Record):
    """A coded result (valueCodeableConcept) and the value of the field it stands for."""
    system: str
    code: str
    value: Any


class ObservationMap(_Record):
    field: str
    label: str
    codes: list[Code]
    # quantity: valueQuantity converted by `units`; integer: valueInteger (or a coded answer);
    # coded: valueCodeableConcept through `answers`; morphology: an ICD-O-3 morphology through
    # the `morphologies` table
    # site: a distant-metastasis site (answers give a contract site, null for the liver itself,
    # true for metastases whose site is not named) into extrahepatic.sites / .present
    value: Literal["quantity", "integer", "coded", "morphology", "site"]
    units: dict[str, float] = Field(default_factory=dict)
    answers: list[Answer] = Field(default_factory=list)
    # when given, the Observation is read only if its method is one of these (e.g. a grade
    # read only when graded by the WHO classification)
    methods: list[Code] = Field(default_factory=list)
    confirmed: str

    @model_validator(mode="after")
    def _known_field(self) -> "ObservationMap":
        if self.field not in SCALAR_FIELDS:
            raise ValueError(f"{self.field!r} is not a field of the patient document")
        if self.value == "quantity" and not self.units:
            raise ValueError(f"{self.field}: a quantity needs its units")
        if self.value in ("coded", "site") and not self.answers:
            raise ValueError(f"{self.field}: a coded result needs its answers")
        if self.value == "site":
            if self.field != "extrahepatic.present":
                raise ValueError(f"{self.label}: a metastasis site sets extrahepatic.present (and .sites)")
            for a in self.answers:
                if a.value is not None and a.value is not True:
                    _check_values(self.label, {}, [{"extrahepatic": {"present": True, "sites": [a.value]}}])
            return self
        for a in self.answers:
            doc: dict[str, Any] = {}
            set_field(doc, self.field, a.value)
            try:
                validate_patient(doc)
            except InvalidPatient as exc:
                raise ValueError(f"{self.label}: answer {a.code}: {exc}") from None
        return self


class MorphologyMap(_Record):
    """An ICD-O-3 morphology (mCODE histology-morphology-behavior extension, or a histology
    Observation) and the fields it sets."""
    label: str
    codes: list[Code]
    sets: dict[str, Any]
    confirmed: str

    @model_validator(mode="after")
    def _valid_values(self) -> "MorphologyMap":
        _check_values(self.label, self.sets, [])
        return self


def _check_values(label: str, sets: dict[str, Any], extra: list[dict[str, Any]]) -> None:
    """Every value a table entry sets (and each extra document) must be one the patient document accepts."""
    docs = list(extra)
    for field, value in sets.items():
        if field not in SCALAR_FIELDS:
            raise ValueError(f"{label}: {field!r} is not a field of the patient document")
        doc: dict[str, Any] = {}
        set_field(doc, field, value)
        docs.append(doc)
    for doc in docs:
        try:
            validate_patient(doc)
        except InvalidPatient as exc:
            raise ValueError(f"{label}: {exc}") from None


class ConditionMap(_Record):
    label: str
    codes: list[Code]
    sets: dict[str, Any] = Field(default_factory=dict)
    add_site: str | None = None
    # a primary neuroendocrine tumour: its Condition.bodySite (mCODE's way of coding where a
    # cancer is) is read through `body_sites` into primary.site
    primary: bool = False
    confirmed: str

    @model_validator(mode="after")
    def _valid_values(self) -> "ConditionMap":
        # every value the table sets must be one the patient document accepts
        extra = [{"extrahepatic": {"present": True, "sites": [self.add_site]}}] if self.add_site is not None else []
        _check_values(self.label, self.sets, extra)
        return self


class BodySiteMap(_Record):
    """A body structure (SNOMED CT) or ICD-O-3 topography a primary tumour's Condition.bodySite may name."""
    label: str
    codes: list[Code]
    site: str
    confirmed: str

    @model_validator(mode="after")
    def _valid_site(self) -> "BodySiteMap":
        try:
            validate_patient({"primary": {"site": self.site}})
        except InvalidPatient as exc:
            raise ValueError(f"{self.label}: {exc}") from None
        return self


class ProcedureMap(_Record):
    """A completed Procedure that states a fact of the patient document (not a nelm option).

    ``sets``: fields it sets (as for a Condition). ``resects``: the primary sites whose
    resection it is; it sets primary.resected only when the primary site read from the same
    Bundle is one of them (an organ resection is the primary's only if the primary is there).
    """
    label: str
    codes: list[Code]
    sets: dict[str, Any] = Field(default_factory=dict)
    resects: list[str] = Field(default_factory=list)
    confirmed: str

    @model_validator(mode="after")
    def _valid_values(self) -> "ProcedureMap":
        if not self.sets and not self.resects:
            raise ValueError(f"{self.label}: a procedure entry must set a field or name the sites it resects")
        _check_values(self.label, self.sets, [{"primary": {"site": site, "resected": True}} for site in self.resects])
        return self


class TreatmentMap(_Record):
    option: str
    label: str
    codes: list[Code]
    # the drug's international non-proprietary names: a medication given only as text is read
    # when its text names exactly one option's drug (the reading says it was read from text)
    names: list[str] = Field(default_factory=list)
    confirmed: str

    @model_validator(mode="after")
    def _known_option(self) -> "TreatmentMap":
        if self.option not in OPTION_IDS:
            raise ValueError(f"{self.option!r} is not an option id")
        return self


class SystemAlias(_Record):
    """Another URI for one of the declared code systems (same codes, same meanings)."""
    uri: str
    confirmed: str


class MappingFile(_Record):
    version: str
    systems: dict[str, str]
    system_aliases: dict[str, list[SystemAlias]] = Field(default_factory=dict)
    observations: list[ObservationMap]
    morphologies: list[MorphologyMap] = Field(default_factory=list)
    conditions: list[ConditionMap]
    body_sites: list[BodySiteMap] = Field(default_factory=list)
    procedures: list[ProcedureMap] = Field(default_factory=list)
    treatments: list[TreatmentMap]

    @model_validator(mode="after")
    def _systems_named(self) -> "MappingFile":
        seen: dict[tuple[str, str], str] = {}
        for alias in self.system_aliases:
            if alias not in self.systems:
                raise ValueError(f"system_aliases: {alias!r} is not declared under systems")
        for group in (self.observations, self.morphologies, self.conditions, self.body_sites, self.procedures,
                      self.treatments):
            for entry in group:
                for c in [*entry.codes, *getattr(entry, "methods", []), *getattr(entry, "answers", [])]:
                    if c.system not in self.systems:
                        raise ValueError(f"{entry.label}: code system {c.system!r} is not declared under systems")
                    if not isinstance(c, Code):
                        continue  # answers and methods: declared systems, may repeat
                    key = (self.systems[c.system], c.code)
                    if key in seen:  # one code, one meaning
                        raise ValueError(f"{c.system} {c.code} is mapped twice ({seen[key]}, {entry.label})")
                    seen[key] = entry.label
        return self




class Mapping:
    """The validated table with look-ups by (system URI, code)."""

    def __init__(self, data: MappingFile, sha256: str):
        self.version = data.version
        self.sha256 = sha256
        self.systems = data.systems
        self.names = {uri: name for name, uri in data.systems.items()}
        # another URI of a declared system → that system's URI
        self.aliases = {a.uri: data.systems[name] for name, aliases in data.system_aliases.items() for a in aliases}
        self.names |= {a: self.names[uri] for a, uri in self.aliases.items()}
        self.observations = {(data.systems[c.system], c.code): o for o in data.observations for c in o.codes}
        self.morphologies = {(data.systems[c.system], c.code): m for m in data.morphologies for c in m.codes}
        self.treatment_names = {n.lower(): t for t in data.treatments for n in t.names}
        self.conditions = {(data.systems[c.system], c.code): m for m in data.conditions for c in m.codes}
        self.body_sites = {(data.systems[c.system], c.code): b for b in data.body_sites for c in b.codes}
        self.procedures = {(data.systems[c.system], c.code): p for p in data.procedures for c in p.codes}
        self.treatments = {(data.systems[c.system], c.code): t for t in data.treatments for c in t.codes}

    def system_name(self, uri: str | None) -> str:
        """``LOINC`` for http://loinc.org: how provenance names a code system."""
        name = self.names.get(uri or "")
        return {"loinc": "LOINC", "snomed": "SNOMED CT", "icd10cm": "ICD-10-CM", "icd10gm": "ICD-10-GM", "icd10": "ICD-10", "atc": "ATC", "rxnorm": "RxNorm",
                "icdo3": "ICD-O-3", "ncit": "NCI Thesaurus",
                "nelm_option": "nelm option"}.get(name or "", uri or "no system")

    def canonical(self, system: str | None) -> str:
        """The declared URI of a code system named by one of its other URIs (BfArM ATC → WHO ATC)."""
        return self.aliases.get(system or "", system or "")

    def option_of(self, system: str | None, code: str | None) -> str | None:
        """The option id an ordered or given treatment code stands for, if the table knows it."""
        if system == OPTION_SYSTEM and code in OPTION_IDS:
            return code
        t = self.treatments.get((self.canonical(system), code or ""))
        return t.option if t else None

    def identity(self) -> dict[str, str]:
        return {"version": self.version, "sha256": self.sha256}


@lru_cache(maxsize=1)
def load_mapping() -> Mapping:
    raw = MAPPING_FILE.read_bytes()
    data = MappingFile.model_validate(read_yaml(MAPPING_FILE))
    return Mapping(data, hashlib.sha256(raw).hexdigest())


__all__ = ["Mapping", "load_mapping", "OPTION_SYSTEM"]
