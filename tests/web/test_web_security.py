"""Host check, token auth, login sessions (in the case store: across workers and restarts), CSRF bound to the
session, the Origin check, cookies, headers, audit identity, quiet logs; edits that must name their version
(428), decision text without control characters, the CLI's byte-order mark."""
from __future__ import annotations

import logging
import re

import pytest

from nelm.web import create_app
from nelm.web.security import (RedactAccessLog, Security, host_name, is_loopback, parse_hosts, redact_path,
                               token_actor)

API = "/api/v1"
TOKEN = "correct-horse-battery-staple-42"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TEST_HOSTS = ["testserver"]  # the Host TestClient sends, allowed explicitly as in conftest.py


@pytest.fixture
def token_client(db_url, test_client):
    with test_client(create_app(db_url, api_token=TOKEN, allowed_hosts=TEST_HOSTS)) as c:
        yield c


def _login(client, token: str = TOKEN):
    page = client.get("/login?next=/evidence").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"csrf_token": csrf, "token": token, "next": "/evidence"},
                       follow_redirects=False)


def _logout(client):
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/cases").text).group(1)
    return client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)


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
    assert cookie.startswith("nelm_session=") and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "secure" not in cookie.lower()  # plain HTTP on loopback: a Secure cookie would never come back
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
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        # once logged in, the form's token is the session's (a new one each login)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', token_client.get("/login").text).group(1)
        r = token_client.post("/login", data={"csrf_token": csrf, "token": TOKEN, "next": target}, follow_redirects=False)
        assert r.headers["location"] == "/cases", target


def test_sessions_live_in_the_case_store_and_expire(db_url):
    from nelm.store import CaseStore, SessionStore

    store = CaseStore.open(db_url)
    try:
        sec = Security(token=TOKEN, sessions=SessionStore(store.engine))
        cookie = sec.new_session(now=1000.0)
        assert sec.session_ok(cookie, now=1001.0)
        assert not sec.session_ok(cookie, now=1000.0 + 13 * 3600)  # past a working day
        other = sec.new_session(now=1000.0 + 13 * 3600)  # a new login clears the expired rows
        assert SessionStore(store.engine).count() == 1
        assert len(other) >= 40 and other != cookie  # 256 random bits, nothing derived from the token
        now = 1001.0 + 13 * 3600
        assert not sec.session_ok(other[:-1] + ("A" if other[-1] != "A" else "B"), now=now)  # forged
        assert not sec.session_ok("garbage", now=now) and not sec.session_ok("x" * 10_000, now=now)
        # another process on the same store (a second worker, a restart) knows it
        assert Security(token=TOKEN, sessions=SessionStore(store.engine)).session_ok(other, now=now)
        # a new token ends every session: the stored hashes are keyed with the token
        assert not Security(token=TOKEN + "-rotated", sessions=SessionStore(store.engine)).session_ok(other, now=now)
        sec.end_session(other)
        assert not sec.session_ok(other, now=now)
        assert not Security(token=None).session_ok(other)  # no token, no sessions
        with pytest.raises(RuntimeError):
            Security(token=TOKEN).new_session()  # nowhere to keep it: no session at all, not one in memory
    finally:
        store.close()


def test_the_store_keeps_a_keyed_hash_of_the_session_never_the_id(token_client):
    import hashlib

    from sqlalchemy import text

    cookie = _login(token_client).cookies["nelm_session"]
    with token_client.app.state.store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text("SELECT * FROM web_sessions"))]
    assert len(rows) == 1
    stored = " ".join(map(str, rows[0]))
    assert cookie not in stored and hashlib.sha256(cookie.encode()).hexdigest() not in stored
    assert TOKEN not in stored


@pytest.fixture
def two_workers(db_url, test_client):
    """Two apps on one case store: what two `nelm serve --workers 2` processes are."""
    with test_client(create_app(db_url, api_token=TOKEN, allowed_hosts=TEST_HOSTS)) as a, \
            test_client(create_app(db_url, api_token=TOKEN, allowed_hosts=TEST_HOSTS)) as b:
        yield a, b


def test_a_login_and_a_logout_hold_on_every_worker(two_workers):
    a, b = two_workers
    cookie = _login(a).cookies["nelm_session"]
    b.cookies.set("nelm_session", cookie)
    for _ in range(5):  # every page load on either worker is logged in
        assert a.get("/cases", follow_redirects=False).status_code == 200
        assert b.get("/cases", follow_redirects=False).status_code == 200
    assert _logout(b).status_code == 303  # logging out on one worker...
    a.cookies.set("nelm_session", cookie)
    for _ in range(5):  # ...ends the session on the other at once
        assert a.get("/cases", follow_redirects=False).status_code == 303
        assert a.get(f"{API}/health").status_code == 401


