"""Initial case store: cases, case_versions, audit_log; versions and audit append-only.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""
from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here rather than imported from models.py: a migration must keep describing
# the schema as it was when written, whatever the models become later.
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)

_APPEND_ONLY = ("case_versions", "audit_log")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("patient_label", sa.String(200), nullable=True),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_cases_updated_at", "cases", ["updated_at"])
    op.create_table(
        "case_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(36), sa.ForeignKey("cases.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("patient", _JSON, nullable=False),
        sa.Column("assessment", _JSON, nullable=False),
        sa.Column("kb_version", sa.String(64), nullable=False),
        sa.Column("kb_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("case_id", "version", name="uq_case_versions_case_version"),
    )
    op.create_index("ix_case_versions_created_at", "case_versions", ["created_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_audit_log_case_id", "audit_log", ["case_id"])

    # Append-only in the database itself, so that no code path (nor a slip at a SQL
    # prompt) rewrites what the board was shown or who looked at it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION nelm_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
            END $$""")
        for table in _APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION nelm_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION nelm_append_only()")
    else:
        for table in _APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS nelm_append_only()")
    op.drop_table("audit_log")
    op.drop_table("case_versions")
    op.drop_table("cases")
