"""tests/fhir: the Bundle builders (bundles.py) are imported by name."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import json  # noqa: E402
import threading  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import unquote  # noqa: E402

import pytest  # noqa: E402

from nelm.web import create_app  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def app(tmp_path):
    app = create_app(f"sqlite:///{tmp_path / 'cases.sqlite3'}", allowed_hosts=["testserver"])
    # the fake FHIR servers of these tests listen on 127.0.0.1, an internal address a hook's
    # fhirServer may name only when allowed (tests/fhir/test_cds_security.py checks the refusal)
    app.state.cds_settings.allow_private = True
    return app


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


class FakeFhirServer:
    """A FHIR server on 127.0.0.1 (threaded http.server): GET answers from ``routes``
    (path with query → JSON, or an int status), and remembers each request's headers."""

    def __init__(self) -> None:
        self.routes: dict[str, Any] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = unquote(self.path)  # routes are written unencoded (code=http://loinc.org|...)
                outer.requests.append((path, dict(self.headers)))
                answer = outer.routes.get(path.removeprefix("/fhir/"), 404)
                status, body = (answer, {"resourceType": "OperationOutcome"}) if isinstance(answer, int) else (200, answer)
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def fhir_server() -> Iterator[FakeFhirServer]:
    server = FakeFhirServer()
    try:
        yield server
    finally:
        server.stop()