def test_a_session_survives_a_restart_but_not_a_new_token(db_url, test_client):
    with test_client(create_app(db_url, api_token=TOKEN, allowed_hosts=TEST_HOSTS)) as first:
        cookie = _login(first).cookies["nelm_session"]
    with test_client(create_app(db_url, api_token=TOKEN, allowed_hosts=TEST_HOSTS)) as restarted:
        restarted.cookies.set("nelm_session", cookie)
        assert restarted.get(f"{API}/health").status_code == 200
    with test_client(create_app(db_url, api_token=TOKEN + "-new", allowed_hosts=TEST_HOSTS)) as rotated:
        rotated.cookies.set("nelm_session", cookie)
        assert rotated.get(f"{API}/health").status_code == 401


def test_logout_revokes_the_session_on_the_server(token_client):
    r = _login(token_client)
    stolen = r.cookies["nelm_session"]
    assert token_client.get("/cases").status_code == 200
    assert _logout(token_client).status_code == 303
    # the browser dropped the cookie; a copy taken before logging out is refused too
    token_client.cookies.set("nelm_session", stolen)
    assert token_client.get("/cases", follow_redirects=False).status_code == 303
    assert token_client.get(f"{API}/health").status_code == 401


def test_logging_in_again_replaces_the_session(token_client):
    first = _login(token_client).cookies["nelm_session"]
    second = _login(token_client).cookies["nelm_session"]
    assert first != second
    token_client.cookies.set("nelm_session", first)
    assert token_client.get(f"{API}/health").status_code == 401
    token_client.cookies.set("nelm_session", second)
    assert token_client.get(f"{API}/health").status_code == 200


def test_a_failed_logout_keeps_the_session(token_client):
    _login(token_client)
    assert token_client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert token_client.get(f"{API}/health").status_code == 200


def test_cookies_are_secure_over_https_or_when_configured(db_url, test_client):
    with test_client(create_app(db_url, api_token=TOKEN, allowed_hosts=TEST_HOSTS),
                     base_url="https://testserver") as https:
        assert "secure" in https.get("/login").headers["set-cookie"].lower()  # the CSRF cookie
        assert "secure" in _login(https).headers["set-cookie"].lower()
        assert https.get("/cases").status_code == 200  # and the browser sends it back
    # behind a TLS proxy the app sees plain HTTP: --secure-cookies / NELM_SECURE_COOKIES says so
    with test_client(create_app(db_url, api_token=TOKEN, allowed_hosts=TEST_HOSTS, secure_cookies=True)) as proxied:
        page = proxied.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()
        # the test client, like a browser, keeps Secure cookies off plain HTTP; the proxy's client would not
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = proxied.post("/login", data={"csrf_token": csrf, "token": TOKEN}, headers={"cookie": f"nelm_csrf={csrf}"},
                         follow_redirects=False)
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()


# ------------------------------------------------------------------ Host header (DNS rebinding)

def test_a_request_for_another_host_is_refused(client):
    """A page on attacker.example, re-pointed at 127.0.0.1, must not read the case list."""
    for host in ("attacker.example", "attacker.example:8000", "127.0.0.1.attacker.example", "localhost.attacker.example",
                 "", "testserver@attacker.example", "[::2]:8000"):
        r = client.get("/cases", headers={"host": host})
        assert r.status_code == 400, host
        assert r.headers["content-type"].startswith("text/plain") and "--allowed-hosts" in r.text
        assert r.headers["x-frame-options"] == "DENY"
        assert client.get(f"{API}/assessments", headers={"host": host}).status_code == 400
    for host in ("127.0.0.1", "127.0.0.1:8000", "localhost:8000", "LocalHost.", "[::1]:8000", "testserver"):
        assert client.get("/cases", headers={"host": host}).status_code == 200, host


def test_the_host_check_comes_before_the_token(token_client):
    assert token_client.get(f"{API}/health", headers=AUTH | {"host": "attacker.example"}).status_code == 400
    assert token_client.get(f"{API}/health", headers=AUTH | {"host": "localhost:8000"}).status_code == 200


