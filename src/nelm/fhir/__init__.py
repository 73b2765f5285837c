"""FHIR R4 in and out, and CDS Hooks 2.0: nelm inside the EHR.

* :func:`read_bundle` — a FHIR Bundle → the patient document, with provenance
  (``field ← resource/code``), conflicts and unread resources (``reader.py``);
* :func:`guidance_response` — an assessment → a FHIR ``GuidanceResponse`` whose plan is a
  ``RequestGroup`` of proposed actions (``guidance.py``);
* ``cds.py`` / ``web.py`` — CDS Hooks services and the web/API adapters;
* ``smart.py`` — SMART App Launch (EHR launch) from a card's ``smart`` link;
* ``apply.py`` — the pathways as a PlanDefinition, and ``$apply`` (a CarePlan).

Codes are read with the one table ``mapping.yaml``. These are thin adapters over
:func:`nelm.assessment.assess`: no clinical decision is made here.

CDS Hooks settings (environment, read by ``auth.settings_from_env``; ``nelm serve`` refuses
unreadable ones with exit 2):

* ``NELM_CDS_CLIENTS`` — JSON file of CDS clients whose signed JWTs are accepted:
  ``[{"iss": "...", "jwks": {...} | "jwks_url": "https://...", "jku": ["https://..."]}]``;
* ``NELM_CDS_BASE_URL`` — the public URL of the app (``aud`` is it + ``cds-services/<id>``);
* ``NELM_CDS_CORS_ORIGINS`` — comma-separated origins allowed to call the CDS services;
* ``NELM_CDS_FHIR_SERVERS`` — comma-separated base URLs a hook's ``fhirServer`` may name
  (empty: any public server); ``NELM_CDS_ALLOW_PRIVATE_FHIR=1`` allows internal addresses;
* ``NELM_CDS_DEADLINE_SECONDS`` — total time for all FHIR fetches of one hook (default 8);
* ``NELM_CDS_RETENTION_DAYS`` — days a CDS case outlives its last assessment (default 90);
* ``NELM_SMART_CLIENT_ID`` / ``NELM_SMART_SCOPE`` — SMART EHR launch from a card (``smart.py``).
"""
from __future__ import annotations

from .reader import (Conflict, FhirImport, InvalidBundle, Reading, Source, Unread, read_bundle, read_bundle_file,
                     read_bundle_text)

__all__ = ["Conflict", "FhirImport", "InvalidBundle", "Reading", "Source", "Unread", "read_bundle",
           "read_bundle_file", "read_bundle_text"]
