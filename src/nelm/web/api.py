"""REST API, version 1: stateless assessment, stored cases with versions, evidence.

Patient documents are read as raw JSON and validated by nelm itself (not by FastAPI's
body parsing), so a refusal names each field by the contract's dotted path:
``422 {"detail": [{"field": "pathology.ki67_percent", "message": "..."}]}``.

The OpenAPI document is the truth about this module: every status an operation can
answer with is declared with its body (errors are ``{"detail": "..."}`` or the list of
``{field, message}`` problems above, never FastAPI's ``{loc, msg, type}``), and every
parameter is typed and bounded as the server checks it (limits in :mod:`nelm.inputgate`).
tests/web/test_openapi_contract.py holds the two together.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
import orjson
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from sqlalchemy import text

from .. import __version__, inputgate
from ..assessment import assess
from ..evidence import TOPICS, EvidenceRecord, evidence_index
from ..evidence_view import select
from ..knowledge import KNOWLEDGE_DIR, load
from ..patient import Patient, parse_text
from ..compare import guideline_comparison, version_diff
from ..decision import BoardDecision, InvalidDecision, record_of, validate_decision
from ..store import CaseNotFound, CaseStore, StaleVersion, StoredVersion, VersionInfo, VersionNotFound
from ..yamlio import read_yaml
from .security import MAX_BODY_BYTES, actor_of, decision_text_problems
from .service import assess_and_store, patient_from_json

# Enumerations the document declares: the evidence filter's option ids and topics, and
# the guideline profiles of the knowledge base (read from its manifest, not hand-listed).
Topic = Literal[TOPICS]  # type: ignore[valid-type]
GUIDELINES: tuple[str, ...] = tuple(read_yaml(KNOWLEDGE_DIR / "manifest.yaml")["guidelines"])
Guideline = Literal[GUIDELINES]  # type: ignore[valid-type]

PATIENT_BODY = {"requestBody": {"required": True, "description": (
    "The patient document (see the project's contract), as UTF-8 JSON of at most "
    f"{MAX_BODY_BYTES // 1024} KiB. Beyond what the schema says, the server refuses (422, each problem by its "
    "field): facts that contradict each other (for example liver.pattern 'single' with liver.lesion_count 3, or "
    "extrahepatic.present false with sites listed), a key given twice, numbers that are not finite, and text "
    f"that holds NUL or a lone surrogate or runs over {inputgate.MAX_STRING_CHARS:,} characters. An integral "
    "number such as 0.0 is accepted for an integer field, as JSON Schema's integer includes it."),
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Patient"}}}}}


# ------------------------------------------------------------------ response models

class KnowledgeBaseInfo(BaseModel):
    version: str
    sha256: str
    guideline: Guideline | None = Field(None, description="the guideline profile that governed the thresholds")


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


class Change(BaseModel):
    label: str
    before: str
    after: str


class FactChange(Change):
    field: str = Field(description="dotted path of the patient field")


class KeyedChange(Change):
    id: str


class PlanChange(BaseModel):
    before: str
    after: str
    leading_before: str | None
    leading_after: str | None


class VersionDiff(BaseModel):
    id: str
    from_version: int
    to_version: int
    facts: list[FactChange] = Field(description="patient fields whose value changed")
    classification: list[Change]
    criteria: list[KeyedChange]
    verdicts: list[KeyedChange]
    plan: PlanChange | None = Field(description="null when the plan did not change")


class GuidelineRow(BaseModel):
    kind: Literal["criteria", "option", "plan"]
    id: str
    label: str
    values: dict[str, str] = Field(description="guideline id -> status, verdict or leading option, in words")
    raw: dict[str, str | None] = Field(description="guideline id -> the contract's id")


class GuidelineComparison(BaseModel):
    guidelines: list[str]
    rows: list[GuidelineRow] = Field(description="only what the choice of guideline changes for this patient")


class DecisionRecord(BaseModel):
    id: str = Field(description="case id")
    version: int = Field(description="the assessed version the board decided on")
    recorded_at: dt.datetime
    recorded_by: str
    decision: dict[str, Any] = Field(description="the decision as recorded, with `departures` from the plan")


# ------------------------------------------------------------------ declared responses
# Each status the server can answer with, as the app's handlers and middleware write it.

ResponseSpec = dict[int | str, dict[str, Any]]

# every /api/v1 operation: AuthMiddleware and HostCheckMiddleware (web/security.py)
ALWAYS: ResponseSpec = {
    400: {"description": "the request names a host this server does not answer for (see --allowed-hosts)",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    401: {"model": Message, "description": "the server runs with NELM_API_TOKEN and the request did not carry it "
                                            "(Authorization: Bearer <token>)"},
}
INVALID: ResponseSpec = {422: {"model": Problems, "description": "invalid parameters: each problem names its parameter"}}
# operations that read a patient document (patient_body below; the size cap is BodyLimitMiddleware's)
PATIENT: ResponseSpec = {
    413: {"model": Message,
          "description": f"request body larger than {MAX_BODY_BYTES // 1024} KiB"},
    403: {"model": Message, "description": "a browser sent this from another site (Origin or Referer names another "
                                           "host, or is null) without the token as a Bearer header"},
    415: {"model": Message, "description": "the body is not sent as application/json"},
    422: {"model": Problems, "description": "invalid patient document: each problem names its field by dotted path "
                                            "(empty for the document as a whole)"},
}
NOT_FOUND: ResponseSpec = {404: {"model": Message, "description": "no such case or version"}}
LOCATION = {"Location": {"description": "path of the stored case", "schema": {"type": "string"}}}

# no control characters (PostgreSQL cannot compare text holding NUL); checked with a clear message
SEARCH_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
CaseId = Annotated[str, Path(max_length=36, json_schema_extra={"format": "uuid"},
                             description="a case id as the API returned it; any other text names no case (404)")]
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# the years of inputgate.MIN_DATE..MAX_DATE (1900-9998), which JSON Schema can say of a date only this way
DATE_PATTERN = r"^(19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-[0-9]{2}-[0-9]{2}$"
_DIGITS = re.compile(r"[0-9]+")


def _iso_day(value: Any) -> Any:
    # pydantic would also read "0" or "1700000000" as a Unix time: a URL's date is YYYY-MM-DD only
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise PydanticCustomError("date_format", "a date as YYYY-MM-DD (got '{value}')", {"value": value[:40]})
    return value


def _digits(value: Any) -> Any:
    # pydantic would also read "1.0", " 1", "+1" or "1_000": a URL's whole number is ASCII digits only
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError("int_format", "a whole number written in digits (got '{value}')", {"value": value[:40]})
    if isinstance(value, str) and len(value) > 18:  # beyond every bound below, and int()'s 4,300 digits
        raise PydanticCustomError("int_too_long", "a whole number of {n} digits; at most 18", {"n": len(value)})
    return value


# after Query/Path in Annotated[...]: placed before them it hides their bounds from the document
AsDigits = BeforeValidator(_digits)
VersionNumber = Annotated[int, Path(ge=1, le=inputgate.MAX_VERSION, description="version number, from 1"), AsDigits]


router = APIRouter(prefix="/api/v1", responses=ALWAYS)


GuidelineParam = Annotated[Guideline | None, Query(
    description="the guideline profile that governs where sources disagree (default: the two reviews)")]
IfMatch = Annotated[str, Header(
    max_length=40, description='required: the ETag of the version the edit starts from (`"3"`); without it the '
                               'answer is 428, a stale one is refused with 412')]
PRECONDITION: ResponseSpec = {
    412: {"model": Message, "description": "If-Match names a version that is no longer the latest (or is no "
                                           "version's ETag): reload, then edit again"},
    428: {"model": Message, "description": "no If-Match (or `*`): an edit must say which version it starts from, "
                                           "so that it never overwrites one its author has not seen"}}
ETAG = {"ETag": {"description": 'the version number as an entity tag ("3"), for If-Match', "schema": {"type": "string"}}}


def _etag(version: int) -> str:
    return f'"{version}"'


def _if_match_version(value: str | None) -> int:
    """The version an If-Match names (``"3"``, ``W/"3"``); 428 without one (or ``*``), 412 for anything else."""
    if value is None or value.strip() in ("", "*"):
        raise HTTPException(428, 'send If-Match with the ETag of the version you edited (GET returns it, like \'"3"\'); '
                                 "an edit without it could overwrite a version you have not seen")
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 9:
        raise HTTPException(412, f"If-Match must be the ETag of a version (like '\"3\"'), not {value[:40]!r}")
    return int(tag)


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
    if len(raw) <= INLINE_BODY_BYTES:  # an ordinary document parses in well under a millisecond
        return patient_from_json(raw)
    return await run_in_threadpool(patient_from_json, raw)


# a body this small is parsed on the event loop; a larger one (up to MAX_BODY_BYTES) in a thread
INLINE_BODY_BYTES = 64 * 1024


def json_response(data: Any, status_code: int = 200) -> Response:
    """Plain JSON data (an assessment) rendered by orjson, several times faster than the
    standard library for a 60 kB document."""
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


PatientBody = Annotated[Patient, Depends(patient_body)]


async def decision_body(request: Request) -> dict[str, Any]:
    """The decision document, read through the same input gate as a patient (JSON only)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise HTTPException(415, "send the decision as application/json")
    raw = await request.body()
    try:
        data = parse_text(raw.decode("utf-8"), "json")
    except UnicodeDecodeError:
        raise HTTPException(422, [{"field": "", "message": "the body is not UTF-8 text"}]) from None
    if not isinstance(data, dict):
        raise HTTPException(422, [{"field": "", "message": "the decision must be a JSON object"}])
    if problems := decision_text_problems(data):  # as the web form: no control characters in what people typed
        raise HTTPException(422, [{"field": f, "message": m} for f, m in problems])
    return data


