"""SQLite specifics: WAL mode, and the default file in the user's data directory."""
from __future__ import annotations

from pathlib import Path

from nelm.store import CaseStore, default_database_url, display_url


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    store = CaseStore.open(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()


def test_default_database_is_a_file_in_the_user_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    url = default_database_url()
    assert url == f"sqlite:///{tmp_path / 'data' / 'nelm' / 'cases.sqlite3'}"
    store = CaseStore.open()  # no URL: the default, created on first use
    try:
        store.create({}, {"knowledge_base": {"version": "v", "sha256": "s"}}, actor="local")
    finally:
        store.close()
    assert Path(tmp_path / "data" / "nelm" / "cases.sqlite3").stat().st_size > 0


def test_display_url_hides_the_password():
    shown = display_url("postgresql+psycopg://nelm:s3cret@db.example/nelm")
    assert shown == "postgresql+psycopg://nelm:***@db.example/nelm"
