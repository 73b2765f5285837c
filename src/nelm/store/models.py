"""The case store's tables as typed SQLAlchemy 2 ORM classes.

A *case* is a patient discussed by the tumour board; every assessment of it is a
*version* that keeps the input document, the output, and which knowledge base produced
it. Versions and the audit log are append-only (enforced by database triggers created in
the migrations, not only by this code), so what the board saw can always be reproduced,
and each is a hash chain (``prev_hash``/``row_hash``, see :mod:`nelm.store.chain`), so a
change made behind the database's back is detected.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# JSONB on PostgreSQL lets a hospital query stored documents; plain JSON (text) on SQLite.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend.

    SQLite has no timezone type and hands back naive datetimes; we store UTC and attach
    the zone again on the way out so callers never compare naive with aware values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the case store; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_updated_at", "updated_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # the patient document's free-text ``id`` of the latest version: what the case list searches
    patient_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Denormalised so that the list needs no aggregate and so that a new version is
    # numbered by one atomic UPDATE of this row (which also serialises concurrent writers).
    latest_version: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class CaseVersion(Base):
    __tablename__ = "case_versions"
    __table_args__ = (UniqueConstraint("case_id", "version", name="uq_case_versions_case_version"),
                      Index("ix_case_versions_created_at", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    patient: Mapped[dict[str, Any]] = mapped_column(JsonDocument, nullable=False)
    assessment: Mapped[dict[str, Any]] = mapped_column(JsonDocument, nullable=False)
    kb_version: Mapped[str] = mapped_column(String(64), nullable=False)
    kb_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # hex SHA-256: the previous row's row_hash, and this row's over its columns and prev_hash
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    row_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_case_id", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    # no foreign key: an entry need not concern a case (a login, a refused login)
    case_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    row_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class ChainHead(Base):
    """The end of one table's hash chain: the row writers lock to append in turn, and a
    record of the last row (so that rows cut off the end are noticed)."""

    __tablename__ = "chain_heads"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)  # the chained table
    last_id: Mapped[int] = mapped_column(Integer, nullable=False)
    last_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class StoreIdentity(Base):
    """Which store this is (one row, made by migration 0003_anchors): the signed anchors
    outside the database name it, so anchors of one store are never read as another's."""

    __tablename__ = "store_identity"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
