"""FHIR on the web app: ``POST /api/v1/assess/fhir``, CDS Hooks 2.0 (``/cds-services``) and the
page that pre-fills the case form from an uploaded Bundle (``/cases/import``).

The app's rules hold here too: JSON bodies only as ``application/json`` (a cross-site form
cannot send it), forms carry the CSRF token, bodies are capped by BodyLimitMiddleware, and
every refusal names its field.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from urllib.parse import urlsplit
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from .. import inputgate
from ..assessment import assess
from ..patient import InvalidPatient
from ..web import forms
from ..web.api import ALWAYS, PATIENT
from ..web.pages import render
from ..web.security import MAX_BODY_BYTES, actor_of, require_csrf
from ..web.service import assess_and_store
from . import cds
from .auth import RETENTION_DAYS, RETENTION_ENV
from .guidance import guidance_response
from .reader import BUNDLE_SCHEMA, FhirImport, read_bundle

MAX_REMEMBERED_CARDS = 10_000  # card uuid → case id, for the feedback's audit entry


# ------------------------------------------------------------------ shared

def _json_media(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise HTTPException(415, "send the body as application/json (FHIR: application/fhir+json)")


def _parse(raw: bytes, what: str) -> Any:
    text = inputgate.decode(raw, what)
    if not text.strip():
        raise InvalidPatient([("", f"empty body: send {what} as a JSON object")])
    return inputgate.parse_text(text, "json")


# ------------------------------------------------------------------ REST API

api_router = APIRouter(prefix="/api/v1", responses=ALWAYS)

FHIR_BODY = {"requestBody": {"required": True, "description": (
    "A FHIR R4 Bundle (transaction, collection, searchset, batch or document) of one patient's records, as UTF-8 "
    f"JSON of at most {MAX_BODY_BYTES // 1024} KiB. Codes are read with nelm's mapping table "
    "(src/nelm/fhir/mapping.yaml); resources it cannot read are listed in fhir_import.unread. A Bundle that is not "
    "one, or values the patient document refuses, answer 422 with each problem by its field, as do (the input gate's "
    "rules, as for a patient document) a key given twice, numbers that are not finite, and text that holds NUL, a "
    f"control character in a key or a lone surrogate, or runs over {inputgate.MAX_STRING_CHARS:,} characters "
    f"({inputgate.MAX_KEY_CHARS} for a key); at most {inputgate.MAX_PROBLEMS} problems are listed."),
    "content": {"application/json": {"schema": BUNDLE_SCHEMA}, "application/fhir+json": {"schema": BUNDLE_SCHEMA}}}}


class FhirAssessment(BaseModel):
    assessment: dict[str, Any] = Field(description="the assessment document (see the contract)")
    fhir_import: dict[str, Any] = Field(description="the patient document read, provenance (field ← resource/code), "
                                                    "conflicts, unread resources, mapping table version")
    guidance_response: dict[str, Any] = Field(description="the assessment as a FHIR R4 GuidanceResponse with the plan "
                                                          "as a contained RequestGroup")


async def bundle_body(request: Request) -> FhirImport:
    _json_media(request)
    raw = await request.body()
    return await run_in_threadpool(lambda: read_bundle(_parse(raw, "the FHIR Bundle")))


@api_router.post("/assess/fhir", tags=["assessment"], openapi_extra=FHIR_BODY, responses=PATIENT,
                 response_model=FhirAssessment)
def assess_fhir(imported: Annotated[FhirImport, Depends(bundle_body)]) -> FhirAssessment:
    """Read a FHIR R4 Bundle, assess the patient it describes (nothing stored); the assessment,
    what was read from where, and the assessment as a GuidanceResponse."""
    patient = imported.patient()
    result = assess(patient)
    return FhirAssessment(assessment=result, fhir_import=imported.to_dict(),
                          guidance_response=guidance_response(result, imported.subject_reference, imported=imported))


# ------------------------------------------------------------------ CDS Hooks 2.0

cds_router = APIRouter(include_in_schema=False)


def _problem(status: int, detail: Any) -> JSONResponse:
    # CDS clients are programs: errors are JSON on these paths, never the HTML error page
    return JSONResponse({"detail": detail}, status_code=status)


async def _hook_json(request: Request) -> Any:
    """The request body as JSON, or the JSONResponse that refuses it."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        return _problem(415, "send the hook request as application/json")
    raw = await request.body()
    try:
        return await run_in_threadpool(_parse, raw, "the hook request")
    except InvalidPatient as exc:
        return _problem(422, exc.as_dicts())


