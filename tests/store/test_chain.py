"""Tamper evidence (issue item 2): hash-chained versions and audit log, on SQLite and PostgreSQL.

Writes are chained; REPLACE / upserts and rows that do not continue the chain are refused
by the database; a change made behind its back (triggers dropped, rows edited, removed,
cut off the end) is found by ``verify``, named by table and row, and stops the store from
opening unless allowed; migration 0002 chains the rows an 0001 store already holds.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from nelm.store import BrokenChain, CaseStore, chain, migrate
from nelm.store.db import alembic_config, current_revision, make_engine

NELM = [sys.executable, "-m", "nelm.cli"]
KB = {"version": "2026.1", "sha256": "f" * 64}


def _assessment(tag: str = "a", **extra) -> dict:
    return {"tag": tag, "options": [], "knowledge_base": KB} | extra


def _rows(engine, table: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(f"SELECT id, prev_hash, row_hash FROM {table} ORDER BY id"))
                .mappings()]


def _fill(store: CaseStore) -> list[str]:
    """Three cases, a second version, views: a few rows in each chain."""
    ids = [store.create({"id": f"MDT-{k}"}, _assessment(str(k)), actor="local").case_id for k in range(3)]
    store.add_version(ids[1], {"id": "MDT-1", "age_years": 61}, _assessment("1b"), actor="dr-b")
    store.record("view", actor="local", case_id=ids[0], version=1, detail="api")
    return ids


def _lift_triggers(engine) -> None:
    """What someone with the database file or an owner's login can do: turn the triggers off."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for table in chain.CHAINED:
                conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        else:
            names = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars().all()
            for name in names:
                conn.exec_driver_sql(f"DROP TRIGGER {name}")


def _filled_then_tampered(database_url: str, sql: str):
    """A filled store whose triggers were lifted and then ``sql`` run behind the store's back;
    returns the (still open) engine."""
    store = CaseStore.open(database_url)
    _fill(store)
    store.close()
    eng = make_engine(database_url)
    _lift_triggers(eng)
    with eng.begin() as conn:
        conn.execute(sa.text(sql))
    return eng


def _refused(engine, sql: str, **params) -> str:
    with pytest.raises(DBAPIError) as exc:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
    return str(exc.value.orig)


# ------------------------------------------------------------------ writing

def test_every_write_continues_its_chain(store):
    _fill(store)
    report = chain.verify(store.engine)
    assert report.ok and store.chain_report is not None and store.chain_report.ok
    assert {t.table: t.rows for t in report.tables} == {"case_versions": 4, "audit_log": 5}
    for table in chain.CHAINED:
        rows = _rows(store.engine, table)
        assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))
        assert rows[0]["prev_hash"] == chain.GENESIS
        assert all(b["prev_hash"] == a["row_hash"] for a, b in zip(rows, rows[1:]))
        assert len({r["row_hash"] for r in rows}) == len(rows)
        [t] = [t for t in report.tables if t.table == table]
        assert (t.last_id, t.head_hash) == (rows[-1]["id"], rows[-1]["row_hash"])


def test_row_hash_is_the_documented_canonical_json(store):
    v = store.create({"id": "x", "b": [1, 2.5], "a": "é"}, _assessment(), actor="local")
    [row] = _rows(store.engine, "case_versions")
    content = {"id": 1, "case_id": v.case_id, "version": 1, "patient": {"a": "é", "b": [1, 2.5], "id": "x"},
               "assessment": _assessment(), "kb_version": "2026.1", "kb_sha256": "f" * 64,
               "created_at": v.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
               "prev_hash": chain.GENESIS}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    import hashlib
    assert row["row_hash"] == hashlib.sha256(text.encode()).hexdigest()


