"""`nelm serve` for real: which addresses start without a token, which Host names it answers.

Loopback (README, "the web app"): 127.0.0.0/8, ::1 and localhost start without
NELM_API_TOKEN; every other address is refused without it. Whatever the address, a
request naming another host (a DNS-rebinding page) gets 400 from the running server.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from nelm.testing import stop_process
from nelm.web.serve import check_binding

SERVING = re.compile(r"serving the tumour-board app at (http://\S+/)")
SETTINGS = ("NELM_API_TOKEN", "NELM_DATABASE_URL", "NELM_ALLOWED_HOSTS", "NELM_SECURE_COOKIES")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    return env | extra


class Serving:
    """``nelm serve --port 0 ...`` until it prints its address; ``with`` stops it."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "nelm.cli", "serve", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.output: list[str] = []
        self.url = ""
        ready = threading.Event()

        def read() -> None:
            for line in self.proc.stdout:  # type: ignore[union-attr]
                self.output.append(line)
                m = SERVING.search(line)
                if m:
                    self.url = m.group(1)
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            stop_process(self.proc)
            raise AssertionError("nelm serve did not start:\n" + "".join(self.output)[-2000:])

    def __enter__(self) -> Serving:
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc, settle=0.2)

    def get(self, path: str, host: str | None = None) -> httpx.Response:
        headers = {"host": host} if host is not None else {}
        return httpx.get(self.url + path, headers=headers, timeout=10)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]", "localhost",
                                  "LOCALHOST"])
def test_loopback_addresses_need_no_token(host):
    check_binding(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.168.1.10", "fe80::1", "example.org",
                                  "localhost.example.org", "127.0.0.1.example.org"])
def test_other_addresses_need_a_token(host, capsys):
    with pytest.raises(SystemExit) as exc:
        check_binding(host, None)
    assert exc.value.code == 2 and "NELM_API_TOKEN" in capsys.readouterr().err
    check_binding(host, "x" * 32)


def test_serve_on_another_loopback_address_answers_only_known_hosts(tmp_path):
    """127.0.0.2 starts without a token; a page re-pointed at it by DNS gets 400, a configured name works."""
    args = ["--host", "127.0.0.2", "--allowed-hosts", "board.example.org", "--database",
            f"sqlite:///{tmp_path / 'cases.sqlite3'}"]
    with Serving(args, _env(tmp_path)) as server:
        assert server.url.startswith("http://127.0.0.2:")
        assert server.get("cases").status_code == 200  # Host: 127.0.0.2:<port>, the bound address
        for host in ("localhost", "127.0.0.1:80", "board.example.org", "BOARD.example.org.:8443"):
            assert server.get("api/v1/health", host).status_code == 200, host
        for host in ("attacker.example", "attacker.example:8000", "127.0.0.2.attacker.example", "example.org"):
            r = server.get("cases", host)
            assert r.status_code == 400 and "Unknown host" in r.text, host
        assert "secure" not in server.get("cases/new").headers["set-cookie"].lower()  # plain HTTP
    log = "".join(server.output)
    assert "Traceback" not in log and '"GET /cases HTTP/1.1" 400' in log


def test_serve_on_localhost_without_a_token_and_secure_cookies_behind_a_proxy(tmp_path):
    with Serving(["--host", "localhost", "--database", f"sqlite:///{tmp_path / 'cases.sqlite3'}"],
                 _env(tmp_path, NELM_SECURE_COOKIES="1")) as server:
        assert server.get("api/v1/health").status_code == 200
        assert server.get("api/v1/health", "attacker.example").status_code == 400
        assert "secure" in server.get("cases/new").headers["set-cookie"].lower()


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1) to bind to")
def test_serve_on_ipv6_loopback_without_a_token(tmp_path):
    with Serving(["--host", "::1", "--database", f"sqlite:///{tmp_path / 'cases.sqlite3'}"], _env(tmp_path)) as server:
        assert server.url.startswith("http://[::1]:")
        assert server.get("api/v1/health").status_code == 200
        assert server.get("api/v1/health", "attacker.example").status_code == 400


@pytest.mark.parametrize("value", ["*", "http://board.example.org", "board.example.org:8000"])
def test_serve_refuses_a_malformed_allowed_host(tmp_path, value):
    r = subprocess.run([sys.executable, "-m", "nelm.cli", "serve", "--port", "0", "--allowed-hosts", value],
                       capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    assert r.returncode == 2
    assert "--allowed-hosts" in r.stderr and "not a host name" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "xdg" / "nelm").exists()  # refused before touching any database
