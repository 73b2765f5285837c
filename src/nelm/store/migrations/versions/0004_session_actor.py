"""Who a login session acts as: ``web_sessions.actor`` (a SMART launch's EHR user).

A session opened by the login form acts as the token's holder (NULL); one opened by a
SMART EHR launch (:mod:`nelm.fhir.smart`) acts as the EHR user the EHR's authorization
server named, so the audit log says who acted, not which token.

Revision ID: 0004_session_actor
Revises: 0003_sessions
Create Date: 2026-12-06
"""
from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_session_actor"
down_revision: str | None = "0003_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a store whose stamp was moved back and that is started anyway migrates again: keep the column
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("web_sessions")}
    if "actor" not in columns:
        op.add_column("web_sessions", sa.Column("actor", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("web_sessions", "actor")