def test_numbers_and_text_hash_alike_on_both_databases(store):
    # jsonb gives 1e300 back as a 301-digit integer, -0.0 as 0.0, 1.0 as 1.0; SQLite gives back
    # what was written: the canonical form makes both hash as written.
    odd = {"id": "odd", "one": 1.0, "big": 1e300, "tiny": 1.5e-7, "neg0": -0.0, "huge": 2 ** 60,
           "exact": 2 ** 53, "f": 0.1, "text": "Zoë ☃ \n\t\"'\\ 𝄞", "nested": [{"z": 1, "a": None}, [], {}],
           "numbers_as_keys": {"10": 1, "9": 2}}
    store.create(odd, _assessment(extra=odd), actor="local")
    store.record("note", actor="dr ☃", detail="Zoë\nline two")
    assert chain.verify(store.engine).ok
    assert store.list(search="odd").items[0].patient_label == "odd"


def test_canonical_form_of_numbers():
    same = [({"a": 1.0}, '{"a":1}'), ({"a": 1e300}, '{"a":1' + "0" * 300 + "}"), ({"a": -0.0}, '{"a":0.0}'),
            ({"a": 2 ** 60}, '{"a":1152921504606846976}'), ({"a": 1.5e-7}, '{"a":0.00000015}')]
    for written, read_back in same:
        assert chain.canonical_document(written) == chain.canonical_json_text(read_back)
    assert chain.canonical_document({"b": 1, "a": [2.5, True, None]}) == '{"a":[2.5,true,null],"b":1}'
    assert chain.canonical_document({"a": 1}) != chain.canonical_document({"a": 2})


def test_concurrent_writers_keep_one_unbroken_chain(store):
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for j in range(4):
                v = store.create({"id": f"w{k}-{j}"}, _assessment(), actor=f"w{k}")
                store.record("view", actor=f"w{k}", case_id=v.case_id, version=1)
                if j % 2:
                    store.add_version(v.case_id, {"id": f"w{k}-{j}b"}, _assessment(), actor=f"w{k}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    report = chain.verify(store.engine)
    assert report.ok, report.lines()
    assert {t.table: t.rows for t in report.tables} == {"case_versions": 48, "audit_log": 80}
    assert [r["id"] for r in _rows(store.engine, "audit_log")] == list(range(1, 81))


# ------------------------------------------------------------------ refused by the database

def test_replace_and_upsert_are_refused_on_both_tables(store):
    """The probe's finding: on SQLite, INSERT OR REPLACE / REPLACE INTO swapped a stored
    patient document for a forged one. Each attempt here is otherwise valid (the forged
    row even links to the end of the chain); every one is refused."""
    ids = _fill(store)
    eng = store.engine
    before = {t: _rows(eng, t) for t in chain.CHAINED}
    now = datetime.now(UTC)

    def forged_version(row_id: int, case_id: str, version: int) -> dict:
        prev = before["case_versions"][-1]["row_hash"]
        row = {"id": row_id, "case_id": case_id, "version": version, "patient": {"id": "forged"},
               "assessment": _assessment("forged"), "kb_version": "2026.1", "kb_sha256": "f" * 64, "created_at": now}
        return row | {"prev_hash": prev, "row_hash": chain.row_hash("case_versions", row, prev)}

    def forged_audit(row_id: int) -> dict:
        prev = before["audit_log"][-1]["row_hash"]
        row = {"id": row_id, "at": now, "actor": "someone else", "action": "create", "case_id": ids[0],
               "version": 1, "detail": None}
        return row | {"prev_hash": prev, "row_hash": chain.row_hash("audit_log", row, prev)}

    def sql(verb: str, table: str, row: dict, tail: str = "") -> tuple[str, dict]:
        params = {k: (json.dumps(v) if k in chain.JSON_COLUMNS else
                      v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) and eng.dialect.name == "sqlite"
                      else v) for k, v in row.items()}
        cols = ", ".join(params)
        return f"{verb} {table} ({cols}) VALUES ({', '.join(':' + c for c in params)}){tail}", params

    attempts = [("case_versions", forged_version(1, ids[0], 1)),          # same id, same (case, version)
                ("case_versions", forged_version(99, ids[0], 1)),         # new id, same (case, version)
                ("case_versions", forged_version(2, ids[0], 7)),          # same id, new version
                ("audit_log", forged_audit(1)),
                ("audit_log", forged_audit(5))]
    if eng.dialect.name == "sqlite":
        verbs = [("INSERT OR REPLACE INTO", ""), ("REPLACE INTO", "")]
    else:
        verbs = [("INSERT INTO", " ON CONFLICT (id) DO UPDATE SET prev_hash = EXCLUDED.prev_hash"),
                 ("INSERT INTO", " ON CONFLICT DO NOTHING")]
    for table, row in attempts:
        for verb, tail in verbs:
            if "DO NOTHING" in tail and row["id"] == 99:
                continue  # PostgreSQL quietly skips the duplicate version: nothing replaced, nothing to refuse
            statement, params = sql(verb, table, row, tail)
            message = _refused(eng, statement, **params)
            # PostgreSQL's own unique check refuses the one row that continues the chain
            assert "append-only" in message or (eng.dialect.name == "postgresql" and row["id"] == 99
                                                and "uq_case_versions_case_version" in message), (statement, message)
    assert {t: _rows(eng, t) for t in chain.CHAINED} == before
    assert store.version(ids[0], 1).patient == {"id": "MDT-0"}
    assert [e.actor for e in store.audit()][:1] == ["local"]
    assert chain.verify(eng).ok


