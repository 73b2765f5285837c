"""Web fixtures: the real app (create_app) on a fresh SQLite file, driven by TestClient."""
from __future__ import annotations

import copy
import json
import re
import warnings
from pathlib import Path

import pytest

from nelm.web import create_app

with warnings.catch_warnings():
    # Starlette's TestClient says it would prefer another HTTP client package; that is
    # about the test tool, not about nelm, so keep it out of the report.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

EXAMPLE = json.loads((Path(__file__).parents[2] / "examples" / "solitary_resectable.json").read_text())


@pytest.fixture
def example() -> dict:
    return copy.deepcopy(EXAMPLE)


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'cases.sqlite3'}"


# TestClient sends ``Host: testserver``; the app answers only names it is told about
# (loopback by default), so the test apps allow that one name explicitly.
TEST_HOSTS = ["testserver"]


@pytest.fixture
def app(db_url):
    return create_app(db_url, allowed_hosts=TEST_HOSTS)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def test_client():
    """Starlette's TestClient class, for tests that build their own app."""
    return TestClient


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def csrf_of():
    """``csrf_of(client, page)``: load a page with a form and return its CSRF token."""
    return _csrf_of


def _csrf_of(client, page: str = "/cases/new") -> str:
    """Load a page with a form (which sets the CSRF cookie) and return its token."""
    r = client.get(page)
    assert r.status_code == 200, r.text[:300]
    match = _CSRF.search(r.text)
    assert match, "no CSRF field on the page"
    return match.group(1)


@pytest.fixture
def example_json() -> str:
    return json.dumps(EXAMPLE)
