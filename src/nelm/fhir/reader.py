"""A FHIR R4 Bundle → the nelm patient document, with where every value came from.

Resources are parsed with ``fhir.resources`` (its R4B models, which read R4 Patient,
Condition, Observation, Procedure and Medication* resources) one entry at a time, so one
malformed resource is reported as unread rather than sinking the whole Bundle. Codes are
looked up in the one mapping table (``mapping.yaml``); nothing clinical is decided here:

* a fact the Bundle does not state stays unknown (absent from the document);
* two resources giving different values for one field are a *conflict*: the most recent
  effective date governs, the conflict is listed, and a tie leaves the field unknown;
* a resource the table cannot read (unknown code, unit, status or type) is listed as
  *unread* with the reason, never silently dropped;
* the document then goes through the patient document's own validation, so an invalid
  value is refused with its dotted path (and the resource it was read from).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import inputgate, labels
from ..patient import InvalidPatient, Patient, set_field, validate_patient
from .mapping import Mapping, load_mapping

BUNDLE_TYPES = ("transaction", "collection", "searchset", "batch", "document")
READ_TYPES = ("Patient", "Observation", "Condition", "Procedure", "MedicationStatement",
              "MedicationAdministration", "MedicationRequest", "Medication")
# statuses whose resource states a fact; anything else is reported as unread, with its status
OBSERVATION_FINAL = ("final", "amended", "corrected")
GIVEN_STATUS = {
    "MedicationStatement": {"active": True, "completed": False, "stopped": False, "on-hold": None, "unknown": None},
    "MedicationAdministration": {"in-progress": True, "completed": False, "stopped": False, "on-hold": None,
                                 "unknown": None},
    "MedicationRequest": {"active": True, "completed": False, "stopped": False, "on-hold": None},
    "Procedure": {"in-progress": True, "completed": False, "stopped": False},
}
MORPHOLOGY_EXTENSION = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior"
MERGE_LINKS = ("replaces", "replaced-by")  # Patient.link types that make two records one person
ORDER_INTENTS = ("order", "original-order", "reflex-order", "filler-order", "instance-order")


RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
# what POST /api/v1/assess/fhir declares of its body: exactly what read() refuses beyond the input gate
BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["resourceType", "type"], "description": "a FHIR R4 Bundle of one patient's records",
    "properties": {
        "resourceType": {"const": "Bundle"},
        "type": {"enum": list(BUNDLE_TYPES)},
        "entry": {"type": "array", "items": {"type": "object", "properties": {"resource": {
            "type": "object", "required": ["resourceType"],
            "properties": {"resourceType": {"type": "string", "pattern": f"^{RESOURCE_TYPE.pattern}$"}}}}}},
    },
}


@dataclass
class _TextConcept:
    """A medication known only by a name (a reference's display): read like a CodeableConcept's text."""
    text: str
    coding: tuple[()] = ()


class InvalidBundle(InvalidPatient):
    """Input that is not a FHIR Bundle nelm can read; ``problems`` as for a patient document."""


# ------------------------------------------------------------------ what an import returns

@dataclass(frozen=True)
class Source:
    resource: str                 # "Observation/ki67-1"
    code: str | None = None       # "LOINC 29593-1"
    date: dt.date | None = None   # effective / onset / period date, when the resource gives one

    def __str__(self) -> str:
        extra = ", ".join(x for x in (self.code, self.date.isoformat() if self.date else None) if x)
        return f"{self.resource} ({extra})" if extra else self.resource


@dataclass
class Reading:
    """One value read for one field: ``field ← resource/code``."""
    field: str | None             # None: recognised, sets no field (liver metastases)
    value: Any
    source: Source
    note: str | None = None       # e.g. "converted from 20.5 umol/L"

    def __str__(self) -> str:
        target = f"{self.field} = {_show(self.value)}" if self.field else str(self.value)
        return f"{target} ← {self.source}" + (f"; {self.note}" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "resource": self.source.resource, "code": self.source.code,
                "date": self.source.date.isoformat() if self.source.date else None, "note": self.note,
                "text": str(self)}


@dataclass
class Conflict:
    """Resources disagreeing on one field; ``governing`` is None when no date settles it."""
    field: str
    readings: list[Reading]
    governing: Reading | None

    def __str__(self) -> str:
        values = "; ".join(f"{_show(r.value)} ({r.source})" for r in self.readings)
        outcome = (f"the most recent governs: {_show(self.governing.value)}" if self.governing
                   else "no date settles it, so the field stays unknown")
        return f"{self.field}: {values}: {outcome}"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "readings": [r.to_dict() for r in self.readings],
                "governing": self.governing.to_dict() if self.governing else None, "text": str(self)}


@dataclass
class Unread:
    resource: str
    reason: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        return {"resource": self.resource, "reason": self.reason}


@dataclass
class FhirImport:
    """The patient document read from a Bundle, and how it was read."""
    document: dict[str, Any]
    provenance: list[Reading]
    conflicts: list[Conflict]
    unread: list[Unread]
    mapping: dict[str, str]
    patient_reference: str | None = None
    assessed_on: dt.date = field(default_factory=dt.date.today)
    notes: list[str] = field(default_factory=list)   # how the reading was qualified (e.g. ongoing left unknown)
    # the Patient as a reference a receiver can resolve (Patient/id, or its fullUrl); None without one
    subject_reference: str | None = None

    def patient(self) -> Patient:
        """The validated patient; InvalidPatient names each bad field and the resource it came from."""
        try:
            return validate_patient(self.document)
        except InvalidPatient as exc:
            raise InvalidPatient([(f, self._with_source(f, m)) for f, m in exc.problems]) from None

    def _with_source(self, dotted: str, message: str) -> str:
        sources = [str(r.source) for r in self.provenance if r.field and dotted and
                   (r.field == dotted or dotted.startswith(r.field + ".") or r.field.startswith(dotted + "."))]
        return message + (f" (read from {', '.join(dict.fromkeys(sources))})" if sources else "")

    def to_dict(self) -> dict[str, Any]:
        return {"document": self.document, "provenance": [r.to_dict() for r in self.provenance],
                "conflicts": [c.to_dict() for c in self.conflicts], "unread": [u.to_dict() for u in self.unread],
                "mapping": self.mapping, "patient_reference": self.patient_reference,
                "assessed_on": self.assessed_on.isoformat(), "notes": self.notes,
                "subject_reference": self.subject_reference}


_show = labels.plain  # yes/no, 2.0 as 2


# ------------------------------------------------------------------ entry points

def read_bundle_file(path: str | Path, on: dt.date | None = None) -> FhirImport:
    """A Bundle file (JSON, through the input gate's size and structure limits)."""
    text, _ = inputgate.read_file(path)
    return read_bundle_text(text, on)


def read_bundle_text(text: str, on: dt.date | None = None) -> FhirImport:
    return read_bundle(inputgate.parse_text(text, "json"), on)


def read_bundle(data: Any, on: dt.date | None = None, patient_id: str | None = None) -> FhirImport:
    """Read a parsed Bundle (transaction, collection, searchset, batch or document).

    ``on`` is the assessment date, for the age (default today). ``patient_id``: the FHIR id
    of the patient the caller asks about (a CDS hook's ``context.patientId``); the Bundle's
    Patient must be that one, and other Patients in it are another person's. Raises
    InvalidBundle when the input is not a Bundle of one patient's records.
    """
    return _Reader(load_mapping(), on or dt.date.today(), patient_id).read(data)


# ------------------------------------------------------------------ the reader

def _resource_class(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class  # heavy: imported on first use

    return get_fhir_model_class(resource_type)


def _problems_of(exc: Exception, prefix: str) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            items = errors(include_url=False)
        except TypeError:
            items = errors()
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in items[:5]]
        return f"{prefix}: " + "; ".join(parts)
    return f"{prefix}: {type(exc).__name__}"


def _date_of(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) >= 4 and value[:4].isdigit():
        # FHIR allows partial dates (2024, 2024-05); the earliest day they can mean
        parts = value[:10].split("-")
        try:
            return dt.date(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1, int(parts[2]) if len(parts) > 2 else 1)
        except ValueError:
            return None
    return None


def _not_read(rtype: Any, resource: dict[str, Any], entry: dict[str, Any]) -> str:
    """Why a resource of a type nelm does not read is listed, saying what it may hold."""
    if rtype == "OperationOutcome":
        issues = [i for i in (resource.get("issue") if isinstance(resource.get("issue"), list) else [])
                  if isinstance(i, dict)]
        said = "; ".join(str(i.get("diagnostics") or (i["details"].get("text") if isinstance(i.get("details"), dict)
                                                      else None) or i.get("code"))[:200] for i in issues[:3])
        search = entry.get("search")
        where = "the server's search outcome" if isinstance(search, dict) and search.get("mode") == "outcome" \
            else "an outcome"
        severity = {str(i.get("severity")) for i in issues}
        lead = "WARNING: records may be missing" if severity & {"warning", "error", "fatal"} else "note"
        return f"{lead}: {where} says: {said or 'no details'}"
    if rtype == "DiagnosticReport":
        text = resource.get("conclusion")
        shown = f" (conclusion: {text[:160]!r}{'…' if len(text) > 160 else ''})" if isinstance(text, str) and text else ""
        return ("a report's text is not read" + shown + ": Ki-67, grade or differentiation stated only in a report "
                "stay unknown; enter them from the report")
    return f"resource type {rtype!r} is not read by nelm"


def _plain_ref(ref: str) -> str:
    """A reference without its version (``Patient/p1/_history/2`` → ``Patient/p1``)."""
    return ref.split("/_history/")[0]


def _links(patient: Any, *types: str) -> list[str]:
    return [link.other.reference for link in patient.link or []
            if link.type in types and getattr(link.other, "reference", None)]


# Condition statuses (http://terminology.hl7.org/CodeSystem/condition-ver-status and
# condition-clinical, FHIR R4): a Condition is a fact only when confirmed (or unstated) and current
VERIFIED = ("confirmed",)
NOT_VERIFIED = {"unconfirmed": "unconfirmed", "provisional": "provisional (suspected, not confirmed)",
                "differential": "differential (one of several possible diagnoses)", "refuted": "refuted",
                "entered-in-error": "entered in error"}
CURRENT = ("active", "recurrence", "relapse")
NOT_CURRENT = {"inactive": "inactive", "remission": "in remission", "resolved": "resolved"}


# The German diagnosis certainty on an ICD-10-GM coding (HL7 Deutschland basisprofil-de-r4
# extensions/ExtensionICD10GMDiagnosesicherheit.fsh: context Condition.code.coding, a Coding from
# the KBV value set KBV_VS_SFHIR_ICD_DIAGNOSESICHERHEIT; basisprofil examples code G, V and Z,
# KBV's coding rules A = ausgeschlossene Diagnose). Only G (gesichert) states a current fact.
GM_CERTAINTY = "http://fhir.de/StructureDefinition/icd-10-gm-diagnosesicherheit"
GM_NOT_FACT = {"A": "A (ausgeschlossen: the diagnosis was excluded)",
               "V": "V (Verdacht: suspected, not confirmed)",
               "Z": "Z (Zustand nach: a past condition)"}


def _gm_uncertain(c: Any) -> str | None:
    """Why an ICD-10-GM coding's Diagnosesicherheit says the Condition is no current fact."""
    for coding in getattr(c.code, "coding", None) or []:
        for ext in getattr(coding, "extension", None) or []:
            if ext.url != GM_CERTAINTY:
                continue
            value = getattr(ext, "valueCoding", None)
            code = getattr(value, "code", None) or getattr(ext, "valueCode", None)
            if code in GM_NOT_FACT:
                return f"ICD-10-GM Diagnosesicherheit {GM_NOT_FACT[code]}: not a confirmed current fact"
            if code != "G":
                return f"ICD-10-GM Diagnosesicherheit {code!r} is not one nelm reads (read: G, gesichert, or none given)"
    return None


def _not_current(c: Any, codings: Any) -> str | None:
    """Why a Condition states no current fact (None: it does)."""
    verification = [x.code for x in codings(c.verificationStatus) if x.code]
    clinical = [x.code for x in codings(c.clinicalStatus) if x.code]
    for code in verification:
        if code in NOT_VERIFIED:
            return f"verification status {NOT_VERIFIED[code]}: not a confirmed fact"
        if code not in VERIFIED:
            return f"verification status {code!r} is not one nelm reads (read: confirmed, or none given)"
    for code in clinical:
        if code in NOT_CURRENT:
            return f"clinical status {NOT_CURRENT[code]}: not a current fact"
        if code not in CURRENT:
            return f"clinical status {code!r} is not one nelm reads (read: {', '.join(CURRENT)}, or none given)"
    abated = next((getattr(c, f) for f in ("abatementDateTime", "abatementPeriod", "abatementAge", "abatementRange",
                                           "abatementString") if getattr(c, f, None) is not None), None)
    if abated is not None:
        when = f" on {_date_of(abated).isoformat()}" if _date_of(abated) else ""
        if not clinical:
            return f"abated{when} (no clinical status given): not a current fact"
        return f"abated{when} yet its clinical status is {', '.join(clinical)}: contradictory, not read"
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    return None


def _norm_unit(unit: str) -> str:
    return unit.strip().replace("µ", "u").replace("μ", "u")


class _Reader:
    def __init__(self, mapping: Mapping, on: dt.date, patient_id: str | None = None):
        self.m = mapping
        self.on = on
        self.patient_id = patient_id
        self.patient_identifiers: set[tuple[str, str]] = set()
        self.readings: list[Reading] = []
        self.unread: list[Unread] = []
        self.resources: dict[str, Any] = {}   # reference forms → parsed resource (for medicationReference)
        self.patient_ref: str | None = None
        self.subject_reference: str | None = None
        self.patient_keys: set[str] = set()
        # (label, sites it resects, source): decided once the primary site is known (_primary_resected)
        self.resections: list[tuple[str, list[str], Source]] = []
        # treatment records given (or possibly still given) whose drug or procedure could not be read
        self.unread_treatments: list[str] = []
        self.notes: list[str] = []
        self.missing_medication: str | None = None

    # -------------------------------------------------------------- Bundle
    def read(self, data: Any) -> FhirImport:
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
            got = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
            raise InvalidBundle([("resourceType", f"expected a FHIR Bundle (resourceType 'Bundle'), got {got!r}")])
        if data.get("type") not in BUNDLE_TYPES:
            raise InvalidBundle([("type", f"Bundle type {data.get('type')!r} is not read; allowed: "
                                          f"{', '.join(BUNDLE_TYPES)}")])
        entries = data.get("entry", [])
        if not isinstance(entries, list):
            raise InvalidBundle([("entry", "must be a list of entries")])
        # The Bundle's own structure, as the API's OpenAPI document declares it (BUNDLE_SCHEMA);
        # the resources inside are each parsed by fhir.resources below.
        problems = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                problems.append((f"entry.{i}", "must be an object (a Bundle entry)"))
            elif "resource" in entry and not isinstance(entry["resource"], dict):
                problems.append((f"entry.{i}.resource", "must be an object (a FHIR resource)"))
            elif "resource" in entry and not (isinstance(entry["resource"].get("resourceType"), str)
                                             and RESOURCE_TYPE.fullmatch(entry["resource"]["resourceType"])):
                problems.append((f"entry.{i}.resource.resourceType", "required: the resource's type, e.g. 'Observation'"))
        if problems:
            raise InvalidBundle(problems[:inputgate.MAX_PROBLEMS])

        parsed: list[tuple[str, Any]] = []
        patients: list[tuple[str, Any, str | None]] = []
        for i, entry in enumerate(entries):
            label = f"entry.{i}"
            resource = entry.get("resource")
            if resource is None:
                self.unread.append(Unread(label, "entry without a resource"))
                continue
            rtype = resource.get("resourceType")
            rid = resource.get("id")
            name = f"{rtype}/{rid}" if rtype and rid else f"{rtype or 'resource'} ({label})"
            if rtype not in READ_TYPES:
                self.unread.append(Unread(name, _not_read(rtype, resource, entry)))
                continue
            try:
                model = _resource_class(rtype).model_validate(resource)
            except Exception as exc:  # noqa: BLE001 - an invalid resource is reported, not fatal
                self.unread.append(Unread(name, _problems_of(exc, "not a valid FHIR R4 resource")))
                continue
            full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
            for key in filter(None, (full_url, f"{rtype}/{rid}" if rid else None)):
                self.resources[key] = model
            parsed.append((name, model))
            if rtype == "Patient":
                patients.append((name, model, full_url))
        self._patients(patients)

        for name, model in parsed:
            rtype = model.get_resource_type()
            if rtype in ("Patient", "Medication"):
                continue  # Medication is read through the statement that names it
            if not self._about_patient(name, model):
                continue
            getattr(self, f"_{rtype.lower()}")(name, model)
        return self._result()

    # -------------------------------------------------------------- subject
    def _patients(self, patients: list[tuple[str, Any, str | None]]) -> None:
        """The one person the Bundle is about: its Patient, or Patients merged into one by
        Patient.link (replaces / replaced-by); any other Patient is another person."""
        if not patients:
            return
        if self.patient_id is not None:
            chosen = [p for p in patients if p[1].id == self.patient_id]
            if not chosen:
                ids = ", ".join(name for name, _, _ in patients)
                raise InvalidBundle([("entry", f"no Patient {self.patient_id!r} (the patient asked about) in the "
                                               f"records sent; they hold {ids}")])
            anchor = chosen[0]
        else:
            # the surviving record of a merge: the Patient no other record replaces
            anchor = next((p for p in patients if not _links(p[1], "replaced-by")), patients[0])
        person = self._merged(anchor, patients)
        others = [p for p in patients if p not in person]
        if others and self.patient_id is None:
            raise InvalidBundle([("entry", f"the Bundle holds more than one Patient ({anchor[0]}, "
                                           f"{', '.join(name for name, _, _ in others)}) not linked as one person "
                                           "(Patient.link replaces / replaced-by); send one patient's records")])
        self.patient_ref = anchor[0]
        self.subject_reference = (f"Patient/{anchor[1].id}" if anchor[1].id
                                  else anchor[2] if anchor[2] and not anchor[2].startswith("#") else None)
        for name, model, full_url in person:
            self.patient_keys |= {name, *([full_url] if full_url else [])}
            for ident in model.identifier or []:
                if ident.system and ident.value:
                    self.patient_identifiers.add((ident.system, ident.value))
            for link in model.link or []:
                if link.type in MERGE_LINKS and getattr(link.other, "reference", None):
                    self.patient_keys.add(_plain_ref(link.other.reference))
        for name, model, _ in person:
            self._patient(name, model, merged=len(person) > 1)
        for name, _, _ in others:
            self.unread.append(Unread(name, f"another patient: not {self.patient_ref}, the patient asked about"))

    def _merged(self, anchor: tuple[str, Any, str | None], patients: list[tuple[str, Any, str | None]]
                ) -> list[tuple[str, Any, str | None]]:
        """``anchor`` and every Patient joined to it by a replaces / replaced-by link (either way)."""
        def keys(p: tuple[str, Any, str | None]) -> set[str]:
            return {p[0], *([p[2]] if p[2] else [])}

        group = [anchor]
        changed = True
        while changed:
            changed = False
            for p in patients:
                if p in group:
                    continue
                linked = any(_plain_ref(ref) in keys(g) for ref in _links(p[1], *MERGE_LINKS) for g in group) or any(
                    _plain_ref(ref) in keys(p) for g in group for ref in _links(g[1], *MERGE_LINKS))
                if linked:
                    group.append(p)
                    changed = True
        return group

    def _patient(self, name: str, p: Any, merged: bool = False) -> None:
        birth = _date_of(p.birthDate)
        if birth is not None:
            years = self.on.year - birth.year - ((self.on.month, self.on.day) < (birth.month, birth.day))
            note = f"born {birth.isoformat()}, age on {self.on.isoformat()}"
            if merged:
                note += f"; merged record of {self.patient_ref}"
            self.readings.append(Reading("age_years", years, Source(name, "birthDate", None), note))
        if getattr(p, "deceasedBoolean", None) or getattr(p, "deceasedDateTime", None):
            self.unread.append(Unread(name, "the patient is recorded as deceased; nothing is inferred from it"))

    def _about_patient(self, name: str, resource: Any) -> bool:
        """Whether ``resource`` is about the Bundle's patient; if not, it is listed as unread with why.

        It is when its subject (or patient) resolves to the Patient read: by reference (relative,
        absolute, fullUrl, urn:uuid, a version of it) or by an identifier that Patient carries.
        A resource that names no patient, names one only by an identifier the Patient does not
        carry, or when the Bundle has no Patient, cannot be told to be this patient's.
        """
        subject = getattr(resource, "subject", None) or getattr(resource, "patient", None)
        if subject is None:
            self.unread.append(Unread(name, "cannot tell whose: the record names no patient (subject)"))
            return False
        ref = getattr(subject, "reference", None)
        ident = getattr(subject, "identifier", None)
        if not self.patient_keys:
            self.unread.append(Unread(name, "cannot tell whose: the Bundle holds no Patient to match "
                                            f"{ref or 'its subject'} against"))
            return False
        if ref is not None:
            plain = _plain_ref(ref)
            if plain in self.patient_keys or any(plain.endswith("/" + k) for k in self.patient_keys
                                                 if k.startswith("Patient/")):
                return True
            if plain.startswith("Patient/") or "/Patient/" in plain or plain.startswith("urn:"):
                self.unread.append(Unread(name, f"another patient ({ref}), not {self.patient_ref}"))
            elif plain.startswith("#"):
                self.unread.append(Unread(name, f"cannot tell whose: subject {ref} is a contained resource"))
            else:
                self.unread.append(Unread(name, f"not about a patient: subject {ref}"))
            return False
        if ident is not None and ident.system and ident.value:
            if (ident.system, ident.value) in self.patient_identifiers:
                return True
            self.unread.append(Unread(name, f"cannot tell whose: subject identifier {ident.system}|{ident.value} "
                                            f"is not one {self.patient_ref} carries (another patient's?)"))
            return False
        self.unread.append(Unread(name, "cannot tell whose: the subject gives neither a reference nor an identifier "
                                        "with system and value"))
        return False

    # -------------------------------------------------------------- codes
    def _codings(self, concept: Any) -> list[Any]:
        return list(getattr(concept, "coding", None) or []) if concept is not None else []

    def _code_text(self, coding: Any) -> str:
        return f"{self.m.system_name(coding.system)} {coding.code}"

    def _first_known(self, concept: Any, table: dict[tuple[str, str], Any]) -> tuple[Any, Any] | None:
        """The first coding of ``concept`` that ``table`` maps, with its entry (None: no code is known)."""
        return next(((c, table[(self.m.canonical(c.system), c.code or "")]) for c in self._codings(concept)
                     if (self.m.canonical(c.system), c.code or "") in table), None)

    def _known(self, name: str, concept: Any, table: dict[tuple[str, str], Any], *dates: Any) -> tuple[Any, Source] | None:
        """The table's rule for a resource's code, and where the reading comes from (the first
        of ``dates`` given); an unknown code is listed as unread (None)."""
        hit = self._first_known(concept, table)
        if hit is None:
            self._unknown_code(name, concept)
            return None
        coding, rule = hit
        date = next((d for d in map(_date_of, dates) if d), None)
        return rule, Source(name, self._code_text(coding), date)

    def _answer(self, rule: Any, concept: Any) -> tuple[Any, Any] | None:
        """The first coding of ``concept`` that is one of the rule's coded answers, with the
        answer's value; None when none is."""
        answers = {(self.m.systems[a.system], a.code): a.value for a in rule.answers}
        return next(((c, answers[(self.m.canonical(c.system), c.code)]) for c in self._codings(concept)
                     if (self.m.canonical(c.system), c.code) in answers), None)

    def _unknown_code(self, name: str, concept: Any, element: str = "") -> None:
        codes = ", ".join(self._code_text(c) + (f" ({c.display})" if c.display else "") for c in self._codings(concept))
        text = getattr(concept, "text", None) if concept is not None else None
        what = codes or (f"text {text!r} without a code" if text else "no code")
        self.unread.append(Unread(name, f"{element}{what}: not in the mapping table (src/nelm/fhir/mapping.yaml)"))

    # -------------------------------------------------------------- Observation
    def _observation(self, name: str, o: Any) -> None:
        if o.status not in OBSERVATION_FINAL:
            self.unread.append(Unread(name, f"status {o.status!r}: only final, amended or corrected results are read"))
            return
        date = next((d for d in map(_date_of, (o.effectiveDateTime, getattr(o.effectivePeriod, "start", None),
                                               o.issued)) if d), None)
        hit = self._first_known(o.code, self.m.observations)
        if hit is not None:
            coding, rule = hit
            self._observation_value(name, rule, Source(name, self._code_text(coding), date), o, o.method)
            return
        # a panel: its components are results of their own (a CBC's platelets and neutrophils)
        read = False
        for component in o.component or []:
            part = self._first_known(component.code, self.m.observations)
            if part is not None:
                coding, rule = part
                source = Source(name, f"component {self._code_text(coding)}", date)
                self._observation_value(name, rule, source, component, o.method)
                read = True
        if not read:
            self._unknown_code(name, o.code)

    def _observation_value(self, name: str, rule: Any, source: Source, holder: Any, method: Any) -> None:
        """One result (an Observation or one of its components) into its field, or unread with why."""
        absent = getattr(holder, "dataAbsentReason", None)
        if absent is not None:
            why = ", ".join(c.code for c in self._codings(absent) if c.code) or getattr(absent, "text", None) or "unstated"
            self.unread.append(Unread(name, f"{rule.label}: no value (data absent: {why})"))
            return
        if rule.methods:
            wanted = {(self.m.systems[c.system], c.code) for c in rule.methods}
            got = {(self.m.canonical(c.system), c.code) for c in self._codings(method)}
            if not wanted & got:
                shown = ", ".join(self._code_text(c) for c in self._codings(method)) or "none given"
                self.unread.append(Unread(name, f"{rule.label}: method {shown} is not one this result is read by "
                                                f"({', '.join(self.m.system_name(self.m.systems[c.system]) + ' ' + c.code for c in rule.methods)})"))
                return
        concept = getattr(holder, "valueCodeableConcept", None)
        if rule.value == "site":
            hit = self._answer(rule, concept)
            if hit is None:
                self._unknown_code(name, concept, f"{rule.label} ")
                return
            coding, site = hit
            note = f"coded answer {self._code_text(coding)}"
            if site is None:
                self.readings.append(Reading(None, "liver metastasis", source, note))
                return
            if site is not True:
                self.readings.append(Reading("extrahepatic.sites", site, source, note))
            self.readings.append(Reading("extrahepatic.present", True, source, note))
            return
        if rule.value in ("coded", "integer") and concept is not None:
            hit = self._answer(rule, concept)
            if hit is None:
                self._unknown_code(name, concept, f"{rule.label} answer ")
                return
            coding, value = hit
            self.readings.append(Reading(rule.field, value, source, f"coded answer {self._code_text(coding)}"))
            return
        if rule.value == "morphology":
            found = self._first_known(concept, self.m.morphologies) if concept is not None else None
            if found is None:
                self._unknown_code(name, concept, f"{rule.label} ")
                return
            coding, morph = found
            for dotted, value in morph.sets.items():
                self.readings.append(Reading(dotted, value, source, f"{morph.label} ({self._code_text(coding)})"))
            return
        if rule.value == "coded":
            self.unread.append(Unread(name, f"{rule.label}: expected a coded result (valueCodeableConcept)"))
            return
        q = getattr(holder, "valueQuantity", None)
        if rule.value == "integer":
            integer = getattr(holder, "valueInteger", None)
            raw = integer if integer is not None else (_number(q.value) if q is not None and not q.unit
                                                       and not q.code else None)
            if raw is None or float(raw) != int(float(raw)):
                self.unread.append(Unread(name, f"{rule.label}: expected a whole number (valueInteger) or a coded "
                                                "answer"))
                return
            self.readings.append(Reading(rule.field, int(float(raw)), source))
            return
        if q is None or _number(q.value) is None:
            self.unread.append(Unread(name, f"{rule.label}: expected a valueQuantity with a number"))
            return
        if q.comparator:
            self.unread.append(Unread(name, f"{rule.label}: a bound ({q.comparator}{q.value}), not a measured value"))
            return
        units = {_norm_unit(u): f for u, f in rule.units.items()}
        candidates = [q.code if q.system == self.m.systems.get("ucum") else None, q.unit, q.code]
        unit = next((u for u in candidates if u and _norm_unit(u) in units), None)
        if unit is None:
            shown = q.unit or q.code or "no unit"
            self.unread.append(Unread(name, f"{rule.label} in {shown!r} cannot be converted to the document's unit; "
                                            f"convertible: {', '.join(rule.units)}"))
            return
        factor = units[_norm_unit(unit)]
        value = float(q.value)
        note = None
        if factor != 1:
            converted = round(value * factor, 2)
            note = f"converted from {_show(value)} {unit}"
            value = converted
        self.readings.append(Reading(rule.field, value, source, note))

    # -------------------------------------------------------------- Condition
    def _condition(self, name: str, c: Any) -> None:
        reason = _not_current(c, self._codings) or _gm_uncertain(c)
        if reason is not None:
            self.unread.append(Unread(name, reason))
            return
        if self._first_known(c.code, self.m.conditions) is None and self._first_known(c.code, self.m.morphologies):
            self._primary_by_morphology(name, c)  # MII: the primary's ICD-O-3 morphology in Condition.code
            return
        known = self._known(name, c.code, self.m.conditions,
                            c.onsetDateTime, getattr(c.onsetPeriod, "start", None), c.recordedDate)
        if known is None:
            return
        rule, source = known
        date = source.date
        if not rule.sets and rule.add_site is None:
            self.readings.append(Reading(None, rule.label, source, "recognised; sets no field"))
        for dotted, value in rule.sets.items():
            self.readings.append(Reading(dotted, value, source))
        if rule.primary:
            self._body_sites(name, c, date)
            self._morphology(name, c, date)
        if rule.add_site is not None:
            self.readings.append(Reading("extrahepatic.sites", rule.add_site, source))
            self.readings.append(Reading("extrahepatic.present", True, source))

    def _primary_by_morphology(self, name: str, c: Any) -> None:
        """A Condition coded by an ICD-O-3 morphology of a malignant primary (behaviour /3), as the
        MII oncology diagnosis codes it beside ICD-10-GM: its differentiation, and its site from
        bodySite (ICD-O-3 topography or SNOMED CT)."""
        coding, morph = self._first_known(c.code, self.m.morphologies)
        date = next((d for d in map(_date_of, (c.onsetDateTime, getattr(c.onsetPeriod, "start", None),
                                                 c.recordedDate)) if d), None)
        source = Source(name, "morphology " + self._code_text(coding), date)
        for dotted, value in morph.sets.items():
            self.readings.append(Reading(dotted, value, source, morph.label))
        self._body_sites(name, c, date)

    def _morphology(self, name: str, c: Any, date: dt.date | None) -> None:
        """mCODE's histology-morphology-behavior extension (an ICD-O-3 morphology) on a primary cancer."""
        for ext in c.extension or []:
            if ext.url != MORPHOLOGY_EXTENSION or ext.valueCodeableConcept is None:
                continue
            hit = self._first_known(ext.valueCodeableConcept, self.m.morphologies)
            if hit is None:
                self._unknown_code(name, ext.valueCodeableConcept, "histology-morphology-behavior ")
                continue
            coding, morph = hit
            source = Source(name, "morphology " + self._code_text(coding), date)
            for dotted, value in morph.sets.items():
                self.readings.append(Reading(dotted, value, source, morph.label))

    def _body_sites(self, name: str, c: Any, date: dt.date | None) -> None:
        """A primary tumour's bodySite → primary.site; a site the table does not know is reported."""
        for concept in getattr(c, "bodySite", None) or []:
            hit = self._first_known(concept, self.m.body_sites)
            if hit is None:
                self._unknown_code(name, concept, "bodySite ")
                continue
            coding, site = hit
            self.readings.append(Reading("primary.site", site.site, Source(name, "bodySite " + self._code_text(coding),
                                                                            date)))

    # -------------------------------------------------------------- treatments
    def _treatment(self, name: str, concept: Any, ongoing: bool | None, date: dt.date | None) -> None:
        hit = next(((x, self.m.option_of(x.system, x.code)) for x in self._codings(concept)
                    if self.m.option_of(x.system, x.code)), None)  # option_of also reads nelm's own codes
        if hit is None:
            named = self._named_treatment(concept)
            if named is not None:
                option, drug, text = named
                self.readings.append(Reading("prior_therapies", {"therapy": option, "ongoing": ongoing},
                                             Source(name, f"text naming {drug}", date),
                                             f"read from the medication's text {text!r} (no code)"))
                return
            self._unknown_code(name, concept)
            if ongoing is not False:  # it may be one of nelm's options, still being given
                self.unread_treatments.append(name)
            return
        coding, option = hit
        self.readings.append(Reading("prior_therapies", {"therapy": option, "ongoing": ongoing},
                                     Source(name, self._code_text(coding), date)))

    def _named_treatment(self, concept: Any) -> tuple[str, str, str] | None:
        """(option, drug, text) when a medication given only as text names exactly one option's drug
        by its international non-proprietary name; None when it names none, or drugs of two options."""
        if concept is None or self._codings(concept):
            return None  # a coded medication is read by its code only
        text = getattr(concept, "text", None)
        if not isinstance(text, str):
            return None
        words = set(re.findall(r"[a-z][a-z0-9-]*", text.lower()))
        hits = {(t.option, drug) for drug, t in self.m.treatment_names.items() if drug in words}
        options = {o for o, _ in hits}
        if len(options) != 1:
            return None
        option = options.pop()
        return option, ", ".join(sorted(d for o, d in hits if o == option)), text

    def _medication_concept(self, r: Any) -> Any:
        """The medication's code: inline, a contained Medication (#id) or one in the Bundle; None,
        with a note in ``self.missing_medication``, when the Medication named is not there."""
        if r.medicationCodeableConcept is not None:
            return r.medicationCodeableConcept
        ref = getattr(r.medicationReference, "reference", None)
        if ref and ref.startswith("#"):
            med = next((c for c in getattr(r, "contained", None) or []
                        if c.get_resource_type() == "Medication" and c.id == ref[1:]), None)
        else:
            med = self.resources.get(_plain_ref(ref or "")) or next(
                (m for k, m in self.resources.items() if ref and k.endswith("/" + _plain_ref(ref))
                 and m.get_resource_type() == "Medication"), None)
        if med is None:
            display = getattr(r.medicationReference, "display", None)
            self.missing_medication = f"the Medication it names ({ref or 'no reference'}" + (
                f", {display!r}" if display else "") + ") is not in the records sent"
            # the reference's display is text a prescriber chose: read by drug name like text
            return _TextConcept(display) if display else None
        return getattr(med, "code", None)

    def _given(self, name: str, r: Any, rtype: str) -> bool | None | str:
        table = GIVEN_STATUS[rtype]
        if r.status not in table:
            return f"status {r.status!r}: not a treatment given (read: {', '.join(table)})"
        return table[r.status]

    def _medicationstatement(self, name: str, r: Any) -> None:
        self._medication(name, r, "MedicationStatement", r.effectivePeriod, r.effectiveDateTime)

    def _medicationadministration(self, name: str, r: Any) -> None:
        self._medication(name, r, "MedicationAdministration", r.effectivePeriod, r.effectiveDateTime)

    def _medicationrequest(self, name: str, r: Any) -> None:
        # US Core: a medication the patient reports taking is a MedicationRequest with intent
        # "plan" and reported = true (or a reportedReference), status active while taken
        reported = bool(r.reportedBoolean) or r.reportedReference is not None
        if r.intent not in ORDER_INTENTS and not (r.intent == "plan" and reported):
            self.unread.append(Unread(name, f"intent {r.intent!r}: a proposal or plan, not a treatment given"))
            return
        self._medication(name, r, "MedicationRequest", getattr(r.dispenseRequest, "validityPeriod", None), r.authoredOn)

    def _medication(self, name: str, r: Any, rtype: str, period: Any, moment: Any) -> None:
        ongoing = self._given(name, r, rtype)
        if isinstance(ongoing, str):
            self.unread.append(Unread(name, ongoing))
            return
        end = _date_of(getattr(period, "end", None)) if period is not None else None
        if ongoing is None and end is not None and end < self.on:
            ongoing = False  # a period that ended before the assessment date: no longer given
        date = _date_of(getattr(period, "start", None)) or _date_of(moment)
        self.missing_medication = None
        concept = self._medication_concept(r)
        if concept is None and self.missing_medication:
            self.unread.append(Unread(name, self.missing_medication))
            if ongoing is not False:
                self.unread_treatments.append(name)
            return
        self._treatment(name, concept, ongoing, date)

    def _procedure(self, name: str, p: Any) -> None:
        ongoing = self._given(name, p, "Procedure")
        if isinstance(ongoing, str):
            self.unread.append(Unread(name, ongoing))
            return
        date = _date_of(p.performedDateTime) or _date_of(getattr(p.performedPeriod, "start", None))
        hit = self._first_known(p.code, self.m.procedures)
        if hit is None:  # a nelm option (hepatic resection, PRRT, ...) or an unknown code
            self._treatment(name, p.code, ongoing, date)
            return
        coding, rule = hit
        if p.status != "completed":  # a stopped or ongoing procedure has not done what its code says
            self.unread.append(Unread(name, f"{rule.label}: status {p.status!r}; only a completed procedure is read"))
            return
        source = Source(name, self._code_text(coding), date)
        for dotted, value in rule.sets.items():
            self.readings.append(Reading(dotted, value, source))
        if rule.resects:
            self.resections.append((rule.label, rule.resects, source))

    # -------------------------------------------------------------- the document
    def _result(self) -> FhirImport:
        doc: dict[str, Any] = {}
        conflicts: list[Conflict] = []
        by_field: dict[str, list[Reading]] = {}
        for r in self.readings:
            if r.field is not None:
                by_field.setdefault(r.field, []).append(r)
        for dotted, readings in by_field.items():
            if dotted == "extrahepatic.sites":
                set_field(doc, dotted, sorted({r.value for r in readings}))
            elif dotted == "prior_therapies":
                doc["prior_therapies"] = _therapies(readings, self.unread_treatments, self.notes)
            else:
                value, conflict = _resolve(dotted, readings)
                if conflict is not None:
                    conflicts.append(conflict)
                if value is not None:
                    set_field(doc, dotted, value)
        self._primary_resected(doc)
        return FhirImport(document=doc, provenance=self.readings, conflicts=conflicts, unread=self.unread,
                          mapping=self.m.identity(), patient_reference=self.patient_ref, assessed_on=self.on,
                          notes=self.notes, subject_reference=self.subject_reference)

    def _primary_resected(self, doc: dict[str, Any]) -> None:
        """An organ resection is the primary tumour's resection when the primary is in that organ."""
        site = (doc.get("primary") or {}).get("site")
        for label, sites, source in self.resections:
            if site in sites:
                self.readings.append(Reading("primary.resected", True, source, f"{label} of the primary site ({site})"))
                set_field(doc, "primary.resected", True)
            else:
                known = f"the primary site read is {site}" if site else "the primary site is unknown"
                self.unread.append(Unread(source.resource, f"{label} (resects {', '.join(sites)}): {known}, "
                                                           "so it is not read as the primary's resection"))


def _resolve(dotted: str, readings: list[Reading]) -> tuple[Any, Conflict | None]:
    values = {_key(r.value) for r in readings}
    if len(values) == 1:
        return readings[0].value, None
    # the most recent effective date governs; an undated reading is older than any dated one
    latest = max((r.source.date or dt.date.min) for r in readings)
    newest = [r for r in readings if (r.source.date or dt.date.min) == latest]
    governing = newest[0] if len({_key(r.value) for r in newest}) == 1 else None
    ordered = sorted(readings, key=lambda r: r.source.date or dt.date.min, reverse=True)
    return (governing.value if governing else None), Conflict(dotted, ordered, governing)


def _key(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def _therapies(readings: list[Reading], unread: list[str], notes: list[str]) -> list[dict[str, Any]]:
    """One prior_therapies entry per option; ongoing when any record says so, not when all say not
    and every treatment record was read (an unread, possibly current one may be the same therapy)."""
    entries: dict[str, list[bool | None]] = {}
    for r in readings:
        entries.setdefault(r.value["therapy"], []).append(r.value["ongoing"])
    out = []
    for therapy, flags in entries.items():
        entry: dict[str, Any] = {"therapy": therapy}
        ongoing = True if True in flags else (False if all(f is False for f in flags) else None)
        if ongoing is False and unread:
            ongoing = None
            notes.append(f"prior_therapies: whether {therapy} is still given stays unknown: its records say it "
                         f"ended, but {', '.join(unread)} could not be read and may be the same therapy, current")
        if ongoing is not None:
            entry["ongoing"] = ongoing
        out.append(entry)
    return out


