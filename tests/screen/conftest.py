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


# the SQL types of the table nelm sql's view reads, by the Polars type of its columns
PG_TYPES = {"Float64": "DOUBLE PRECISION", "Boolean": "BOOLEAN", "String": "TEXT", "Enum": "TEXT"}


@pytest.fixture
def pg_schema(pg_conn):
    """A schema of this test's own in PostgreSQL, and a function that loads a Polars frame into
    a table there: (cursor, schema, load(frame, name="patients")). Dropped afterwards."""
    import uuid

    schema = f"screen_test_{uuid.uuid4().hex[:10]}"
    cur = pg_conn.cursor()
    cur.execute(f'CREATE SCHEMA "{schema}"')

    def load(frame, name: str = "patients") -> None:
        cols = ", ".join(f'"{c}" {PG_TYPES[t.base_type().__name__]}' for c, t in frame.schema.items())
        cur.execute(f'CREATE TABLE "{schema}"."{name}" ({cols})')
        with cur.copy(f'COPY "{schema}"."{name}" FROM STDIN') as copy:
            for row in frame.iter_rows():
                copy.write_row(row)

    try:
        yield cur, schema, load
    finally:
        cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