def test_by_default_only_loopback_names_are_allowed(db_url, test_client, monkeypatch):
    monkeypatch.delenv("NELM_ALLOWED_HOSTS", raising=False)
    with test_client(create_app(db_url)) as c:
        assert c.get(f"{API}/health").status_code == 400  # TestClient's "testserver" is nobody we know
        assert c.get(f"{API}/health", headers={"host": "localhost:8000"}).status_code == 200
    monkeypatch.setenv("NELM_ALLOWED_HOSTS", "testserver, Board.Example.org.,")
    with test_client(create_app(db_url)) as c:
        assert c.get(f"{API}/health").status_code == 200
        assert c.get(f"{API}/health", headers={"host": "board.example.org:443"}).status_code == 200
        assert c.get(f"{API}/health", headers={"host": "example.org"}).status_code == 400
    with pytest.raises(ValueError, match="board:8000"):
        create_app(db_url, allowed_hosts=["board:8000"])


def test_the_address_a_request_arrived_at_is_allowed():
    """Bound to 10.0.0.5 (or to 0.0.0.0 and reached at 10.0.0.5), http://10.0.0.5:8000/ works;
    a name is never taken from the connection, so TestClient's scope server "testserver" is not."""
    sec = Security()
    assert sec.host_ok("10.0.0.5:8000", ("10.0.0.5", 8000))
    assert sec.host_ok("10.0.0.5", ["::ffff:10.0.0.5", 8000])  # a dual-stack socket's view of IPv4
    assert sec.host_ok("[fe80::1]:8000", ("fe80::1", 8000))
    assert not sec.host_ok("10.0.0.6:8000", ("10.0.0.5", 8000))
    assert not sec.host_ok("attacker.example", ("10.0.0.5", 8000))
    assert not sec.host_ok("testserver", ("testserver", 80))
    assert not sec.host_ok(None, ("10.0.0.5", 8000))
    assert sec.host_ok("localhost", None) and not sec.host_ok("10.0.0.5", None)


def test_a_request_with_two_host_headers_is_refused(app):
    import asyncio

    sent: list = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/api/v1/health", "raw_path": b"/api/v1/health", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"host", b"attacker.example")],
             "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000)}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 400


@pytest.mark.parametrize("header, name", [("127.0.0.1:8000", "127.0.0.1"), ("LocalHost.", "localhost"),
                                          ("[0:0:0:0:0:0:0:1]:80", "::1"), ("board.example.org", "board.example.org"),
                                          ("::1", None), ("a b", None), ("x@y", None), ("[::1", None),
                                          ("[nothex]", None), ("host:port", None), ("", None)])
def test_host_header_parsing(header, name):
    assert host_name(header) == name


def test_allowed_hosts_parsing():
    assert parse_hosts(" board.example.org, 10.0.0.5 ,[::1], 0:0::1,,BOARD.example.org. ") == \
        ("board.example.org", "10.0.0.5", "::1")
    assert parse_hosts(["a.example", "127.0.0.2"]) == ("a.example", "127.0.0.2")
    for bad in ("http://board.example.org", "board.example.org:8000", "*", "*.example.org", "a/b", "."):
        with pytest.raises(ValueError, match="not a host name"):
            parse_hosts(bad)


def test_a_short_token_is_refused(db_url):
    with pytest.raises(ValueError, match="at least 16"):
        create_app(db_url, api_token="short")


def test_responses_carry_protective_headers(client):
    r = client.get("/cases")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    # same-origin: no address goes to another site, and the app's own form posts carry an Origin to check
    assert r.headers["referrer-policy"] == "same-origin"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "content-security-policy" not in client.get("/docs").headers  # Swagger UI loads its own assets
    assert client.get(f"{API}/health").headers["cache-control"] == "no-store"


def test_csrf_cookie_is_http_only_and_strict(client):
    cookie = client.get("/cases/new").headers["set-cookie"]
    assert cookie.startswith("nelm_csrf=") and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("LOCALHOST", True), ("::1", True), ("[::1]", True),
    ("0:0:0:0:0:0:0:1", True), ("127.0.0.2", True), ("127.255.255.254", True), ("::ffff:127.0.0.1", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("10.0.0.1", False), ("fe80::1", False),
    ("example.org", False), ("localhost.example.org", False), ("127.0.0.1.example.org", False), ("", False)])
def test_loopback_detection(host, loopback):
    """Loopback, for the token rule, is 127.0.0.0/8, ::1 and localhost (README: "Serving")."""
    assert is_loopback(host) is loopback


def test_localhost_counts_as_loopback_only_if_it_resolves_there(monkeypatch):
    import socket

    def resolves_to(*addresses):
        return lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, 0)) for addr in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", resolves_to("127.0.0.1", "::1"))
    assert is_loopback("localhost")
    monkeypatch.setattr(socket, "getaddrinfo", resolves_to("127.0.0.1", "192.168.1.10"))
    assert not is_loopback("localhost")


