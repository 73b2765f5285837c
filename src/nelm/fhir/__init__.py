"""FHIR R4 in and out, and CDS Hooks 2.0: nelm inside the EHR.

* :func:`read_bundle` — a FHIR Bundle → the patient document, with provenance
  (``field ← resource/code``), conflicts and unread resources (``reader.py``);
* :func:`guidance_response` — an assessment → a FHIR ``GuidanceResponse`` whose plan is a
  ``RequestGroup`` of proposed actions (``guidance.py``);
* ``cds.py`` / ``web.py`` — CDS Hooks services and the web/API adapters.

Codes are read with the one table ``mapping.yaml``. These are thin adapters over
:func:`nelm.assessment.assess`: no clinical decision is made here.
"""
from __future__ import annotations

from .reader import (Conflict, FhirImport, InvalidBundle, Reading, Source, Unread, read_bundle, read_bundle_file,
                     read_bundle_text)

__all__ = ["Conflict", "FhirImport", "InvalidBundle", "Reading", "Source", "Unread", "read_bundle",
           "read_bundle_file", "read_bundle_text"]
