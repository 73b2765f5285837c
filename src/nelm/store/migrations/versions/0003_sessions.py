"""Login sessions in the case store (web_sessions), shared by every worker and kept across restarts.

One row per live session: a keyed hash of the session id (never the id), when it started
and when it expires. Not append-only and not hash-chained: a logout deletes its row, a new
login deletes the expired ones (logins and logouts themselves go to the audit log).

Revision ID: 0003_sessions
Revises: 0002
Create Date: 2026-12-06
"""
from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_sessions"
down_revision: str | None = "0003_anchors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # a store whose stamp was moved back and that is started anyway (--allow-broken-chain)
    # migrates again over tables it already has: keep them
    if "web_sessions" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_expires_at", table_name="web_sessions")
    op.drop_table("web_sessions")
