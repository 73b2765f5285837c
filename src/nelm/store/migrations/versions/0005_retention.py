"""Retention: a case version's content may be purged, and only that (a tombstone stays).

Cases the CDS service keeps for each FHIR patient are kept no longer than their retention
(:meth:`nelm.store.repository.CaseStore.purge_expired`). Deleting their versions would break
the hash chain (the next row links to the row hash of the one before), so a purge replaces
``patient`` and ``assessment`` by the tombstone ``{"purged": "retention"}`` and changes
nothing else: id, case, version, knowledge base, time, ``prev_hash`` and ``row_hash`` stay,
so the chain still links, and the audit entry of the purge (chained and anchored) records
each purged row's hash, which :func:`nelm.store.chain.verify` accepts for a tombstone row.

The append-only trigger of ``case_versions`` is replaced by one that lets exactly that
update through and refuses every other UPDATE and every DELETE as before.

Revision ID: 0005_retention
Revises: 0004_session_actor
Create Date: 2026-12-06
"""
from __future__ import annotations

from typing import Sequence

from alembic import op

revision: str = "0005_retention"
down_revision: str | None = "0004_session_actor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOMBSTONE = '{"purged": "retention"}'  # nelm.store.repository.TOMBSTONE, as JSON text
_SAME = ("id", "case_id", "version", "kb_version", "kb_sha256", "created_at", "prev_hash", "row_hash")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        same = " AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _SAME)
        op.execute(f"""
            CREATE OR REPLACE FUNCTION nelm_case_versions_purge_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND NEW.patient::jsonb = '{TOMBSTONE}'::jsonb
                   AND NEW.assessment::jsonb = '{TOMBSTONE}'::jsonb AND {same} THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION '% is append-only (only a retention purge may replace a version''s content)',
                    TG_TABLE_NAME;
            END $$""")
        op.execute("DROP TRIGGER IF EXISTS case_versions_append_only ON case_versions")
        op.execute("CREATE TRIGGER case_versions_append_only BEFORE UPDATE OR DELETE ON case_versions "
                   "FOR EACH ROW EXECUTE FUNCTION nelm_case_versions_purge_only()")
        return
    same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _SAME)
    op.execute("DROP TRIGGER IF EXISTS case_versions_no_update")
    # CASE: json() of text that is not JSON is an error, so it is only called on valid JSON
    op.execute(f"""
        CREATE TRIGGER case_versions_no_update BEFORE UPDATE ON case_versions
        WHEN NOT (CASE WHEN json_valid(NEW.patient) AND json_valid(NEW.assessment)
                       THEN json(NEW.patient) = json('{TOMBSTONE}') AND json(NEW.assessment) = json('{TOMBSTONE}')
                            AND {same}
                       ELSE 0 END)
        BEGIN SELECT RAISE(ABORT, 'case_versions is append-only (only a retention purge may replace a version''s content)'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS case_versions_append_only ON case_versions")
        op.execute("CREATE TRIGGER case_versions_append_only BEFORE UPDATE OR DELETE ON case_versions "
                   "FOR EACH ROW EXECUTE FUNCTION nelm_append_only()")
        op.execute("DROP FUNCTION IF EXISTS nelm_case_versions_purge_only()")
        return
    op.execute("DROP TRIGGER IF EXISTS case_versions_no_update")
    op.execute("CREATE TRIGGER case_versions_no_update BEFORE UPDATE ON case_versions "
               "BEGIN SELECT RAISE(ABORT, 'case_versions is append-only'); END")