def test_a_row_that_does_not_continue_the_chain_is_refused(store):
    _fill(store)
    eng = store.engine
    [*_, last] = _rows(eng, "audit_log")
    at = datetime.now(UTC)
    at = at.strftime("%Y-%m-%d %H:%M:%S.%f") if eng.dialect.name == "sqlite" else at
    insert = ("INSERT INTO audit_log (id, at, actor, action, prev_hash, row_hash) "
              "VALUES (:id, :at, 'x', 'view', :prev, :h)")
    assert "append-only" in _refused(eng, insert, id=last["id"] + 1, at=at, prev=chain.GENESIS, h="a" * 64)
    assert "append-only" in _refused(eng, insert, id=last["id"] + 1, at=at, prev=last["row_hash"], h=None)
    assert "append-only" in _refused(eng, insert, id=last["id"] - 1, at=at, prev=last["row_hash"], h="a" * 64)
    assert chain.verify(eng).ok


# ------------------------------------------------------------------ found by verify

def test_an_edited_row_is_found_and_the_store_will_not_open(database_url):
    store = CaseStore.open(database_url)
    ids = _fill(store)
    store.close()
    eng = make_engine(database_url)
    _lift_triggers(eng)
    with eng.begin() as conn:
        doc = json.dumps({"id": "forged"})
        conn.execute(sa.text("UPDATE case_versions SET patient = :doc WHERE id = 2"
                             if eng.dialect.name == "sqlite" else
                             "UPDATE case_versions SET patient = CAST(:doc AS jsonb) WHERE id = 2"), {"doc": doc})
    report = chain.verify(eng)
    assert not report.ok
    [brk] = report.breaks
    assert (brk.table, brk.row_id, brk.what) == ("case_versions", 2, "row_hash")
    assert brk.found == _rows(eng, "case_versions")[1]["row_hash"] and brk.expected != brk.found
    assert [t.rows for t in report.tables] == [1, 5]  # the audit log is intact
    eng.dispose()

    with pytest.raises(BrokenChain, match=r"case_versions row 2: row_hash expected [0-9a-f]{64}, found") as exc:
        CaseStore.open(database_url)
    assert "--allow-broken-chain" in str(exc.value) and chain.ALLOW_ENV in str(exc.value)

    allowed = CaseStore.open(database_url, allow_broken_chain=True)
    try:
        assert allowed.chain_report is not None and not allowed.chain_report.ok
        assert allowed.version(ids[1], 1).patient == {"id": "forged"}
        allowed.record("export", actor="local", case_id=ids[0])  # the audit chain goes on
    finally:
        allowed.close()
    assert chain.verify(make_engine(database_url)).breaks == [brk]


