"""``nelm serve``: run the app with uvicorn, safely by default.

Loopback only unless ``NELM_API_TOKEN`` is set; the database comes from ``--database``,
then ``NELM_DATABASE_URL``, then an SQLite file in the user's data directory. Access
logs go through :class:`~nelm.web.security.RedactAccessLog`, so no query string or case
id is written to them, and no request body is logged anywhere.
"""
from __future__ import annotations

import copy
import os
import sys
from typing import Any

import uvicorn

from ..store import default_database_url, display_url
from .security import MIN_TOKEN_LENGTH, is_loopback

TOKEN_ENV = "NELM_API_TOKEN"
DATABASE_ENV = "NELM_DATABASE_URL"


def log_config() -> dict[str, Any]:
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": "nelm.web.security.RedactAccessLog"}
    config["handlers"]["access"]["filters"] = ["redact"]
    return config


def refuse(message: str) -> None:
    print(f"nelm: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_binding(host: str, token: str | None) -> None:
    """Exit 2 when the address would expose patient data without a token."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        refuse(f"{TOKEN_ENV} must be at least {MIN_TOKEN_LENGTH} characters long")
    if not is_loopback(host) and not token:
        refuse(f"refusing to serve on {host}: another machine could reach patient data without a password. "
               f"Set {TOKEN_ENV} (a long random secret; every request must then present it), "
               "or bind to 127.0.0.1.")


class _Server(uvicorn.Server):
    """Says where it serves once the socket is bound (port 0 shows the real port)."""

    def __init__(self, config: uvicorn.Config, database: str, token: bool):
        super().__init__(config)
        self._database = database
        self._token = token

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.should_exit or not self.servers:
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/"
        lines = [f"nelm: serving the tumour-board app at {url}",
                 f"nelm: REST API at {url}api/v1 (OpenAPI: {url}openapi.json, docs: {url}docs)",
                 f"nelm: case store {display_url(self._database)}"]
        if self._token:
            lines.append(f"nelm: access token required ({TOKEN_ENV}); browsers log in at {url}login")
        lines.append("nelm: press Ctrl+C to stop")
        print("\n".join(lines), flush=True)


def run(host: str = "127.0.0.1", port: int = 8000, database: str | None = None) -> None:
    token = os.environ.get(TOKEN_ENV) or None
    check_binding(host, token)
    database = database or os.environ.get(DATABASE_ENV) or default_database_url()
    from .app import create_app

    try:
        app = create_app(database, token)
    except Exception as exc:  # noqa: BLE001 - e.g. database unreachable: say so, no traceback
        refuse(f"cannot open the case store {display_url(database)}: {type(exc).__name__}: {exc}")
    config = uvicorn.Config(app, host=host, port=port, log_config=log_config(), server_header=False,
                            proxy_headers=False)
    _Server(config, database, token is not None).run()
