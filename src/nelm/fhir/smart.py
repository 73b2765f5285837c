"""SMART App Launch 2.0, EHR launch: a CDS card's ``smart`` link opens the case in nelm.

The card (CDS Hooks 2.0 Link: ``type: "smart"``, ``url`` = ``<app>/smart/launch``,
``appContext`` = ``{"case": "<case id>"}``) makes the EHR open

1. ``GET /smart/launch?iss=<FHIR server>&launch=<opaque>``: ``iss`` must be on the FHIR-server
   allow-list (``NELM_CDS_FHIR_SERVERS``; here an empty list allows nothing, since a launch
   logs the browser in); its ``{iss}/.well-known/smart-configuration`` names the
   authorization and token endpoints. The browser is sent to the authorization endpoint with
   ``response_type=code``, ``client_id`` (``NELM_SMART_CLIENT_ID``), ``redirect_uri``,
   ``scope``, ``aud=iss``, ``launch``, a random ``state`` bound to a server-side record
   (and to this browser by a cookie) and a PKCE S256 challenge.
2. ``GET /smart/callback?code&state``: the state is looked up and used up (once, within ten
   minutes, from the browser it was issued to); the code is exchanged at the token endpoint
   with the PKCE verifier; the response's ``patient`` and ``appContext`` name the case, which
   must be the one nelm keeps for that FHIR patient of that server (one case per patient, see
   ``web._case_label``); the EHR user (``id_token``: ``fhirUser``, else ``sub``) acts in the
   audit log and the web session opened for the case page.

The ``id_token``'s signature is verified with the server's JWKS (``jwks_uri`` of the SMART
configuration) with PyJWT, as CDS client JWTs are (:mod:`.auth`); a configuration without
``jwks_uri`` leaves the back channel's TLS as the token's authentication (OpenID Connect Core
§3.1.3.7 allows it for a token received directly from the token endpoint), and the audit entry
says ``"id_token": "unverified"``. The access token is not kept: nelm reads nothing more from
the EHR here. OAuth parameters are built with Authlib (RFC 6749 and RFC 7636 helpers).
"""
from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .auth import ALGORITHMS, CdsSettings, fhir_server_problem, _internal

LAUNCH_SECONDS = 600           # a launch must come back within ten minutes
MAX_PENDING = 1000             # launches waiting for their callback, at most
HTTP_TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 256 * 1024
STATE_COOKIE = "nelm_smart_state"
LAUNCH_PATH = "smart/launch"
CALLBACK_PATH = "smart/callback"

router = APIRouter(include_in_schema=False)


class SmartError(Exception):
    """The launch cannot go on: ``status`` and what to tell the user (never a token)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Launch:
    """The server-side record a ``state`` is bound to."""

    iss: str
    launch: str
    verifier: str
    redirect_uri: str
    token_endpoint: str
    jwks_uri: str | None
    issuer: str | None
    at: float


@dataclass
class Launches:
    """Pending launches by state: single use, ten minutes. In the process's memory: the
    callback must reach the worker that served the launch (one worker, or sticky sessions)."""

    pending: dict[str, Launch] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, state: str, launch: Launch) -> None:
        with self.lock:
            self._expire(launch.at)
            if len(self.pending) >= MAX_PENDING:
                self.pending.pop(next(iter(self.pending)))
            self.pending[state] = launch

    def take(self, state: str, now: float) -> Launch | None:
        with self.lock:
            self._expire(now)
            return self.pending.pop(state, None)

    def _expire(self, now: float) -> None:
        for key in [k for k, v in self.pending.items() if now - v.at > LAUNCH_SECONDS]:
            del self.pending[key]


def launches_of(request: Request) -> Launches:
    state = request.app.state
    if not hasattr(state, "smart_launches"):
        state.smart_launches = Launches()
    return state.smart_launches


def base_url(request: Request, settings: CdsSettings) -> str:
    """The app's public URL (``NELM_CDS_BASE_URL`` behind a proxy), ending in ``/``."""
    return (settings.base_url or str(request.base_url)).rstrip("/") + "/"


def card_link(base: str, case_id: str) -> dict[str, str]:
    """The CDS card's link (CDS Hooks 2.0 Link) that launches nelm on the case."""
    return {"label": "Open the case in nelm", "url": base + LAUNCH_PATH, "type": "smart",
            "appContext": json.dumps({"case": case_id}, separators=(",", ":"))}


# ------------------------------------------------------------------ outbound requests