def _cards_seen(request: Request) -> OrderedDict[str, str]:
    state = request.app.state
    if not hasattr(state, "cds_cards"):
        state.cds_cards = OrderedDict()
    return state.cds_cards


def _remember(request: Request, cards: list[dict[str, Any]], case_id: str) -> None:
    seen = _cards_seen(request)
    for card in cards:
        seen[card["uuid"]] = case_id
    while len(seen) > MAX_REMEMBERED_CARDS:
        seen.popitem(last=False)


_CODING = {"type": "object", "properties": {"system": {"type": "string"}, "code": {"type": "string"},
                                            "display": {"type": "string"}}}
_DETAIL = {"type": "object", "required": ["detail"], "properties": {"detail": {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}}}
_CARD = {"type": "object", "required": ["summary", "indicator", "source"], "properties": {
    "uuid": {"type": "string"}, "summary": {"type": "string", "maxLength": 139}, "detail": {"type": "string"},
    "indicator": {"enum": ["info", "warning", "critical"]},
    "source": {"type": "object", "required": ["label"], "properties": {"label": {"type": "string"},
                                                                      "url": {"type": "string"}}},
    "suggestions": {"type": "array", "items": {"type": "object"}},
    "selectionBehavior": {"enum": ["at-most-one", "any"]},
    "overrideReasons": {"type": "array", "items": _CODING},
    "links": {"type": "array", "items": {"type": "object", "required": ["label", "url", "type"]}}}}
_ERRORS = {str(code): {"description": why, "content": {"application/json": {"schema": _DETAIL}}} for code, why in (
    (400, "the Host header is not one this server answers"), (401, "no valid credential (JWT or API token)"),
    (404, "no such CDS service"), (413, "the body is larger than the limit"),
    (415, "the body is not application/json"), (422, "the request is not a hook request, each problem named"))}
CDS_OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "nelm CDS Hooks 2.0 services", "version": "2.0",
             "description": "The CDS Hooks endpoints (https://cds-hooks.hl7.org/2.0/), described for fuzzing and "
                            "clients; the REST API has its own document at /openapi.json."},
    "paths": {
        "/cds-services": {"get": {"operationId": "discovery", "responses": {
            "200": {"description": "the services", "content": {"application/json": {"schema": {
                "type": "object", "required": ["services"], "properties": {"services": {"type": "array"}}}}}},
            **{k: v for k, v in _ERRORS.items() if k in ("400", "401")}}}},
        "/cds-services/{service_id}": {"post": {
            "operationId": "call_service",
            "parameters": [{"name": "service_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["hook", "hookInstance", "context"], "properties": {
                    "hook": {"type": "string"}, "hookInstance": {"type": "string"},
                    "fhirServer": {"type": "string"},
                    "fhirAuthorization": {"type": "object"},
                    "context": {"type": "object", "required": ["patientId"], "properties": {
                        "patientId": {"type": "string"}, "userId": {"type": "string"},
                        "selections": {"type": "array", "items": {"type": "string"}},
                        "draftOrders": {"type": "object"}}},
                    "prefetch": {"type": "object", "additionalProperties": {"nullable": True, "type": "object"}}}}}}},
            "responses": {
                "200": {"description": "the cards", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["cards"], "properties": {"cards": {"type": "array",
                                                                                     "items": _CARD}}}}}},
                "412": {"description": "the FHIR data cannot be obtained (no prefetch and no usable fhirServer, a "
                                       "server not allowed, or one that did not answer in time)",
                        "content": {"application/json": {"schema": _DETAIL}}},
                **_ERRORS}}},
        "/cds-services/{service_id}/feedback": {"post": {
            "operationId": "feedback",
            "parameters": [{"name": "service_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["feedback"], "properties": {"feedback": {"type": "array", "items": {
                    "type": "object", "required": ["card", "outcome"], "properties": {
                        "card": {"type": "string"}, "outcome": {"enum": ["accepted", "overridden"]},
                        "overrideReason": {"type": "object", "properties": {"reason": _CODING,
                                                                             "userComment": {"type": "string"}}},
                        "outcomeTimestamp": {"type": "string"}}}}}}}}},
            "responses": {"200": {"description": "recorded in the audit log",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}, **_ERRORS}}},
    },
}


