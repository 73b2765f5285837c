"""Reading and writing cases: every write is one transaction, every version is kept.

Callers pass plain JSON-able dicts (the validated patient document and its assessment)
and get frozen records back, so nothing outside this module holds an ORM session.
Versions and audit entries are appended to their hash chains (:mod:`.chain`); opening a
store verifies both chains and refuses a broken one unless told otherwise.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, exists, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from . import chain
from .chain import BrokenChain, ChainReport
from .db import default_database_url, make_engine, migrate
from .models import AuditEntry, Case, CaseVersion, utcnow

LABEL_MAX = 200
log = logging.getLogger(__name__)


class CaseNotFound(LookupError):
    pass


class VersionNotFound(LookupError):
    pass


class StaleVersion(Exception):
    """The case moved on since the editor read it (an If-Match that no longer holds)."""

    def __init__(self, case_id: str, expected: int, latest: int):
        self.case_id, self.expected, self.latest = case_id, expected, latest
        super().__init__(f"case {case_id} is at version {latest}, not {expected}")


DECISION_ACTION = "board_decision"


@dataclass(frozen=True)
class StoredVersion:
    case_id: str
    version: int
    patient: dict[str, Any]
    assessment: dict[str, Any]
    kb_version: str
    kb_sha256: str
    created_at: datetime


@dataclass(frozen=True)
class VersionInfo:
    version: int
    created_at: datetime
    kb_version: str
    kb_sha256: str


@dataclass(frozen=True)
class CaseSummary:
    id: str
    patient_label: str | None
    created_at: datetime
    updated_at: datetime
    latest_version: int


@dataclass(frozen=True)
class CasePage:
    items: list[CaseSummary]
    total: int
    page: int
    page_size: int


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    actor: str
    action: str
    case_id: str | None
    version: int | None
    detail: str | None


def _label(patient: dict[str, Any]) -> str | None:
    label = patient.get("id")
    return str(label)[:LABEL_MAX] if label not in (None, "") else None


def _kb(assessment: dict[str, Any]) -> tuple[str, str]:
    kb = assessment.get("knowledge_base") or {}
    if not kb.get("version") or not kb.get("sha256"):
        raise ValueError("assessment lacks knowledge_base.version / sha256; refusing to store an untraceable result")
    return str(kb["version"]), str(kb["sha256"])


def _stored(v: CaseVersion) -> StoredVersion:
    return StoredVersion(case_id=v.case_id, version=v.version, patient=v.patient, assessment=v.assessment,
                         kb_version=v.kb_version, kb_sha256=v.kb_sha256, created_at=v.created_at)


def _written(row: dict[str, Any]) -> StoredVersion:
    return StoredVersion(case_id=row["case_id"], version=row["version"], patient=row["patient"],
                         assessment=row["assessment"], kb_version=row["kb_version"], kb_sha256=row["kb_sha256"],
                         created_at=row["created_at"])


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    # The board's "date" is a local calendar day, so bound it in the server's time zone.
    tz = datetime.now().astimezone().tzinfo
    start = datetime.combine(day, time(), tzinfo=tz)
    return start, start + timedelta(days=1)


class CaseStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)
        # what open() found when it verified the hash chains (None: not verified)
        self.chain_report: ChainReport | None = None

    @classmethod
    def open(cls, url: str | None = None, *, run_migrations: bool = True,
             allow_broken_chain: bool | None = None) -> CaseStore:
        """Connect, migrate, and verify the hash chains.

        A broken chain raises :class:`~nelm.store.chain.BrokenChain` unless
        ``allow_broken_chain`` (default: the environment variable
        ``NELM_ALLOW_BROKEN_CHAIN=1``); allowed, it is logged and kept in ``chain_report``.
        """
        engine = make_engine(url or default_database_url())
        try:
            if run_migrations:
                migrate(engine)
            report = chain.verify(engine)
        except BaseException:
            engine.dispose()
            raise
        if not report.ok:
            allowed = chain.allowed_by_env() if allow_broken_chain is None else allow_broken_chain
            if not allowed:
                engine.dispose()
                raise BrokenChain(report)
            for brk in report.breaks:
                log.warning("case store opened with a broken hash chain: %s", brk.describe())
        store = cls(engine)
        store.chain_report = report
        return store

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writes

    def create(self, patient: dict[str, Any], assessment: dict[str, Any], *, actor: str) -> StoredVersion:
        """A new case with its first version, and the audit entry, in one transaction."""
        kb_version, kb_sha = _kb(assessment)
        now = utcnow()
        case_id = str(uuid.uuid4())
        # encoded before the transaction: other writers wait while this one holds the chains
        version = chain.prepare("case_versions", dict(
            case_id=case_id, version=1, patient=patient, assessment=assessment,
            kb_version=kb_version, kb_sha256=kb_sha, created_at=now))
        entry = chain.prepare("audit_log", dict(at=now, actor=actor, action="create", case_id=case_id, version=1,
                                                detail=f"knowledge base {kb_version}"))
        with self._session.begin() as s:
            # The case row first: versions reference it, and on SQLite writing first takes
            # the write lock before anything is read, so the chains' ends read below are
            # the latest. Then always versions before audit (one lock order, no deadlock).
            s.add(Case(id=case_id, created_at=now, patient_label=_label(patient), latest_version=1, updated_at=now))
            s.flush()
            conn = s.connection()
            row = chain.append(conn, version)
            chain.append(conn, entry)
            return _written(row)

    def add_version(self, case_id: str, patient: dict[str, Any], assessment: dict[str, Any], *,
                    actor: str, expected_latest: int | None = None) -> StoredVersion:
        """Store the next version of a case; earlier versions are never touched.

        With ``expected_latest`` (the version the editor started from, an HTTP If-Match)
        the write happens only if that is still the latest version, checked in the same
        statement that takes the lock, so two editors cannot overwrite each other silently:
        the later one gets :class:`StaleVersion`."""
        kb_version, kb_sha = _kb(assessment)
        now = utcnow()
        version = chain.prepare("case_versions", dict(
            case_id=case_id, version=None, patient=patient, assessment=assessment,
            kb_version=kb_version, kb_sha256=kb_sha, created_at=now))
        entry = chain.prepare("audit_log", dict(at=now, actor=actor, action="new_version", case_id=case_id,
                                                version=None, detail=f"knowledge base {kb_version}"))
        with self._session.begin() as s:
            # Writing first takes the lock (row lock on PostgreSQL, the write lock on
            # SQLite) before the number is read, so concurrent writers queue up and
            # each gets the next number instead of colliding on unique(case_id, version).
            where = [Case.id == case_id]
            if expected_latest is not None:
                where.append(Case.latest_version == expected_latest)
            bumped = s.execute(update(Case).where(*where).values(
                latest_version=Case.latest_version + 1, updated_at=now, patient_label=_label(patient)))
            if bumped.rowcount != 1:
                latest = s.scalar(select(Case.latest_version).where(Case.id == case_id))
                if latest is None:
                    raise CaseNotFound(case_id)
                raise StaleVersion(case_id, expected_latest or 0, latest)
            n = s.scalar(select(Case.latest_version).where(Case.id == case_id))
            assert n is not None
            conn = s.connection()
            row = chain.append(conn, version, version=n)
            chain.append(conn, entry, version=n)
            return _written(row)

    def record(self, action: str, *, actor: str, case_id: str | None = None, version: int | None = None,
               detail: str | None = None) -> None:
        """Append an audit entry (views, exports, logins); never patient data in ``detail``."""
        with self._session.begin() as s:
            chain.append(s.connection(), "audit_log", dict(at=utcnow(), actor=actor, action=action, case_id=case_id,
                                                           version=version, detail=detail))

    def decide(self, case_id: str, version: int, decision: dict[str, Any], *, actor: str) -> AuditRecord:
        """Append the board's decision on one version to the audit log (hash-chained,
        append-only): a later decision on the same version supersedes, never erases, it.
        The entry's detail is the decision record as canonical JSON (the one place the
        log holds more than a note: what the board chose, why, who attended and signed)."""
        self.version(case_id, version)  # CaseNotFound / VersionNotFound
        detail = json.dumps(decision, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        at = utcnow()
        with self._session.begin() as s:
            chain.append(s.connection(), "audit_log", dict(at=at, actor=actor, action=DECISION_ACTION,
                                                           case_id=case_id, version=version, detail=detail))
        return AuditRecord(at=at, actor=actor, action=DECISION_ACTION, case_id=case_id, version=version,
                           detail=detail)

    def decisions(self, case_id: str) -> list[tuple[AuditRecord, dict[str, Any]]]:
        """The board decisions recorded for a case, oldest first, with their records."""
        out = []
        for e in self.audit(case_id):
            if e.action == DECISION_ACTION and e.detail:
                try:
                    out.append((e, json.loads(e.detail)))
                except ValueError:  # the chain check reports tampering; a page must still open
                    log.warning("unreadable decision record in the audit log of case %s", case_id)
        return out

    # ------------------------------------------------------------------ reads

    def latest(self, case_id: str) -> StoredVersion:
        with self._session() as s:
            n = s.scalar(select(Case.latest_version).where(Case.id == case_id))
            if n is None:
                raise CaseNotFound(case_id)
            return self._version(s, case_id, n)

    def version(self, case_id: str, n: int) -> StoredVersion:
        with self._session() as s:
            if s.get(Case, case_id) is None:
                raise CaseNotFound(case_id)
            return self._version(s, case_id, n)

    @staticmethod
    def _version(s: Session, case_id: str, n: int) -> StoredVersion:
        v = s.scalar(select(CaseVersion).where(CaseVersion.case_id == case_id, CaseVersion.version == n))
        if v is None:
            raise VersionNotFound(f"{case_id} v{n}")
        return _stored(v)

    def versions(self, case_id: str) -> list[VersionInfo]:
        with self._session() as s:
            if s.get(Case, case_id) is None:
                raise CaseNotFound(case_id)
            rows = s.execute(select(CaseVersion.version, CaseVersion.created_at, CaseVersion.kb_version,
                                    CaseVersion.kb_sha256)
                             .where(CaseVersion.case_id == case_id).order_by(CaseVersion.version)).all()
            return [VersionInfo(*r) for r in rows]

    def list(self, *, page: int = 1, page_size: int = 20, search: str | None = None,
             on: date | None = None) -> CasePage:
        """Cases, most recently updated first; ``search`` matches the patient label (any
        case) or the start of the case id; ``on`` keeps cases with a version made that day."""
        if page < 1 or page_size < 1:
            raise ValueError("page and page_size start at 1")
        conditions = []
        if search:
            conditions.append(or_(Case.patient_label.icontains(search, autoescape=True),
                                  Case.id.startswith(search.lower(), autoescape=True)))
        if on is not None:
            start, end = _day_bounds(on)
            conditions.append(exists().where(CaseVersion.case_id == Case.id, CaseVersion.created_at >= start,
                                             CaseVersion.created_at < end))
        with self._session() as s:
            total = s.scalar(select(func.count()).select_from(Case).where(*conditions)) or 0
            rows = s.scalars(select(Case).where(*conditions).order_by(Case.updated_at.desc(), Case.id)
                             .offset((page - 1) * page_size).limit(page_size)).all()
            items = [CaseSummary(id=c.id, patient_label=c.patient_label, created_at=c.created_at,
                                 updated_at=c.updated_at, latest_version=c.latest_version) for c in rows]
        return CasePage(items=items, total=total, page=page, page_size=page_size)

    def audit(self, case_id: str | None = None) -> list[AuditRecord]:
        with self._session() as s:
            q = select(AuditEntry).order_by(AuditEntry.id)
            if case_id is not None:
                q = q.where(AuditEntry.case_id == case_id)
            return [AuditRecord(at=e.at, actor=e.actor, action=e.action, case_id=e.case_id, version=e.version,
                                detail=e.detail) for e in s.scalars(q)]
