"""The FastAPI application: REST API under /api/v1, server-rendered pages, one case store."""
from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from html import escape
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from .. import __version__
from ..engine import DISCLAIMER
from ..evidence import evidence_index
from ..knowledge import load
from ..decision import BoardDecision
from ..patient import InvalidPatient, Patient
from ..store import CaseStore, SessionStore
from . import api, pages
from .security import (ALLOWED_HOSTS_ENV, MAX_BODY_BYTES, MIN_TOKEN_LENGTH, AuthMiddleware, BodyLimitMiddleware,
                       HostCheckMiddleware, OriginCheckMiddleware, Security, SecurityHeadersMiddleware, parse_hosts,
                       secure_cookies_from_env)

STATIC_DIR = Path(__file__).parent / "static"

DESCRIPTION = """Decision support for neuroendocrine liver metastases: classification, eligibility
criteria, an explained verdict for every treatment option, and the evidence behind it.
The patient document and the assessment follow the project's contract; an unknown
(null or absent) field is never read as "no". nelm supports, and does not replace, the
judgement of a multidisciplinary tumour board."""


def create_app(database_url: str | None = None, api_token: str | None = None, *,
               allowed_hosts: Iterable[str] | None = None, secure_cookies: bool | None = None) -> FastAPI:
    """The app on a store at ``database_url`` (default: SQLite in the user data dir).

    With ``api_token`` every request must present it (Bearer header or login cookie).
    It answers requests for 127.0.0.1, localhost, ::1, the address a request arrived at,
    and ``allowed_hosts`` (default: ``NELM_ALLOWED_HOSTS``, comma-separated). Cookies are
    Secure over HTTPS, and always with ``secure_cookies`` (default: ``NELM_SECURE_COOKIES``).
    Migrations run here, before the first request can arrive.
    """
    if api_token is not None and len(api_token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the API token must be at least {MIN_TOKEN_LENGTH} characters")
    security = Security(
        token=api_token or None,
        allowed_hosts=parse_hosts(os.environ.get(ALLOWED_HOSTS_ENV, "")) if allowed_hosts is None else allowed_hosts,
        secure_cookies=secure_cookies_from_env() if secure_cookies is None else secure_cookies)
    store = CaseStore.open(database_url)
    security.sessions = SessionStore(store.engine)  # login sessions in the store: every worker sees them
    # Load the knowledge base and the evidence now: a broken data file fails the start,
    # not a clinician's first request, and the first assessment is not slow.
    load()
    evidence_index()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    # /docs is our own route (below) so that it carries the disclaimer and says what to do offline
    app = FastAPI(title="nelm", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.store = store
    app.state.security = security

    app.include_router(api.router)
    from ..fhir.web import include_fhir  # FHIR import, CDS Hooks (issue 11); before pages: /cases/import

    include_fhir(app)
    app.include_router(pages.router)
    from .cohort import router as cohort_router  # cohort analytics upload (issue 23)

    app.include_router(cohort_router)
    app.add_api_route("/docs", _docs, include_in_schema=False, response_class=HTMLResponse)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    app.add_exception_handler(InvalidPatient, _invalid_patient)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    # added last = runs first: headers on every response, then the Host check, the Origin
    # check of state-changing requests, the size cap, auth
    app.add_middleware(AuthMiddleware, security=security)
    app.add_middleware(BodyLimitMiddleware, max_body=MAX_BODY_BYTES)
    app.add_middleware(OriginCheckMiddleware)
    app.add_middleware(HostCheckMiddleware, security=security)
    app.add_middleware(SecurityHeadersMiddleware)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


# ------------------------------------------------------------------ errors

async def _invalid_patient(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidPatient)
    return JSONResponse({"detail": exc.as_dicts()}, status_code=422)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own parameter errors, in the same {field, message} shape as nelm's."""
    assert isinstance(exc, RequestValidationError)
    detail = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("query", "path", "body", "header", "cookie"):
            loc = loc[1:]
        detail.append({"field": ".".join(loc), "message": err.get("msg", "invalid")})
    return JSONResponse({"detail": detail}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, StarletteHTTPException)
    if pages.wants_html(request):
        return pages.error_page(request, exc.status_code, str(exc.detail))
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


# ------------------------------------------------------------------ OpenAPI

def _docs() -> HTMLResponse:
    """Swagger UI served from this machine (the swagger-ui-bundle package's assets under
    /docs-assets), so the interactive reference works without internet access."""
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="nelm API",
                               swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs-assets/swagger-ui.css",
                               swagger_favicon_url="/docs-assets/favicon-32x32.png").body.decode()
    note = ('<div style="font-family:sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem">'
            '<p>nelm REST API, version 1, under <code>/api/v1</code>. The OpenAPI document is at '
            '<a href="/openapi.json">/openapi.json</a>.</p></div>')
    footer = f'<footer style="font-family:sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem"><em>{escape(DISCLAIMER)}</em></footer>'
    page = page.replace("<body>", "<body>" + note, 1).replace("</body>", footer + "</body>", 1)
    return HTMLResponse(page)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the patient document, which the API reads as raw JSON."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    patient = Patient.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(patient.pop("$defs", {}))
    components["Patient"] = patient
    components["BoardDecision"] = BoardDecision.model_json_schema()
    app.openapi_schema = schema
    return schema