@cds_router.get("/cds-services/openapi.json")
def cds_openapi() -> dict[str, Any]:
    """The CDS Hooks endpoints' own OpenAPI document (fuzzed in tests/fhir/test_cds_fuzz.py)."""
    return CDS_OPENAPI


@cds_router.get("/cds-services")
def discovery() -> dict[str, Any]:
    """CDS Hooks discovery: the services, their hooks and prefetch templates."""
    return {"services": list(cds.SERVICES.values())}


@cds_router.post("/cds-services/{service_id}")
async def call_service(service_id: str, request: Request) -> JSONResponse:
    """A hook call: the cards for this patient (patient-view: the plan; order-select: the orders)."""
    body = await _hook_json(request)
    if isinstance(body, JSONResponse):
        return body
    return await run_in_threadpool(_answer_hook, service_id, request, body)


def _answer_hook(service_id: str, request: Request, body: Any) -> JSONResponse:
    settings = getattr(request.app.state, "cds_settings", None)
    try:
        cds.check_request(service_id, body)
        imported = cds.read_hook(body, dt.date.today(), settings)
    except cds.WrongPatient as exc:  # another patient's record: a critical card, nothing assessed or stored
        return JSONResponse({"cards": [cds.wrong_patient_card(exc, str(request.base_url))]})
    except cds.HookError as exc:
        return _problem(exc.status, exc.message)
    except InvalidPatient as exc:  # the prefetched data is not a Bundle nelm can read
        return _problem(422, exc.as_dicts())
    base = str(request.base_url)
    try:
        patient = imported.patient()
    except InvalidPatient as exc:
        return JSONResponse({"cards": [cds.invalid_card(exc, base)]})
    label = _case_label(body, imported)
    patient = patient.model_copy(update={"id": label})
    store = request.app.state.store
    try:
        with _case_lock:  # one case per FHIR patient: a second call adds a version to it
            purge_expired(request.app)  # before the look-up: an expired case is not extended but replaced
            case_id = _case_of(store, label)
            v = assess_and_store(store, patient, actor=actor_of(request), case_id=case_id, origin="cds")
    except InvalidPatient as exc:  # nothing an assessment starts from could be read: say so, store nothing
        return JSONResponse({"cards": [cds.invalid_card(exc, base)]})
    launch = None
    if settings is not None and settings.smart_client_id:  # the card's link launches nelm as a SMART app
        from .smart import base_url, card_link

        launch = card_link(base_url(request, settings), v.case_id)
    done = cds.Assessed(imported, patient, v.assessment, f"{base}cases/{v.case_id}", launch)
    if cds.SERVICES[service_id]["hook"] in cds.ORDER_HOOKS:
        cards = cds.order_cards(done, body["context"], base)
    else:
        cards = [cds.plan_card(done, base)]
    _remember(request, cards, v.case_id)
    return JSONResponse({"cards": cards})


_case_lock = threading.Lock()
PURGE_EVERY_SECONDS = 3600  # the retention purge runs at start-up, then at most hourly, on a hook call


def purge_expired(app: FastAPI, force: bool = False, now: dt.datetime | None = None) -> list[str]:
    """Purge the CDS service's cases whose retention (``NELM_CDS_RETENTION_DAYS`` after their
    last version) has passed: their content becomes a tombstone, the purge is in the audit
    chain (:meth:`nelm.store.repository.CaseStore.purge_expired`). The ids purged."""
    import logging

    tick = time.monotonic()
    last = getattr(app.state, "cds_purged_at", None)
    if not force and last is not None and tick - last < PURGE_EVERY_SECONDS:
        return []
    app.state.cds_purged_at = tick
    settings = getattr(app.state, "cds_settings", None)
    days = settings.retention_days if settings is not None else RETENTION_DAYS
    before = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=days)
    try:
        purged = app.state.store.purge_expired(before, note=f"{RETENTION_ENV}={days}")
    except Exception:  # noqa: BLE001 - a purge that fails is retried on the next schedule; the hook goes on
        logging.getLogger(__name__).exception("the retention purge of CDS cases failed")
        return []
    if purged:
        logging.getLogger(__name__).info("retention: purged %d CDS case(s) older than %d days", len(purged), days)
    return purged