def _endpoint_problem(url: Any, what: str, settings: CdsSettings) -> str | None:
    """An endpoint named by the SMART configuration: http(s), no credentials, not internal
    unless internal FHIR servers are allowed (the configuration must not steer us inward)."""
    if not isinstance(url, str):
        return f"the SMART configuration has no {what}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return f"the SMART configuration's {what} is not an http(s) URL"
    if not settings.allow_private and _internal(parts.hostname):
        return f"the SMART configuration's {what} names an internal address"
    return None


def _http(settings: CdsSettings, client: Any = None) -> Any:
    import httpx

    return client or httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False)


def _json(response: Any, what: str) -> dict[str, Any]:
    if len(response.content) > MAX_RESPONSE_BYTES:
        raise SmartError(502, f"the {what} is larger than {MAX_RESPONSE_BYTES // 1024} KiB")
    try:
        data = response.json()
    except ValueError:
        raise SmartError(502, f"the {what} is not JSON") from None
    if not isinstance(data, dict):
        raise SmartError(502, f"the {what} is not a JSON object")
    return data


def _send(settings: CdsSettings, client: Any, send: Any, failure: str) -> Any:
    """``send(http)`` with our HTTP client (or the one given, left open); a transport error
    is a 502 that says ``failure`` and the error's kind, never its text."""
    import httpx

    http = _http(settings, client)
    try:
        return send(http)
    except httpx.HTTPError as exc:
        raise SmartError(502, f"{failure} ({type(exc).__name__})") from None
    finally:
        if client is None:
            http.close()


def _get(url: str, what: str, settings: CdsSettings, client: Any = None) -> dict[str, Any]:
    response = _send(settings, client, lambda http: http.get(url, headers={"Accept": "application/json"}),
                     f"the {what} could not be fetched")
    if response.status_code != 200:
        raise SmartError(502, f"the {what} could not be fetched (HTTP {response.status_code})")
    return _json(response, what)


def discover(iss: str, settings: CdsSettings, client: Any = None) -> dict[str, Any]:
    """The FHIR server's SMART configuration, its endpoints checked."""
    config = _get(iss.rstrip("/") + "/.well-known/smart-configuration", "SMART configuration", settings, client)
    for key in ("authorization_endpoint", "token_endpoint"):
        problem = _endpoint_problem(config.get(key), key, settings)
        if problem:
            raise SmartError(502, problem)
    if config.get("jwks_uri") is not None:
        problem = _endpoint_problem(config.get("jwks_uri"), "jwks_uri", settings)
        if problem:
            raise SmartError(502, problem)
    methods = config.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise SmartError(502, "the authorization server does not support PKCE S256 "
                              "(code_challenge_methods_supported)")
    return config


# ------------------------------------------------------------------ 1. the launch

def start(request: Request, iss: str | None, launch: str | None, settings: CdsSettings,
          client: Any = None) -> tuple[str, str]:
    """The authorization URL to send the browser to, and the state (its record kept)."""
    from authlib.common.security import generate_token
    from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    if not settings.smart_client_id:
        raise SmartError(503, "SMART launch is not configured here: set NELM_SMART_CLIENT_ID")
    if not iss:
        raise SmartError(422, "iss: required, the EHR's FHIR server")
    if not launch:
        raise SmartError(422, "launch: required, the EHR's launch context")
    if not settings.fhir_servers:
        # a launch logs the browser in as whoever the server's authorization says: never from any server
        raise SmartError(403, "iss: no FHIR server is allowed to launch nelm (set NELM_CDS_FHIR_SERVERS)")
    problem = fhir_server_problem(iss, settings)
    if problem:
        raise SmartError(403, "iss: " + problem.replace("fhirServer", "the FHIR server"))
    config = discover(iss, settings, client)
    state = secrets.token_urlsafe(32)
    verifier = generate_token(64)  # RFC 7636: 43 to 128 characters of the unreserved set
    redirect_uri = base_url(request, settings) + CALLBACK_PATH
    launches_of(request).add(state, Launch(
        iss=iss, launch=launch, verifier=verifier, redirect_uri=redirect_uri,
        token_endpoint=config["token_endpoint"],
        jwks_uri=config.get("jwks_uri") if isinstance(config.get("jwks_uri"), str) else None,
        issuer=config.get("issuer") if isinstance(config.get("issuer"), str) else None, at=time.time()))
    url = prepare_grant_uri(config["authorization_endpoint"], settings.smart_client_id, "code",
                            redirect_uri=redirect_uri, scope=settings.smart_scope, state=state, aud=iss,
                            launch=launch, code_challenge=create_s256_code_challenge(verifier),
                            code_challenge_method="S256")
    return url, state


