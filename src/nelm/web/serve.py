"""``nelm serve``: run the app with uvicorn, safely by default.

Loopback only unless ``NELM_API_TOKEN`` is set; the database comes from ``--database``,
then ``NELM_DATABASE_URL``, then an SQLite file in the user's data directory. The store's
hash chains are verified before serving: a broken chain stops the start (exit 3) unless
``--allow-broken-chain`` / ``NELM_ALLOW_BROKEN_CHAIN=1``. Access
logs go through :class:`~nelm.web.security.RedactAccessLog`, so no query string or case
id is written to them, and no request body is logged anywhere.
"""
from __future__ import annotations

import copy
import os
import sys
from typing import Any

import uvicorn

from ..store import BrokenChain, default_database_url, display_url
from ..store.chain import ALLOW_ENV
from .security import MIN_TOKEN_LENGTH, is_loopback

TOKEN_ENV = "NELM_API_TOKEN"
DATABASE_ENV = "NELM_DATABASE_URL"
BROKEN_CHAIN_EXIT = 3  # as `nelm audit verify` on a broken chain


def log_config() -> dict[str, Any]:
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": "nelm.web.security.RedactAccessLog"}
    config["handlers"]["access"]["filters"] = ["redact"]
    return config


def refuse(message: str, code: int = 2) -> None:
    print(f"nelm: {message}", file=sys.stderr)
    raise SystemExit(code)


def check_binding(host: str, token: str | None) -> None:
    """Exit 2 when the address would expose patient data without a token."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        refuse(f"{TOKEN_ENV} must be at least {MIN_TOKEN_LENGTH} characters long")
    if not is_loopback(host) and not token:
        refuse(f"refusing to serve on {host}: another machine could reach patient data without a password. "
               f"Set {TOKEN_ENV} (a long random secret; every request must then present it), "
               "or bind to 127.0.0.1.")


def check_cds_settings() -> None:
    """Exit 2 when the CDS Hooks settings (NELM_CDS_*: JWT clients file, CORS origins, fhirServer
    allow-list, deadline; see nelm.fhir.auth) cannot be read, naming the setting."""
    from ..fhir.auth import settings_from_env

    try:
        settings_from_env()
    except (OSError, ValueError) as exc:
        refuse(f"CDS Hooks settings: {exc}")


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


def worker_app() -> Any:
    """The app in one of several worker processes (``nelm serve --workers N``).

    The parent process has checked the binding, migrated the store and verified its
    hash chains; each worker opens the same store from the settings the parent left in
    the environment (database, token, allowed hosts, secure cookies)."""
    from .app import create_app

    return settled(create_app(os.environ[DATABASE_ENV], os.environ.get(TOKEN_ENV) or None))


def settled(app: Any) -> Any:
    """The app ready to serve: one assessment run through (the compiled rules and the
    outcome matcher are built before the first request, not during it), then everything
    alive so far moved out of the garbage collector's sight (gc.freeze): the knowledge
    base's hundreds of thousands of objects lives as long as the process, and without
    this every full collection walked them all, a pause of tens of milliseconds in the
    middle of some request."""
    import gc

    from ..assessment import assess
    from ..patient import Patient

    assess(Patient(), outcomes="summary")
    gc.collect()
    gc.freeze()
    return app


def run(host: str = "127.0.0.1", port: int = 8000, database: str | None = None,
        allow_broken_chain: bool = False, workers: int = 1, examples: str | None = None) -> None:
    token = os.environ.get(TOKEN_ENV) or None
    check_binding(host, token)
    check_cds_settings()
    database = database or os.environ.get(DATABASE_ENV) or default_database_url()
    if allow_broken_chain:
        os.environ[ALLOW_ENV] = "1"  # read by CaseStore.open inside create_app
    from .app import create_app

    try:
        app = create_app(database, token)
    except BrokenChain as exc:
        refuse(f"refusing to start on the case store {display_url(database)}: {exc}", BROKEN_CHAIN_EXIT)
    except Exception as exc:  # noqa: BLE001 - e.g. database unreachable: say so, no traceback
        refuse(f"cannot open the case store {display_url(database)}: {type(exc).__name__}: {exc}")
    if examples:
        from ..patient import InvalidPatient
        from .service import seed_examples

        try:
            n = seed_examples(app.state.store, examples)
        except (OSError, InvalidPatient) as exc:
            refuse(f"cannot load the example cases from {examples}: {exc}")
        if n:
            print(f"nelm: loaded {n} example cases into the empty case store", file=sys.stderr, flush=True)
    for problem in getattr(getattr(app.state, "store", None), "refusals", ()):
        print(f"nelm: WARNING: serving although the case store's chain check failed: {problem}",
              file=sys.stderr, flush=True)
    report = getattr(getattr(app.state, "store", None), "chain_report", None)
    for brk in report.breaks if report is not None else ():
        print(f"nelm: WARNING: serving although the case store's hash chain is broken: {brk.describe()}",
              file=sys.stderr, flush=True)
    if workers > 1:
        # One process holds one core (the GIL): several share the listening socket. Each
        # re-creates the app from the environment (worker_app), after the checks above.
        os.environ[DATABASE_ENV] = database
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
        print(f"nelm: serving the tumour-board app at {url} with {workers} worker processes\n"
              f"nelm: REST API at {url}api/v1\nnelm: case store {display_url(database)}\n"
              "nelm: press Ctrl+C to stop", flush=True)
        # a generous health-check timeout: on a busy machine a worker answering late is not dead
        uvicorn.run("nelm.web.serve:worker_app", factory=True, workers=workers, host=host, port=port,
                    log_config=log_config(), server_header=False, proxy_headers=False,
                    timeout_worker_healthcheck=30)
        return
    config = uvicorn.Config(settled(app), host=host, port=port, log_config=log_config(), server_header=False,
                            proxy_headers=False)
    _Server(config, database, token is not None).run()