def _case_label(body: dict[str, Any], imported: FhirImport | None, ref: str | None = None) -> str:
    """The case's label: the FHIR patient it was read for, and where from (the EHR's server).
    A SMART launch (:mod:`.smart`) finds the case by it: ``ref`` is then its token's patient."""
    server = body.get("fhirServer") if isinstance(body.get("fhirServer"), str) else None
    where = urlsplit(server).netloc if server else "EHR"
    ref = ref or (imported.subject_reference if imported else None) or f"Patient/{body['context']['patientId']}"
    return f"FHIR {ref} ({where})"[:200]


def _case_of(store: Any, label: str) -> str | None:
    """The case already kept for this FHIR patient, if any (matched by its exact label)."""
    page = store.list(page=1, page_size=50, search=label)
    return next((c.id for c in page.items if c.patient_label == label), None)


@cds_router.post("/cds-services/{service_id}/feedback")
async def feedback(service_id: str, request: Request) -> JSONResponse:
    """CDS Hooks feedback: each item (card, outcome, coded override reason) goes to the audit log."""
    if service_id not in cds.SERVICES:
        return _problem(404, f"no CDS service {service_id!r}; see GET /cds-services")
    body = await _hook_json(request)
    if isinstance(body, JSONResponse):
        return body
    items = body.get("feedback") if isinstance(body, dict) else None
    problems = [] if isinstance(items, list) and items else [{"field": "feedback", "message": "required, a non-empty list"}]
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or not isinstance(item.get("card"), str):
            problems.append({"field": f"feedback.{i}.card", "message": "required, the uuid of the card"})
        elif item.get("outcome") not in ("accepted", "overridden"):
            problems.append({"field": f"feedback.{i}.outcome", "message": "allowed: accepted, overridden"})
    if problems:
        return _problem(422, problems)
    seen = _cards_seen(request)

    def record() -> None:
        for item in items:  # type: ignore[union-attr]
            case_id = seen.get(item["card"])
            request.app.state.store.record("cds_feedback", actor=actor_of(request), case_id=case_id,
                                           detail=cds.feedback_detail(service_id, item, case_id))

    await run_in_threadpool(record)
    return JSONResponse({})


# ------------------------------------------------------------------ the import page

page_router = APIRouter(include_in_schema=False)


def _upload_page(request: Request, problems: list[tuple[str, str]], status: int = 200) -> HTMLResponse:
    return render(request, "fhir_upload.html", {"problems": problems}, status_code=status)


@page_router.get("/cases/import")
def import_page(request: Request) -> HTMLResponse:
    return _upload_page(request, [])


@page_router.post("/cases/import")
async def import_bundle(request: Request) -> Response:
    form = await request.form()
    require_csrf(request, form)
    upload = form.get("bundle")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return _upload_page(request, [("bundle", "choose a FHIR Bundle file (JSON) to import")], 422)
    raw = await upload.read(MAX_BODY_BYTES + 1)
    try:
        imported = await run_in_threadpool(lambda: read_bundle(_parse(raw, upload.filename or "the file")))
    except InvalidPatient as exc:
        return _upload_page(request, exc.problems, 422)
    state = forms.state_from_document(imported.document)
    status = 200
    try:
        imported.patient()
    except InvalidPatient as exc:
        forms.place_problems(state, exc.problems, {})
        status = 422
    from ..knowledge.ruleset import OPTION_LABELS

    return render(request, "fhir_import.html", {"state": state, "action": "/cases", "case": None, "fhir": imported,
                                                "option_labels": OPTION_LABELS},
                  status_code=status)


def include_fhir(app: FastAPI) -> None:
    """Add the FHIR routes; before the pages, whose /cases/{case_id} would take /cases/import.
    CDS Hooks client authentication (JWT) and CORS sit just outside the app's token check
    (:func:`nelm.fhir.auth.install`)."""
    from .auth import install

    install(app)
    if hasattr(app.state, "store"):
        purge_expired(app, force=True)  # at start-up
    app.include_router(api_router)
    app.include_router(cds_router)
    app.include_router(page_router)
    from .apply import router as apply_router
    from .smart import router as smart_router

    app.include_router(smart_router)
    app.include_router(apply_router)
