"""Anchored chains (issue 24 item 5), on SQLite and PostgreSQL.

An insider who can write the database defeated the plain chains: each scenario below
verified as OK before the anchors (the plain check is asserted to still pass where it
does, to show what the anchors add). With the signed checkpoints outside the database
each is named by ``verify``, stops the store from opening, and makes ``nelm audit verify``
exit 3; the cases table no longer decides what the board sees; a store whose stamp was
moved back is refused, never re-chained.
"""
from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from nelm.store import BrokenChain, CaseStore, anchors, chain
from nelm.store.chain import UnverifiableChain
from nelm.store.db import current_revision, make_engine
from nelm.store.models import AuditEntry
from nelm.testing import start_writers


NELM = [sys.executable, "-m", "nelm.cli"]
KB = {"version": "2026.1", "sha256": "f" * 64}
DECISION = {"chosen": ["resection"], "rationale": "forged", "signed_by": "nobody"}


def _assessment(tag: str = "a") -> dict:
    return {"tag": tag, "options": [], "knowledge_base": KB}


def _filled(database_url: str) -> list[str]:
    """A store with three cases, a second version and a board decision, closed."""
    store = CaseStore.open(database_url)
    try:
        ids = [store.create({"id": f"MDT-{k}"}, _assessment(str(k)), actor="local").case_id for k in range(3)]
        store.add_version(ids[1], {"id": "MDT-1b"}, _assessment("1b"), actor="dr-b")
        store.decide(ids[1], 2, {"chosen": ["ssa"], "rationale": "agreed"}, actor="dr-b")
        store.record("view", actor="local", case_id=ids[0], version=1, detail="api")
    finally:
        store.close()
    return ids


def _check() -> chain.AnchorCheck:
    return chain.AnchorCheck(anchors.anchors_path(), anchors.load_verify_key())


def _lift_triggers(conn) -> None:
    if conn.dialect.name == "postgresql":
        for table in (*chain.CHAINED, "store_identity"):
            conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    else:
        for name in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars().all():
            conn.exec_driver_sql(f"DROP TRIGGER {name}")


def _rechain(conn, table: str) -> None:
    """What a careful insider does after an edit: re-hash the whole chain and move its head."""
    t = chain._TABLES[table]
    read = [sa.cast(t.c[c], sa.Text).label(c) if c in chain.JSON_COLUMNS else t.c[c] for c in chain.CONTENT[table]]
    prev, last_id = chain.GENESIS, 0
    for row in conn.execute(sa.select(*read).order_by(t.c.id)).mappings().all():
        h = chain.row_hash(table, row, prev, json_as_text=True)
        conn.execute(sa.update(t).where(t.c.id == row["id"]).values(prev_hash=prev, row_hash=h))
        prev, last_id = h, row["id"]
    conn.execute(sa.text("UPDATE chain_heads SET last_id = :i, last_hash = :h WHERE name = :n"),
                 {"i": last_id, "h": prev, "n": table})


def _tamper(database_url: str, act) -> None:
    eng = make_engine(database_url)
    try:
        with eng.begin() as conn:
            act(conn)
    finally:
        eng.dispose()


def _verify(database_url: str, anchored: bool = True) -> chain.ChainReport:
    eng = make_engine(database_url)
    try:
        return chain.verify(eng, _check() if anchored else None)
    finally:
        eng.dispose()


def _named(report: chain.ChainReport) -> set[tuple[str, str]]:
    return {(b.table, b.what) for b in report.breaks}


def _verify_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NELM, "audit", "verify", *args], capture_output=True, text=True, timeout=120)


def _refused_to_open(database_url: str, match: str) -> BrokenChain:
    with pytest.raises(BrokenChain, match=match) as exc:
        CaseStore.open(database_url)
    return exc.value


# ------------------------------------------------------------------ the key and the file

