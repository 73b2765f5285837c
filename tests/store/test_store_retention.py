"""Retention of the cases the CDS service keeps (issue 20 item 2): a purge empties their
versions into tombstones, records itself in the audit chain, and `nelm audit verify` still
passes; a tombstone without its recorded purge is reported; nothing else may be changed."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from nelm.assessment import assess
from nelm.store import CaseNotFound, CaseStore, chain
from nelm.store.repository import PURGE_ACTION, TOMBSTONE, CasePurged
from nelm.testing import make_patient

NELM = [sys.executable, "-m", "nelm.cli"]


def _doc(label: str) -> tuple[dict, dict]:
    patient = make_patient().model_dump(mode="json", exclude_none=True) | {"id": label}
    return patient, assess(make_patient())


def _verify(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NELM, "audit", "verify", "--database", url], capture_output=True, text=True, timeout=120)


def _hashes(store: CaseStore, case_id: str) -> list[tuple[int, str, str]]:
    with store.engine.connect() as c:
        return [tuple(r) for r in c.execute(text("SELECT id, prev_hash, row_hash FROM case_versions "
                                                 "WHERE case_id = :c ORDER BY id"), {"c": case_id})]


def test_purge_keeps_the_chain_verifiable(database_url):
    store = CaseStore.open(database_url)
    try:
        cds = store.create(*_doc("FHIR Patient/p1 (ehr.example)"), actor="cds-client:ehr", origin="cds")
        store.add_version(cds.case_id, *_doc("FHIR Patient/p1 (ehr.example)"), actor="cds-client:ehr")
        board = store.create(*_doc("board case"), actor="local")  # made in the web form: no retention
        before = _hashes(store, cds.case_id)
        assert store.purge_expired(datetime.now(UTC) - timedelta(days=1)) == []  # not expired yet
        purged = store.purge_expired(datetime.now(UTC) + timedelta(seconds=5), note="NELM_CDS_RETENTION_DAYS=90")
        assert purged == [cds.case_id]
        assert store.purge_expired(datetime.now(UTC) + timedelta(days=1)) == []  # once
        assert _hashes(store, cds.case_id) == before  # the chain's links are untouched
        with pytest.raises(CasePurged):
            store.latest(cds.case_id)
        with pytest.raises(CaseNotFound):
            store.version(cds.case_id, 1)
        with pytest.raises(CasePurged):  # new facts make a new case, never revive a purged one
            store.add_version(cds.case_id, *_doc("x"), actor="local")
        assert [c.id for c in store.list().items] == [board.case_id]
        assert store.latest(board.case_id).patient["id"] == "board case"
        with store.engine.connect() as c:
            rows = c.execute(text("SELECT patient, assessment FROM case_versions WHERE case_id = :c"),
                             {"c": cds.case_id}).all()
            label = c.execute(text("SELECT patient_label FROM cases WHERE id = :c"), {"c": cds.case_id}).scalar()
        assert label is None
        assert all((json.loads(p) if isinstance(p, str) else p) == TOMBSTONE for r in rows for p in r)
        [entry] = [e for e in store.audit(cds.case_id) if e.action == PURGE_ACTION]
        assert json.loads(entry.detail)["versions"] == {str(i): h for i, _, h in before}
        assert "p1" not in entry.detail
        assert chain.verify(store.engine).ok
    finally:
        store.close()
    r = _verify(database_url)
    assert r.returncode == 0, r.stdout + r.stderr
    CaseStore.open(database_url).close()  # it opens again: the chain and anchors verify


def _refused(store: CaseStore, sql: str, **params) -> str:
    with pytest.raises((IntegrityError, DBAPIError)) as info:
        with store.engine.begin() as c:
            c.execute(text(sql), params)
    return str(info.value)


def test_a_tombstone_without_its_recorded_purge_is_a_break(database_url):
    store = CaseStore.open(database_url)
    try:
        v = store.create(*_doc("FHIR Patient/p2 (ehr.example)"), actor="cds", origin="cds")
        store.create(*_doc("after it"), actor="local")
        # the trigger lets a tombstone through (that is what a purge writes), but only nelm's
        # purge records it in the audit chain: done behind nelm's back, verify names the row
        tomb = json.dumps(TOMBSTONE)
        with store.engine.begin() as c:
            c.execute(text("UPDATE case_versions SET patient = :t, assessment = :t WHERE case_id = :c"),
                      {"t": tomb, "c": v.case_id})
        report = chain.verify(store.engine)
        assert not report.ok
        assert "without a purge recorded" in report.breaks[0].why
    finally:
        store.close()
    r = _verify(database_url)
    assert r.returncode != 0 and "without a purge recorded" in r.stdout


def test_only_the_purge_update_gets_past_the_trigger(database_url):
    store = CaseStore.open(database_url)
    try:
        v = store.create(*_doc("FHIR Patient/p3 (ehr.example)"), actor="cds", origin="cds")
        tomb = json.dumps(TOMBSTONE)
        other = json.dumps({"purged": "by hand"})
        assert "append-only" in _refused(store, "UPDATE case_versions SET patient = :p WHERE case_id = :c",
                                         p=other, c=v.case_id)
        assert "append-only" in _refused(store, "UPDATE case_versions SET patient = :t, assessment = :t, "
                                                "kb_version = 'x' WHERE case_id = :c", t=tomb, c=v.case_id)
        assert "append-only" in _refused(store, "UPDATE case_versions SET patient = :t, assessment = :t, "
                                                "row_hash = :h WHERE case_id = :c", t=tomb, h="b" * 64, c=v.case_id)
        assert "append-only" in _refused(store, "DELETE FROM case_versions WHERE case_id = :c", c=v.case_id)
        assert store.latest(v.case_id).patient["id"] == "FHIR Patient/p3 (ehr.example)"
    finally:
        store.close()