def test_access_log_lines_lose_ids_and_query_strings():
    assert redact_path("/cases/0b7e0d2c-5d7a-4f0e-9c55-1f5c3b7b9a10/edit?x=1") == "/cases/:id/edit"
    assert redact_path("/cases?q=Smith+John&date=2026-01-01") == "/cases"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/api/v1/assessments/0b7e0d2c-5d7a-4f0e-9c55-1f5c3b7b9a10?search=Doe",
                                "1.1", 200), None)
    assert RedactAccessLog().filter(record)
    line = record.getMessage()
    assert "Doe" not in line and "0b7e0d2c" not in line and "/api/v1/assessments/:id" in line


# ------------------------------------------------------------------ CSRF bound to the session, Origin check

def _form_token(client, page: str = "/cases/new") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).text).group(1)


def test_a_logged_in_form_token_is_bound_to_the_session(token_client, db_url, test_client):
    _login(token_client)
    token = _form_token(token_client)
    assert token != token_client.cookies.get("nelm_csrf")  # not the double-submit cookie
    # a cookie and field pair planted by another page (another app on localhost can set cookies) is refused
    token_client.cookies.set("nelm_csrf", "A" * 43)
    r = token_client.post("/logout", data={"csrf_token": "A" * 43}, follow_redirects=False)
    assert r.status_code == 403
    # the token of another session is refused too
    with test_client(create_app(db_url, api_token=TOKEN, allowed_hosts=TEST_HOSTS)) as other:
        _login(other)
        theirs = _form_token(other)
    assert theirs != token
    assert token_client.post("/logout", data={"csrf_token": theirs}, follow_redirects=False).status_code == 403
    assert token_client.get(f"{API}/health").status_code == 200  # still logged in
    # its own session's token works
    assert token_client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert token_client.get(f"{API}/health").status_code == 401


@pytest.mark.parametrize("headers", [
    {"origin": "http://evil.example"}, {"origin": "http://testserver:8001"}, {"origin": "null"},
    {"origin": "file://"}, {"origin": "http://[::1"}, {"referer": "http://evil.example/page"},
    {"referer": "http://testserver.evil.example/cases"}])
def test_a_cross_site_form_post_is_refused(client, example, headers):
    token = _form_token(client)
    r = client.post("/cases", data={"csrf_token": token, "age_years": "58"}, headers=headers, follow_redirects=False)
    assert r.status_code == 403 and "did not come from this application" in r.text, headers
    api = client.post(f"{API}/assessments", json=example, headers=headers)
    assert api.status_code == 403 and "did not come from this application" in api.json()["detail"]
    assert client.get(f"{API}/assessments").json()["total"] == 0  # nothing stored
    assert client.get("/cases", headers=headers).status_code == 200  # reading is not refused


@pytest.mark.parametrize("headers", [
    {}, {"origin": "http://testserver"}, {"origin": "https://testserver"}, {"origin": "http://TESTSERVER:80"},
    {"referer": "http://testserver/cases/new"}])
def test_a_same_site_form_post_passes(client, headers):
    token = _form_token(client)
    r = client.post("/cases", data={"csrf_token": token, "age_years": "58", "ecog": "0"}, headers=headers,
                    follow_redirects=False)
    assert r.status_code == 303, (headers, r.text[:300])


def test_the_bearer_token_passes_the_origin_check(token_client, example):
    """A script with the token is no browser being abused: a browser never adds it to a cross-site request."""
    r = token_client.post(f"{API}/assessments", json=example, headers=AUTH | {"origin": "http://tool.example"})
    assert r.status_code == 201


# ------------------------------------------------------------------ edits must say what they started from

def test_an_api_edit_without_if_match_is_428_and_stores_nothing(client, example):
    r = client.post(f"{API}/assessments", json=example)
    case, etag = r.json()["id"], r.headers["etag"]
    for headers in ({}, {"If-Match": "*"}, {"If-Match": ""}):
        r = client.put(f"{API}/assessments/{case}", json=example | {"ecog": 1}, headers=headers)
        assert r.status_code == 428 and "If-Match" in r.json()["detail"], headers
    assert [v["version"] for v in client.get(f"{API}/assessments/{case}/versions").json()] == [1]
    assert client.put(f"{API}/assessments/{case}", json=example, headers={"If-Match": '"9"'}).status_code == 412
    r = client.put(f"{API}/assessments/{case}", json=example | {"ecog": 1}, headers={"If-Match": etag})
    assert r.status_code == 200 and r.json()["version"] == 2


