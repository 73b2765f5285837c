"""``nelm serve``: run the app with uvicorn, safely by default.

Loopback only unless ``NELM_API_TOKEN`` is set; the database comes from ``--database``,
then ``NELM_DATABASE_URL``, then an SQLite file in the user's data directory. The store's
hash chains are verified before serving: a broken chain stops the start (exit 3) unless
``--allow-broken-chain`` / ``NELM_ALLOW_BROKEN_CHAIN=1``. A port that cannot be bound
(in use, not permitted) stops the start with its own message and exit 4. Access
logs go through :class:`~nelm.web.security.RedactAccessLog`, so no query string or case
id is written to them, and no request body is logged anywhere.

Every connection is bounded before anything reaches the app, so before authentication
(:class:`BoundedHttpToolsProtocol`, limits in :class:`Limits`): the request line and
headers may hold at most ``NELM_MAX_HEADER_BYTES`` bytes in ``NELM_MAX_HEADERS`` fields
and must arrive within ``NELM_HEADER_TIMEOUT`` seconds, a body within
``NELM_BODY_TIMEOUT``; a worker holds at most ``NELM_MAX_CONNECTIONS`` connections, at most
``NELM_MAX_CONNECTIONS_PER_CLIENT`` from one address.
"""
from __future__ import annotations

import copy
import errno
import os
import socket
import sys
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..store import BrokenChain, default_database_url, display_url
from ..store.chain import ALLOW_ENV
from .security import MIN_TOKEN_LENGTH, is_loopback

TOKEN_ENV = "NELM_API_TOKEN"
DATABASE_ENV = "NELM_DATABASE_URL"
# exit codes of `nelm serve` (README, "Exit codes")
REFUSED_EXIT = 2        # a setting or the binding refused (no token off loopback, a bad limit, a bad store)
BROKEN_CHAIN_EXIT = 3   # as `nelm audit verify` on a broken chain
CANNOT_BIND_EXIT = 4    # the address or port cannot be bound (in use, not permitted, not on this machine)
STARTUP_FAILED_EXIT = 1  # the web server failed to start for another reason (as an internal error)


# ------------------------------------------------------------------ limits before authentication

