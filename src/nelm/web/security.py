"""What keeps patient data in the room: token auth, CSRF, body limit, headers, quiet logs.

* Bound to loopback the app needs no login (the clinician's own machine). Bound anywhere
  else it will only start with ``NELM_API_TOKEN`` (see ``serve.py``), and then every
  request must carry it: the API as ``Authorization: Bearer``, a browser either that
  header or a signed, HTTP-only session cookie obtained through the login form.
* Forms carry a CSRF token (double-submit: hidden field == SameSite=Strict cookie), so
  another web site cannot make a clinician's browser store or change a case, not even
  on localhost. The JSON API refuses other content types, which a cross-site form
  cannot send without a CORS preflight that we never grant.
* Request bodies are capped; responses carry no-store and anti-framing headers.
* Access logs keep method, status and the route shape, never query strings or ids.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "nelm_session"
CSRF_COOKIE = "nelm_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 12 * 3600  # one working day at the board
MAX_BODY_BYTES = 256 * 1024
MIN_TOKEN_LENGTH = 16
LOCAL_ACTOR = "local"

# the page that loads third-party assets (Swagger UI) gets no Content-Security-Policy
_NO_CSP = ("/docs",)
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def token_actor(token: str) -> str:
    """Who the audit log says acted: the token's fingerprint, never the token."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Security:
    token: str | None = None

    @property
    def _key(self) -> bytes:
        # Sessions are signed with a key derived from the token: they survive a restart,
        # and rotating the token logs everybody out.
        assert self.token is not None
        return hashlib.sha256(b"nelm-session\x00" + self.token.encode()).digest()

    def token_ok(self, offered: str | None) -> bool:
        return bool(self.token and offered and hmac.compare_digest(offered.encode(), self.token.encode()))

    def new_session(self, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_SECONDS)
        body = f"{expires}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._sign(body)}"

    def session_ok(self, cookie: str | None, now: float | None = None) -> bool:
        if not self.token or not cookie or cookie.count(".") != 2:
            return False
        body, sig = cookie.rsplit(".", 1)
        if not hmac.compare_digest(sig, self._sign(body)):
            return False
        expires = body.split(".", 1)[0]
        return expires.isdigit() and int(expires) > (now or time.time())

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()


def bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def actor_of(request: Request) -> str:
    return request.scope.get("state", {}).get("actor", LOCAL_ACTOR)


# ------------------------------------------------------------------ middleware

class AuthMiddleware:
    """Every request but the login page must carry the token (when one is configured)."""

    def __init__(self, app: ASGIApp, security: Security):
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        sec = self.security
        if sec.token is None:
            state["actor"] = LOCAL_ACTOR
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        authenticated = sec.token_ok(bearer(headers)) or sec.session_ok(Request(scope).cookies.get(SESSION_COOKIE))
        if authenticated:
            state["actor"] = token_actor(sec.token)
            await self.app(scope, receive, send)
            return
        # the login page and its stylesheet are the only things open without the token
        if path == "/login" or path.startswith("/static/"):
            state["actor"] = "anonymous"
            await self.app(scope, receive, send)
            return
        response: Response
        if path.startswith("/api/") or path in ("/openapi.json", "/docs") or bearer(headers):
            response = JSONResponse({"detail": "authentication required: send Authorization: Bearer <NELM_API_TOKEN>"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
        else:
            target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
            response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        await response(scope, receive, send)


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for bodies over the limit, declared (Content-Length) or streamed (chunked)."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {k.lower() for k, _ in headers}
                add = {b"x-content-type-options": b"nosniff", b"x-frame-options": b"DENY",
                       b"referrer-policy": b"no-referrer"}
                # patient data must not linger in shared browser or proxy caches
                if not path.startswith("/static/"):
                    add[b"cache-control"] = b"no-store"
                if not path.startswith(_NO_CSP):
                    add[b"content-security-policy"] = CSP.encode()
                headers.extend((k, v) for k, v in add.items() if k not in present)
            await send(message)

        await self.app(scope, receive, with_headers)


# ------------------------------------------------------------------ CSRF

def csrf_token(request: Request) -> str:
    """The token to put in this page's forms (the browser's cookie, or a new one)."""
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
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")


def csrf_ok(request: Request, submitted: Any) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    return isinstance(submitted, str) and bool(cookie) and hmac.compare_digest(submitted.encode(), cookie.encode())


def set_session_cookie(request: Request, response: Response, security: Security) -> None:
    response.set_cookie(SESSION_COOKIE, security.new_session(), max_age=SESSION_SECONDS, httponly=True,
                        samesite="lax", path="/", secure=request.url.scheme == "https")


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