def test_the_environment_allows_a_broken_chain(database_url, monkeypatch):
    _filled_then_tampered(database_url, "UPDATE audit_log SET actor = 'someone else' WHERE id = 3").dispose()
    monkeypatch.setenv(chain.ALLOW_ENV, "1")
    store = CaseStore.open(database_url)
    store.close()
    assert [(b.table, b.row_id) for b in store.chain_report.breaks] == [("audit_log", 3)]
    with pytest.raises(BrokenChain):
        CaseStore.open(database_url, allow_broken_chain=False)


@pytest.mark.parametrize("removed", ["middle", "first", "end", "head"])
def test_removed_rows_are_found(database_url, removed):
    sql = {"middle": "DELETE FROM audit_log WHERE id = 3", "first": "DELETE FROM audit_log WHERE id = 1",
           "end": "DELETE FROM audit_log WHERE id >= 4", "head": "DELETE FROM chain_heads WHERE name = 'audit_log'"}
    eng = _filled_then_tampered(database_url, sql[removed])
    [brk] = chain.verify(eng).breaks
    eng.dispose()
    expected = {"middle": (4, "prev_hash"), "first": (2, "prev_hash"), "end": (5, "head"), "head": (5, "head")}
    assert (brk.table, (brk.row_id, brk.what)) == ("audit_log", expected[removed])
    with pytest.raises(BrokenChain, match=f"audit_log row {expected[removed][0]}"):
        CaseStore.open(database_url)


# ------------------------------------------------------------------ migration 0002

def test_migration_chains_the_rows_an_older_store_holds(database_url):
    eng = make_engine(database_url)
    migrate(eng, "0001")
    t0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    ts, doc = sa.DateTime(timezone=True), sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    cases = sa.table("cases", sa.column("id"), sa.column("created_at", ts), sa.column("latest_version"),
                     sa.column("updated_at", ts))
    versions = sa.table("case_versions", sa.column("case_id"), sa.column("version"), sa.column("patient", doc),
                        sa.column("assessment", doc), sa.column("kb_version"), sa.column("kb_sha256"),
                        sa.column("created_at", ts))
    audit = sa.table("audit_log", sa.column("at", ts), sa.column("actor"), sa.column("action"),
                     sa.column("case_id"), sa.column("version"))
    with eng.begin() as conn:  # as the 0001 code wrote them: ids from the database
        for k in range(3):
            cid = f"case-{k}"
            conn.execute(cases.insert().values(id=cid, created_at=t0, latest_version=1, updated_at=t0))
            conn.execute(versions.insert().values(case_id=cid, version=1, patient={"id": cid, "w": 1.0, "big": 1e300},
                                                  assessment=_assessment(cid), kb_version="2026.1",
                                                  kb_sha256="f" * 64, created_at=t0))
            conn.execute(audit.insert().values(at=t0, actor="local", action="create", case_id=cid, version=1))
    migrate(eng, "0002")
    assert current_revision(eng) == "0002"
    report = chain.verify(eng)
    assert report.ok and [t.rows for t in report.tables] == [3, 3]
    eng.dispose()

    store = CaseStore.open(database_url)  # new writes continue the migrated chains
    try:
        v = store.add_version("case-1", {"id": "case-1"}, _assessment("next"), actor="local")
        assert v.version == 2
        kept = store.version("case-0", 1).patient
        assert kept["id"] == "case-0" and kept["w"] == 1.0 and float(kept["big"]) == 1e300  # jsonb: an integer
        assert [t.rows for t in chain.verify(store.engine).tables] == [4, 4]
    finally:
        store.close()

    eng = make_engine(database_url)  # and the migration can be undone and redone
    cfg = alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert current_revision(eng) == "0001"
    migrate(eng)
    assert chain.verify(eng).ok
    eng.dispose()


# ------------------------------------------------------------------ nelm audit verify

def _verify_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NELM, "audit", "verify", *args], capture_output=True, text=True, timeout=120)


