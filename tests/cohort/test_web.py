"""The upload page: a form protected like the app's other form pages, a report back, nothing stored."""
from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import pytest

from nelm.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def client(tmp_path):
    app = create_app(f"sqlite:///{tmp_path / 'cases.sqlite3'}", allowed_hosts=["testserver"])
    with TestClient(app) as c:
        yield c


def _token(client) -> str:
    page = client.get("/cohort")
    assert page.status_code == 200
    return _CSRF.search(page.text).group(1)


def _leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("nelm-cohort-*")}


def test_navigation_links_to_the_page(client):
    assert 'href="/cohort"' in client.get("/evidence").text


def test_post_without_the_token_is_refused(client, small_csv):
    client.get("/cohort")
    with open(small_csv, "rb") as fh:
        r = client.post("/cohort", files={"registry": ("registry.csv", fh, "text/csv")})
    assert r.status_code == 403


def test_upload_returns_the_report_and_stores_nothing(client, small_csv):
    token = _token(client)
    before = _leftovers()
    cases_before = client.get("/api/v1/assessments").json()
    with open(small_csv, "rb") as fh:
        r = client.post("/cohort", data={"csrf_token": token, "design": "mayo2011"},
                        files={"registry": ("centre.csv", fh, "text/csv")})
    assert r.status_code == 200, r.text[:500]
    assert "Table 1: characteristics by group" in r.text and 'class="balance"' in r.text
    assert "data:image/svg+xml;base64," in r.text
    assert r.headers["cache-control"] == "no-store"
    assert _leftovers() == before                     # the uploaded file is gone
    assert client.get("/api/v1/assessments").json() == cases_before


def test_download_gives_the_standalone_file(client, small_csv):
    token = _token(client)
    with open(small_csv, "rb") as fh:
        r = client.post("/cohort", data={"csrf_token": token, "download": "1"},
                        files={"registry": ("centre.csv", fh, "text/csv")})
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    assert r.text.startswith("<!doctype html>") and "<style>" in r.text


def test_wrong_input_comes_back_on_the_form(client, small_csv, tmp_path):
    token = _token(client)
    with open(small_csv, "rb") as fh:
        r = client.post("/cohort", data={"csrf_token": token, "covariates": "nope"},
                        files={"registry": ("centre.csv", fh, "text/csv")})
    assert r.status_code == 422 and "is not a column of the registry" in r.text
    r = client.post("/cohort", data={"csrf_token": token},
                    files={"registry": ("centre.xlsx", b"PK", "application/octet-stream")})
    assert r.status_code == 422 and "must be .csv, .parquet or .jsonl" in r.text


def test_bad_rows_are_named_on_the_page(client, small_frame, tmp_path):
    import polars as pl

    from nelm.screen.synth import write_table

    path = tmp_path / "bad.csv"
    event = small_frame["event"].cast(pl.String).scatter(1, "maybe")
    write_table(small_frame.with_columns(event), path)
    token = _token(client)
    with open(path, "rb") as fh:
        r = client.post("/cohort", data={"csrf_token": token}, files={"registry": ("bad.csv", fh, "text/csv")})
    assert r.status_code == 422
    assert "<code>event</code>" in r.text and "maybe" in r.text


def test_with_a_token_the_page_needs_the_login(tmp_path, small_csv):
    app = create_app(f"sqlite:///{tmp_path / 'locked.sqlite3'}", api_token="cohort-test-token-123456",
                     allowed_hosts=["testserver"])
    with TestClient(app) as c:
        page = c.get("/cohort", follow_redirects=False)
        assert page.status_code in (303, 401)
        with open(small_csv, "rb") as fh:
            r = c.post("/cohort", files={"registry": ("registry.csv", fh, "text/csv")}, follow_redirects=False)
        assert r.status_code in (303, 401, 403)
        assert "Table 1" not in r.text
