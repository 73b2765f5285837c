"""CDS Hooks 2.0 client authentication, CORS and the CDS settings (issue 20 item 4, issue 24 item 3).

An EHR calling a CDS service signs a JWT (CDS Hooks 2.0, "Trusting CDS Clients"): header
``alg`` (asymmetric: RS384 / ES384 recommended), ``kid``, optionally ``jku``; claims ``iss``
(the client), ``aud`` (the URL of the service called), ``exp``, ``iat``, ``jti``. nelm accepts
it when

* ``iss`` is a configured client (:class:`CdsClient`), and the key that verifies the signature
  comes from that client's configured JWKS, or from a ``jku`` on the client's ``jku``
  allow-list (fetched with a time-out, never from any other URL);
* ``aud`` is the service's URL (``NELM_CDS_BASE_URL`` + ``cds-services/<id>``, or the URL the
  request arrived at);
* ``exp`` has not passed (30 s leeway), and ``jti`` was not seen before (replay).

The project's static token (``NELM_API_TOKEN``) keeps working for scripts. A request that
presents neither gets 401 as JSON on these paths, never the HTML login page. CORS is answered
for the configured origins only. Settings come from the environment (:func:`settings_from_env`)
or ``app.state.cds_settings``.
"""
from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CLIENTS_ENV = "NELM_CDS_CLIENTS"              # JSON file: [{"iss", "jwks" | "jwks_url", "jku": [...]}]
BASE_URL_ENV = "NELM_CDS_BASE_URL"            # the public URL of the app, for aud (behind a proxy)
CORS_ENV = "NELM_CDS_CORS_ORIGINS"            # comma-separated origins allowed to call the CDS services
FHIR_SERVERS_ENV = "NELM_CDS_FHIR_SERVERS"    # comma-separated base URLs a hook's fhirServer may name
PRIVATE_ENV = "NELM_CDS_ALLOW_PRIVATE_FHIR"   # 1: allow fhirServer on internal addresses (loopback, private)
DEADLINE_ENV = "NELM_CDS_DEADLINE_SECONDS"    # total time for all FHIR fetches of one hook call
RETENTION_ENV = "NELM_CDS_RETENTION_DAYS"      # days a case the CDS service keeps outlives its last assessment
RETENTION_DAYS = 90
SMART_CLIENT_ENV = "NELM_SMART_CLIENT_ID"     # nelm's client id at the EHR's authorization server (SMART launch)
SMART_SCOPE_ENV = "NELM_SMART_SCOPE"          # the scopes a SMART launch asks for
SMART_SCOPE = "launch openid fhirUser patient/*.read"

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]
LEEWAY_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 3.0
MAX_JWKS_BYTES = 256 * 1024
CDS_PREFIX = "/cds-services"


class CdsAuthError(Exception):
    """The JWT cannot be trusted; ``str()`` says why (never the token)."""


@dataclass(frozen=True)
class CdsClient:
    iss: str
    jwks: dict[str, Any] | None = None       # keys given in the configuration
    jwks_url: str | None = None              # or where to fetch them
    jku: tuple[str, ...] = ()                # jku header values accepted for this client


@dataclass
class CdsSettings:
    clients: dict[str, CdsClient] = field(default_factory=dict)
    base_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    fhir_servers: tuple[str, ...] = ()       # empty: any public http(s) server (see allow_private)
    allow_private: bool = False
    deadline_seconds: float = 8.0
    retention_days: int = RETENTION_DAYS      # CDS cases are purged this long after their last version
    smart_client_id: str | None = None       # None: no SMART launch (cards link to the page)
    smart_scope: str = SMART_SCOPE
    seen_jti: dict[str, float] = field(default_factory=dict)
    jwks_cache: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.clients)


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


