"""Login sessions of the web app, kept in the case store so that every worker process
(``nelm serve --workers N``) and every restart sees a login and a logout at once.

Only a keyed hash of each session id is stored (the web layer computes it; see
:mod:`nelm.web.security`), never the id a browser holds, so reading this table gives
nobody a session. A row lives until its expiry or the logout that deletes it; expired rows
are removed whenever a new session starts. Not hash-chained: sessions are access state,
not the board's record (logins and logouts are in the audit log).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, Index, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker

from .models import Base, UTCDateTime


class WebSession(Base):
    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_expires_at", "expires_at"),)

    # hex HMAC-SHA256 of the session id (64 characters), never the id itself
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # who the session acts as, when it is not the token's holder: the EHR user of a SMART
    # launch (migration 0004_session_actor); NULL: the login form's user (the token)
    actor: Mapped[str | None] = mapped_column(String(100), nullable=True)


class SessionStore:
    """Live sessions by the hash of their id; every call is one short transaction."""

    def __init__(self, engine: Engine):
        self._session = sessionmaker(engine, expire_on_commit=False)

    def add(self, id_hash: str, now: datetime, expires: datetime, actor: str | None = None) -> None:
        with self._session.begin() as s:
            s.execute(delete(WebSession).where(WebSession.expires_at <= now))
            s.add(WebSession(id_hash=id_hash, created_at=now, expires_at=expires, actor=actor))

    def alive(self, id_hash: str, now: datetime) -> bool:
        return self.lookup(id_hash, now) is not None

    def lookup(self, id_hash: str, now: datetime) -> tuple[str | None] | None:
        """None: no live session; else a 1-tuple of the session's actor (None: the token's holder)."""
        with self._session() as s:
            row = s.execute(select(WebSession.expires_at, WebSession.actor)
                            .where(WebSession.id_hash == id_hash)).first()
        if row is None or row.expires_at <= now:
            return None
        return (row.actor,)

    def remove(self, id_hash: str) -> None:
        with self._session.begin() as s:
            s.execute(delete(WebSession).where(WebSession.id_hash == id_hash))

    def count(self) -> int:
        from sqlalchemy import func

        with self._session() as s:
            return s.scalar(select(func.count()).select_from(WebSession)) or 0
