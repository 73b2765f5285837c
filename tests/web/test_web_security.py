"""Token auth, login sessions, CSRF on login, headers, audit identity, quiet access logs."""
from __future__ import annotations

import logging
import re

import pytest

from nelm.web import create_app
from nelm.web.security import RedactAccessLog, Security, is_loopback, redact_path, token_actor

API = "/api/v1"
TOKEN = "correct-horse-battery-staple-42"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def token_client(db_url, test_client):
    with test_client(create_app(db_url, api_token=TOKEN)) as c:
        yield c


def test_with_a_token_the_api_requires_it(token_client, example):
    assert token_client.get(f"{API}/health").status_code == 401
    assert token_client.get(f"{API}/health").headers["www-authenticate"] == "Bearer"
    assert token_client.get(f"{API}/health", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    assert token_client.get(f"{API}/health", headers={"Authorization": TOKEN}).status_code == 401  # no scheme
    assert token_client.post(f"{API}/assessments", json=example).status_code == 401
    assert token_client.get("/openapi.json").status_code == 401
    assert token_client.get(f"{API}/health", headers=AUTH).status_code == 200
    r = token_client.post(f"{API}/assessments", json=example, headers=AUTH)
    assert r.status_code == 201
    # the audit log names the token's fingerprint, never the token itself
    [entry] = token_client.app.state.store.audit(r.json()["id"])
    assert entry.actor == token_actor(TOKEN) and TOKEN not in entry.actor


def test_without_a_token_the_actor_is_local(client, example):
    case_id = client.post(f"{API}/assessments", json=example).json()["id"]
    assert {e.actor for e in client.app.state.store.audit(case_id)} == {"local"}


def test_pages_send_browsers_to_the_login_form(token_client):
    r = token_client.get("/cases?q=MDT", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fcases%3Fq%3DMDT"
    login = token_client.get("/login")
    assert login.status_code == 200 and 'type="password"' in login.text
    assert token_client.get("/static/style.css").status_code == 200
    assert token_client.get("/cases", headers=AUTH).status_code == 200  # the header works for pages too


def test_login_sets_an_http_only_session_cookie(token_client):
    page = token_client.get("/login?next=/evidence").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    bad = token_client.post("/login", data={"csrf_token": csrf, "token": "guess-guess-guess-guess", "next": "/evidence"})
    assert bad.status_code == 401 and "not accepted" in bad.text
    r = token_client.post("/login", data={"csrf_token": csrf, "token": TOKEN, "next": "/evidence"},
                          follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/evidence"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("nelm_session=") and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert TOKEN not in cookie
    assert token_client.get("/cases").status_code == 200
    assert token_client.get(f"{API}/health").status_code == 200  # the session serves the browser's API calls
    assert [e.action for e in token_client.app.state.store.audit()] == ["login_failed", "login"]
    # logging out drops the cookie
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', token_client.get("/cases").text).group(1)
    token_client.post("/logout", data={"csrf_token": csrf})
    assert token_client.get("/cases", follow_redirects=False).status_code == 303


def test_login_needs_csrf_and_never_redirects_off_site(token_client):
    token_client.get("/login")
    assert token_client.post("/login", data={"token": TOKEN}).status_code == 403
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', token_client.get("/login").text).group(1)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = token_client.post("/login", data={"csrf_token": csrf, "token": TOKEN, "next": target}, follow_redirects=False)
        assert r.headers["location"] == "/cases", target


def test_sessions_are_signed_and_expire():
    sec = Security(token=TOKEN)
    cookie = sec.new_session(now=1000.0)
    assert sec.session_ok(cookie, now=1001.0)
    assert not sec.session_ok(cookie, now=1000.0 + 13 * 3600)  # past a working day
    expires, nonce, sig = cookie.split(".")
    assert not sec.session_ok(f"{int(expires) + 9999}.{nonce}.{sig}", now=1001.0)  # tampered
    assert not Security(token=TOKEN + "-rotated").session_ok(cookie, now=1001.0)  # rotating logs out
    assert not sec.session_ok("garbage", now=1001.0)


def test_a_short_token_is_refused(db_url):
    with pytest.raises(ValueError, match="at least 16"):
        create_app(db_url, api_token="short")


def test_responses_carry_protective_headers(client):
    r = client.get("/cases")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "content-security-policy" not in client.get("/docs").headers  # Swagger UI loads its own assets
    assert client.get(f"{API}/health").headers["cache-control"] == "no-store"


def test_csrf_cookie_is_http_only_and_strict(client):
    cookie = client.get("/cases/new").headers["set-cookie"]
    assert cookie.startswith("nelm_csrf=") and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                            ("127.0.0.2", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.10", False), ("example.org", False)])
def test_loopback_detection(host, loopback):
    assert is_loopback(host) is loopback


def test_access_log_lines_lose_ids_and_query_strings():
    assert redact_path("/cases/0b7e0d2c-5d7a-4f0e-9c55-1f5c3b7b9a10/edit?x=1") == "/cases/:id/edit"
    assert redact_path("/cases?q=Smith+John&date=2026-01-01") == "/cases"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/api/v1/assessments/0b7e0d2c-5d7a-4f0e-9c55-1f5c3b7b9a10?search=Doe",
                                "1.1", 200), None)
    assert RedactAccessLog().filter(record)
    line = record.getMessage()
    assert "Doe" not in line and "0b7e0d2c" not in line and "/api/v1/assessments/:id" in line