def load_clients(path: str | Path) -> dict[str, CdsClient]:
    """The clients file: a JSON list of {"iss", "jwks" (a JWKS object) or "jwks_url", "jku": [urls]}."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of CDS clients")
    clients = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("iss"), str):
            raise ValueError(f"{path}: client {i}: 'iss' is required")
        jwks = item.get("jwks")
        if jwks is not None and not (isinstance(jwks, dict) and isinstance(jwks.get("keys"), list)):
            raise ValueError(f"{path}: client {i}: 'jwks' must be a JWKS object with 'keys'")
        url = item.get("jwks_url")
        jku = item.get("jku") or []
        for u in [*([url] if url else []), *jku]:
            if not isinstance(u, str) or urlsplit(u).scheme != "https":
                raise ValueError(f"{path}: client {i}: key URLs must be https URLs")
        if jwks is None and url is None and not jku:
            raise ValueError(f"{path}: client {i}: give 'jwks', 'jwks_url' or a 'jku' allow-list")
        clients[item["iss"]] = CdsClient(item["iss"], jwks, url, tuple(jku))
    return clients


def _retention_days(text: str | None) -> int:
    if not text:
        return RETENTION_DAYS
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise ValueError(f"{RETENTION_ENV}: a whole number of days, at least 1 (got {text!r})")
    return days


def settings_from_env() -> CdsSettings:
    clients_file = os.environ.get(CLIENTS_ENV)
    return CdsSettings(
        clients=load_clients(clients_file) if clients_file else {},
        base_url=os.environ.get(BASE_URL_ENV) or None,
        cors_origins=_split(os.environ.get(CORS_ENV)),
        fhir_servers=_split(os.environ.get(FHIR_SERVERS_ENV)),
        allow_private=os.environ.get(PRIVATE_ENV, "") == "1",
        deadline_seconds=float(os.environ.get(DEADLINE_ENV) or 8.0),
        retention_days=_retention_days(os.environ.get(RETENTION_ENV)),
        smart_client_id=os.environ.get(SMART_CLIENT_ENV) or None,
        smart_scope=os.environ.get(SMART_SCOPE_ENV) or SMART_SCOPE)


# ------------------------------------------------------------------ JWT

def looks_like_jwt(token: str | None) -> bool:
    return bool(token) and token.count(".") == 2  # type: ignore[union-attr]


def _fetch_jwks(url: str, settings: CdsSettings) -> dict[str, Any]:
    """A JWKS from an allow-listed https URL, cached for five minutes."""
    now = time.monotonic()
    cached = settings.jwks_cache.get(url)
    if cached and now - cached[0] < 300:
        return cached[1]
    import httpx

    try:
        with httpx.Client(timeout=JWKS_TIMEOUT_SECONDS, follow_redirects=False) as client:
            response = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise CdsAuthError(f"the client's key set could not be fetched ({type(exc).__name__})") from None
    if response.status_code != 200 or len(response.content) > MAX_JWKS_BYTES:
        raise CdsAuthError(f"the client's key set could not be fetched (HTTP {response.status_code})")
    try:
        jwks = response.json()
    except ValueError:
        raise CdsAuthError("the client's key set is not JSON") from None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise CdsAuthError("the client's key set has no keys")
    settings.jwks_cache[url] = (now, jwks)
    return jwks


def verify_jwt(token: str, audience: str, settings: CdsSettings, now: float | None = None) -> dict[str, Any]:
    """The verified claims, or CdsAuthError saying which check failed."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise CdsAuthError("the bearer token is not a well-formed JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise CdsAuthError(f"JWT alg {header.get('alg')!r} is not accepted (asymmetric algorithms only)")
    iss = unverified.get("iss")
    client = settings.clients.get(iss) if isinstance(iss, str) else None
    if client is None:
        raise CdsAuthError("the JWT's issuer is not a configured CDS client")
    jku = header.get("jku")
    if jku is not None:
        if jku not in client.jku:
            raise CdsAuthError("the JWT's jku is not on this client's allow-list")
        jwks = _fetch_jwks(jku, settings)
    elif client.jwks is not None:
        jwks = client.jwks
    elif client.jwks_url is not None:
        jwks = _fetch_jwks(client.jwks_url, settings)
    else:
        raise CdsAuthError("the JWT names no jku and the client has no configured keys")
    kid = header.get("kid")
    candidates = [k for k in jwks["keys"] if isinstance(k, dict) and (kid is None or k.get("kid") == kid)]
    if not candidates:
        raise CdsAuthError("no key of the client's key set matches the JWT's kid")
    last: Exception | None = None
    for jwk in candidates:
        try:
            key = jwt.PyJWK(jwk).key
            claims = jwt.decode(token, key=key, algorithms=[header["alg"]], audience=audience, issuer=iss,
                                leeway=LEEWAY_SECONDS, options={"require": ["iss", "aud", "exp", "jti"]})
            break
        except jwt.ExpiredSignatureError:
            raise CdsAuthError("the JWT has expired") from None
        except jwt.InvalidAudienceError:
            raise CdsAuthError("the JWT's aud is not this service's URL") from None
        except jwt.MissingRequiredClaimError as exc:
            raise CdsAuthError(f"the JWT lacks the claim {exc.claim!r}") from None
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            last = exc
    else:
        raise CdsAuthError("the JWT's signature does not verify with the client's keys"
                           + (f" ({type(last).__name__})" if last else ""))
    jti = claims["jti"]
    moment = time.time() if now is None else now
    with settings.lock:
        for old, expiry in list(settings.seen_jti.items()):
            if expiry < moment - LEEWAY_SECONDS:
                del settings.seen_jti[old]
        key = f"{iss}\x00{jti}"
        if key in settings.seen_jti:
            raise CdsAuthError("the JWT's jti was used before (replay)")
        settings.seen_jti[key] = float(claims["exp"])
    return claims


def audience_for(scope: Scope, settings: CdsSettings) -> str:
    """The URL of the service called, as ``aud`` must name it."""
    path: str = scope["path"]
    if settings.base_url:
        return settings.base_url.rstrip("/") + path
    headers = Headers(scope=scope)
    host = headers.get("host") or ""
    return f"{scope.get('scheme', 'http')}://{host}{path}"


# ------------------------------------------------------------------ fhirServer allow-list