def test_the_key_is_made_on_first_use_private_and_outside_the_store(database_url, tmp_path):
    key = anchors.key_path()
    assert not key.exists()
    _filled(database_url)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.with_suffix(".pub").exists()
    lines = [json.loads(x) for x in anchors.anchors_path().read_text().splitlines()]
    # every write: a checkpoint before its commit, a confirm after it
    assert [x["kind"] for x in lines] == ["checkpoint", "confirm"] * 6
    assert lines[0]["heads"] == {"case_versions": [1, lines[0]["heads"]["case_versions"][1]],
                                 "audit_log": [1, lines[0]["heads"]["audit_log"][1]]}
    assert all(x["key"] == anchors.key_id(anchors.load_verify_key()) for x in lines)
    report = _verify(database_url)
    assert report.ok, report.lines()
    # the last signed line of each (the confirm of the write that appended the row)
    assert report.anchored == (f"case_versions: row 4 signed at {lines[7]['at']} (anchors line 8)",
                               f"audit_log: row 6 signed at {lines[11]['at']} (anchors line 12)")
    key.chmod(0o640)
    with pytest.raises(anchors.AnchorError, match="readable by others"):
        CaseStore.open(database_url)


def test_an_edited_anchor_line_is_named(database_url):
    _filled(database_url)
    path = anchors.anchors_path()
    lines = path.read_text().splitlines()
    body = json.loads(lines[2])
    body["heads"]["audit_log"][1] = "0" * 64
    lines[2] = json.dumps(body)
    path.write_text("\n".join(lines) + "\n")
    report = _verify(database_url)
    assert (("anchors", chain.BAD_ANCHOR) in _named(report)
            and "line 3" in " ".join(report.lines()) and "signature does not verify" in " ".join(report.lines()))


# ------------------------------------------------------------------ the tamper scenarios

def test_forged_append_of_a_board_decision_is_named(database_url):
    """Triggers on: a correctly chained board decision appended at the SQL prompt, the head moved along."""
    ids = _filled(database_url)

    def forge(conn):
        t = AuditEntry.__table__
        last = conn.execute(sa.select(t.c.id, t.c.row_hash).order_by(t.c.id.desc()).limit(1)).one()
        row = {"id": last.id + 1, "at": datetime.now(UTC) - timedelta(days=3), "actor": "dr-b",
               "action": "board_decision", "case_id": ids[1], "version": 2,
               "detail": json.dumps(DECISION, sort_keys=True, separators=(",", ":"))}
        h = chain.row_hash("audit_log", row, last.row_hash)
        conn.execute(sa.insert(t).values(**row, prev_hash=last.row_hash, row_hash=h))
        conn.execute(sa.text("UPDATE chain_heads SET last_id = :i, last_hash = :h WHERE name = 'audit_log'"),
                     {"i": row["id"], "h": h})

    _tamper(database_url, forge)
    assert _verify(database_url, anchored=False).ok  # the chain alone is fooled
    report = _verify(database_url)
    assert _named(report) == {("audit_log", chain.FORGED)}
    [brk] = report.breaks
    assert brk.row_id == 7 and "appended outside nelm" in brk.why and "the last signed before it is row 6" in brk.why
    _refused_to_open(database_url, "audit_log row 7: forged append")
    r = _verify_cli("--database", database_url, "--anchors", str(anchors.anchors_path()))
    assert r.returncode == 3, r.stderr
    assert "BROKEN audit_log row 7: forged append" in r.stdout and "OK audit_log: 7 rows" in r.stdout
    as_json = json.loads(_verify_cli("--database", database_url, "--format", "json").stdout)
    assert [(b["table"], b["what"], b["row_id"]) for b in as_json["breaks"]] == [("audit_log", "forged append", 7)]

    # served anyway, later writes are signed: they do not vouch for the forged row
    store = CaseStore.open(database_url, allow_broken_chain=True)
    try:
        assert [d["rationale"] for _, d in store.decisions(ids[1])] == ["agreed", "forged"]
        store.record("view", actor="local", case_id=ids[1], version=2)
    finally:
        store.close()
    assert _named(_verify(database_url)) == {("audit_log", chain.FORGED)}


