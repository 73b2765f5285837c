"""What keeps patient data in the room: Host check, token auth, sessions, CSRF and Origin checks, body limit, headers, quiet logs.

* Only requests naming this server in their ``Host`` header are answered: the loopback
  names (127.0.0.1, localhost, ::1), the address the request arrived at, and the names
  configured with ``--allowed-hosts`` / ``NELM_ALLOWED_HOSTS``. A web page whose own name
  an attacker has pointed at 127.0.0.1 (DNS rebinding) gets 400, not the case list.
* Bound to a loopback address (127.0.0.0/8, ::1, or ``localhost`` when every address it
  resolves to is loopback) the app needs no login: the clinician's own machine. Bound
  anywhere else it will only start with ``NELM_API_TOKEN`` (see ``serve.py``), and then
  every request must carry it: the API as ``Authorization: Bearer``, a browser either
  that header or a session cookie obtained through the login form.
* Sessions live on the server, in the case store (table ``web_sessions``,
  :mod:`nelm.store.sessions`): the cookie is a random id; the store keeps a hash of it
  keyed with the token (HMAC-SHA256), never the id, with its expiry. Every worker process
  reads the same table, so a login and a logout hold on all of them at once and across
  restarts; logging out deletes the row, so a copied cookie is worthless afterwards, and a
  new token ends every session (their hashes no longer match). Cookies are HttpOnly and
  SameSite=Strict, and Secure when the request came over HTTPS or ``--secure-cookies``
  says a TLS proxy sits in front.
* Forms carry a CSRF token. Logged in, it is derived from the session id (HMAC), so it
  is bound to that session: a token or cookie planted by another page (another app on
  ``localhost`` can set cookies for this one) is worth nothing. Without a session (the
  login form; loopback without a token) it is the double-submit pair: hidden field ==
  SameSite=Strict cookie. On top, every state-changing request (POST, PUT, PATCH, DELETE)
  whose ``Origin`` (or, without one, ``Referer``) names another site, or is ``null``, is
  refused (403) unless it carries the token as a Bearer header, which a browser never
  adds to a cross-site request by itself. The JSON API refuses other content types, which
  a cross-site form cannot send without a CORS preflight that we never grant.
* Request bodies are capped; responses carry no-store and anti-framing headers.
* Access logs keep method, status and the route shape, never query strings or ids.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import anyio.to_thread

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..inputgate import MAX_DOCUMENT_BYTES

if TYPE_CHECKING:
    from ..store.sessions import SessionStore

SESSION_COOKIE = "nelm_session"
CSRF_COOKIE = "nelm_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 12 * 3600  # one working day at the board
MAX_SESSION_COOKIE = 128  # the ids made here are 43 characters; a longer cookie is no session
MAX_BODY_BYTES = MAX_DOCUMENT_BYTES  # a request body is at most one patient document
MIN_TOKEN_LENGTH = 16
LOCAL_ACTOR = "local"
OPEN_PATHS = frozenset({"/login", "/smart/launch", "/smart/callback"})

ALLOWED_HOSTS_ENV = "NELM_ALLOWED_HOSTS"
SECURE_COOKIES_ENV = "NELM_SECURE_COOKIES"
# the names a browser on this machine uses for it; always allowed
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# the page that loads third-party assets (Swagger UI) gets no Content-Security-Policy
_NO_CSP = ("/docs",)
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


# ------------------------------------------------------------------ addresses and host names

def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server on this machine.

    Loopback is 127.0.0.0/8, ::1, and the name ``localhost`` provided every address it
    resolves to is one of those (the server binds to all of them). Any other name may
    resolve to anything and counts as not loopback.
    """
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost."):
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)}
        except OSError:
            return False
        ips = [_ip(a) for a in addresses]
        return bool(ips) and all(ip is not None and ip.is_loopback for ip in ips)
    ip = _ip(name)
    return ip is not None and ip.is_loopback


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is not part of the address
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:10.0.0.5 is how a dual-stack socket shows an IPv4 peer
    return ip


_HOST_HEADER = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::(?P<port>[0-9]{1,5}))?")


