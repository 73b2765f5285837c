"""REST API, version 1: stateless assessment, stored cases with versions, evidence.

Patient documents are read as raw JSON and validated by nelm itself (not by FastAPI's
body parsing), so a refusal names each field by the contract's dotted path:
``422 {"detail": [{"field": "pathology.ki67_percent", "message": "..."}]}``.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import text

from .. import __version__
from ..assessment import assess
from ..evidence import TOPICS, EvidenceRecord, evidence_index
from ..evidence_view import select
from ..knowledge import load
from ..patient import Patient
from ..store import CaseNotFound, CaseStore, StoredVersion, VersionInfo, VersionNotFound
from .security import actor_of
from .service import assess_and_store, patient_from_json

router = APIRouter(prefix="/api/v1")

PATIENT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Patient"}}}}}


# ------------------------------------------------------------------ response models

class KnowledgeBaseInfo(BaseModel):
    version: str
    sha256: str
    guideline: str | None = None


class Problem(BaseModel):
    field: str = Field(description="dotted path of the offending input field; empty for the document as a whole")
    message: str


class Problems(BaseModel):
    detail: list[Problem]


class Message(BaseModel):
    detail: str


class Health(BaseModel):
    status: Literal["ok"]
    nelm_version: str
    database: Literal["ok"]
    knowledge_base: KnowledgeBaseInfo


class VersionSummary(BaseModel):
    version: int
    created_at: dt.datetime
    knowledge_base: KnowledgeBaseInfo


class StoredAssessment(BaseModel):
    id: str
    version: int
    created_at: dt.datetime
    patient: dict[str, Any] = Field(description="the patient document as submitted and validated")
    assessment: dict[str, Any] = Field(description="the assessment document (see the contract)")
    knowledge_base: KnowledgeBaseInfo


class CaseWithVersions(StoredAssessment):
    versions: list[VersionSummary]


class CaseListItem(BaseModel):
    id: str
    patient_label: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    latest_version: int


class CaseList(BaseModel):
    items: list[CaseListItem]
    total: int
    page: int
    page_size: int


class EvidenceList(BaseModel):
    records: list[EvidenceRecord]


INVALID = {422: {"model": Problems, "description": "invalid patient document or parameters"}}
NOT_FOUND = {404: {"model": Message, "description": "no such case or version"}}


def _stored(v: StoredVersion) -> StoredAssessment:
    kb = v.assessment.get("knowledge_base") or {}
    return StoredAssessment(id=v.case_id, version=v.version, created_at=v.created_at, patient=v.patient,
                            assessment=v.assessment, knowledge_base=KnowledgeBaseInfo(
                                version=v.kb_version, sha256=v.kb_sha256, guideline=kb.get("guideline")))


def _summary(i: VersionInfo) -> VersionSummary:
    return VersionSummary(version=i.version, created_at=i.created_at,
                          knowledge_base=KnowledgeBaseInfo(version=i.kb_version, sha256=i.kb_sha256))


# ------------------------------------------------------------------ dependencies

def get_store(request: Request) -> CaseStore:
    return request.app.state.store


Store = Annotated[CaseStore, Depends(get_store)]
Actor = Annotated[str, Depends(actor_of)]


async def patient_body(request: Request) -> Patient:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # Only JSON: a cross-site HTML form cannot send it without a CORS preflight (never granted).
    if media != "application/json" and not media.endswith("+json"):
        raise HTTPException(415, "send the patient document as application/json")
    raw = await request.body()
    return await run_in_threadpool(patient_from_json, raw)


PatientBody = Annotated[Patient, Depends(patient_body)]


def _case_not_found(case_id: str) -> HTTPException:
    return HTTPException(404, f"no case with id {case_id!r}")


# ------------------------------------------------------------------ endpoints

@router.get("/health", response_model=Health, tags=["service"])
def health(store: Store) -> Health:
    """Liveness and readiness: the database answers and the knowledge base is loaded."""
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure is "not ready"; details stay in the server log
        raise HTTPException(503, "database unavailable") from None
    kb = load()
    return Health(status="ok", nelm_version=__version__, database="ok",
                  knowledge_base=KnowledgeBaseInfo(version=kb.version, sha256=kb.sha256, guideline=kb.guideline))


@router.post("/assess", tags=["assessment"], openapi_extra=PATIENT_BODY, responses=INVALID)
def assess_once(patient: PatientBody) -> dict[str, Any]:
    """Assess a patient document without storing anything; returns the assessment."""
    return assess(patient)


@router.post("/assessments", status_code=201, response_model=StoredAssessment, tags=["cases"],
             openapi_extra=PATIENT_BODY, responses=INVALID)
def create_assessment(patient: PatientBody, store: Store, actor: Actor, response: Response) -> StoredAssessment:
    """Validate, assess and store a new case (version 1)."""
    v = assess_and_store(store, patient, actor=actor)
    response.headers["Location"] = f"/api/v1/assessments/{v.case_id}"
    return _stored(v)


@router.get("/assessments", response_model=CaseList, tags=["cases"], responses=INVALID)
def list_assessments(store: Store,
                     page: Annotated[int, Query(ge=1)] = 1,
                     page_size: Annotated[int, Query(ge=1, le=100)] = 20,
                     search: Annotated[str | None, Query(max_length=200, description="patient label text or case id prefix")] = None,
                     date: Annotated[dt.date | None, Query(description="cases with a version made that day (server time)")] = None,
                     ) -> CaseList:
    """Stored cases, most recently updated first."""
    found = store.list(page=page, page_size=page_size, search=search or None, on=date)
    return CaseList(items=[CaseListItem(**vars(c)) for c in found.items], total=found.total, page=found.page,
                    page_size=found.page_size)


@router.get("/assessments/{case_id}", response_model=CaseWithVersions, tags=["cases"], responses=NOT_FOUND)
def get_assessment(case_id: str, store: Store, actor: Actor) -> CaseWithVersions:
    """The latest version of a case, and the list of all its versions."""
    try:
        latest = store.latest(case_id)
        versions = store.versions(case_id)
    except (CaseNotFound, VersionNotFound):
        raise _case_not_found(case_id) from None
    store.record("view", actor=actor, case_id=case_id, version=latest.version, detail="api")
    return CaseWithVersions(**_stored(latest).model_dump(), versions=[_summary(i) for i in versions])


@router.get("/assessments/{case_id}/versions/{n}", response_model=StoredAssessment, tags=["cases"],
            responses=NOT_FOUND)
def get_version(case_id: str, n: int, store: Store, actor: Actor) -> StoredAssessment:
    """One stored version of a case, as it was assessed then."""
    try:
        v = store.version(case_id, n)
    except CaseNotFound:
        raise _case_not_found(case_id) from None
    except VersionNotFound:
        raise HTTPException(404, f"case {case_id!r} has no version {n}") from None
    store.record("view", actor=actor, case_id=case_id, version=n, detail="api")
    return _stored(v)


@router.put("/assessments/{case_id}", response_model=StoredAssessment, tags=["cases"],
            openapi_extra=PATIENT_BODY, responses=INVALID | NOT_FOUND)
def update_assessment(case_id: str, patient: PatientBody, store: Store, actor: Actor) -> StoredAssessment:
    """Assess the document again and store it as the case's next version (the old stays)."""
    try:
        return _stored(assess_and_store(store, patient, actor=actor, case_id=case_id))
    except CaseNotFound:
        raise _case_not_found(case_id) from None


@router.get("/evidence", response_model=EvidenceList, tags=["evidence"], responses=INVALID)
def list_evidence(option: Annotated[str | None, Query(description="an option id or background topic")] = None,
                  search: Annotated[str | None, Query(max_length=200, description="case-insensitive text")] = None,
                  ) -> EvidenceList:
    """The evidence records the verdicts cite, oldest first."""
    if option and option not in TOPICS:
        raise HTTPException(422, [{"field": "option",
                                   "message": f"unknown option or topic {option!r}; allowed: {', '.join(TOPICS)}"}])
    return EvidenceList(records=select(option=option or None, search=search or None))


@router.get("/evidence/{record_id}", response_model=EvidenceRecord, tags=["evidence"], responses=NOT_FOUND)
def get_evidence(record_id: str) -> EvidenceRecord:
    record = evidence_index().get(record_id)
    if record is None:
        raise HTTPException(404, f"no evidence record with id {record_id!r}")
    return record