def test_consistent_rewrite_and_rehash_is_named(database_url):
    ids = _filled(database_url)

    def rewrite(conn):
        _lift_triggers(conn)
        doc = json.dumps({"id": "MDT-1", "forged": True})
        conn.execute(sa.text("UPDATE case_versions SET patient = :d WHERE id = 2" if conn.dialect.name == "sqlite"
                             else "UPDATE case_versions SET patient = CAST(:d AS jsonb) WHERE id = 2"), {"d": doc})
        _rechain(conn, "case_versions")

    _tamper(database_url, rewrite)
    assert _verify(database_url, anchored=False).ok
    report = _verify(database_url)
    assert _named(report) == {("case_versions", chain.REWRITE)}
    [brk] = report.breaks
    assert brk.row_id == 2 and "rewritten and re-hashed" in brk.why
    _refused_to_open(database_url, "case_versions row 2: rewrite")
    allowed = CaseStore.open(database_url, allow_broken_chain=True)
    try:
        assert allowed.version(ids[1], 1).patient["forged"] is True  # served, but said so
        assert not allowed.chain_report.ok
    finally:
        allowed.close()
    notes = _verify(database_url).notes
    assert any("started over a failed check" in n and "rewrite" in n for n in notes)


def test_a_row_removed_from_the_middle_and_rechained_is_named(database_url):
    _filled(database_url)

    def remove(conn):
        _lift_triggers(conn)
        conn.exec_driver_sql("DELETE FROM audit_log WHERE id = 3")
        _rechain(conn, "audit_log")

    _tamper(database_url, remove)
    assert _verify(database_url, anchored=False).ok
    report = _verify(database_url)
    assert _named(report) == {("audit_log", chain.REWRITE)}
    assert any(b.row_id == 3 and "no longer stored" in b.why for b in report.breaks)


def test_truncated_tail_with_moved_heads_is_named(database_url):
    _filled(database_url)

    def cut(conn):
        _lift_triggers(conn)
        conn.exec_driver_sql("DELETE FROM audit_log WHERE id >= 5")  # the decision and the view
        h = conn.exec_driver_sql("SELECT row_hash FROM audit_log WHERE id = 4").scalar_one()
        conn.execute(sa.text("UPDATE chain_heads SET last_id = 4, last_hash = :h WHERE name = 'audit_log'"), {"h": h})

    _tamper(database_url, cut)
    assert _verify(database_url, anchored=False).ok
    report = _verify(database_url)
    assert _named(report) == {("audit_log", chain.TRUNCATED)}
    [brk] = report.breaks
    assert brk.row_id == 6 and "ends at row 4" in brk.why and "cut off the end" in brk.why
    _refused_to_open(database_url, "audit_log row 6: truncated tail")


def test_backdated_heads_are_named(database_url):
    _filled(database_url)

    def backdate(conn):
        for table in chain.CHAINED:
            h = conn.execute(sa.text(f"SELECT row_hash FROM {table} WHERE id = 1")).scalar_one()
            conn.execute(sa.text("UPDATE chain_heads SET last_id = 1, last_hash = :h WHERE name = :n"),
                         {"h": h, "n": table})

    _tamper(database_url, backdate)
    assert _verify(database_url, anchored=False).ok
    report = _verify(database_url)
    assert _named(report) == {("case_versions", chain.BACKDATED), ("audit_log", chain.BACKDATED)}
    assert all("the head was moved back" in b.why for b in report.breaks)
    _refused_to_open(database_url, "case_versions row 1: backdated head")


def test_a_rewritten_latest_version_hides_nothing_and_is_named(database_url):
    ids = _filled(database_url)
    _tamper(database_url, lambda conn: conn.execute(
        sa.text("UPDATE cases SET latest_version = 1, patient_label = 'someone else' WHERE id = :c"), {"c": ids[1]}))
    report = _verify(database_url)
    assert _named(report) == {("cases", chain.CASES)}
    assert "the cases row was edited (its chained versions end at 2)" in report.breaks[0].why
    _refused_to_open(database_url, "cases table")
    store = CaseStore.open(database_url, allow_broken_chain=True)
    try:  # what the board sees comes from the chained versions
        assert store.latest(ids[1]).version == 2
        assert [v.version for v in store.versions(ids[1])] == [1, 2]
        [item] = store.list(search="MDT-1b").items
        assert (item.id, item.latest_version, item.patient_label) == (ids[1], 2, "MDT-1b")
        assert store.list(search="someone").total == 0
        assert store.add_version(ids[1], {"id": "MDT-1c"}, _assessment("1c"), actor="dr-b",
                                 expected_latest=2).version == 3  # no 500: numbered from the versions
        assert [d["rationale"] for _, d in store.decisions(ids[1])] == ["agreed"]
    finally:
        store.close()
    assert _named(_verify(database_url)) == set()  # the write put the index right again