def test_a_form_edit_without_its_base_version_is_428_and_stores_nothing(client, example):
    case = client.post(f"{API}/assessments", json=example).json()["id"]
    token = _form_token(client, f"/cases/{case}/edit")
    for base in ({}, {"_base_version": ""}, {"_base_version": "one"}):
        r = client.post(f"/cases/{case}", data={"csrf_token": token, "age_years": "60"} | base, follow_redirects=False)
        assert r.status_code == 428 and "which version" in r.text, base
    assert [v["version"] for v in client.get(f"{API}/assessments/{case}/versions").json()] == [1]
    r = client.post(f"/cases/{case}", data={"csrf_token": token, "age_years": "60", "_base_version": "1"},
                    follow_redirects=False)
    assert r.status_code == 303


# ------------------------------------------------------------------ decision text: no NUL, no control characters

_DECISION = {"rationale": "Resection first.", "attendees": "Dr A (surgery)\nDr B (oncology)",
             "decided_on": "2026-12-01", "signed_by": "Dr A", "deviation_reason": "Patient preference."}


@pytest.mark.parametrize("field, bad", [("rationale", "ok\x00"), ("rationale", "red \x1b[31m text"),
                                        ("signed_by", "Dr\x07 A"), ("attendees", "Dr A\nDr \x9bB"),
                                        ("deviation_reason", "why\x7f")])
def test_the_decision_form_refuses_nul_and_control_characters(client, example, field, bad):
    case = client.post(f"{API}/assessments", json=example).json()["id"]
    token = _form_token(client, f"/cases/{case}")
    form = _DECISION | {field: bad, "csrf_token": token}
    r = client.post(f"/cases/{case}/versions/1/decision", data=form, follow_redirects=False)
    assert r.status_code == 422 and ("control character" in r.text or "NUL" in r.text)
    assert client.get(f"{API}/assessments/{case}/decisions").json() == []
    api = {"chosen": [], "rationale": "x", "attendees": ["Dr A"], "decided_on": "2026-12-01", "signed_by": "Dr A",
           "deviation_reason": "x"}
    api[field] = [bad] if field == "attendees" else bad
    r = client.post(f"{API}/assessments/{case}/versions/1/decisions", json=api)
    assert r.status_code == 422 and r.json()["detail"][0]["field"].split(".")[0] == field
    assert client.get(f"{API}/assessments/{case}/decisions").json() == []


def test_the_decision_form_keeps_tabs_and_line_breaks(client, example):
    case = client.post(f"{API}/assessments", json=example).json()["id"]
    token = _form_token(client, f"/cases/{case}")
    form = _DECISION | {"rationale": "Line one\r\n\tLine two", "csrf_token": token}
    r = client.post(f"/cases/{case}/versions/1/decision", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    [d] = client.get(f"{API}/assessments/{case}/decisions").json()
    assert "Line two" in d["decision"]["rationale"]


# ------------------------------------------------------------------ the CLI reads at most one byte-order mark

def test_the_cli_refuses_a_doubled_byte_order_mark(tmp_path):
    import json as _json
    import subprocess
    import sys
    from pathlib import Path

    document = (Path(__file__).parents[2] / "examples" / "solitary_resectable.json").read_bytes()
    once, twice = tmp_path / "once.json", tmp_path / "twice.json"
    once.write_bytes(b"\xef\xbb\xbf" + document)
    twice.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf" + document)
    ok = subprocess.run([sys.executable, "-m", "nelm.cli", "assess", str(once), "--format", "json"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and _json.loads(ok.stdout)["patient_id"]
    for command in (["assess", str(twice)], ["report", str(twice), "--out", str(tmp_path / "r.html")]):
        r = subprocess.run([sys.executable, "-m", "nelm.cli", *command], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "more than one byte-order mark" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_session_look_up_that_fails_is_a_503_not_a_pass(token_client, monkeypatch):
    cookie = _login(token_client).cookies["nelm_session"]
    sessions = token_client.app.state.security.sessions

    def down(*_a, **_k):
        raise OSError("connection refused")

    monkeypatch.setattr(sessions, "alive", down)
    monkeypatch.setattr(sessions, "lookup", down)  # what the middleware calls (the session's actor too)
    token_client.cookies.set("nelm_session", cookie)
    r = token_client.get("/cases", follow_redirects=False)
    assert r.status_code == 503 and "case store does not answer" in r.text
    assert token_client.get(f"{API}/health", headers=AUTH).status_code == 200  # the token needs no look-up
