"""The case store on SQLite and PostgreSQL: versions kept, one transaction per write."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from nelm.assessment import assess
from nelm.patient import validate_patient
from nelm.store import CaseNotFound, CaseStore, VersionNotFound, migrate
from nelm.store.db import current_revision, head_revision
from nelm.store import chain
from nelm.testing import start_writers

EXAMPLE = Path(__file__).parents[2] / "examples" / "solitary_resectable.json"


def _assessment(tag: str = "a") -> dict:
    return {"tag": tag, "options": [], "knowledge_base": {"version": "2026.1", "sha256": "f" * 64}}


def test_migration_creates_the_tables_and_is_idempotent(store):
    names = set(inspect(store.engine).get_table_names())
    assert {"cases", "case_versions", "audit_log", "chain_heads", "web_sessions", "alembic_version"} <= names
    assert current_revision(store.engine) == head_revision()
    migrate(store.engine)  # a second start-up must not fail or change anything
    assert current_revision(store.engine) == head_revision()


def test_create_keeps_input_output_kb_and_time(store):
    patient = validate_patient(json.loads(EXAMPLE.read_text())).model_dump(mode="json", exclude_unset=True)
    result = assess(validate_patient(patient))
    before = datetime.now(UTC)
    v = store.create(patient, result, actor="local")
    assert v.version == 1
    got = store.latest(v.case_id)
    assert got.patient == patient
    assert got.assessment == result  # the whole document round-trips, floats and unicode included
    assert (got.kb_version, got.kb_sha256) == (result["knowledge_base"]["version"], result["knowledge_base"]["sha256"])
    assert got.created_at.tzinfo is not None
    assert before - timedelta(seconds=5) <= got.created_at <= datetime.now(UTC) + timedelta(seconds=5)
    [entry] = store.audit(v.case_id)
    assert (entry.action, entry.actor, entry.version) == ("create", "local", 1)


def test_new_version_never_overwrites_the_old(store):
    v1 = store.create({"id": "MDT-1", "age_years": 50}, _assessment("first"), actor="local")
    v2 = store.add_version(v1.case_id, {"id": "MDT-1", "age_years": 51}, _assessment("second"), actor="dr-b")
    assert v2.version == 2
    assert store.version(v1.case_id, 1).patient == {"id": "MDT-1", "age_years": 50}
    assert store.version(v1.case_id, 1).assessment["tag"] == "first"
    assert store.latest(v1.case_id).assessment["tag"] == "second"
    assert [i.version for i in store.versions(v1.case_id)] == [1, 2]
    assert [(e.action, e.actor, e.version) for e in store.audit(v1.case_id)] == [
        ("create", "local", 1), ("new_version", "dr-b", 2)]


def test_unknown_case_and_version(store):
    with pytest.raises(CaseNotFound):
        store.latest("no-such-case")
    with pytest.raises(CaseNotFound):
        store.add_version("no-such-case", {}, _assessment(), actor="local")
    with pytest.raises(CaseNotFound):
        store.versions("no-such-case")
    v = store.create({}, _assessment(), actor="local")
    with pytest.raises(VersionNotFound):
        store.version(v.case_id, 2)
    assert store.list().total == 1  # the failed add_version stored no case


def test_an_untraceable_assessment_is_refused(store):
    with pytest.raises(ValueError, match="knowledge_base"):
        store.create({}, {"options": []}, actor="local")
    assert store.list().total == 0


def test_a_failed_write_stores_nothing(store):
    # The version's JSON cannot be serialised: the case row and audit entry of the same
    # write must not survive on their own.
    bad = _assessment() | {"not_json": object()}
    with pytest.raises(Exception):
        store.create({"id": "half"}, bad, actor="local")
    assert store.list().total == 0
    assert store.audit() == []
    v = store.create({"id": "whole"}, _assessment(), actor="local")
    with pytest.raises(Exception):
        store.add_version(v.case_id, {"id": "renamed"}, bad, actor="local")
    assert store.latest(v.case_id).version == 1
    page = store.list()
    assert [(c.patient_label, c.latest_version) for c in page.items] == [("whole", 1)]
    assert [e.action for e in store.audit()] == ["create"]


def test_versions_and_audit_are_append_only_in_the_database(store):
    v = store.create({"id": "x"}, _assessment(), actor="local")
    for sql in ("UPDATE case_versions SET kb_version = 'forged'", "DELETE FROM case_versions",
                "UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises((IntegrityError, DBAPIError), match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(text(sql))
    assert store.latest(v.case_id).kb_version == "2026.1"
    assert [e.actor for e in store.audit()] == ["local"]


def test_case_and_version_number_are_unique(store):
    v = store.create({}, _assessment(), actor="local")
    with pytest.raises(IntegrityError) as refused:
        with store.engine.begin() as conn:  # a well-formed next row of the chain, but version 1 again
            chain.append(conn, "case_versions", dict(
                case_id=v.case_id, version=1, patient={"id": "Jane Doe"}, assessment={}, kb_version="x",
                kb_sha256="y", created_at=datetime.now(UTC)))
    # the error (which a server would log) does not repeat the patient document
    assert "Jane Doe" not in str(refused.value)
    assert [i.version for i in store.versions(v.case_id)] == [1]


def test_concurrent_versions_get_consecutive_numbers(store):
    v = store.create({}, _assessment(), actor="local")

    def writer(k: int) -> None:
        for j in range(3):
            store.add_version(v.case_id, {"id": f"w{k}-{j}"}, _assessment(), actor=f"w{k}")

    join, errors = start_writers(writer, 6)
    join(60)
    assert errors == []
    assert [i.version for i in store.versions(v.case_id)] == list(range(1, 20))
    assert store.latest(v.case_id).version == 19


def test_list_pages_searches_and_filters_by_date(store):
    ids = [store.create({"id": label}, _assessment(), actor="local").case_id
           for label in ("MDT-2026-001", "MDT-2026-002", "other 50%_x", None)]
    page1 = store.list(page=1, page_size=3)
    page2 = store.list(page=2, page_size=3)
    assert (page1.total, len(page1.items), len(page2.items)) == (4, 3, 1)
    assert {c.id for c in page1.items + page2.items} == set(ids)
    assert page1.items[0].id == ids[-1]  # most recently updated first

    assert {c.patient_label for c in store.list(search="mdt-2026").items} == {"MDT-2026-001", "MDT-2026-002"}
    # LIKE wildcards in the search text are literal characters, not patterns
    assert [c.patient_label for c in store.list(search="50%_").items] == ["other 50%_x"]
    assert store.list(search="%").total == 1
    assert [c.id for c in store.list(search=ids[3][:8]).items] == [ids[3]]

    today = datetime.now().astimezone().date()
    assert store.list(on=today).total == 4
    assert store.list(on=today - timedelta(days=1)).total == 0
    assert store.list(on=date(2001, 1, 1), search="MDT").total == 0
    with pytest.raises(ValueError):
        store.list(page=0)


def test_label_follows_the_latest_version(store):
    v = store.create({"id": "old label"}, _assessment(), actor="local")
    store.add_version(v.case_id, {"id": "new label"}, _assessment(), actor="local")
    assert store.list(search="old").total == 0
    [c] = store.list(search="new").items
    assert c.latest_version == 2 and c.updated_at >= c.created_at


def test_reopening_the_database_finds_the_cases(database_url):
    first = CaseStore.open(database_url)
    v = first.create({"id": "durable"}, _assessment(), actor="local")
    first.close()
    second = CaseStore.open(database_url)
    try:
        assert second.latest(v.case_id).patient == {"id": "durable"}
    finally:
        second.close()