# ------------------------------------------------------------------ 2. the callback

@dataclass
class Opened:
    case_id: str
    actor: str
    verified: bool
    patient: str


def exchange(record: Launch, code: str, settings: CdsSettings, client: Any = None) -> dict[str, Any]:
    """The token response for ``code`` (with the PKCE verifier)."""
    from authlib.oauth2.rfc6749.parameters import prepare_token_request

    body = prepare_token_request("authorization_code", code=code, redirect_uri=record.redirect_uri,
                                 client_id=settings.smart_client_id, code_verifier=record.verifier)
    response = _send(settings, client, lambda http: http.post(
        record.token_endpoint, content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}),
        "the token endpoint could not be reached")
    if response.status_code != 200:
        why = ""
        try:
            data = response.json()
            why = f": {data.get('error')}" if isinstance(data, dict) and isinstance(data.get("error"), str) else ""
        except ValueError:
            pass
        raise SmartError(502, f"the token endpoint refused the code (HTTP {response.status_code}{why[:100]})")
    token = _json(response, "token response")
    if not isinstance(token.get("access_token"), str):
        raise SmartError(502, "the token response has no access_token")
    return token


def identity(token: dict[str, Any], record: Launch, settings: CdsSettings, client: Any = None
             ) -> tuple[str, bool]:
    """Who the EHR says the user is (``fhirUser``, else ``sub``), and whether the id_token's
    signature was verified."""
    import jwt

    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SmartError(502, "the token response has no id_token: the EHR user cannot be named "
                              "(the scope asks for openid fhirUser)")
    options = {"require": ["iss", "sub", "aud", "exp"]}
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise SmartError(502, "the id_token is not a well-formed JWT") from None
    verified = record.jwks_uri is not None
    if verified:
        if header.get("alg") not in ALGORITHMS:
            raise SmartError(502, f"id_token alg {header.get('alg')!r} is not accepted (asymmetric algorithms only)")
        jwks = _get(record.jwks_uri, "authorization server's key set", settings, client)  # type: ignore[arg-type]
        keys = [k for k in jwks.get("keys") or [] if isinstance(k, dict)
                and (header.get("kid") is None or k.get("kid") == header.get("kid"))]
        claims = None
        for jwk in keys:
            try:
                claims = jwt.decode(id_token, key=jwt.PyJWK(jwk).key, algorithms=[header["alg"]],
                                    audience=settings.smart_client_id, leeway=30, options=options)
                break
            except jwt.ExpiredSignatureError:
                raise SmartError(502, "the id_token has expired") from None
            except jwt.InvalidAudienceError:
                raise SmartError(502, "the id_token's aud is not nelm's client id") from None
            except (jwt.PyJWTError, ValueError, KeyError):
                continue
        if claims is None:
            raise SmartError(502, "the id_token's signature does not verify with the authorization server's keys")
    else:
        try:
            claims = jwt.decode(id_token, options={**options, "verify_signature": False},
                                audience=settings.smart_client_id, leeway=30)
        except jwt.PyJWTError as exc:
            raise SmartError(502, f"the id_token is not acceptable ({type(exc).__name__})") from None
    if record.issuer and claims.get("iss") != record.issuer:
        raise SmartError(502, "the id_token's iss is not the authorization server's issuer")
    who = claims.get("fhirUser") if isinstance(claims.get("fhirUser"), str) else claims.get("sub")
    if not isinstance(who, str) or not who:
        raise SmartError(502, "the id_token names no user (fhirUser or sub)")
    return f"ehr:{who}"[:100], verified


def case_for(store: Any, token: dict[str, Any], record: Launch) -> tuple[str, str]:
    """The case the launch opens and the FHIR patient: the token's ``patient`` names the case
    nelm keeps for that patient of that server; an ``appContext`` case must be that one."""
    from .web import _case_label, _case_of

    patient = token.get("patient")
    if not isinstance(patient, str) or not patient:
        raise SmartError(403, "the token response names no patient: nelm opens a case only in a patient's context")
    label = _case_label({"fhirServer": record.iss}, None, f"Patient/{patient}")
    case_id = _case_of(store, label)
    wanted = None
    app_context = token.get("appContext")
    if isinstance(app_context, str) and app_context:
        try:
            parsed = json.loads(app_context)
        except ValueError:
            parsed = None
        wanted = parsed.get("case") if isinstance(parsed, dict) else None
        if not isinstance(wanted, str):
            raise SmartError(422, "appContext: expected {\"case\": \"<case id>\"} as nelm's card sets it")
    if case_id is None:
        raise SmartError(404, f"nelm keeps no case for this patient of {urlsplit(record.iss).netloc} yet: "
                              "open the patient's chart so that nelm's CDS service assesses it first")
    if wanted is not None and wanted != case_id:
        raise SmartError(403, "appContext: the case named is not this patient's case; nothing was opened")
    return case_id, patient


