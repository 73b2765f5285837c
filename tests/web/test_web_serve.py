"""`nelm serve` for real: what it prints, where it stores, what it refuses, what it logs; a busy port;
the limits before authentication (head size and fields, time-outs, connection caps); sessions across two
workers; the full report in a worker process with a deadline."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest

from nelm.testing import NelmServer, server_env_for
from nelm.web.serve import check_binding

def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return server_env_for(tmp_path, **extra)


def Server(args: list[str], env: dict[str, str]) -> NelmServer:  # noqa: N802 - the tests read as a constructor
    return NelmServer(args, env)


def test_serve_prints_its_address_uses_the_env_database_and_logs_no_ids(tmp_path, example_json):
    db = tmp_path / "board.sqlite3"
    server = Server([], _env(tmp_path, NELM_DATABASE_URL=f"sqlite:///{db}"))
    try:
        assert server.url.startswith("http://127.0.0.1:")
        printed = "".join(server.stdout)
        assert f"{server.url}api/v1" in printed and str(db) in printed
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("api/v1/health").json()["status"] == "ok"
            r = http.post("api/v1/assessments", content=example_json, headers={"content-type": "application/json"})
            case_id = r.json()["id"]
            assert http.get(f"cases/{case_id}").status_code == 200
            assert http.get("cases", params={"q": "Jane Doe 1957"}).status_code == 200
    finally:
        server.stop()
    assert db.exists() and not (tmp_path / "xdg" / "nelm").exists()
    log = "".join(server.stdout + server.stderr)  # uvicorn's access log goes to stdout
    assert '"GET /cases/:id HTTP/1.1" 200' in log and '"GET /cases HTTP/1.1" 200' in log
    assert case_id not in log and "Jane" not in log and "Doe" not in log


def test_serve_defaults_to_sqlite_in_the_user_data_dir_and_enforces_a_token(tmp_path):
    token = "a-long-random-token-for-tests"
    server = Server([], _env(tmp_path, NELM_API_TOKEN=token))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("api/v1/health").status_code == 401
            assert http.get("api/v1/health", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        server.stop()
    assert (tmp_path / "xdg" / "nelm" / "cases.sqlite3").exists()
    assert "access token required" in "".join(server.stdout)


def test_serve_refuses_a_public_address_without_a_token(tmp_path):
    r = subprocess.run([sys.executable, "-m", "nelm.cli", "serve", "--host", "0.0.0.0", "--port", "0"],
                       capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    assert r.returncode == 2
    assert "NELM_API_TOKEN" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "xdg" / "nelm").exists()  # refused before touching any database


def test_binding_rules(capsys):
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", "x" * 32)  # allowed with a token
    for host, token in (("0.0.0.0", None), ("10.1.2.3", ""), ("127.0.0.1", "short")):
        with pytest.raises(SystemExit) as exc:
            check_binding(host, token)
        assert exc.value.code == 2
    assert "NELM_API_TOKEN" in capsys.readouterr().err


# ------------------------------------------------------------------ a port that cannot be bound

def test_a_busy_port_has_its_own_message_and_exit_code(tmp_path):
    from nelm.web.serve import BROKEN_CHAIN_EXIT, CANNOT_BIND_EXIT

    first = Server([], _env(tmp_path))
    try:
        port = first.url.rsplit(":", 1)[1].strip("/")
        db = tmp_path / "second.sqlite3"
        r = subprocess.run([sys.executable, "-m", "nelm.cli", "serve", "--host", "127.0.0.1", "--port", port,
                            "--database", f"sqlite:///{db}"], capture_output=True, text=True,
                           env=_env(tmp_path), timeout=60)
    finally:
        first.stop()
    assert r.returncode == CANNOT_BIND_EXIT and CANNOT_BIND_EXIT != BROKEN_CHAIN_EXIT
    assert f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr and "--port" in r.stderr
    assert "Traceback" not in r.stderr and "hash chain" not in r.stderr
    assert not db.exists()  # refused before the case store was touched


@pytest.mark.parametrize("name, value, allowed", [("NELM_MAX_HEADER_BYTES", "lots", "1024 to 1048576"),
                                                   ("NELM_HEADER_TIMEOUT", "0", "0.1 to 3600"),
                                                   ("NELM_MAX_CONNECTIONS", "1.5", "1 to 100000"),
                                                   ("NELM_REPORT_SECONDS", "-3", "1 to 3600")])
def test_a_bad_limit_is_refused_by_name(tmp_path, name, value, allowed):
    r = subprocess.run([sys.executable, "-m", "nelm.cli", "serve", "--port", "0"], capture_output=True, text=True,
                       env=_env(tmp_path, **{name: value}), timeout=60)
    assert r.returncode == 2 and name in r.stderr and allowed in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "xdg" / "nelm").exists()  # refused before touching any database


# ------------------------------------------------------------------ bounded before authentication

TOKEN = "a-long-random-token-for-tests"


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").strip("/").rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=30)
    return s


def _answer(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    finally:
        s.close()
    return out


@pytest.fixture
def limited(tmp_path):
    """A token-protected server with small limits (so that the time-outs pass in a second)."""
    server = Server([], _env(tmp_path, NELM_API_TOKEN=TOKEN, NELM_HEADER_TIMEOUT="1", NELM_BODY_TIMEOUT="1",
                             NELM_MAX_CONNECTIONS_PER_CLIENT="6", NELM_MAX_HEADER_BYTES="8192",
                             NELM_MAX_HEADERS="20"))
    yield server
    server.stop()


def _health(url: str) -> int:
    return httpx.get(url + "api/v1/health", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).status_code


def test_an_oversized_or_overfull_head_is_refused_before_authentication(limited):
    s = _connect(limited.url)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n")
    assert _answer(s).startswith(b"HTTP/1.1 431 ")
    s = _connect(limited.url)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(21))
              + b"\r\n")
    assert _answer(s).startswith(b"HTTP/1.1 431 ")
    # an unfinished head is cut off once past the limit: the server stops reading, the client cannot go on
    s = _connect(limited.url)
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
    with pytest.raises(OSError):  # BrokenPipeError / ConnectionResetError
        for _ in range(2000):  # up to 128 MB, which a server without the limit would hold
            s.sendall(b"a" * 65536)
    s.close()
    # a head within the limits is served as before
    s = _connect(limited.url)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode()
              + b"\r\nConnection: close\r\n\r\n")
    assert _answer(s).startswith(b"HTTP/1.1 200 ")


def test_no_connection_leaves_the_bounded_protocol_by_an_upgrade(limited):
    s = _connect(limited.url)
    s.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    answer = _answer(s)  # served as plain HTTP, then shed by the time-outs like any other connection
    assert answer.startswith(b"HTTP/1.1 200 ") and b" 101 " not in answer.split(b"\r\n", 1)[0]


def test_slow_and_silent_clients_are_shed(limited):
    silent = _connect(limited.url)
    trickling = _connect(limited.url)
    trickling.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")
    slow_body = _connect(limited.url)
    slow_body.sendall(b"POST /api/v1/assess HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{")
    # each is closed by the server (recv returns, it does not wait for the 30 s socket time-out)
    assert _answer(silent).startswith(b"HTTP/1.1 408 ")
    assert _answer(trickling).startswith(b"HTTP/1.1 408 ")
    answer = _answer(slow_body)  # unauthenticated: 401 at once, then closed when the body does not come
    assert answer == b"" or answer.startswith(b"HTTP/1.1 401 ")
    assert _health(limited.url) == 200


def test_connections_per_client_are_capped_and_freed(limited):
    held = [_connect(limited.url) for _ in range(6)]
    try:
        extra = _connect(limited.url)
        assert _answer(extra).startswith(b"HTTP/1.1 503 ")  # the seventh from this address
    finally:
        for s in held:
            s.close()
    # the held ones are gone (closed here, or shed by the head time-out): the client is served again
    for _ in range(100):
        try:
            if _health(limited.url) == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    assert _health(limited.url) == 200


def test_connections_in_total_are_capped(tmp_path):
    server = Server([], _env(tmp_path, NELM_API_TOKEN=TOKEN, NELM_MAX_CONNECTIONS="4",
                             NELM_MAX_CONNECTIONS_PER_CLIENT="100"))
    try:
        held = [_connect(server.url) for _ in range(4)]
        extra = _connect(server.url)
        assert _answer(extra).startswith(b"HTTP/1.1 503 ")  # the fifth in all
        for s in held:
            s.close()
        for _ in range(100):  # the server notices the closed ones; then it serves again
            try:
                if _health(server.url) == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        assert _health(server.url) == 200
    finally:
        server.stop()


# ------------------------------------------------------------------ the full report: a worker with a deadline

def test_the_full_report_runs_in_a_worker_with_a_deadline(client, example, monkeypatch):
    from nelm.web import reportjob

    case_id = client.post("/api/v1/assessments", json=example).json()["id"]
    r = client.get(f"/cases/{case_id}/versions/1/report.html?full=1")
    assert r.status_code == 200 and "<html" in r.text.lower()
    monkeypatch.setattr(reportjob, "report_seconds", lambda: 0.0)
    r = client.get(f"/cases/{case_id}/versions/1/report.pdf?full=1")
    assert r.status_code == 503 and "took longer than 0 seconds and was stopped" in r.text
    assert [e.action for e in client.app.state.store.audit(case_id)].count("export") == 1  # only the one built


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_report_job_is_killed_at_its_deadline():
    from nelm.web import reportjob

    pids: list[int] = []

    async def connected() -> bool:
        return False

    with pytest.raises(reportjob.JobTimeout):
        anyio.run(lambda: reportjob.run_bounded(time.sleep, (3600,), seconds=0.5, disconnected=connected,
                                                started=pids.append))
    assert pids and _gone(pids[0])


def test_a_report_job_is_killed_when_the_client_leaves():
    from nelm.web import reportjob

    pids: list[int] = []
    polls = 0

    async def leaves_after_two_polls() -> bool:
        nonlocal polls
        polls += 1
        return polls > 2

    with pytest.raises(reportjob.ClientGone):
        anyio.run(lambda: reportjob.run_bounded(time.sleep, (3600,), seconds=600, disconnected=leaves_after_two_polls,
                                                started=pids.append))
    assert pids and _gone(pids[0]) and polls == 3


# ------------------------------------------------------------------ sessions across worker processes

def test_with_two_workers_a_login_and_a_logout_hold_on_both(tmp_path):
    """Issue 24: with sessions in one worker's memory, 39 of 100 logged-in page loads went to the
    login page, and a logged-out cookie still worked on the other worker."""
    import re

    server = Server(["--workers", "2"], _env(tmp_path, NELM_API_TOKEN=TOKEN))
    try:
        with httpx.Client(base_url=server.url, timeout=60, follow_redirects=True) as browser:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("login").text).group(1)
            r = browser.post("login", data={"csrf_token": csrf, "token": TOKEN, "next": "/cases"})
            assert r.status_code == 200 and r.url.path == "/cases"
            cookie = browser.cookies["nelm_session"]
            # fresh connections, so that the kernel hands them to either worker
            loads = [httpx.get(server.url + "cases", cookies={"nelm_session": cookie}, timeout=60).status_code
                     for _ in range(40)]
            assert loads == [200] * 40
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("cases").text).group(1)
            assert browser.post("logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
        after = [httpx.get(server.url + "api/v1/health", cookies={"nelm_session": cookie}, timeout=60).status_code
                 for _ in range(40)]
        assert after == [401] * 40
    finally:
        server.stop()


def test_report_jobs_are_capped_per_process(monkeypatch):
    """Requests cannot pile up report processes: past MAX_JOBS one is refused at once, and none started."""
    from nelm.web import reportjob

    monkeypatch.setattr(reportjob, "MAX_JOBS", 1)
    pids: list[int] = []
    outcome: list[str] = []

    async def main() -> None:
        started = anyio.Event()
        stop = anyio.Event()

        async def connected_until_stopped() -> bool:
            return stop.is_set()

        async def long_job() -> None:
            try:
                await reportjob.run_bounded(time.sleep, (3600,), seconds=600, disconnected=connected_until_stopped,
                                            started=lambda pid: (pids.append(pid), started.set()))
            except reportjob.ClientGone:
                outcome.append("first stopped")

        async with anyio.create_task_group() as tg:
            tg.start_soon(long_job)
            await started.wait()
            try:
                await reportjob.run_bounded(time.sleep, (1,), seconds=600, disconnected=connected_until_stopped,
                                            started=pids.append)
            except reportjob.JobsBusy:
                outcome.append("second refused")
            stop.set()

    anyio.run(main)
    assert outcome == ["second refused", "first stopped"] and len(pids) == 1 and _gone(pids[0])
    assert reportjob._running == 0