def test_a_deleted_case_row_is_named_and_the_case_still_shown(database_url):
    ids = _filled(database_url)

    def delete(conn):
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys = OFF")  # a fresh sqlite3 shell's default
        else:
            conn.exec_driver_sql("SET session_replication_role = replica")  # foreign keys not enforced
        conn.execute(sa.text("DELETE FROM cases WHERE id = :c"), {"c": ids[2]})

    if database_url.startswith("sqlite"):
        import sqlite3

        raw = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        raw.execute("DELETE FROM cases WHERE id = ?", (ids[2],))  # foreign keys are off by default there
        raw.commit()
        raw.close()
    else:
        _tamper(database_url, delete)
    report = _verify(database_url)
    assert _named(report) == {("cases", chain.CASES)}
    assert f"case {ids[2]} has 1 chained versions but its cases row was deleted" in report.breaks[0].why
    _refused_to_open(database_url, "cases row was deleted")
    store = CaseStore.open(database_url, allow_broken_chain=True)
    try:
        assert ids[2] in {c.id for c in store.list().items} and store.latest(ids[2]).patient == {"id": "MDT-2"}
    finally:
        store.close()


# ------------------------------------------------------------------ start-up refuses what it cannot verify

def test_a_store_restamped_to_0001_is_refused_not_rechained(database_url):
    _filled(database_url)

    def restamp(conn):
        _lift_triggers(conn)
        doc = json.dumps({"id": "MDT-0", "forged": True})
        conn.execute(sa.text("UPDATE case_versions SET patient = :d WHERE id = 1" if conn.dialect.name == "sqlite"
                             else "UPDATE case_versions SET patient = CAST(:d AS jsonb) WHERE id = 1"), {"d": doc})
        for table in chain.CHAINED:  # as 0001 left it, so that 0002 would chain the forged row
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN row_hash")
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN prev_hash")
        conn.exec_driver_sql("DROP TABLE chain_heads")
        conn.exec_driver_sql("DROP TABLE store_identity")
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")

    _tamper(database_url, restamp)
    exc = _refused_to_open(database_url, "holds checkpoints of the store at")
    assert isinstance(exc, UnverifiableChain) and "re-stamped" in str(exc) and "--allow-broken-chain" in str(exc)
    eng = make_engine(database_url)
    try:  # nothing ran: the forged row was not chained
        assert current_revision(eng) == "0001"
        assert "row_hash" not in {c["name"] for c in sa.inspect(eng).get_columns("case_versions")}
    finally:
        eng.dispose()