def host_name(value: str) -> str | None:
    """The host of a ``Host`` header, port dropped, in one spelling per host; None if malformed.

    ``LocalHost.:8000`` → ``localhost``, ``[0:0::1]:8000`` → ``::1``, ``127.0.0.1`` → ``127.0.0.1``.
    """
    m = _HOST_HEADER.fullmatch(value.strip())
    if m is None:
        return None
    if m["v6"] is not None:
        ip = _ip(m["v6"])
        return str(ip) if ip is not None else None
    name = m["name"].lower()
    name = name[:-1] if name.endswith(".") else name
    return name or None


def parse_hosts(text: str | Iterable[str]) -> tuple[str, ...]:
    """Allowed host names from ``a.example, 10.0.0.5, [::1]`` (or a list of them), normalised.

    Raises ValueError naming an entry that is not a host name (a port, a scheme, a wildcard).
    """
    entries = text.split(",") if isinstance(text, str) else list(text)
    hosts: list[str] = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        ip = _ip(entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry)
        if ip is not None:
            hosts.append(str(ip))
        elif re.fullmatch(r"[A-Za-z0-9._-]+", entry) and entry.strip("."):
            hosts.append(host_name(entry) or "")
        else:
            raise ValueError(f"{entry!r} is not a host name or address (give it without scheme, port or wildcard)")
    return tuple(dict.fromkeys(hosts))


def secure_cookies_from_env() -> bool:
    return os.environ.get(SECURE_COOKIES_ENV, "").strip().lower() in ("1", "true", "t", "yes", "y", "on")


def token_actor(token: str) -> str:
    """Who the audit log says acted: the token's fingerprint, never the token."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]


# ------------------------------------------------------------------ the policy of one running app

class Security:
    """One app's access policy: the token, the allowed Host names, cookie flags, and the
    live sessions (in the case store: :class:`~nelm.store.sessions.SessionStore`, shared
    by every worker process; without one no session can start)."""

    def __init__(self, token: str | None = None, allowed_hosts: Iterable[str] = (),
                 secure_cookies: bool = False, sessions: SessionStore | None = None):
        self.token = token
        self.allowed_hosts = LOOPBACK_HOSTS | frozenset(parse_hosts(allowed_hosts))
        self.secure_cookies = secure_cookies
        self.sessions = sessions

    def token_ok(self, offered: str | None) -> bool:
        return bool(self.token and offered and hmac.compare_digest(offered.encode(), self.token.encode()))

    # Sessions: the cookie holds a random id; the store keeps only its hash keyed with the
    # token, so a look-up leaks nothing by timing, the table gives nobody a session, and
    # sessions made under an earlier token are dead under a new one. Blocking (one short
    # query): the middleware calls these in a worker thread.
    def _digest(self, session: str) -> str:
        assert self.token
        return hmac.new(self.token.encode(), session.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def new_session(self, now: float | None = None, actor: str | None = None) -> str:
        """A new session; ``actor``: who it acts as in the audit log (a SMART launch's EHR
        user), None for the token's holder (the login form)."""
        if not self.token or self.sessions is None:
            raise RuntimeError("sessions need an API token and a case store")
        at = _at(now)
        session = secrets.token_urlsafe(32)
        self.sessions.add(self._digest(session), at, at + timedelta(seconds=SESSION_SECONDS), actor)
        return session

    def session_ok(self, cookie: str | None, now: float | None = None) -> bool:
        if not self.token or not cookie or self.sessions is None or len(cookie) > MAX_SESSION_COOKIE:
            return False
        return self.sessions.alive(self._digest(cookie), _at(now))

    def session_actor(self, cookie: str | None, now: float | None = None) -> tuple[str | None] | None:
        """None: not a live session; else a 1-tuple of who it acts as (None: the token's holder)."""
        if not self.token or not cookie or self.sessions is None or len(cookie) > MAX_SESSION_COOKIE:
            return None
        return self.sessions.lookup(self._digest(cookie), _at(now))

    def end_session(self, cookie: str | None) -> None:
        if self.token and cookie and self.sessions is not None and len(cookie) <= MAX_SESSION_COOKIE:
            self.sessions.remove(self._digest(cookie))

    def host_ok(self, host_header: str | None, server: Any = None) -> bool:
        """Whether a request with this Host header, arriving at ``server`` (ASGI's (address, port)), is for us.

        Allowed: the configured names and the address the connection arrived at, when the
        header names it as an IP (the bound address; with a wildcard bind, the interface
        the client used). A DNS-rebinding page always sends its own name, never an IP.
        """
        name = host_name(host_header) if host_header else None
        if name is None:
            return False
        if name in self.allowed_hosts:
            return True
        here = _ip(str(server[0])) if server else None
        there = _ip(name)
        return here is not None and there is not None and here == there