def finish(request: Request, code: str | None, state: str | None, error: str | None,
           settings: CdsSettings, client: Any = None) -> Opened:
    if error:
        raise SmartError(400, f"the EHR's authorization server refused the launch: {error[:100]}")
    if not state:
        raise SmartError(400, "state: required")
    if not code:
        raise SmartError(400, "code: required")
    record = launches_of(request).take(state, time.time())
    if record is None:
        raise SmartError(400, "state: unknown, used or expired (a launch must come back within "
                              f"{LAUNCH_SECONDS // 60} minutes, once); launch nelm again from the EHR")
    if not secrets.compare_digest(request.cookies.get(STATE_COOKIE, ""), state):
        # a callback the browser did not start (login CSRF): its launch is used up all the same
        raise SmartError(400, "state: not the launch this browser started; launch nelm again from the EHR")
    token = exchange(record, code, settings, client)
    actor, verified = identity(token, record, settings, client)
    case_id, patient = case_for(request.app.state.store, token, record)
    request.app.state.store.record("smart_launch", actor=actor, case_id=case_id, detail=json.dumps(
        {"iss": record.iss, "id_token": "verified" if verified else "unverified"},  # no patient id: the log outlives retention
        sort_keys=True))
    return Opened(case_id, actor, verified, patient)


# ------------------------------------------------------------------ routes

def _settings(request: Request) -> CdsSettings:
    return request.app.state.cds_settings


def _refusal(exc: SmartError) -> HTMLResponse:
    # a person's browser lands here: a page, with the field and reason named
    body = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>nelm: launch refused</title>"
            f"</head><body><h1>nelm could not be opened from the EHR</h1><p>{html.escape(exc.message)}</p></body></html>")
    return HTMLResponse(body, status_code=exc.status)


def _http_client(request: Request) -> Any:
    return getattr(request.app.state, "smart_http_client", None)  # tests may inject one


@router.get("/smart/launch")
async def smart_launch(request: Request, iss: str | None = None, launch: str | None = None) -> Response:
    """SMART EHR launch: to the EHR's authorization endpoint (state, PKCE S256, aud=iss)."""
    settings = _settings(request)
    try:
        url, state = await run_in_threadpool(start, request, iss, launch, settings, _http_client(request))
    except SmartError as exc:
        return _refusal(exc)
    response = RedirectResponse(url, status_code=302)
    # Lax: sent back on the authorization server's top-level redirect to the callback
    response.set_cookie(STATE_COOKIE, state, max_age=LAUNCH_SECONDS, httponly=True, samesite="lax",
                        path="/smart/", secure=request.url.scheme == "https" or _secure_cookies(request))
    return response


def _secure_cookies(request: Request) -> bool:
    security = getattr(request.app.state, "security", None)
    return bool(security and security.secure_cookies)


@router.get("/smart/callback")
async def smart_callback(request: Request, code: str | None = None, state: str | None = None,
                         error: str | None = None) -> Response:
    """The authorization server's redirect: code → token → the case page, as the EHR user."""
    from ..web.security import set_session_cookie

    settings = _settings(request)
    try:
        opened = await run_in_threadpool(finish, request, code, state, error, settings, _http_client(request))
    except SmartError as exc:
        # the state cookie stays: a forged callback must not spoil the launch under way
        return _refusal(exc)
    target = f"/cases/{opened.case_id}"
    # The session cookie is SameSite=Strict: a redirect chain that began at the EHR would not
    # carry it, so this page (our own site) moves on to the case page itself.
    page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"refresh\" content=\"0;url={html.escape(target)}\"><title>nelm</title></head>"
            f"<body><p><a href=\"{html.escape(target)}\">Open the case in nelm</a></p></body></html>")
    response: Response = HTMLResponse(page)
    response.delete_cookie(STATE_COOKIE, path="/smart/")
    security = getattr(request.app.state, "security", None)
    if security is not None and security.token:
        await run_in_threadpool(set_session_cookie, request, response, security, opened.actor)
    return response