@dataclass(frozen=True)
class Limits:
    """What one connection may cost the server before the app (and its token check) sees it.

    Defaults: a browser's request head is 1-4 KiB (cookies of every app on ``localhost``
    included), a patient document 256 KiB at most; one board's browsers and API clients
    need far fewer connections than these caps. Each is set by the environment variable
    of the same name in capitals with ``NELM_`` in front (README, "Limits").
    """

    max_header_bytes: int = 32 * 1024        # request line and header fields together
    max_headers: int = 100                   # header fields in one request
    header_timeout: float = 10.0             # seconds from connecting (or the request's first byte) to its last header
    body_timeout: float = 30.0               # seconds from the last header to the last byte of the body
    max_connections: int = 512               # open connections per worker process
    max_connections_per_client: int = 64     # open connections per worker from one client address

    @classmethod
    def from_env(cls, environ: Any = None) -> Limits:
        """The limits from ``NELM_MAX_HEADER_BYTES`` etc.; ValueError naming the variable and its range."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = "NELM_" + f.name.upper()
            raw = (environ.get(name) or "").strip()
            if not raw:
                continue
            kind, low, high = _LIMIT_RANGES[f.name]
            try:
                value = kind(raw)
            except ValueError:
                value = None
            if value is None or not low <= value <= high:
                shown = [str(int(b)) if float(b).is_integer() else str(b) for b in (low, high)]
                raise ValueError(f"{name} must be a {'whole ' if kind is int else ''}number from {shown[0]} to "
                                 f"{shown[1]} (got {raw[:40]!r})")
            values[f.name] = value
        return cls(**values)


_LIMIT_RANGES: dict[str, tuple[type, float, float]] = {
    "max_header_bytes": (int, 1024, 1024 * 1024), "max_headers": (int, 8, 1000),
    "header_timeout": (float, 0.1, 3600), "body_timeout": (float, 0.1, 3600),
    "max_connections": (int, 1, 100_000), "max_connections_per_client": (int, 1, 100_000)}


class _Refusal(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits it lacks, enforced on raw bytes.

    httptools (llhttp) has no limit on the request head: it gathers a header value in
    memory however long it grows, so a client that never ends its headers could fill the
    server's memory before any token is checked. Here every byte received while a
    request's head is incomplete is counted, and the connection is answered 431 and closed
    once they pass ``max_header_bytes`` (so a connection holds at most that plus one read
    of the socket); a complete head is measured again field by field, and the count of
    fields is capped. A head must arrive within ``header_timeout`` (408 and closed; this
    also sheds a client that connects and says nothing), a body within ``body_timeout``
    (closed; a body is never held beyond uvicorn's 64 KiB before the app reads it).
    Connections past the caps (in total, or from one address) are answered 503 and closed
    at once. The httptools parser itself (C, the fast path) is kept.

    Why here: an ASGI middleware comes too late (uvicorn has parsed, and held, the whole
    head before it calls the app); uvicorn's h11 protocol bounds the head with
    ``h11_max_incomplete_event_size`` but parses in Python (slower for every request) and
    has neither a count of fields nor the time-outs, which would still be needed here.
    """

    limits: ClassVar[Limits | None] = None
    _per_client: ClassVar[Counter[str]] = Counter()  # open connections by client address, in this process

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if BoundedHttpToolsProtocol.limits is None:  # a worker process reads them from the environment
            BoundedHttpToolsProtocol.limits = Limits.from_env()
        self._limits: Limits = BoundedHttpToolsProtocol.limits
        self._peer: str | None = None
        self._admitted = False
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._timer: Any = None

    # connections
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, (tuple, list)) and peer else "?"
        limits = self._limits
        if len(self.connections) >= limits.max_connections or \
                self._per_client[address] >= limits.max_connections_per_client:
            self.transport = transport
            _write_refusal(transport, 503, "Too many connections; try again shortly.", retry=True)
            transport.close()
            return
        self._admitted = True
        self._peer = address
        self._per_client[address] += 1
        super().connection_made(transport)
        self._arm(limits.header_timeout, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._disarm()
        if self._peer is not None:
            self._per_client[self._peer] -= 1
            if self._per_client[self._peer] <= 0:
                del self._per_client[self._peer]
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._admitted or self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refusal = exc.__context__ if isinstance(exc.__context__, _Refusal) else exc.__cause__
            if isinstance(refusal, _Refusal):
                self._refuse(refusal.status, refusal.message)
            else:
                self._invalid()
            return
        except httptools.HttpParserError:
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:
            # all of it belongs to the unfinished head (with pipelining, possibly the tail of
            # the request before it too: an over-count, never an under-count)
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_header_bytes:
                self._refuse(431, f"Request header fields too large (more than {self._limits.max_header_bytes} bytes).")

    # parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._arm(self._limits.header_timeout, self._head_too_slow)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._limits.max_headers:
            raise _Refusal(431, f"Too many request header fields (more than {self._limits.max_headers}).")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self._limits.max_header_bytes:
            raise _Refusal(431, f"Request header fields too large (more than {self._limits.max_header_bytes} bytes).")
        self._in_head = False
        self._arm(self._limits.body_timeout, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    # time-outs and refusals
    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_too_slow(self) -> None:
        self._timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, "The request head did not arrive in time.")

    def _body_too_slow(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()  # the app (if it waits for the body) sees a disconnect

    def _refuse(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # never into the middle of a response
            _write_refusal(self.transport, status, message)
        self.transport.close()

    def _invalid(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)


def _write_refusal(transport: Any, status: int, message: str, retry: bool = False) -> None:
    body = message.encode("ascii")
    transport.write(b"".join([STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
                              b"content-length: %d\r\n" % len(body), b"retry-after: 5\r\n" if retry else b"",
                              b"connection: close\r\n\r\n", body]))


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a busy port is told apart from every other failure."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            refuse(f"cannot serve on {where}: the port is in use (another nelm serve, or another program). "
                   f"Stop that one or choose a free port with --port, e.g. --port {port + 1 if port < 65535 else 8001}.",
                   CANNOT_BIND_EXIT)
        if exc.errno == errno.EACCES:
            refuse(f"cannot serve on {where}: not permitted (ports below 1024 need privileges); "
                   "choose another with --port, e.g. --port 8000.", CANNOT_BIND_EXIT)
        refuse(f"cannot serve on {where}: {exc.strerror or exc} (check --host; choose another port with --port)",
               CANNOT_BIND_EXIT)
    sock.set_inheritable(True)
    sock.listen(2048)  # from now on a client waits in the queue (while workers start) instead of being refused
    return sock


def log_config() -> dict[str, Any]:
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": "nelm.web.security.RedactAccessLog"}
    config["handlers"]["access"]["filters"] = ["redact"]
    return config


def refuse(message: str, code: int = REFUSED_EXIT) -> None:
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
    # the outcome charts drawn once into the cache, beside the server (a report worker of low
    # priority, started from a thread: the worker's first start loads the report's libraries)
    import threading

    from .reportjob import warm_charts

    threading.Thread(target=warm_charts, name="nelm-warm-charts", daemon=True).start()
    return app


def run(host: str = "127.0.0.1", port: int = 8000, database: str | None = None,
        allow_broken_chain: bool = False, workers: int = 1, examples: str | None = None) -> None:
    token = os.environ.get(TOKEN_ENV) or None
    check_binding(host, token)
    try:
        limits = Limits.from_env()
        from .reportjob import report_seconds

        report_seconds(strict=True)
    except ValueError as exc:
        refuse(str(exc))
    check_cds_settings()
    BoundedHttpToolsProtocol.limits = limits
    # bound before the store is opened: a busy port changes nothing and says so (exit 4)
    sock = bind(host, port)
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
    # no WebSocket: nelm has none, and an upgraded connection would leave the bounded protocol
    common: dict[str, Any] = dict(log_config=log_config(), server_header=False, proxy_headers=False,
                                  http=BoundedHttpToolsProtocol, ws="none")
    if workers > 1:
        # One process holds one core (the GIL): several share the listening socket. Each
        # re-creates the app from the environment (worker_app), after the checks above;
        # each applies the limits (from the environment) to its own connections.
        from uvicorn.supervisors import Multiprocess

        app.state.store.close()
        os.environ[DATABASE_ENV] = database
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{sock.getsockname()[1]}/"
        print(f"nelm: serving the tumour-board app at {url} with {workers} worker processes\n"
              f"nelm: REST API at {url}api/v1\nnelm: case store {display_url(database)}\n"
              "nelm: press Ctrl+C to stop", flush=True)
        # a generous health-check timeout: on a busy machine a worker answering late is not dead
        config = uvicorn.Config("nelm.web.serve:worker_app", factory=True, workers=workers, host=host,
                                port=sock.getsockname()[1], timeout_worker_healthcheck=30,
                                **(common | {"http": "nelm.web.serve:BoundedHttpToolsProtocol"}))
        try:
            Multiprocess(config, sockets=[sock]).run()
        except KeyboardInterrupt:  # pragma: no cover - Ctrl+C
            pass
        return
    config = uvicorn.Config(settled(app), host=host, port=sock.getsockname()[1], **common)
    server = _Server(config, database, token is not None)
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:  # uvicorn's own start-up failure is 3, which here means a broken chain
        if exc.code not in (0, None):
            refuse("the web server did not start (see the messages above)", STARTUP_FAILED_EXIT)
        raise
    if not server.started:
        refuse("the web server did not start (see the messages above)", STARTUP_FAILED_EXIT)