def _at(now: float | None) -> datetime:
    return datetime.fromtimestamp(time.time() if now is None else now, UTC)


def bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def actor_of(request: Request) -> str:
    return request.scope.get("state", {}).get("actor", LOCAL_ACTOR)


# ------------------------------------------------------------------ middleware

class HTTPMiddleware:
    """The shape the middlewares here share: HTTP requests go to :meth:`handle`, anything else
    (the lifespan events) passes through untouched."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class HostCheckMiddleware(HTTPMiddleware):
    """400 for a request whose Host header does not name this server (DNS rebinding)."""

    def __init__(self, app: ASGIApp, security: Security):
        super().__init__(app)
        self.security = security

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        hosts = Headers(scope=scope).getlist("host")
        if len(hosts) == 1 and self.security.host_ok(hosts[0], scope.get("server")):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse("Unknown host name. To serve under another name, start nelm serve "
                                     "with --allowed-hosts NAME.", status_code=400)
        await response(scope, receive, send)


class AuthMiddleware(HTTPMiddleware):
    """Every request but the login page must carry the token (when one is configured).

    A response that clears the session cookie (logout) also ends the session on the
    server, so the old cookie is refused even if it was copied before.
    """

    def __init__(self, app: ASGIApp, security: Security):
        super().__init__(app)
        self.security = security

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        sec = self.security
        if sec.token is None:
            state["actor"] = LOCAL_ACTOR
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        session = Request(scope).cookies.get(SESSION_COOKIE)
        authenticated = sec.token_ok(bearer(headers))
        session_user: str | None = None
        if not authenticated and session:
            # one indexed look-up in the case store, off the event loop: every worker sees the same sessions
            try:
                found = await anyio.to_thread.run_sync(sec.session_actor, session)
                authenticated = found is not None
                session_user = found[0] if found else None
            except Exception:  # noqa: BLE001 - the store does not answer: fail closed, and say so
                logging.getLogger(__name__).warning("session look-up failed: the case store does not answer")
                await PlainTextResponse("The case store does not answer, so the login cannot be checked; "
                                        "try again shortly.", status_code=503)(scope, receive, send)
                return
            if authenticated:
                state["session"] = session  # the CSRF token of this request's forms is bound to it

        async def ending_sessions(message: Message) -> None:
            if message["type"] == "http.response.start" and _clears_session(message):
                await anyio.to_thread.run_sync(sec.end_session, session)
            await send(message)

        if authenticated:
            # a SMART launch's session acts as the EHR user it was opened for (nelm.fhir.smart)
            state["actor"] = session_user or token_actor(sec.token)
            await self.app(scope, receive, ending_sessions)
            return
        # the login page and its stylesheet are the only things open without the token, and the
        # SMART EHR launch (nelm.fhir.smart), whose authorization by the EHR is the login: its
        # callback opens a session only for a state it issued, on an allow-listed FHIR server
        if path in OPEN_PATHS or path.startswith("/static/"):
            state["actor"] = "anonymous"
            await self.app(scope, receive, send)
            return
        response: Response
        if path.startswith(("/api/", "/fhir/")) or path in ("/openapi.json", "/docs") or bearer(headers):
            response = JSONResponse({"detail": "authentication required: send Authorization: Bearer <NELM_API_TOKEN>"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
        else:
            target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
            response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        await response(scope, receive, send)


def _clears_session(message: Message) -> bool:
    prefix = SESSION_COOKIE.encode() + b"="
    return any(k.lower() == b"set-cookie" and v.startswith(prefix) and b"max-age=0" in v.lower()
               for k, v in message.get("headers", []))


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def origin_problem(headers: Headers) -> str | None:
    """Why a state-changing request looks cross-site, or None.

    The ``Origin`` a browser sends (or, without one, the ``Referer``) must name the host
    and port of the ``Host`` header (already checked to be ours); ``null`` (a sandboxed or
    privacy-stripped context) is refused. Requests with neither header are not from a
    browser page and pass (the token or the CSRF token still applies), as do requests
    carrying the token as a Bearer header, which no cross-site page can add. The scheme is
    not compared: behind a TLS proxy this server sees http where the browser says https.
    """
    if bearer(headers):
        return None
    name, value = "Origin", headers.get("origin")
    if value is None:
        name, value = "Referer", headers.get("referer")
        if value is None:
            return None
    value = value.strip()
    if value == "null":
        return f"{name} is null (a sandboxed page, or one that hides where it comes from)"
    try:
        parts = urlsplit(value)
        there = (host_name(parts.hostname or ""), _port(parts.port, parts.scheme))
    except ValueError:  # a port out of range, a malformed IPv6 literal
        return f"{name} is not a web address"
    if parts.scheme not in ("http", "https") or there[0] is None:
        return f"{name} is not a web address"
    host = host_name(headers.get("host", ""))
    host_port = _HOST_HEADER.fullmatch(headers.get("host", "").strip())
    here_port = int(host_port["port"]) if host_port is not None and host_port["port"] else None
    same_port = there[1] == here_port or (there[1] is None and here_port in (80, 443))
    if there[0] != host or not same_port:
        return f"{name} names another site"
    return None


def _port(port: int | None, scheme: str) -> int | None:
    """A URL's port, None when it is the scheme's default."""
    return None if port is None or (scheme, port) in (("http", 80), ("https", 443)) else port


class OriginCheckMiddleware(HTTPMiddleware):
    """403 for a state-changing request that another web site made the browser send (see :func:`origin_problem`)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = origin_problem(Headers(scope=scope)) if scope["method"] in UNSAFE_METHODS else None
        if problem is None:
            await self.app(scope, receive, send)
            return
        message = (f"refused: this request did not come from this application's own pages ({problem}); "
                   "submit the form again from the page itself")
        response: Response
        if scope["path"].startswith("/api/"):
            response = JSONResponse({"detail": message}, status_code=403)
        else:
            response = PlainTextResponse(message[0].upper() + message[1:] + ".", status_code=403)
        await response(scope, receive, send)


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware(HTTPMiddleware):
    """413 for bodies over the limit, declared (Content-Length) or streamed (chunked)."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES):
        super().__init__(app)
        self.max_body = max_body

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await self._too_large(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = f"{self.max_body // 1024} KiB"
        if scope["path"].startswith("/api/"):
            response: Response = JSONResponse({"detail": f"request body larger than {limit}"}, status_code=413)
        else:
            response = PlainTextResponse(f"Request body larger than {limit}.", status_code=413)
        await response(scope, receive, send)


class SecurityHeadersMiddleware(HTTPMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {k.lower() for k, _ in headers}
                # same-origin: no address (with its case id) goes to another site, and our own
                # form posts carry an Origin the Origin check can compare (no-referrer makes it null)
                add = {b"x-content-type-options": b"nosniff", b"x-frame-options": b"DENY",
                       b"referrer-policy": b"same-origin"}
                # patient data must not linger in shared browser or proxy caches
                if not path.startswith("/static/"):
                    add[b"cache-control"] = b"no-store"
                if not path.startswith(_NO_CSP):
                    add[b"content-security-policy"] = CSP.encode()
                headers.extend((k, v) for k, v in add.items() if k not in present)
            await send(message)

        await self.app(scope, receive, with_headers)


# ------------------------------------------------------------------ CSRF

def _session_of(request: Request) -> str | None:
    """The session id this request was authenticated with (AuthMiddleware), if any."""
    session = request.scope.get("state", {}).get("session")
    return session if isinstance(session, str) else None


def session_csrf(session: str) -> str:
    """The CSRF token bound to a session: HMAC of a fixed label keyed with the session id.
    The page shows it; it gives away nothing of the id, and no other session has it."""
    digest = hmac.new(session.encode("utf-8", "surrogatepass"), b"nelm csrf token v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_token(request: Request) -> str:
    """The token to put in this page's forms: bound to the session when logged in, else the
    browser's CSRF cookie (or a new one)."""
    session = _session_of(request)
    if session is not None:
        return session_csrf(session)
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and re.fullmatch(r"[A-Za-z0-9_\-]{32,64}", existing):
        return existing
    state = request.state
    if not getattr(state, "csrf_new", None):
        state.csrf_new = secrets.token_urlsafe(32)
    return state.csrf_new


