"""`nelm serve` for real: what it prints, where it stores, what it refuses, what it logs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
