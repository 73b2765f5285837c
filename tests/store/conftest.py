"""Store fixtures: every store test runs against SQLite and against PostgreSQL.

PostgreSQL is the one on 127.0.0.1:5432 (trust auth, database ``test``). Each test gets a
schema of its own, selected through ``search_path`` in the URL, dropped afterwards, so
concurrent runs and earlier runs never see each other's rows.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from nelm.testing import stop_process

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

SERVING = re.compile(r"serving the tumour-board app at (http://\S+/)")


class NelmServer:
    """``python -m nelm.cli serve --port 0 ...`` on a free loopback port; ``url`` once it serves.

    Reader threads collect its output; :meth:`kill` is SIGKILL (a crash), :meth:`stop` a
    polite stop. Either way the process is gone when they return.
    """

    def __init__(self, args: list[str], env: dict[str, str], wait: float = 60):
        self.proc = subprocess.Popen([sys.executable, "-m", "nelm.cli", "serve", "--host", "127.0.0.1",
                                      "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self.url = ""
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout, True), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr, False), daemon=True)]
        for t in self._readers:
            t.start()
        deadline = time.monotonic() + wait
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"server did not start (exit {self.proc.returncode}): {self.output[-3000:]}")

    def _read(self, stream, sink: list[str], watch: bool) -> None:
        for line in stream:
            sink.append(line)
            m = SERVING.search(line) if watch else None
            if m:
                self.url = m.group(1)
                self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.stdout + self.stderr)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(15)
        for t in self._readers:
            t.join(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_process(self.proc, settle=0)
        for t in self._readers:
            t.join(5)


def _server_env(tmp_path, **extra: str) -> dict[str, str]:
    drop = ("NELM_API_TOKEN", "NELM_DATABASE_URL", "NELM_ALLOW_BROKEN_CHAIN")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    return env | extra


@pytest.fixture
def server_env(tmp_path):
    """server_env(**extra) -> the environment for a `nelm` subprocess: no token, database or
    chain settings inherited from the caller, and a private data directory."""
    return lambda **extra: _server_env(tmp_path, **extra)


@pytest.fixture
def nelm_server(tmp_path):
    """nelm_server(database_url, *args, **env) -> a started NelmServer, stopped after the test."""
    started: list[NelmServer] = []

    def start(database_url: str, *args: str, **env: str) -> NelmServer:
        server = NelmServer(["--database", database_url, *args], _server_env(tmp_path, **env))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
