"""Screening fixtures: a PostgreSQL connection (127.0.0.1:5432, database ``test``), or a skip."""
from __future__ import annotations

import pytest

PG_HOST = "127.0.0.1:5432"
PG_USERS = ("postgres", "root")


@pytest.fixture(scope="session")
def pg_conn():
    psycopg = pytest.importorskip("psycopg")
    errors = []
    for user in PG_USERS:
        try:
            conn = psycopg.connect(f"postgresql://{user}@{PG_HOST}/test", autocommit=True, connect_timeout=3)
            break
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable here"
            errors.append(f"{user}: {exc}")
    else:
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}/test ({'; '.join(errors)})")
    yield conn
    conn.close()
