"""Reading and writing cases: every write is one transaction, every version is kept.

Callers pass plain JSON-able dicts (the validated patient document and its assessment)
and get frozen records back, so nothing outside this module holds an ORM session.
Versions and audit entries are appended to their hash chains (:mod:`.chain`) and every
write is signed in the anchors file outside the database (:mod:`.anchors`); opening a
store verifies both chains against those signatures and refuses a broken one, or one it
cannot verify, unless told otherwise. What the board sees (the case list, latest
versions, labels, decisions) is read from the chained rows only.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, and_, exists, func, inspect, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from . import anchors, chain
from .chain import BrokenChain, ChainReport, UnverifiableChain
from .db import current_revision, default_database_url, is_older, known_revision, make_engine, migrate, store_label
from .models import AuditEntry, Case, CaseVersion, UTCDateTime, utcnow

LABEL_MAX = 200
ANCHORED_SINCE = "0003_anchors"  # the migration that gives a store the identity its anchors name
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
# the create entry of a case the CDS service keeps for a FHIR patient ends with this (one write
# appends one audit row, the one its anchor signs, so the mark is in that row)
CDS_MARK = "; kept by the CDS service for a FHIR patient: retention applies"
PURGE_ACTION = chain.PURGE_ACTION     # its content was purged at the end of its retention
TOMBSTONE = chain.TOMBSTONE           # what a purged version's patient and assessment become


class CasePurged(CaseNotFound):
    """The case's content was purged (retention); only its tombstone and audit trail remain."""


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
    def __init__(self, engine: Engine, anchorer: anchors.Anchorer | None = None):
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)
        # signs a checkpoint of every write (None: a store opened without anchors, whose
        # writes `nelm audit verify` will report as appended outside nelm)
        self.anchorer = anchorer
        # what open() found when it verified the hash chains (None: not verified)
        self.chain_report: ChainReport | None = None
        # the failed checks open() was allowed past (--allow-broken-chain)
        self.refusals: tuple[str, ...] = ()

    @contextmanager
    def _write(self) -> Iterator[tuple[Session, list[tuple[str, dict[str, Any]]]]]:
        """A write transaction; the chained rows it appends go in the list it yields. Their
        signed checkpoint is written before the commit (under the chains' locks, so in
        chain order: a committed row always has one) and confirmed after it."""
        appended: list[tuple[str, dict[str, Any]]] = []
        with self._session.begin() as s:
            yield s, appended
            heads = anchors.heads_of(appended)
            if self.anchorer is not None and heads:
                self.anchorer.write("checkpoint", heads)
        if self.anchorer is not None and heads:
            try:
                self.anchorer.write("confirm", heads)
            except OSError as exc:  # committed: the checkpoint is there, only its confirmation is lost
                log.warning("could not confirm the anchor checkpoint of a committed write: %s", exc)

    @classmethod
    def open(cls, url: str | None = None, *, run_migrations: bool = True,
             allow_broken_chain: bool | None = None, sinks: Sequence[anchors.AnchorSink] = ()) -> CaseStore:
        """Connect, check that the chains can be verified, migrate, and verify them
        against the signed anchors (:mod:`.anchors`).

        Refused (:class:`~nelm.store.chain.BrokenChain`, or its
        :class:`~nelm.store.chain.UnverifiableChain` when the check cannot run: chain
        columns missing, an unexpected migration stamp, the anchors of this store missing)
        unless ``allow_broken_chain`` (default: the environment variable
        ``NELM_ALLOW_BROKEN_CHAIN=1``); allowed, it is logged, kept in ``chain_report``,
        and a signed *override* line records it in the anchors file. A migration never
        runs over a stamp that was moved back, so tampered rows are never re-chained
        without that permission. ``sinks``: more places every signed line goes, besides
        the anchors file (a remote write-once target; see :class:`~.anchors.AnchorSink`).
        """
        url = url or default_database_url()
        allowed = chain.allowed_by_env() if allow_broken_chain is None else allow_broken_chain
        engine = make_engine(url)
        try:
            store = cls._open(engine, url, run_migrations=run_migrations, allowed=allowed, sinks=sinks)
        except BaseException:
            engine.dispose()
            raise
        return store

    @classmethod
    def _open(cls, engine: Engine, url: str, *, run_migrations: bool, allowed: bool,
              sinks: Sequence[anchors.AnchorSink]) -> CaseStore:
        key = anchors.load_signing_key()
        public = key.public_key()
        path = anchors.anchors_path()
        label = store_label(url)
        found = anchors.read(path, public)
        revision, problems = _preflight(engine, found, label)
        if problems and not allowed:
            raise UnverifiableChain(problems[0], problems)
        if run_migrations:
            migrate(engine)
        with engine.connect() as connection:
            sid = chain.store_id(connection)
        if sid is None:  # not migrated by request: nothing to anchor writes with
            raise UnverifiableChain("the store has no store_identity table (migration 0003_anchors): start it "
                                    "once with migrations to anchor it", [])
        anchorer = anchors.Anchorer(key, sid, label, current_revision(engine) or "", [anchors.FileSink(path), *sinks])
        check = chain.AnchorCheck(path, public)
        report = chain.verify(engine, check)
        if (not report.ok and {b.what for b in report.breaks} == {chain.NO_ANCHORS}
                and revision is not None and is_older(revision, ANCHORED_SINCE) and not found.of_url(label)):
            # a store from before the anchors, upgraded just now: its chains verified, so
            # pin where they end; history before this line is the chain's word alone
            anchorer.write("adopt", _tails(engine), note=f"upgraded from migration {revision}: rows up to here "
                                                          "were not anchored when written")
            report = chain.verify(engine, check)
        if not report.ok and not allowed:
            raise BrokenChain(report)
        for problem in problems:
            log.warning("case store opened although its chain check failed: %s", problem)
        overridden = problems + [b.describe() for b in report.breaks]
        if overridden:  # signed, so that a later check says the store was served past a failed one
            anchorer.write("override", {}, note="; ".join(overridden)[:2000])
        store = cls(engine, anchorer)
        store.chain_report = report
        store.refusals = tuple(problems)
        return store

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writes

    def create(self, patient: dict[str, Any], assessment: dict[str, Any], *, actor: str,
               origin: str | None = None) -> StoredVersion:
        """A new case with its first version, and the audit entry, in one transaction.
        ``origin="cds"``: a case the CDS service keeps for a FHIR patient, marked in its create
        entry (:data:`CDS_MARK`) so that its retention applies to it."""
        kb_version, kb_sha = _kb(assessment)
        now = utcnow()
        case_id = str(uuid.uuid4())
        # encoded before the transaction: other writers wait while this one holds the chains
        version = chain.prepare("case_versions", dict(
            case_id=case_id, version=1, patient=patient, assessment=assessment,
            kb_version=kb_version, kb_sha256=kb_sha, created_at=now))
        entry = chain.prepare("audit_log", dict(at=now, actor=actor, action="create", case_id=case_id, version=1,
                                                detail=f"knowledge base {kb_version}"
                                                       + (CDS_MARK if origin == "cds" else "")))
        with self._write() as (s, appended):
            # The case row first: versions reference it, and on SQLite writing first takes
            # the write lock before anything is read, so the chains' ends read below are
            # the latest. Then always versions before audit (one lock order, no deadlock).
            s.add(Case(id=case_id, created_at=now, patient_label=_label(patient), latest_version=1, updated_at=now))
            s.flush()
            conn = s.connection()
            row = chain.append(conn, version)
            appended += [("case_versions", row), ("audit_log", chain.append(conn, entry))]
        return _written(row)

    def purge_expired(self, before: datetime, *, actor: str = "retention", note: str = "") -> list[str]:
        """Purge the cases the CDS service keeps (:data:`CDS_MARK`) whose latest version was made
        before ``before``; the ids of those purged.

        A purged case keeps its rows as tombstones: each version's ``patient`` and
        ``assessment`` become :data:`TOMBSTONE`, every other column (``row_hash`` included)
        stays, so the hash chain still links; the case's label is cleared. One audit entry
        per case (``retention_purge``) records each purged row's id and hash, in the same
        transaction: :func:`nelm.store.chain.verify` accepts a tombstone row only with it.
        """
        cv = CaseVersion.__table__
        with self._session() as s:
            marked = select(AuditEntry.case_id).where(AuditEntry.action == "create",
                                                      AuditEntry.detail.endswith(CDS_MARK, autoescape=True))
            purged = select(AuditEntry.case_id).where(AuditEntry.action == PURGE_ACTION)
            due = s.execute(select(cv.c.case_id).where(cv.c.case_id.in_(marked), cv.c.case_id.not_in(purged))
                            .group_by(cv.c.case_id).having(func.max(cv.c.created_at) < before)).scalars().all()
        done = []
        for case_id in due:
            if self._purge(case_id, before, actor, note):
                done.append(case_id)
        return done

    def _purge(self, case_id: str, before: datetime, actor: str, note: str) -> bool:
        cv = CaseVersion.__table__
        with self._write() as (s, appended):
            # the case's row first: add_version updates it too, so the two take turns
            s.execute(update(Case).where(Case.id == case_id).values(patient_label=None))
            rows = s.execute(select(cv.c.id, cv.c.row_hash, cv.c.created_at).where(cv.c.case_id == case_id)
                             .order_by(cv.c.id)).all()
            if not rows or max(_aware(r.created_at, UTCDateTime()) for r in rows) >= before:
                return False  # a version was added meanwhile: the case is in use again
            s.execute(update(cv).where(cv.c.case_id == case_id).values(patient=TOMBSTONE, assessment=TOMBSTONE))
            detail = json.dumps({"versions": {str(r.id): r.row_hash for r in rows}, "note": note},
                                sort_keys=True, separators=(",", ":"))
            appended.append(("audit_log", chain.append(s.connection(), "audit_log", dict(
                at=utcnow(), actor=actor, action=PURGE_ACTION, case_id=case_id, version=None, detail=detail))))
        return True

    def add_version(self, case_id: str, patient: dict[str, Any], assessment: dict[str, Any], *,
                    actor: str, expected_latest: int | None = None) -> StoredVersion:
        """Store the next version of a case; earlier versions are never touched.

        With ``expected_latest`` (the version the editor started from, an HTTP If-Match)
        the write happens only if that is still the latest version, checked while the
        case's row is locked, so two editors cannot overwrite each other silently: the
        later one gets :class:`StaleVersion`. The number comes from the chained versions,
        not from the cases row (an index that a hand edit cannot make lie here)."""
        kb_version, kb_sha = _kb(assessment)
        now = utcnow()
        version = chain.prepare("case_versions", dict(
            case_id=case_id, version=None, patient=patient, assessment=assessment,
            kb_version=kb_version, kb_sha256=kb_sha, created_at=now))
        entry = chain.prepare("audit_log", dict(at=now, actor=actor, action="new_version", case_id=case_id,
                                                version=None, detail=f"knowledge base {kb_version}"))
        with self._write() as (s, appended):
            # Writing first takes the lock (row lock on PostgreSQL, the write lock on
            # SQLite) before the number is read, so concurrent writers queue up and
            # each gets the next number instead of colliding on unique(case_id, version).
            locked = s.execute(update(Case).where(Case.id == case_id).values(updated_at=now))
            latest = _latest_number(s, case_id)
            if latest is None:
                raise CaseNotFound(case_id)
            if locked.rowcount != 1:  # versions without their cases row: deleted by hand
                raise CaseNotFound(f"{case_id} (its cases row is missing; `nelm audit verify` reports it)")
            if s.scalar(select(CaseVersion.patient).where(CaseVersion.case_id == case_id,
                                                           CaseVersion.version == latest)) == TOMBSTONE:
                raise CasePurged(case_id)  # a purged case stays purged: new facts make a new case
            if expected_latest is not None and expected_latest != latest:
                raise StaleVersion(case_id, expected_latest, latest)
            n = latest + 1
            s.execute(update(Case).where(Case.id == case_id).values(latest_version=n, patient_label=_label(patient)))
            conn = s.connection()
            row = chain.append(conn, version, version=n)
            appended += [("case_versions", row), ("audit_log", chain.append(conn, entry, version=n))]
        return _written(row)

    def record(self, action: str, *, actor: str, case_id: str | None = None, version: int | None = None,
               detail: str | None = None) -> None:
        """Append an audit entry (views, exports, logins); never patient data in ``detail``."""
        with self._write() as (s, appended):
            appended.append(("audit_log", chain.append(s.connection(), "audit_log", dict(
                at=utcnow(), actor=actor, action=action, case_id=case_id, version=version, detail=detail))))

    def decide(self, case_id: str, version: int, decision: dict[str, Any], *, actor: str) -> AuditRecord:
        """Append the board's decision on one version to the audit log (hash-chained,
        append-only): a later decision on the same version supersedes, never erases, it.
        The entry's detail is the decision record as canonical JSON (the one place the
        log holds more than a note: what the board chose, why, who attended and signed)."""
        self.version(case_id, version)  # CaseNotFound / VersionNotFound
        detail = json.dumps(decision, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        at = utcnow()
        with self._write() as (s, appended):
            appended.append(("audit_log", chain.append(s.connection(), "audit_log", dict(
                at=at, actor=actor, action=DECISION_ACTION, case_id=case_id, version=version, detail=detail))))
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
    # Everything the board sees comes from the chained rows (case_versions, audit_log);
    # the cases table is only the row writers lock, checked against them by verify.

    def latest(self, case_id: str) -> StoredVersion:
        with self._session() as s:
            n = _latest_number(s, case_id)
            if n is None:
                raise CaseNotFound(case_id)
            return self._version(s, case_id, n)

    def version(self, case_id: str, n: int) -> StoredVersion:
        with self._session() as s:
            if _latest_number(s, case_id) is None:
                raise CaseNotFound(case_id)
            return self._version(s, case_id, n)

    @staticmethod
    def _version(s: Session, case_id: str, n: int) -> StoredVersion:
        v = s.scalar(select(CaseVersion).where(CaseVersion.case_id == case_id, CaseVersion.version == n))
        if v is None:
            raise VersionNotFound(f"{case_id} v{n}")
        if v.patient == TOMBSTONE:
            raise CasePurged(case_id)
        return _stored(v)

    def versions(self, case_id: str) -> list[VersionInfo]:
        with self._session() as s:
            rows = s.execute(select(CaseVersion.version, CaseVersion.created_at, CaseVersion.kb_version,
                                    CaseVersion.kb_sha256)
                             .where(CaseVersion.case_id == case_id).order_by(CaseVersion.version)).all()
            if not rows:
                raise CaseNotFound(case_id)
            return [VersionInfo(*r) for r in rows]

    def list(self, *, page: int = 1, page_size: int = 20, search: str | None = None,
             on: date | None = None) -> CasePage:
        """Cases, most recently updated first; ``search`` matches the patient label (any
        case) or the start of the case id; ``on`` keeps cases with a version made that day.
        Derived from the chained versions: a case is its versions, its label the latest
        version's patient id, created and updated the times of its first and latest."""
        if page < 1 or page_size < 1:
            raise ValueError("page and page_size start at 1")
        cv = CaseVersion.__table__
        agg = (select(cv.c.case_id.label("case_id"), func.max(cv.c.version).label("latest"),
                      func.min(cv.c.created_at).label("created_at"), func.max(cv.c.created_at).label("updated_at"))
               .group_by(cv.c.case_id).subquery())
        last = cv.alias("last")
        label = last.c.patient["id"].as_string()
        base = select(agg.c.case_id, agg.c.latest, agg.c.created_at, agg.c.updated_at, label.label("label")).join(
            last, and_(last.c.case_id == agg.c.case_id, last.c.version == agg.c.latest)).where(
            last.c.patient["purged"].as_string().is_(None))  # a purged case (its tombstone) is not listed
        if search:
            base = base.where(or_(label.icontains(search, autoescape=True),
                                  agg.c.case_id.startswith(search.lower(), autoescape=True)))
        if on is not None:
            start, end = _day_bounds(on)
            base = base.where(exists().where(cv.c.case_id == agg.c.case_id, cv.c.created_at >= start,
                                             cv.c.created_at < end))
        listed = base.subquery()
        stamp = UTCDateTime()
        with self._session() as s:
            total = s.scalar(select(func.count()).select_from(listed)) or 0
            rows = s.execute(select(listed).order_by(listed.c.updated_at.desc(), listed.c.case_id)
                             .offset((page - 1) * page_size).limit(page_size)).all()
            items = [CaseSummary(id=r.case_id, patient_label=None if r.label in (None, "") else str(r.label)[:LABEL_MAX],
                                 created_at=_aware(r.created_at, stamp), updated_at=_aware(r.updated_at, stamp),
                                 latest_version=r.latest) for r in rows]
        return CasePage(items=items, total=total, page=page, page_size=page_size)

    def audit(self, case_id: str | None = None) -> list[AuditRecord]:
        with self._session() as s:
            q = select(AuditEntry).order_by(AuditEntry.id)
            if case_id is not None:
                q = q.where(AuditEntry.case_id == case_id)
            return [AuditRecord(at=e.at, actor=e.actor, action=e.action, case_id=e.case_id, version=e.version,
                                detail=e.detail) for e in s.scalars(q)]


def _latest_number(s: Session, case_id: str) -> int | None:
    return s.scalar(select(func.max(CaseVersion.version)).where(CaseVersion.case_id == case_id))


def _aware(value: Any, stamp: UTCDateTime) -> datetime:
    """An aggregate's timestamp as the column type gives it (SQLite: text or naive; UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return stamp.process_result_value(value, None)  # type: ignore[return-value]


def _tails(engine: Engine) -> dict[str, tuple[int, str]]:
    """The (id, row_hash) of the last row of each chain (empty chains left out)."""
    out = {}
    with engine.connect() as conn:
        for table in chain.CHAINED:
            t = CaseVersion.__table__ if table == "case_versions" else AuditEntry.__table__
            row = conn.execute(select(t.c.id, t.c.row_hash).order_by(t.c.id.desc()).limit(1)).first()
            if row is not None:
                out[table] = (int(row.id), str(row.row_hash))
    return out


def _preflight(engine: Engine, found: anchors.AnchorFile, label: str) -> tuple[str | None, list[str]]:
    """What stops the chains from being verified, before anything is migrated: the
    migration stamp, the chain columns, the store's identity, against what the anchors
    recorded of this store. Returns the stamp found and the problems."""
    problems: list[str] = []
    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        insp = inspect(conn)
        tables = set(insp.get_table_names())
        if revision is None and tables & {"cases", "case_versions", "audit_log"}:
            problems.append("the database holds case store tables but no migration stamp (alembic_version was "
                            "removed or emptied): refusing to migrate over it, which would re-chain its rows")
        elif revision is not None and not known_revision(revision):
            problems.append(f"the database is stamped with migration {revision!r}, which this nelm does not know "
                            "(a newer nelm, or a stamp edited by hand)")
        elif revision is not None and not is_older(revision, "0002"):
            for table in chain.CHAINED:
                have = {c["name"] for c in insp.get_columns(table)} if table in tables else set()
                missing = [c for c in ("prev_hash", "row_hash") if c not in have]
                if missing:
                    problems.append(f"the database is stamped {revision} (hash-chained) but {table} has no "
                                    f"{' or '.join(missing)} column: the chain columns were removed")
            if "chain_heads" not in tables:
                problems.append(f"the database is stamped {revision} (hash-chained) but has no chain_heads table")
        sid = None
        try:
            sid = chain.store_id(conn)
        except chain.ChainUnavailable as exc:
            problems.append(str(exc))
        if (sid is None and revision is not None and known_revision(revision)
                and not is_older(revision, ANCHORED_SINCE)):
            problems.append(f"the database is stamped {revision} but has no store_identity table")
    mine = found.of_store(sid) if sid else []
    by_url = found.of_url(label)
    if not mine and by_url:
        last = by_url[-1]
        problems.append(
            f"the anchors file {found.path} holds checkpoints of the store at {label} (store {last.store}, the last "
            f"at {last.at}, migration {last.revision}), but the database there "
            f"{'is store ' + sid if sid else 'has no store identity (stamped ' + str(revision) + ')'}: it was "
            "replaced, re-initialised or re-stamped behind nelm's back. If a new store was made on purpose, "
            f"move the anchors file aside or set {anchors.ANCHORS_ENV}")
    if mine:
        last = mine[-1]
        if not known_revision(last.revision):
            problems.append(f"the anchors of this store were written under migration {last.revision}, which this "
                            "nelm does not know (a newer nelm wrote them)")
        elif is_older(revision, last.revision):
            problems.append(f"the store was anchored at migration {last.revision} (anchors line {last.number}, "
                            f"{last.at}) but is stamped {revision}: the stamp was moved back, and migrating would "
                            "re-chain whatever was changed; refusing")
    return revision, problems