DecisionBody = Annotated[dict[str, Any], Depends(decision_body)]
DECISION_BODY = {"requestBody": {"required": True, "description": (
    "the board's decision (JSON); its text may not hold NUL, control characters other than tab and line "
    "breaks, or lone surrogates (422 naming the field)"),
                                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BoardDecision"}}}}}


def _case_not_found(case_id: str) -> HTTPException:
    return HTTPException(404, f"no case with id {case_id!r}")


def _check_case_id(case_id: str) -> None:
    # not a UUID the store made: no such case, and the text never reaches the database
    if not inputgate.is_case_id(case_id):
        raise _case_not_found(case_id)


def _refuse(field: str, message: str) -> HTTPException:
    return HTTPException(422, [{"field": field, "message": message}])


# ------------------------------------------------------------------ endpoints

@router.get("/health", response_model=Health, tags=["service"],
            responses={503: {"model": Message, "description": "the database does not answer"}})
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


@router.post("/assess", tags=["assessment"], openapi_extra=PATIENT_BODY, responses=PATIENT,
             response_model=dict[str, Any])
async def assess_once(patient: PatientBody, guideline: GuidelineParam = None, outcomes: Annotated[
        Literal["summary", "full"], Query(
            description="summary (default): each matched cohort with its reported points, median and fitted model; "
                        "full: also each curve sampled for drawing")] = "summary") -> Response:
    """Assess a patient document without storing anything; returns the assessment."""
    # A millisecond or two of computation and no I/O: run on the event loop, not handed to a
    # thread and back (the hand-over cost more than the assessment). One worker process per
    # core serves requests side by side (nelm serve --workers). The assessment is plain JSON
    # data already: rendered by orjson, without FastAPI's generic encoder.
    return json_response(assess(patient, guideline, outcomes=outcomes))


@router.post("/assess/guidelines", response_model=GuidelineComparison, tags=["assessment"],
             openapi_extra=PATIENT_BODY, responses=PATIENT)
def compare_guidelines(patient: PatientBody) -> GuidelineComparison:
    """Assess the patient under every guideline profile and list what the choice changes."""
    return GuidelineComparison(**guideline_comparison({g: assess(patient, g) for g in GUIDELINES}))


@router.post("/assessments", status_code=201, response_model=StoredAssessment, tags=["cases"],
             openapi_extra=PATIENT_BODY, responses=PATIENT | {201: {"headers": LOCATION | ETAG}})
def create_assessment(patient: PatientBody, store: Store, actor: Actor, response: Response,
                      guideline: GuidelineParam = None) -> StoredAssessment:
    """Validate, assess and store a new case (version 1). A document holding no fact
    besides its label is refused (422), so an empty form is never a case."""
    v = assess_and_store(store, patient, actor=actor, guideline=guideline)
    response.headers["Location"] = f"/api/v1/assessments/{v.case_id}"
    response.headers["ETag"] = _etag(v.version)
    return _stored(v)


@router.get("/assessments", response_model=CaseList, tags=["cases"], responses=INVALID)
def list_assessments(store: Store,
                     page: Annotated[int, Query(ge=1, le=inputgate.MAX_PAGE), AsDigits] = 1,
                     page_size: Annotated[int, Query(ge=1, le=100), AsDigits] = 20,
                     search: Annotated[str | None, Query(
                         max_length=inputgate.MAX_SEARCH_CHARS, json_schema_extra={"pattern": SEARCH_PATTERN},
                         description="patient label text or case id prefix (no control characters)")] = None,
                     date: Annotated[dt.date | None, BeforeValidator(_iso_day), Query(
                         json_schema_extra={"pattern": DATE_PATTERN},
                         description=f"cases with a version made that day (server time), "
                                     f"{inputgate.MIN_DATE.isoformat()} to {inputgate.MAX_DATE.isoformat()}")] = None,
                     ) -> CaseList:
    """Stored cases, most recently updated first."""
    if search and (problem := inputgate.search_problem(search)):
        raise _refuse("search", problem)
    if date is not None and (problem := inputgate.date_problem(date)):
        raise _refuse("date", problem)
    found = store.list(page=page, page_size=page_size, search=search or None, on=date)
    return CaseList(items=[CaseListItem(**vars(c)) for c in found.items], total=found.total, page=found.page,
                    page_size=found.page_size)


@router.get("/assessments/{case_id}", response_model=CaseWithVersions, tags=["cases"],
            responses=NOT_FOUND | INVALID | {200: {"headers": ETAG}})
def get_assessment(case_id: CaseId, store: Store, actor: Actor, response: Response) -> CaseWithVersions:
    """The latest version of a case, and the list of all its versions."""
    _check_case_id(case_id)
    try:
        latest = store.latest(case_id)
        versions = store.versions(case_id)
    except (CaseNotFound, VersionNotFound):
        raise _case_not_found(case_id) from None
    store.record("view", actor=actor, case_id=case_id, version=latest.version, detail="api")
    response.headers["ETag"] = _etag(latest.version)
    return CaseWithVersions(**_stored(latest).model_dump(), versions=[_summary(i) for i in versions])


@router.get("/assessments/{case_id}/versions", response_model=list[VersionSummary], tags=["cases"],
            responses=NOT_FOUND | INVALID)
def list_versions(case_id: CaseId, store: Store) -> list[VersionSummary]:
    """Every version of a case, oldest first (each kept as it was assessed)."""
    _check_case_id(case_id)
    try:
        return [_summary(i) for i in store.versions(case_id)]
    except CaseNotFound:
        raise _case_not_found(case_id) from None


@router.get("/assessments/{case_id}/diff", response_model=VersionDiff, tags=["cases"], responses=NOT_FOUND | INVALID)
def diff_versions(case_id: CaseId, store: Store, actor: Actor,
                  from_: Annotated[int, Query(alias="from", ge=1, le=inputgate.MAX_VERSION,
                                              description="the earlier version"), AsDigits],
                  to: Annotated[int, Query(ge=1, le=inputgate.MAX_VERSION, description="the later version"), AsDigits],
                  ) -> VersionDiff:
    """What changed between two versions: facts, classification, criteria, verdicts and plan."""
    _check_case_id(case_id)
    try:
        a, b = store.version(case_id, from_), store.version(case_id, to)
    except CaseNotFound:
        raise _case_not_found(case_id) from None
    except VersionNotFound:
        raise HTTPException(404, f"case {case_id!r} has no version {from_} or {to}") from None
    store.record("view", actor=actor, case_id=case_id, version=to, detail=f"diff from version {from_}")
    return VersionDiff(id=case_id, from_version=from_, to_version=to,
                       **version_diff((a.patient, a.assessment), (b.patient, b.assessment)))


@router.post("/assessments/{case_id}/versions/{n}/decisions", status_code=201, response_model=DecisionRecord,
             tags=["cases"], openapi_extra=DECISION_BODY,
             responses=NOT_FOUND | {k: v for k, v in PATIENT.items() if k != 422} | {422: {"model": Problems, "description": (
                 "invalid decision: each problem names its field; a decision that departs from the plan or "
                 "chooses an option judged not recommended, contraindicated or undetermined needs deviation_reason")}})
def record_decision(case_id: CaseId, n: VersionNumber, body: DecisionBody, store: Store, actor: Actor) -> DecisionRecord:
    """Record the tumour board's decision on one version (append-only, in the audit log)."""
    _check_case_id(case_id)
    try:
        v = store.version(case_id, n)
        decision, gone = validate_decision(body, v.assessment)
        e = store.decide(case_id, n, record_of(decision, gone), actor=actor)
    except CaseNotFound:
        raise _case_not_found(case_id) from None
    except VersionNotFound:
        raise HTTPException(404, f"case {case_id!r} has no version {n}") from None
    except InvalidDecision as exc:
        raise HTTPException(422, [{"field": f, "message": m} for f, m in exc.problems]) from None
    return DecisionRecord(id=case_id, version=n, recorded_at=e.at, recorded_by=e.actor, decision=json.loads(e.detail or "{}"))


@router.get("/assessments/{case_id}/decisions", response_model=list[DecisionRecord], tags=["cases"],
            responses=NOT_FOUND | INVALID)
def list_decisions(case_id: CaseId, store: Store) -> list[DecisionRecord]:
    """The board decisions recorded for a case, oldest first (a later one on a version supersedes it)."""
    _check_case_id(case_id)
    try:
        store.versions(case_id)
    except CaseNotFound:
        raise _case_not_found(case_id) from None
    return [DecisionRecord(id=case_id, version=e.version or 0, recorded_at=e.at, recorded_by=e.actor, decision=d)
            for e, d in store.decisions(case_id)]


@router.get("/assessments/{case_id}/versions/{n}", response_model=StoredAssessment, tags=["cases"],
            responses=NOT_FOUND | INVALID)
def get_version(case_id: CaseId, n: VersionNumber, store: Store, actor: Actor) -> StoredAssessment:
    """One stored version of a case, as it was assessed then."""
    _check_case_id(case_id)
    try:
        v = store.version(case_id, n)
    except CaseNotFound:
        raise _case_not_found(case_id) from None
    except VersionNotFound:
        raise HTTPException(404, f"case {case_id!r} has no version {n}") from None
    store.record("view", actor=actor, case_id=case_id, version=n, detail="api")
    return _stored(v)


@router.put("/assessments/{case_id}", response_model=StoredAssessment, tags=["cases"],
            openapi_extra=PATIENT_BODY, responses=PATIENT | NOT_FOUND | PRECONDITION | {200: {"headers": ETAG}})
def update_assessment(case_id: CaseId, patient: PatientBody, store: Store, actor: Actor, response: Response,
                      guideline: GuidelineParam = None,
                      if_match: IfMatch = None) -> StoredAssessment:  # type: ignore[assignment]  # optional header
    """Assess the document again and store it as the case's next version (the old stays).
    A document holding no fact besides its label is refused (422).

    Send `If-Match` with the ETag you read (GET returns it): if someone saved a newer
    version meanwhile, the answer is 412 and nothing is stored; without it, 428."""
    _check_case_id(case_id)
    expected = _if_match_version(if_match)
    try:
        v = assess_and_store(store, patient, actor=actor, case_id=case_id, guideline=guideline,
                             expected_latest=expected)
    except CaseNotFound:
        raise _case_not_found(case_id) from None
    except StaleVersion as exc:
        raise HTTPException(412, f"the case is at version {exc.latest}; your edit started from version "
                                 f"{exc.expected}. Reload it and apply your changes again.") from None
    response.headers["ETag"] = _etag(v.version)
    return _stored(v)


@router.get("/evidence", response_model=EvidenceList, tags=["evidence"], responses=INVALID)
def list_evidence(option: Annotated[Topic | None, Query(description="an option id or background topic")] = None,
                  search: Annotated[str | None, Query(max_length=inputgate.MAX_SEARCH_CHARS,
                                                      description="case-insensitive text")] = None,
                  ) -> EvidenceList:
    """The evidence records the verdicts cite, oldest first."""
    return EvidenceList(records=select(option=option or None, search=search or None))


@router.get("/evidence/{record_id}", response_model=EvidenceRecord, tags=["evidence"],
            responses={404: {"model": Message, "description": "no such evidence record"}} | INVALID)
def get_evidence(record_id: Annotated[str, Path(max_length=100, description="an evidence record id")]) -> EvidenceRecord:
    record = evidence_index().get(record_id)
    if record is None:
        raise HTTPException(404, f"no evidence record with id {record_id!r}")
    return record


# ------------------------------------------------------------------ other methods

def _method_not_allowed(allowed: str) -> Any:
    def handler() -> None:
        raise HTTPException(405, "Method Not Allowed", headers={"Allow": allowed})
    return handler


def _answer_other_methods() -> None:
    """405 with the path's whole ``Allow`` list for every method the document does not declare.

    Starlette answers an undeclared method with the Allow list of whichever route of the
    path it tried first (GET /assessments said ``Allow: POST``); one fallback route per path
    lists all of them, as RFC 9110 and the document say.
    """
    methods: dict[str, set[str]] = {}
    for route in router.routes:
        methods.setdefault(route.path, set()).update(getattr(route, "methods", ()))  # type: ignore[attr-defined]
    every = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
    for path, declared in methods.items():
        router.add_api_route(path.removeprefix(router.prefix), _method_not_allowed(", ".join(sorted(declared))),
                             methods=sorted(every - declared), include_in_schema=False)


_answer_other_methods()