def test_a_stamp_moved_back_is_refused(database_url):
    _filled(database_url)
    _tamper(database_url, lambda conn: conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0002'"))
    _refused_to_open(database_url, r"anchored at migration 000[3-9]_\w+ .* but is stamped 0002: the stamp was moved back")


@pytest.mark.parametrize("what", ["column", "stamp", "unknown stamp"])
def test_missing_chain_columns_or_stamp_are_refused(database_url, what):
    _filled(database_url)

    def act(conn):
        if what == "column":
            _lift_triggers(conn)
            conn.exec_driver_sql("ALTER TABLE audit_log DROP COLUMN row_hash")
        elif what == "stamp":
            conn.exec_driver_sql("DELETE FROM alembic_version")
        else:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_later'")

    _tamper(database_url, act)
    match = {"column": "audit_log has no row_hash column", "stamp": "no migration stamp",
             "unknown stamp": "'9999_later', which this nelm does not know"}[what]
    exc = _refused_to_open(database_url, match)
    assert isinstance(exc, UnverifiableChain)


def test_missing_anchors_are_refused(database_url):
    _filled(database_url)
    anchors.anchors_path().rename(anchors.anchors_path().with_suffix(".moved"))
    _refused_to_open(database_url, "holds no checkpoint of this store although it has 10 chained rows")
    r = _verify_cli("--database", database_url)
    assert r.returncode == 3 and "no anchors" in r.stdout


def test_a_store_from_before_the_anchors_is_adopted_once(database_url):
    from nelm.store.db import migrate

    eng = make_engine(database_url)
    migrate(eng, "0002")
    eng.dispose()
    old = CaseStore.open  # write as 0002 nelm did: chained, not anchored
    store = CaseStore(make_engine(database_url))
    store.create({"id": "old"}, _assessment(), actor="local")
    store.close()
    assert not anchors.anchors_path().exists()
    store = old(database_url)
    try:
        assert store.chain_report.ok, store.chain_report.lines()
        store.record("view", actor="local")
    finally:
        store.close()
    kinds = [json.loads(x)["kind"] for x in anchors.anchors_path().read_text().splitlines()]
    assert kinds == ["adopt", "checkpoint", "confirm"]
    assert _verify(database_url).ok


# ------------------------------------------------------------------ writes keep it verified

def test_concurrent_writers_stay_anchored(store):
    def writer(k: int) -> None:
        for j in range(3):
            v = store.create({"id": f"w{k}-{j}"}, _assessment(), actor=f"w{k}")
            store.add_version(v.case_id, {"id": f"w{k}-{j}b"}, _assessment(), actor=f"w{k}")

    join, errors = start_writers(writer, 6)
    join(120)
    assert errors == []
    report = chain.verify(store.engine, _check())
    assert report.ok and report.notes == (), report.lines()


def test_a_write_that_cannot_be_anchored_is_not_stored(store, monkeypatch):
    v = store.create({"id": "x"}, _assessment(), actor="local")

    def full(*_a, **_k):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(anchors.FileSink, "write", full)
        with pytest.raises(OSError):
            store.add_version(v.case_id, {"id": "y"}, _assessment(), actor="local")
    assert [x.version for x in store.versions(v.case_id)] == [1]
    assert chain.verify(store.engine, _check()).ok


def test_serve_refuses_a_moved_back_stamp(database_url, server_env, nelm_server):
    _filled(database_url)
    _tamper(database_url, lambda conn: conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0002'"))
    r = subprocess.run([*NELM, "serve", "--port", "0", "--database", database_url], capture_output=True, text=True,
                       env=server_env(), timeout=120)
    assert r.returncode == 3, r.stderr
    assert "the stamp was moved back" in r.stderr and "--allow-broken-chain" in r.stderr
    assert "Traceback" not in r.stderr
    assert re.search(r"anchored at migration 000[3-9]_", r.stderr)

    server = nelm_server(database_url, "--allow-broken-chain")  # told to: it starts, and says why
    server.stop()
    assert "WARNING: serving although the case store's chain check failed: the store was anchored" in server.output
    assert any(json.loads(x)["kind"] == "override" for x in anchors.anchors_path().read_text().splitlines())


def test_after_a_cases_rewrite_the_api_shows_the_chained_versions_and_edits_work(database_url, monkeypatch):
    """The probe: a latest_version rewrite hid versions and every later edit failed with 500."""
    import copy
    import warnings
    from pathlib import Path

    from nelm.web import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    example = json.loads((Path(__file__).parents[2] / "examples" / "solitary_resectable.json").read_text())
    api = "/api/v1/assessments"
    with TestClient(create_app(database_url, allowed_hosts=["testserver"])) as client:
        case = client.post(api, json=example).json()["id"]
        assert client.put(f"{api}/{case}", json=copy.deepcopy(example) | {"ecog": 1},
                          headers={"If-Match": "\"1\""}).status_code == 200
    _tamper(database_url, lambda conn: conn.execute(sa.text("UPDATE cases SET latest_version = 1 WHERE id = :c"),
                                                    {"c": case}))
    with pytest.raises(BrokenChain, match="cases table"):
        create_app(database_url, allowed_hosts=["testserver"])
    monkeypatch.setenv(chain.ALLOW_ENV, "1")
    with TestClient(create_app(database_url, allowed_hosts=["testserver"])) as client:
        got = client.get(f"{api}/{case}")
        assert got.status_code == 200 and got.json()["version"] == 2
        assert [i["latest_version"] for i in client.get(api).json()["items"]] == [2]
        r = client.put(f"{api}/{case}", json=copy.deepcopy(example) | {"ecog": 2}, headers={"If-Match": '"2"'})
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 3
        assert client.put(f"{api}/{case}", json=example, headers={"If-Match": '"2"'}).status_code == 412


def test_a_checkpoint_whose_write_never_committed_is_a_note_not_a_break(store, monkeypatch):
    """A crash (or a failed commit) between the signed checkpoint and the commit."""
    v = store.create({"id": "x"}, _assessment(), actor="local")
    real = anchors.Anchorer.write

    def then_fail(self, kind, heads, note=None):
        real(self, kind, heads, note)
        if kind == "checkpoint":
            raise RuntimeError("power cut before the commit")

    with monkeypatch.context() as m:
        m.setattr(anchors.Anchorer, "write", then_fail)
        with pytest.raises(RuntimeError, match="power cut"):
            store.record("view", actor="local", case_id=v.case_id, version=1)
    report = chain.verify(store.engine, _check())
    assert report.ok, report.lines()
    assert [n.split(":")[0] for n in report.notes] == ["audit_log row 2"] and "never committed" in report.notes[0]
    store.record("view", actor="local", case_id=v.case_id, version=1)  # row 2 again, signed anew
    report = chain.verify(store.engine, _check())
    assert report.ok and report.notes == (), report.lines()


def test_a_changed_store_identity_is_refused(database_url):
    _filled(database_url)

    def swap(conn):
        _lift_triggers(conn)
        conn.exec_driver_sql("UPDATE store_identity SET id = 'someone-else'")

    _tamper(database_url, swap)
    exc = _refused_to_open(database_url, "but the database there is store someone-else: it was replaced")
    assert isinstance(exc, UnverifiableChain)


def test_verifying_while_writers_run_reports_no_break(store):
    """Checkpoints are signed before the commit, so a check that runs while rows are being
    written never mistakes them for forged, truncated or backdated ones."""
    import threading

    done = threading.Event()

    def writer(k: int) -> None:
        for j in range(4):
            v = store.create({"id": f"w{k}-{j}"}, _assessment(), actor=f"w{k}")
            store.add_version(v.case_id, {"id": f"w{k}-{j}b"}, _assessment(), actor=f"w{k}")
            store.record("view", actor=f"w{k}", case_id=v.case_id, version=2)

    join, errors = start_writers(writer, 4)
    watcher = threading.Thread(target=lambda: (join(300), done.set()))
    watcher.start()
    reports = []
    while not done.is_set() or not reports:
        reports.append(chain.verify(store.engine, _check()))
    watcher.join()
    assert errors == []
    assert all(r.ok for r in reports), "\n".join([l for r in reports if not r.ok for l in r.lines()][:12])
    final = chain.verify(store.engine, _check())
    assert final.ok and final.notes == () and [t.rows for t in final.tables] == [32, 48]


def test_a_store_deleted_and_made_anew_at_the_same_address_is_refused(database_url):
    _filled(database_url)

    def wipe(conn):
        _lift_triggers(conn)
        for table in ("case_versions", "audit_log", "cases", "chain_heads", "store_identity", "alembic_version"):
            conn.exec_driver_sql(f"DROP TABLE {table}")

    _tamper(database_url, wipe)
    exc = _refused_to_open(database_url, "has no store identity \\(stamped None\\): it was replaced")
    assert "move the anchors file aside" in str(exc)


def test_a_line_cut_off_by_a_crash_is_a_note_and_the_next_write_stays_whole(store):
    store.create({"id": "x"}, _assessment(), actor="local")
    path = anchors.anchors_path()
    with path.open("ab") as f:
        f.write(b'{"at":"2026-12-06T10:00:00.000000Z","format":1,"hea')  # the process died here
    store.record("view", actor="local")
    report = chain.verify(store.engine, _check())
    assert report.ok, report.lines()
    assert report.notes == ("anchors line 3: not JSON (a write cut off by a crash?); it vouches for nothing",)
    assert [json.loads(x)["kind"] for x in path.read_text().splitlines()[3:]] == ["checkpoint", "confirm"]
