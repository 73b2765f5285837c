"""Store fixtures: every store test runs against SQLite and against PostgreSQL.

PostgreSQL is the one on 127.0.0.1:5432 (trust auth, database ``test``). Each test gets a
schema of its own, selected through ``search_path`` in the URL, dropped afterwards, so
concurrent runs and earlier runs never see each other's rows.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from nelm.testing import NelmServer, server_env_for

PG_HOST = "127.0.0.1:5432"
PG_DB = "test"
PG_USERS = ("postgres", "root")


def _pg_admin():
    """An autocommit psycopg connection and the role that worked, or a reason to skip."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        return None, None, f"psycopg not importable: {exc}"
    errors = []
    for user in PG_USERS:
        try:
            conn = psycopg.connect(f"postgresql://{user}@{PG_HOST}/{PG_DB}", autocommit=True, connect_timeout=3)
            return conn, user, None
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable here"
            errors.append(f"{user}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
    return None, None, "; ".join(errors)


@pytest.fixture(scope="session")
def pg_admin():
    conn, user, why = _pg_admin()
    if conn is None:
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}/{PG_DB} as {' or '.join(PG_USERS)} ({why}); "
                    "the PostgreSQL store tests are skipped")
    yield conn, user
    conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cases.sqlite3'}"
        return
    conn, user = request.getfixturevalue("pg_admin")
    schema = f"nelm_test_{uuid.uuid4().hex[:12]}"
    conn.execute(f'CREATE SCHEMA "{schema}"')
    options = quote(f"-csearch_path={schema}")
    try:
        yield f"postgresql+psycopg://{user}@{PG_HOST}/{PG_DB}?options={options}"
    finally:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def store(database_url):
    from nelm.store import CaseStore

    s = CaseStore.open(database_url)
    yield s
    s.close()  # before the schema is dropped: no pooled connection may hold it


# ------------------------------------------------------------------ `nelm serve` in a subprocess

@pytest.fixture
def server_env(tmp_path):
    """server_env(**extra) -> the environment for a `nelm` subprocess: no token, database or
    chain settings inherited from the caller, and a private data directory."""
    return lambda **extra: server_env_for(tmp_path, **extra)


@pytest.fixture
def nelm_server(tmp_path):
    """nelm_server(database_url, *args, **env) -> a started NelmServer, stopped after the test."""
    started: list[NelmServer] = []

    def start(database_url: str, *args: str, **env: str) -> NelmServer:
        server = NelmServer(["--database", database_url, *args], server_env_for(tmp_path, **env))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()