def fhir_server_problem(url: str, settings: CdsSettings) -> str | None:
    """Why ``url`` may not be fetched from (None: it may): http(s) only; on the allow-list when
    one is configured; never an internal address (loopback, private, link-local, reserved)
    unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "fhirServer must be an http or https URL"
    if parts.username or parts.password:
        return "fhirServer must not carry credentials"
    if settings.fhir_servers:
        allowed = [s.rstrip("/") + "/" for s in settings.fhir_servers]
        if not any((url.rstrip("/") + "/").startswith(a) for a in allowed):
            return "fhirServer is not on the configured allow-list (NELM_CDS_FHIR_SERVERS)"
    if not settings.allow_private and _internal(parts.hostname):
        return "fhirServer names an internal address; set NELM_CDS_ALLOW_PRIVATE_FHIR=1 to allow it"
    return None


def _internal(host: str) -> bool:
    import socket

    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        addresses = [ip]
    except ValueError:
        if host.lower() in ("localhost",) or host.lower().endswith((".localhost", ".local", ".internal")):
            return True
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False  # unresolvable: the fetch itself fails, nothing internal is reached
        addresses = [ipaddress.ip_address(i[4][0].split("%")[0]) for i in infos]
    return any(a.is_loopback or a.is_private or a.is_link_local or a.is_reserved or a.is_multicast
               or a.is_unspecified for a in addresses)


# ------------------------------------------------------------------ the middleware

class CdsAuthMiddleware:
    """On /cds-services paths: CORS for configured origins, JWT client authentication (a verified
    request skips the token check of the next middleware, ``skip``), and 401 as JSON."""

    def __init__(self, app: ASGIApp, settings_of: Any, security_of: Any):
        self.app = app
        self.settings_of = settings_of      # () -> CdsSettings
        self.security_of = security_of      # () -> web.security.Security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(CDS_PREFIX):
            await self.app(scope, receive, send)
            return
        settings: CdsSettings = self.settings_of()
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed_origin = origin if origin and origin in settings.cors_origins else None

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and allowed_origin:
                extra = [(b"access-control-allow-origin", allowed_origin.encode("latin-1")), (b"vary", b"Origin")]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if scope["method"] == "OPTIONS" and headers.get("access-control-request-method"):
            if not allowed_origin:
                await JSONResponse({"detail": "origin not allowed"}, status_code=403)(scope, receive, send)
                return
            await Response(status_code=204, headers={
                "Access-Control-Allow-Origin": allowed_origin, "Vary": "Origin",
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600"})(scope, receive, send)
            return
        auth = headers.get("authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        security = self.security_of()
        static_ok = security is not None and security.token is not None and security.token_ok(token)
        if looks_like_jwt(token) and not static_ok and settings.jwt_enabled:
            try:
                claims = verify_jwt(token, audience_for(scope, settings), settings)  # type: ignore[arg-type]
            except CdsAuthError as exc:
                await _unauthorized(str(exc), scope, receive, send_with_cors)
                return
            scope.setdefault("state", {})["actor"] = f"cds-client:{claims['iss']}"
            inner = getattr(self.app, "app", None) if _is_token_check(self.app) else None
            await (inner or self.app)(scope, receive, send_with_cors)
            return
        needs_auth = (security is not None and security.token is not None) or (
            settings.jwt_enabled and scope["method"] == "POST")
        if needs_auth and not static_ok:
            why = ("send a JWT signed by a configured CDS client (CDS Hooks 2.0), or the API token"
                   if settings.jwt_enabled else "send Authorization: Bearer <NELM_API_TOKEN>")
            await _unauthorized(f"authentication required: {why}", scope, receive, send_with_cors)
            return
        await self.app(scope, receive, send_with_cors)


def _is_token_check(app: Any) -> bool:
    from ..web.security import AuthMiddleware

    return isinstance(app, AuthMiddleware)


async def _unauthorized(message: str, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"detail": message}, status_code=401,
                       headers={"WWW-Authenticate": 'Bearer realm="cds-services"'})(scope, receive, send)


def install(app: Any) -> None:
    """Put :class:`CdsAuthMiddleware` just outside the app's token check (AuthMiddleware), which
    ``create_app`` adds after the FHIR routes: the middleware list is completed when the stack is
    first built, so the position is set then."""
    from starlette.middleware import Middleware

    from ..web.security import AuthMiddleware

    if not hasattr(app.state, "cds_settings"):
        app.state.cds_settings = settings_from_env()
    build = app.build_middleware_stack

    def build_with_cds() -> Any:
        if not any(m.cls is CdsAuthMiddleware for m in app.user_middleware):
            index = next((i for i, m in enumerate(app.user_middleware) if m.cls is AuthMiddleware),
                         len(app.user_middleware))
            app.user_middleware.insert(index, Middleware(
                CdsAuthMiddleware, settings_of=lambda: app.state.cds_settings,
                security_of=lambda: getattr(app.state, "security", None)))
        return build()

    app.build_middleware_stack = build_with_cds