def test_audit_verify_command(database_url, tmp_path):
    store = CaseStore.open(database_url)
    _fill(store)
    store.close()
    ok = _verify_cli("--database", database_url)
    assert ok.returncode == 0, ok.stderr
    assert "OK case_versions: 4 rows" in ok.stdout and "OK audit_log: 5 rows" in ok.stdout
    as_json = json.loads(_verify_cli("--database", database_url, "--format", "json").stdout)
    assert as_json["ok"] is True and [t["rows"] for t in as_json["tables"]] == [4, 5]

    eng = make_engine(database_url)
    _lift_triggers(eng)
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET detail = 'edited' WHERE id = 2"))
    eng.dispose()
    broken = _verify_cli("--database", database_url)
    assert broken.returncode == 3
    assert "BROKEN audit_log row 2: row_hash expected" in broken.stdout and "OK case_versions: 4 rows" in broken.stdout
    as_json = json.loads(_verify_cli("--database", database_url, "--format", "json").stdout)
    assert as_json["ok"] is False and as_json["tables"][1]["broken"]["row_id"] == 2


def test_audit_verify_refuses_what_it_cannot_verify(tmp_path):
    missing = tmp_path / "nothing-here.sqlite3"
    r = _verify_cli("--database", f"sqlite:///{missing}")
    assert r.returncode == 2 and "no case store" in r.stderr and "Traceback" not in r.stderr
    assert not missing.exists()  # verifying creates nothing
    empty = tmp_path / "empty.sqlite3"
    make_engine(f"sqlite:///{empty}").connect().close()
    r = _verify_cli("--database", f"sqlite:///{empty}")
    assert r.returncode == 2 and "not a nelm case store" in r.stderr
    r = _verify_cli("--database", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert r.returncode == 2 and "cannot verify" in r.stderr and "Traceback" not in r.stderr
    h = subprocess.run([*NELM, "audit", "verify", "--help"], capture_output=True, text=True, timeout=60)
    assert "3 a chain is broken" in h.stdout and "0 both chains verified" in h.stdout


# ------------------------------------------------------------------ nelm serve

def test_serve_refuses_a_broken_chain_without_a_traceback(database_url, server_env, nelm_server):
    _filled_then_tampered(database_url, "DELETE FROM case_versions WHERE id = 2").dispose()
    r = subprocess.run([*NELM, "serve", "--port", "0", "--database", database_url], capture_output=True, text=True,
                       env=server_env(), timeout=60)
    assert r.returncode == 3, r.stderr
    assert "hash chain is broken: case_versions row 3: prev_hash expected" in r.stderr
    assert "--allow-broken-chain" in r.stderr and "Traceback" not in r.stderr

    server = nelm_server(database_url, "--allow-broken-chain")
    server.stop()
    assert "WARNING: serving although the case store's hash chain is broken: case_versions row 3" in server.output
    server = nelm_server(database_url, NELM_ALLOW_BROKEN_CHAIN="1")
    server.stop()
    assert "WARNING" in server.output


def test_a_failed_upgrade_leaves_the_older_store_as_it_was(database_url, monkeypatch):
    eng = make_engine(database_url)
    migrate(eng, "0001")
    t0 = datetime(2026, 1, 2, tzinfo=UTC)
    audit = sa.table("audit_log", sa.column("at", sa.DateTime(timezone=True)), sa.column("actor"),
                     sa.column("action"))
    with eng.begin() as conn:
        conn.execute(audit.insert(), [{"at": t0, "actor": "local", "action": "login"}] * 3)

    def fail(*_a, **_k):
        raise RuntimeError("power cut")

    monkeypatch.setattr(chain, "row_hash", fail)
    with pytest.raises(RuntimeError, match="power cut"):
        migrate(eng)
    assert current_revision(eng) == "0001"
    columns = {c["name"] for c in sa.inspect(eng).get_columns("audit_log")}
    assert "row_hash" not in columns and "chain_heads" not in sa.inspect(eng).get_table_names()
    monkeypatch.undo()
    migrate(eng)
    assert [t.rows for t in chain.verify(eng).tables] == [0, 3]
    eng.dispose()
