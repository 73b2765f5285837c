"""Hash chains over case_versions and audit_log; SQLite refuses REPLACE on them.

Adds ``prev_hash`` and ``row_hash`` (hex SHA-256) to both append-only tables, fills them
for the rows already there in id order (the chain format is :mod:`nelm.store.chain`'s),
records each chain's end in ``chain_heads``, and adds BEFORE INSERT triggers: a new row
must come after the last one and link to it. On SQLite these also close the hole that
``INSERT OR REPLACE`` / ``REPLACE INTO`` opened: REPLACE deletes the conflicting row
without firing the DELETE trigger (recursive triggers are off), so the INSERT trigger
refuses any row whose id, or (case_id, version), is already stored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

from nelm.store import chain

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHAINED = ("case_versions", "audit_log")
_GENESIS = "0" * 64
_PAGE = 200

# The tables as 0001 left them (plus the new columns), not as models.py may describe them later.
_TS = sa.DateTime(timezone=True)
_SHAPES = {
    "case_versions": sa.table(
        "case_versions", sa.column("id", sa.Integer), sa.column("case_id", sa.String), sa.column("version", sa.Integer),
        sa.column("patient", sa.Text), sa.column("assessment", sa.Text), sa.column("kb_version", sa.String),
        sa.column("kb_sha256", sa.String), sa.column("created_at", _TS),
        sa.column("prev_hash", sa.String), sa.column("row_hash", sa.String)),
    "audit_log": sa.table(
        "audit_log", sa.column("id", sa.Integer), sa.column("at", _TS), sa.column("actor", sa.String),
        sa.column("action", sa.String), sa.column("case_id", sa.String), sa.column("version", sa.Integer),
        sa.column("detail", sa.Text), sa.column("prev_hash", sa.String), sa.column("row_hash", sa.String)),
}


def _sqlite_append_only(table: str) -> str:  # 0001's UPDATE trigger, recreated after the fill
    return (f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def _fill(bind: sa.Connection, name: str) -> tuple[int, str]:
    """Chain the rows already stored, in id order; the last id and hash."""
    t = _SHAPES[name]
    content = chain.CONTENT[name]
    read = [sa.cast(t.c[c], sa.Text).label(c) if c in chain.JSON_COLUMNS else t.c[c] for c in content]
    prev, last_id = _GENESIS, 0
    while True:
        rows = bind.execute(sa.select(*read).where(t.c.id > last_id).order_by(t.c.id).limit(_PAGE)).mappings().all()
        for row in rows:
            h = chain.row_hash(name, row, prev, json_as_text=True)
            bind.execute(sa.update(t).where(t.c.id == row["id"]).values(prev_hash=prev, row_hash=h))
            prev, last_id = h, row["id"]
        if len(rows) < _PAGE:
            return last_id, prev


def _sqlite_all_or_nothing(bind: sa.Connection) -> None:
    """Python's sqlite3 runs DDL outside any transaction unless one is open: open one, so
    that a crash or an error half-way leaves the store at 0001 rather than half-chained."""
    raw = bind.connection.dbapi_connection
    if not getattr(raw, "in_transaction", True):
        bind.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if not postgres:
        _sqlite_all_or_nothing(bind)
    heads = op.create_table(
        "chain_heads",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    for table in _CHAINED:
        op.add_column(table, sa.Column("prev_hash", sa.String(64), nullable=True))
        op.add_column(table, sa.Column("row_hash", sa.String(64), nullable=True))
        # the append-only trigger refuses the UPDATE that fills the new columns: lift it meanwhile
        if postgres:
            op.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        else:
            op.execute(f"DROP TRIGGER {table}_no_update")
        last_id, last_hash = _fill(bind, table)
        if postgres:
            op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
            op.alter_column(table, "prev_hash", nullable=False)
            op.alter_column(table, "row_hash", nullable=False)
        else:
            op.execute(_sqlite_append_only(table))
        op.bulk_insert(heads, [{"name": table, "last_id": last_id, "last_hash": last_hash}])

    if postgres:
        # ERRCODE 23000: an integrity violation, as a refused duplicate would be
        op.execute(f"""
            CREATE FUNCTION nelm_chain_append() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE
                tail_id integer;
                tail_hash text;
            BEGIN
                EXECUTE format('SELECT id, row_hash FROM %I.%I ORDER BY id DESC LIMIT 1',
                               TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO tail_id, tail_hash;
                IF NEW.id IS NULL OR NEW.id <= coalesce(tail_id, 0) THEN
                    RAISE EXCEPTION USING ERRCODE = '23000', MESSAGE =
                        TG_TABLE_NAME || ' is append-only: a new row must come after the last one';
                END IF;
                IF NEW.prev_hash IS DISTINCT FROM coalesce(tail_hash, '{_GENESIS}')
                   OR NEW.row_hash IS NULL OR length(NEW.row_hash) <> 64 THEN
                    RAISE EXCEPTION USING ERRCODE = '23000', MESSAGE =
                        TG_TABLE_NAME || ' is append-only: a new row must link to the last one (hash chain)';
                END IF;
                RETURN NEW;
            END $$""")
        for table in _CHAINED:
            op.execute(f"CREATE TRIGGER {table}_chain BEFORE INSERT ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION nelm_chain_append()")
        return

    # SQLite: RAISE(ABORT) in a BEFORE trigger stops the statement before REPLACE deletes anything.
    for table in _CHAINED:
        op.execute(f"""
            CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table}
            WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id)
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: this row id is taken (REPLACE refused)'); END""")
        op.execute(f"""
            CREATE TRIGGER {table}_chain_order BEFORE INSERT ON {table}
            WHEN NEW.id IS NULL OR NEW.id <= (SELECT coalesce(max(id), 0) FROM {table})
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: a new row must come after the last one'); END""")
        op.execute(f"""
            CREATE TRIGGER {table}_chain_link BEFORE INSERT ON {table}
            WHEN NEW.row_hash IS NULL OR length(NEW.row_hash) <> 64
              OR NEW.prev_hash IS NOT coalesce((SELECT row_hash FROM {table} ORDER BY id DESC LIMIT 1), '{_GENESIS}')
            BEGIN
                SELECT RAISE(ABORT, '{table} is append-only: a new row must link to the last one (hash chain)');
            END""")
    op.execute("""
        CREATE TRIGGER case_versions_no_replace_version BEFORE INSERT ON case_versions
        WHEN EXISTS (SELECT 1 FROM case_versions WHERE case_id = NEW.case_id AND version = NEW.version)
        BEGIN SELECT RAISE(ABORT, 'case_versions is append-only: this version is stored (REPLACE refused)'); END""")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in _CHAINED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_chain ON {table}")
        op.execute("DROP FUNCTION IF EXISTS nelm_chain_append()")
        for table in _CHAINED:
            op.drop_column(table, "row_hash")
            op.drop_column(table, "prev_hash")
    else:
        op.execute("DROP TRIGGER IF EXISTS case_versions_no_replace_version")
        for table in _CHAINED:
            for suffix in ("no_replace", "chain_order", "chain_link"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{suffix}")
            # SQLite 3.35+ drops a column in place (the triggers of 0001 stay)
            op.execute(f"ALTER TABLE {table} DROP COLUMN row_hash")
            op.execute(f"ALTER TABLE {table} DROP COLUMN prev_hash")
    op.drop_table("chain_heads")
