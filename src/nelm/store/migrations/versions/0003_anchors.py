"""The store's identity, for the signed anchors outside the database (issue 24 item 5).

One row in ``store_identity``: a random id that every signed checkpoint names
(:mod:`nelm.store.anchors`), so that the anchors of one store are never read as
another's and a store replaced behind nelm's back is told apart. The row can be neither
changed nor removed (triggers, as on the chained tables); no other table changes.

Revision ID: 0003_anchors
Revises: 0002
Create Date: 2026-12-06
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_anchors"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "store_identity"


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table(_TABLE):
        # a store whose stamp was moved back, started with --allow-broken-chain: it keeps
        # the identity its anchors name (the start-up check has said what happened)
        return
    identity = op.create_table(
        _TABLE,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(identity, [{"id": str(uuid.uuid4()), "created_at": datetime.now(UTC)}])
    if op.get_bind().dialect.name == "postgresql":
        # nelm_append_only() is 0001's: it refuses the statement naming the table
        op.execute(f"CREATE TRIGGER {_TABLE}_fixed BEFORE INSERT OR UPDATE OR DELETE ON {_TABLE} "
                   "FOR EACH ROW EXECUTE FUNCTION nelm_append_only()")
        op.execute(f"CREATE TRIGGER {_TABLE}_no_truncate BEFORE TRUNCATE ON {_TABLE} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION nelm_append_only()")
    else:
        for event in ("INSERT", "UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {_TABLE}_no_{event.lower()} BEFORE {event} ON {_TABLE} "
                       f"BEGIN SELECT RAISE(ABORT, '{_TABLE} is fixed: it names the store its anchors belong to'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {_TABLE}_fixed ON {_TABLE}")
        op.execute(f"DROP TRIGGER IF EXISTS {_TABLE}_no_truncate ON {_TABLE}")
    op.drop_table(_TABLE)