def attach_csrf_cookie(request: Request, response: Response) -> None:
    new = getattr(request.state, "csrf_new", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", path="/", secure=_secure(request))


def require_csrf(request: Request, form: Any) -> None:
    """Refuse (403) a form post whose security token is missing or is not this session's."""
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        from fastapi import HTTPException

        raise HTTPException(403, "This form has expired or did not come from this application "
                                 "(missing or wrong security token). Reload the page and submit it again.")


def csrf_ok(request: Request, submitted: Any) -> bool:
    session = _session_of(request)
    expected = session_csrf(session) if session is not None else request.cookies.get(CSRF_COOKIE)
    return (isinstance(submitted, str) and bool(expected)
            and hmac.compare_digest(submitted.encode("utf-8", "surrogatepass"), (expected or "").encode()))


def set_session_cookie(request: Request, response: Response, security: Security, actor: str | None = None) -> None:
    """Log the browser in: a new session (ending the one it had, if any) in a strict cookie;
    ``actor``: who the session acts as (see :meth:`Security.new_session`)."""
    security.end_session(request.cookies.get(SESSION_COOKIE))
    response.set_cookie(SESSION_COOKIE, security.new_session(actor=actor), max_age=SESSION_SECONDS, httponly=True,
                        samesite="strict", path="/", secure=_secure(request))


def _secure(request: Request) -> bool:
    """Cookies are Secure over HTTPS, and always when configured (a TLS proxy in front of us
    makes the request look like plain HTTP here)."""
    security = getattr(request.app.state, "security", None)
    return request.url.scheme == "https" or bool(security and security.secure_cookies)


# ------------------------------------------------------------------ free text typed by people

# NUL, the C0 controls but tab, line feed and carriage return, DEL, the C1 controls, lone surrogates
_CONTROL_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why free text (a rationale, a name) may not be stored, or None: NUL (PostgreSQL cannot
    hold it), an invisible control character (an escape sequence would reach a terminal,
    a log or the printed report as it is), or a lone surrogate (not Unicode)."""
    bad = _CONTROL_TEXT.search(value)
    if bad is None:
        return None
    ch, at = bad.group(), bad.start() + 1
    if ch == "\x00":
        return "contains a NUL character (U+0000), which text may not hold"
    if "\ud800" <= ch <= "\udfff":
        return f"not valid Unicode: contains a lone surrogate (U+{ord(ch):04X} at character {at})"
    return (f"contains a control character (U+{ord(ch):04X} at character {at}); text may hold letters, "
            "digits, punctuation, tabs and line breaks only")


def decision_text_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The board decision's text fields that :func:`text_problem` refuses, by field (``attendees.2``)."""
    problems = []
    for name, value in data.items():
        values = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for i, item in values:
            if isinstance(item, str) and (problem := text_problem(item)) is not None:
                problems.append((str(name) if i is None else f"{name}.{i}", problem))
    return problems


# ------------------------------------------------------------------ logging

_ID_SEGMENT = re.compile(r"/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def redact_path(path: str) -> str:
    """``/cases/<uuid>/edit?q=Smith`` → ``/cases/:id/edit``: the route, never who."""
    return _ID_SEGMENT.sub("/:id", path.split("?", 1)[0])


class RedactAccessLog(logging.Filter):
    """Strips query strings and case ids from uvicorn's access log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn.access: (client_addr, method, full_path, http_version, status_code)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_path(args[2]), args[3], args[4])
        return True
