"""Cohort analytics in the web app (issue 23): upload a registry table, get the report.

``GET /cohort`` is the upload form; ``POST /cohort`` reads the file into a temporary
directory that is deleted before the response leaves (nothing is stored: not the file,
not the report), runs :func:`nelm.cohort.analysis.analyse` off the event loop and answers
with the report as a page of the app (or, with "download", as the standalone HTML file).
The form is protected like every form page of the app: the double-submit CSRF token of
:mod:`nelm.web.security` (``require_csrf``), and, when the app has a token, the login the
``AuthMiddleware`` requires for every request. The upload is subject to the app's request
size limit (``MAX_BODY_BYTES``); larger registries go through ``nelm cohort``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from ..knowledge import load
from .security import MAX_BODY_BYTES, attach_csrf_cookie, csrf_token, require_csrf

router = APIRouter(include_in_schema=False)
_WEB_TEMPLATES = Path(__file__).parent / "templates"
_COHORT_TEMPLATES = Path(__file__).resolve().parent.parent / "cohort" / "templates"
_FORMATS = (".csv", ".parquet", ".jsonl", ".ndjson")


def _templates() -> Jinja2Templates:
    """The app's templates (base.html, its filters and globals) and the cohort report's body."""
    from ..cohort.report import _p, _num, _pct
    from . import pages

    env = Environment(loader=ChoiceLoader([FileSystemLoader(_WEB_TEMPLATES), FileSystemLoader(_COHORT_TEMPLATES)]),
                      autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pages.templates.env.filters)
    env.globals.update(pages.templates.env.globals)
    env.filters.update(num=_num, pct=_pct, p=_p)
    return Jinja2Templates(env=env)


_templates_cache: list[Jinja2Templates] = []


def _render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    if not _templates_cache:
        _templates_cache.append(_templates())
    ctx = {"csrf_token": csrf_token(request), "kb": load(),
           "auth_enabled": request.app.state.security.token is not None, **context}
    response = _templates_cache[0].TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    attach_csrf_cookie(request, response)
    return response


def _form(request: Request, problems: list[str], values: dict[str, str], status: int = 200) -> HTMLResponse:
    from ..cohort.designs import DESIGNS

    return _render(request, "cohort_upload.html", {"problems": problems, "values": values, "designs": DESIGNS,
                                                   "limit_kib": MAX_BODY_BYTES // 1024}, status)


@router.get("/cohort")
def cohort_page(request: Request) -> HTMLResponse:
    return _form(request, [], {})


@router.post("/cohort")
async def cohort_report(request: Request) -> Response:
    form = await request.form()
    require_csrf(request, form)
    values = {k: str(form.get(k) or "").strip() for k in ("design", "group", "covariates", "endpoint")}
    values["download"] = "1" if form.get("download") else ""
    upload = form.get("registry")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return _form(request, ["choose a registry file (.csv, .parquet or .jsonl)"], values, 422)
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in _FORMATS:
        return _form(request, [f"{upload.filename}: the registry must be .csv, .parquet or .jsonl (JSON Lines)"],
                     values, 422)
    raw = await upload.read(MAX_BODY_BYTES + 1)

    def run() -> Any:
        from ..cohort.analysis import analyse

        # the file lives only in this directory, removed when the analysis is done
        with tempfile.TemporaryDirectory(prefix="nelm-cohort-") as tmp:
            path = Path(tmp) / f"registry{suffix}"
            path.write_bytes(raw)
            return analyse(path, design=values["design"] or None, group=values["group"] or None,
                           covariates=values["covariates"] or None, endpoint=values["endpoint"] or None,
                           source_name=Path(upload.filename).name)

    try:
        result = await run_in_threadpool(run)
    except ValueError as exc:
        return _form(request, [str(exc)], values, 422)
    except Exception as exc:  # an unreadable file (not CSV, broken Parquet): say so, keep the form
        return _form(request, [f"{upload.filename} could not be read as a table: {type(exc).__name__}: {exc}"],
                     values, 422)
    if values["download"]:
        from ..cohort.report import render_html

        return Response(render_html(result), media_type="text/html; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="cohort-report.html"',
                                 "Cache-Control": "no-store"})
    from ..cohort.report import figure_uri

    return _render(request, "cohort_report.html",
                   {"r": result.report, "figures": {k: figure_uri(v) for k, v in result.figures.items()}},
                   422 if result.report["problems"] else 200)
