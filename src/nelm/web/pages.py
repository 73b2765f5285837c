"""Server-rendered pages for the tumour board: case form, assessment, case list, evidence.

Plain HTML forms, no JavaScript: every check happens on the server, and an invalid
submission comes back with each message beside its field (keyed by the dotted path
that :class:`~nelm.patient.InvalidPatient` reports).
"""
from __future__ import annotations

import base64
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from .. import __version__, inputgate, labels
from ..engine import DISCLAIMER
from ..evidence import TOPICS, citation_label, evidence_index, identity_established, public_text, verification_state
from ..evidence_view import SORTS, key_result, select
from ..knowledge import load
from ..patient import InvalidPatient, validate_patient
from ..summary import class_line, depends_line, obtain_list, patient_sections, plan_view, workup_lines
from ..knowledge.ruleset import MODALITY_LABELS
from ..store import CaseNotFound, CaseStore, StaleVersion, StoredVersion, VersionNotFound
from ..text import VERDICT_ORDER
from . import forms
from .security import (CSRF_FIELD, SESSION_COOKIE, actor_of, attach_csrf_cookie, csrf_token,
                       decision_text_problems, require_csrf, set_session_cookie, token_actor)
from .service import assess_and_store, refuse_empty, validated

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
PAGE_SIZE = 25


# ------------------------------------------------------------------ rendering helpers

def _local(value: dt.datetime | None) -> str:
    """Timestamps are stored in UTC and shown in the server's (the hospital's) time zone."""
    return "" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M")


def _words(value: Any) -> str:
    return "unknown" if value is None else str(value).replace("_", " ")


def _field_value(value: Any, field: str | None) -> str:
    """A value of a contract field as people read it, with its unit ("58 years", "small intestine")."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = labels.value_label(field, value) if isinstance(value, (str, bool)) or value is None else f"{value:g}"
    unit = labels.field_unit(field or "")
    return f"{text} {unit}" if unit and value is not None and not isinstance(value, (str, bool)) else text


templates.env.filters["local"] = _local
templates.env.filters["words"] = _words
templates.env.filters["field_label"] = labels.field_label
templates.env.filters["field_value"] = _field_value
templates.env.filters["cite"] = citation_label
templates.env.filters["guideline"] = labels.guideline_label
templates.env.filters["depends"] = depends_line
templates.env.filters["public"] = public_text
templates.env.globals["verification"] = verification_state
templates.env.globals["identified"] = lambda rid: rid not in evidence_index() or identity_established(evidence_index()[rid])
templates.env.globals.update(disclaimer=DISCLAIMER, nelm_version=__version__, forms=forms,
                             csrf_field=CSRF_FIELD, workup=(), workup_fields=())


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    kb = load()
    ctx = {"csrf_token": csrf_token(request), "kb": kb,
           "auth_enabled": request.app.state.security.token is not None, **context}
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    attach_csrf_cookie(request, response)
    return response


def wants_html(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/api/") or path in ("/openapi.json",))


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "message": message}, status_code=status)


def _store(request: Request) -> CaseStore:
    return request.app.state.store




def _check_case_id(case_id: str) -> None:
    # only ids the store made reach it (PostgreSQL refuses NUL in a parameter with an error)
    if not inputgate.is_case_id(case_id):
        raise HTTPException(404, "No case with this id.")


def _version_number(n: str) -> int:
    """A version in a page's URL; anything but 1..MAX_VERSION in ASCII digits is no version."""
    number = inputgate.whole_number(n, inputgate.MAX_VERSION)
    if number is None:
        raise HTTPException(404, "This case has no such version.")
    return number


def _load_version(request: Request, case_id: str, n: int | None) -> StoredVersion:
    _check_case_id(case_id)
    store = _store(request)
    try:
        return store.latest(case_id) if n is None else store.version(case_id, n)
    except CaseNotFound:
        raise HTTPException(404, "No case with this id.") from None
    except VersionNotFound:
        raise HTTPException(404, "This case has no such version.") from None


# ------------------------------------------------------------------ assessment view

def offered_guidelines(kb: Any) -> list[str]:
    """The guideline profiles worth offering: the default, and those with a threshold of their
    own in the knowledge base (a profile whose variants were all removed changes nothing)."""
    with_variants = {g for _, g, _ in kb.variant_nodes}
    default = getattr(kb.manifest, "default_guideline", None) or kb.guideline
    return [g for g in kb.manifest.guidelines if g == default or g in with_variants]


def _option_groups(assessment: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Options by modality (the knowledge base's order), best verdicts first within each."""
    by_mod: dict[str, list[dict[str, Any]]] = {}
    for o in assessment.get("options", []):
        by_mod.setdefault(o.get("modality", "other"), []).append(o)
    order = list(MODALITY_LABELS) + [m for m in by_mod if m not in MODALITY_LABELS]
    rank = {v: i for i, v in enumerate(VERDICT_ORDER)}
    return [(MODALITY_LABELS.get(m, _words(m)), sorted(by_mod[m], key=lambda o: rank.get(o["verdict"], 99)))
            for m in order if m in by_mod]


def _affects_labels(assessment: dict[str, Any], affects: list[str]) -> list[str]:
    names = {o["id"]: o.get("label", o["id"]) for o in assessment.get("options", [])}
    names |= {k: c.get("label", k) for k, c in assessment.get("criteria", {}).items()}
    return [names.get(a) or _words(a.removeprefix("classification.")) for a in affects]


def _missing(assessment: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for m in assessment.get("missing_data", []):
        label = labels.field_label(m["field"])
        out.append({"field": m["field"], "label": label, "affects": _affects_labels(assessment, m["affects"])})
    # the fact that would settle the most questions first: that is what to chase before the board
    return sorted(out, key=lambda m: -len(m["affects"]))


def _class_rows(c: dict[str, Any]) -> list[dict[str, str]]:
    keys = ("category", "who_grade", "ki67_grade", "mitotic_grade", "grade_basis", "frilling_type", "burden_band",
            "who2000_behaviour")
    return [{"label": labels.classification_label(k), "value": labels.classification_value(k, c.get(k))}
            for k in keys if k in c or k in ("category", "who_grade")]


def _decision_views(store: CaseStore, case_id: str) -> list[dict[str, Any]]:
    from ..knowledge.ruleset import OPTION_LABELS

    return [d | {"version": e.version, "recorded_at": e.at, "recorded_by": e.actor,
                 "chosen_labels": [OPTION_LABELS.get(o, o) for o in d.get("chosen", [])]}
            for e, d in store.decisions(case_id)]


def _svg_img(svg: bytes, alt: str) -> Markup:
    """An SVG chart as an image (data: URI): the page's Content-Security-Policy forbids inline
    styles, which matplotlib's SVG uses; an image renders them in its own document."""
    data = base64.b64encode(svg).decode("ascii")
    return Markup('<img class="chart-img" alt="{}" src="data:image/svg+xml;base64,{}">').format(alt, Markup(data))


def _chart_blocks(assessment: dict[str, Any], limit: int = 4) -> list[dict[str, Any]]:
    """Inline SVG charts of the planned options' outcomes, one cohort per option, side by side."""
    from ..outcomes import charts  # matplotlib: only when a page shows charts

    options = {o["id"]: o for o in assessment.get("options", [])}
    planned = [oid for st in (assessment.get("plan") or {}).get("steps", []) for oid in st.get("options", [])]
    blocks = []
    for oid in dict.fromkeys(planned):
        o = options.get(oid)
        groups = charts.group_by_cohort(o.get("outcomes", [])) if o else []
        if not groups or not groups[0][0].get("curve"):
            continue
        arms = groups[0]
        first = arms[0]
        blocks.append({"option": o, "title": first.get("title") or first["cohort"], "endpoint": first["endpoint"],
                       "source": first["source"], "source_label": first.get("source_label") or first["source"],
                       "match_reason": first.get("match_reason"),
                       "single_median": any(charts.single_median(a) for a in arms),
                       "arms": [{"label": a.get("label") or a["arm"], "median": charts.median_text(a)} for a in arms],
                       "image": _svg_img(charts.render(arms, "svg"), f"{first.get('title') or first['cohort']}: "
                                         f"reconstructed {first['endpoint']} curves")})
        if len(blocks) == limit:
            break
    return blocks


def _chart_caption() -> str:
    from ..outcomes.charts import CAPTION

    return CAPTION


def _assessment_page(request: Request, v: StoredVersion, guideline: str | None = None, *,
                     decision_form: dict[str, Any] | None = None, decision_errors: list[Any] | None = None,
                     status_code: int = 200) -> HTMLResponse:
    from ..assessment import assess
    from ..compare import guideline_comparison
    from ..knowledge.ruleset import OPTION_LABELS

    store = _store(request)
    versions = store.versions(v.case_id)
    store.record("view", actor=actor_of(request), case_id=v.case_id, version=v.version, detail="page")
    kb = load()
    stored_guideline = (v.assessment.get("knowledge_base") or {}).get("guideline") or kb.guideline
    profiles = kb.manifest.guidelines
    offered = list(dict.fromkeys([stored_guideline] + offered_guidelines(kb)))
    guideline = guideline if guideline in offered else stored_guideline
    patient = validate_patient(v.patient)
    # every offered profile's assessment: the comparison table, and the view under another source
    under = {g: (v.assessment if g == stored_guideline else assess(patient, g)) for g in offered}
    a = under[guideline]
    change = guideline_comparison({stored_guideline: under[stored_guideline], guideline: a}) \
        if guideline != stored_guideline else None
    plan = plan_view(a)
    decisions = _decision_views(store, v.case_id)
    today = dt.date.today().isoformat()
    return render(request, "assessment.html", {
        "v": v, "a": a, "versions": versions, "latest": versions[-1].version,
        "option_groups": _option_groups(a), "missing": _missing(a), "obtain": obtain_list(a),
        "known_sources": set(evidence_index()),
        "kb_changed": v.kb_sha256 != kb.sha256,
        "patient_sections": patient_sections(v.patient),
        "plan": plan, "draft": (a.get("plan") or {}).get("status") == "undetermined",
        "class_line": class_line(a.get("classification", {})), "class_rows": _class_rows(a.get("classification", {})),
        "guideline": guideline, "stored_guideline": stored_guideline, "viewing_other": guideline != stored_guideline,
        "guidelines": [(g, labels.guideline_label(g), profiles[g].label if g in profiles else "") for g in offered],
        "guideline_name": labels.guideline_label(guideline),
        "stored_guideline_name": labels.guideline_label(stored_guideline),
        "guideline_label": profiles[guideline].label if guideline in profiles else guideline,
        "profile_change": change,
        "comparison": guideline_comparison(under) if len(under) > 1 else None,
        "chart_blocks": _chart_blocks(a), "caption": _chart_caption(),
        "decisions": decisions, "current_decision": next((d for d in reversed(decisions) if d["version"] == v.version), None),
        "option_choices": [(o, OPTION_LABELS.get(o, o)) for o in kb.option_ids],
        "short_labels": OPTION_LABELS,
        "decision_form": decision_form or {"chosen": [], "rationale": "", "deviation_reason": "", "attendees": "",
                                           "decided_on": today, "signed_by": ""},
        "decision_errors": decision_errors or [],
    }, status_code=status_code)


# ------------------------------------------------------------------ routes: cases

@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/cases", status_code=303)


@router.get("/cases/new")
def new_case(request: Request) -> HTMLResponse:
    return render(request, "case_form.html", {"state": forms.FormState(), "action": "/cases", "case": None})


async def _submit(request: Request, case_id: str | None) -> Response:
    form = await request.form()
    require_csrf(request, form)
    items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    parsed = forms.document_from_form(items)
    # the version the editor opened: saving over a newer one is refused (the form's If-Match)
    base = inputgate.whole_number(str(form.get("_base_version") or ""), inputgate.MAX_VERSION) if case_id else None
    if case_id is not None and base is None:  # an edit must say what it started from: never a blind overwrite
        raise HTTPException(428, "This edit does not say which version of the case it started from, so it could "
                                 "overwrite changes you have not seen. Open the case, choose Edit and save again.")
    try:
        patient = validated(parsed.document)
        refuse_empty(patient)
    except InvalidPatient as exc:
        state = forms.state_from_form(items)
        forms.place_problems(state, exc.problems, parsed.renames)
        action = "/cases" if case_id is None else f"/cases/{case_id}"
        return render(request, "case_form.html", {"state": state, "action": action, "case": case_id,
                                                  "version": base}, status_code=422)
    try:
        v = await run_in_threadpool(lambda: assess_and_store(_store(request), patient, actor=actor_of(request),
                                                             case_id=case_id, expected_latest=base))
    except CaseNotFound:
        raise HTTPException(404, "No case with this id.") from None
    except StaleVersion as exc:
        state = forms.state_from_form(items)
        return render(request, "case_form.html", {"state": state, "action": f"/cases/{case_id}", "case": case_id,
                                                  "version": exc.latest, "stale": exc}, status_code=409)
    return RedirectResponse(f"/cases/{v.case_id}", status_code=303)


@router.post("/cases")
async def create_case(request: Request) -> Response:
    return await _submit(request, None)


# the case list's columns a coordinator filters and sorts by (besides the label search and date)
CASE_SORTS = {"changed": "last change", "label": "case", "classification": "classification",
              "leading": "leading option", "plan": "plan status", "decision": "decision"}
PLAN_FILTERS = ("determined", "conditional", "undetermined")
DECISION_FILTERS = {"none": "no decision yet", "decided": "decided", "departs": "departs from the plan",
                    "stale": "decided on an earlier version"}
_ALL_CASES = 2000  # a computed filter or sort reads at most this many cases


def _case_row(store: CaseStore, c: Any) -> dict[str, Any]:
    """One row of the coordinator's list: classification, working plan, decision, last change."""
    from ..knowledge.ruleset import OPTION_LABELS

    try:
        v = store.latest(c.id)
    except CaseNotFound:
        v = None
    a = v.assessment if v is not None else {}
    plan = a.get("plan") or {}
    steps = plan.get("steps") or []
    lead = steps[0]["options"][0] if steps and steps[0].get("options") else None
    verdicts = {o["id"]: o["verdict"] for o in a.get("options", [])}
    decisions = store.decisions(c.id)
    latest_decision = decisions[-1] if decisions else None
    if latest_decision is None:
        decision, decision_text = "none", "no decision yet"
    else:
        e, d = latest_decision
        chosen = ", ".join(OPTION_LABELS.get(o, o) for o in d.get("chosen", [])) or "no active treatment"
        if e.version != c.latest_version:
            decision, decision_text = "stale", f"decided on version {e.version} ({chosen}); case changed since"
        elif d.get("departures"):
            decision, decision_text = "departs", f"{d.get('decided_on')}: {chosen} — departs from the plan"
        else:
            decision, decision_text = "decided", f"{d.get('decided_on')}: {chosen}"
    changed = max([c.updated_at] + [e.at for e, _ in decisions if getattr(e, "at", None) is not None])
    return {"c": c, "changed": changed, "classification": class_line(a.get("classification", {})) if a else "",
            "leading": OPTION_LABELS.get(lead, lead) if lead else "none",
            "leading_verdict": verdicts.get(lead, ""), "plan": plan.get("status", ""),
            "decision": decision, "decision_text": decision_text}


def _sort_key(key: str):
    order = {"plan": {s: i for i, s in enumerate(PLAN_FILTERS)},
             "decision": {s: i for i, s in enumerate(("none", "stale", "departs", "decided"))}}
    if key == "label":
        return lambda r: ((r["c"].patient_label or "~").lower(),)
    if key in order:
        return lambda r: (order[key].get(r[key], 9), -r["changed"].timestamp())
    if key in ("classification", "leading"):
        return lambda r: (r[key].lower(), -r["changed"].timestamp())
    return lambda r: (-r["changed"].timestamp(),)


@router.get("/cases")
def list_cases(request: Request, q: str = "", date: str = "", page: str = "1", plan: str = "",
               decision: str = "", sort: str = "changed") -> HTMLResponse:
    # Lenient parameters: a page should answer a mistyped filter with a message, not a JSON
    # error; but bounded like the API's (nelm.inputgate), so no value reaches the store that
    # its columns or the calendar cannot take.
    problems = []
    on = None
    if date.strip():
        try:
            on = dt.date.fromisoformat(date.strip())
        except ValueError:
            problems.append(f"“{date}” is not a date; use YYYY-MM-DD.")
        else:
            if (problem := inputgate.date_problem(on)) is not None:
                problems.append(f"{problem[0].upper()}{problem[1:]}.")
                on = None
    search = q.strip()[:inputgate.MAX_SEARCH_CHARS]
    if search and (problem := inputgate.search_problem(search)) is not None:
        problems.append(f"The search was not run: {problem}.")
        search = ""
    plan = plan if plan in PLAN_FILTERS else ""
    decision = decision if decision in DECISION_FILTERS else ""
    sort = sort if sort in CASE_SORTS else "changed"
    page_n = inputgate.whole_number(page, inputgate.MAX_PAGE) or 1
    store = _store(request)
    if plan or decision or sort != "changed":
        # computed columns: read the matching cases, filter and sort them here, then page
        everything = store.list(page=1, page_size=_ALL_CASES, search=search or None, on=on)
        rows = [_case_row(store, c) for c in everything.items]
        rows = [r for r in rows if (not plan or r["plan"] == plan) and (not decision or r["decision"] == decision)]
        rows.sort(key=_sort_key(sort))
        total = len(rows)
        rows = rows[(page_n - 1) * PAGE_SIZE: page_n * PAGE_SIZE]
    else:
        found = store.list(page=page_n, page_size=PAGE_SIZE, search=search or None, on=on)
        total = found.total
        rows = [_case_row(store, c) for c in found.items]
    pages = max(1, -(-total // PAGE_SIZE))

    def link(n: int) -> str:
        return "/cases?" + urlencode({k: v for k, v in (("q", q), ("date", date), ("plan", plan),
                                                         ("decision", decision),
                                                         ("sort", "" if sort == "changed" else sort),
                                                         ("page", n)) if v})

    filtered = bool(q or date or plan or decision)
    return render(request, "cases.html", {"rows": rows, "total": total, "page": page_n, "q": q, "date": date,
                                          "plan": plan, "decision": decision, "sort": sort, "sorts": CASE_SORTS,
                                          "plan_filters": PLAN_FILTERS, "decision_filters": DECISION_FILTERS,
                                          "filtered": filtered, "problems": problems, "pages": pages,
                                          "prev": link(page_n - 1) if page_n > 1 else None,
                                          "next": link(page_n + 1) if page_n < pages else None})


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: str, guideline: str = "") -> HTMLResponse:
    return _assessment_page(request, _load_version(request, case_id, None), guideline or None)


@router.get("/cases/{case_id}/versions/{n}")
def version_page(request: Request, case_id: str, n: str, guideline: str = "") -> HTMLResponse:
    return _assessment_page(request, _load_version(request, case_id, _version_number(n)), guideline or None)


@router.get("/cases/{case_id}/diff")
def diff_page(request: Request, case_id: str) -> HTMLResponse:
    from ..compare import version_diff

    q = request.query_params
    a = inputgate.whole_number(q.get("from", ""), inputgate.MAX_VERSION)
    b = inputgate.whole_number(q.get("to", ""), inputgate.MAX_VERSION)
    if a is None or b is None:
        raise HTTPException(422, "Choose two versions to compare (from=… and to=…, whole numbers).")
    va, vb = _load_version(request, case_id, a), _load_version(request, case_id, b)
    _store(request).record("view", actor=actor_of(request), case_id=case_id, version=b, detail=f"diff from version {a}")
    return render(request, "diff.html", {"case_id": va.case_id, "a": a, "b": b,
                                         "d": version_diff((va.patient, va.assessment), (vb.patient, vb.assessment))})


@router.post("/cases/{case_id}/versions/{n}/decision")
async def record_decision(request: Request, case_id: str, n: str) -> Response:
    from ..decision import InvalidDecision, record_of, validate_decision

    form = await request.form()
    require_csrf(request, form)
    v = await run_in_threadpool(_load_version, request, case_id, _version_number(n))
    text = lambda k: str(form.get(k) or "").strip()  # noqa: E731
    data = {"chosen": [c for c in form.getlist("chosen") if isinstance(c, str) and c],
            "rationale": text("rationale"), "deviation_reason": text("deviation_reason") or None,
            "attendees": [line.strip() for line in text("attendees").splitlines() if line.strip()],
            "decided_on": text("decided_on"), "signed_by": text("signed_by")}
    try:
        if bad_text := decision_text_problems(data):  # NUL, escape and other control characters: as the API
            raise InvalidDecision(bad_text)
        decision, gone = validate_decision(data, v.assessment)
    except InvalidDecision as exc:
        shown = data | {"attendees": text("attendees"), "deviation_reason": text("deviation_reason")}
        problems = [(f, f"{_DECISION_FIELDS.get(f.split('.')[0], f)}: {m}") for f, m in exc.problems]
        return await run_in_threadpool(lambda: _assessment_page(request, v, decision_form=shown,
                                                                decision_errors=problems, status_code=422))
    await run_in_threadpool(lambda: _store(request).decide(v.case_id, v.version, record_of(decision, gone),
                                                           actor=actor_of(request)))
    return RedirectResponse(f"/cases/{v.case_id}/versions/{v.version}#decision", status_code=303)


_DECISION_FIELDS = {"chosen": "Chosen treatments", "rationale": "Rationale", "deviation_reason": "Reason for departing",
                    "attendees": "Attendees", "decided_on": "Date of the board", "signed_by": "Signed by"}


@router.get("/cases/{case_id}/edit")
def edit_case(request: Request, case_id: str) -> HTMLResponse:
    v = _load_version(request, case_id, None)
    # contract v3: what the plan still waits for, at the top of the form and marked on its fields
    workup = workup_lines((v.assessment or {}).get("plan") or {})
    wanted = [f for w in workup for f in w["fields"]] or [
        f for f in ((v.assessment or {}).get("plan") or {}).get("missing", []) if isinstance(f, str)]
    return render(request, "case_form.html", {"state": forms.state_from_document(v.patient),
                                              "action": f"/cases/{case_id}", "case": case_id, "version": v.version,
                                              "workup": workup, "workup_fields": wanted})


@router.post("/cases/{case_id}")
async def update_case(request: Request, case_id: str) -> Response:
    _check_case_id(case_id)
    return await _submit(request, case_id)


# ------------------------------------------------------------------ the full report, built in the background
# The full report takes seconds (every chart, every page): the case page's button opens a page
# that starts the build in a worker thread and shows its progress (reloading itself once a
# second, no script), then hands over the PDF. Built PDFs are kept for a few minutes, per process.

_FULL_JOBS: dict[tuple[str, int, str, str], dict[str, Any]] = {}
_FULL_LOCK = threading.Lock()
_FULL_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nelm-full-report")
_FULL_KEEP_SECONDS = 600
_FULL_MAX_JOBS = 16


def _full_key(v: StoredVersion, decision: dict[str, Any] | None) -> tuple[str, int, str, str]:
    import hashlib
    import json

    return (v.case_id, v.version, v.kb_sha256,
            hashlib.sha256(json.dumps(decision, sort_keys=True, default=str).encode()).hexdigest())


def _full_job(patient: Any, assessment: dict[str, Any], decision: dict[str, Any] | None,
              key: tuple[str, int, str, str]) -> dict[str, Any]:
    """The job building one full report: started once, shared by every request for it."""
    import time

    from ..report import build_pdf

    now = time.monotonic()
    with _FULL_LOCK:
        for k in [k for k, j in _FULL_JOBS.items() if now - j["started"] > _FULL_KEEP_SECONDS
                  or (len(_FULL_JOBS) > _FULL_MAX_JOBS and j["state"] != "running")]:
            _FULL_JOBS.pop(k, None)
        job = _FULL_JOBS.get(key)
        if job is not None and job["state"] != "failed":
            return job
        job = _FULL_JOBS[key] = {"state": "running", "step": "starting", "done": 0, "total": 1,
                                 "started": now, "pdf": None, "error": None}

    def progress(step: str, done: int, total: int) -> None:
        job.update(step=step, done=done, total=max(total, 1))

    def run() -> None:
        try:
            job["pdf"] = build_pdf(patient, assessment, full=True, decision=decision, progress=progress)
            job.update(state="done", step="ready", done=job["total"])
        except Exception as exc:  # noqa: BLE001 - shown on the progress page, never a traceback
            job.update(state="failed", error=f"{type(exc).__name__}: {exc}")

    _FULL_EXECUTOR.submit(run)
    return job


@router.get("/cases/{case_id}/versions/{n}/full-report")
async def full_report_page(request: Request, case_id: str, n: str) -> Response:
    """Start (or follow) the background build of the full report and show its progress."""
    version = _version_number(n)
    v = await run_in_threadpool(_load_version, request, case_id, version)
    decided = [d for e, d in _store(request).decisions(v.case_id) if e.version == v.version]
    decision = decided[-1] if decided else None
    job = _full_job(validate_patient(v.patient), v.assessment, decision, _full_key(v, decision))
    pdf_url = f"/cases/{v.case_id}/versions/{v.version}/report.pdf?full=1"
    return render(request, "full_report.html", {"v": v, "job": job, "pdf_url": pdf_url,
                                                "percent": int(100 * job["done"] / job["total"])})


@router.get("/cases/{case_id}/versions/{n}/report.{fmt}")
async def report(request: Request, case_id: str, n: str, fmt: str, full: str = "") -> Response:
    """The two-page board summary (with the decision recorded on this version), or ?full=1 the whole report."""
    if fmt not in ("html", "pdf"):
        raise HTTPException(404, "Reports come as .html or .pdf.")
    version = _version_number(n)
    v = await run_in_threadpool(_load_version, request, case_id, version)
    from ..report import build_html, build_pdf  # another module's work; imported late on purpose

    patient = validate_patient(v.patient)
    whole = full.lower() in ("1", "true", "yes")
    decided = [d for e, d in _store(request).decisions(v.case_id) if e.version == v.version]
    decision = decided[-1] if decided else None
    try:
        job = _FULL_JOBS.get(_full_key(v, decision)) if whole and fmt == "pdf" else None
        if job is not None and job["state"] == "done":
            body: bytes | str = job["pdf"]  # built in the background (full_report_page)
        elif whole:
            # the full report can take minutes: a child process with a deadline, stopped if the client leaves
            body = await _bounded_report(request, fmt, patient, v.assessment, decision)
        elif fmt == "pdf":
            body = await run_in_threadpool(lambda: build_pdf(patient, v.assessment, full=whole, decision=decision))
        else:
            body = await run_in_threadpool(lambda: build_html(patient, v.assessment, full=whole, decision=decision))
    except NotImplementedError:
        raise HTTPException(501, "The printable report is not available in this version of nelm yet.") from None
    await run_in_threadpool(_store(request).record, "export", actor=actor_of(request), case_id=case_id,
                            version=version, detail=f"report.{fmt}")
    name = f"nelm-case-{case_id[:8]}-v{version}{'-full' if whole else ''}.{fmt}"
    if fmt == "pdf":
        return Response(body, media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    # The report is a standalone document with its own inline styles (and possibly
    # embedded charts): allow those, still no scripts and no outside requests.
    return HTMLResponse(body, headers={
        "Content-Disposition": f'inline; filename="{name}"',
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                   "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"})


async def _bounded_report(request: Request, fmt: str, patient: Any, assessment: dict[str, Any],
                          decision: dict[str, Any] | None) -> bytes | str:
    from . import reportjob

    seconds = reportjob.report_seconds()
    try:
        return await reportjob.run_bounded(reportjob.build_report, (fmt, patient, assessment, True, decision),
                                           seconds=seconds, disconnected=request.is_disconnected)
    except reportjob.JobTimeout:
        raise HTTPException(503, f"The full report took longer than {seconds:g} seconds and was stopped. The "
                                 "two-page board summary (the other button) is available at once.") from None
    except reportjob.ClientGone:
        raise HTTPException(503, "The report was stopped: the browser went away.") from None
    except reportjob.JobsBusy:
        raise HTTPException(503, "Other full reports are being built just now; try again in a minute. The "
                                 "two-page board summary is available at once.", headers={"Retry-After": "30"}) from None
    except reportjob.JobFailed as exc:
        raise HTTPException(500, f"The full report could not be built ({exc}).") from None


# ------------------------------------------------------------------ routes: evidence

@router.get("/evidence")
def evidence_list(request: Request, option: str = "", q: str = "", sort: str = "year") -> HTMLResponse:
    option = option if option in TOPICS else ""
    sort = sort if sort in SORTS else "year"
    q = q[:inputgate.MAX_SEARCH_CHARS]
    records = select(option=option or None, search=q.strip() or None, sort=sort)
    labels = {o.id: o.label for o in load().options}
    topics = [(t, labels.get(t, _words(t))) for t in TOPICS]
    return render(request, "evidence_list.html", {"records": records, "option": option, "q": q, "topics": topics,
                                                  "sort": sort, "sorts": SORTS,
                                                  "key_results": {r.id: key_result(r) for r in records}})


@router.get("/evidence/{record_id}")
def evidence_record(request: Request, record_id: str) -> HTMLResponse:
    record = evidence_index().get(record_id)
    if record is None:
        raise HTTPException(404, "No evidence record with this id.")
    labels = {o.id: o.label for o in load().options}
    return render(request, "evidence_record.html", {"r": record, "topic_labels": labels})


# ------------------------------------------------------------------ routes: login

def _safe_next(target: str | None) -> str:
    # only a path on this site: never an absolute or protocol-relative URL (open redirect)
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/cases"


@router.get("/login")
def login_page(request: Request, next: str = "/cases") -> Response:
    if request.app.state.security.token is None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"next": _safe_next(next), "failed": False})


@router.post("/login")
async def login(request: Request) -> Response:
    security = request.app.state.security
    form = await request.form()
    require_csrf(request, form)
    target = _safe_next(str(form.get("next") or ""))
    if security.token is None:
        return RedirectResponse(target, status_code=303)
    offered = form.get("token")
    if not security.token_ok(offered if isinstance(offered, str) else None):
        await run_in_threadpool(_store(request).record, "login_failed", actor="anonymous")
        return render(request, "login.html", {"next": target, "failed": True}, status_code=401)
    response = RedirectResponse(target, status_code=303)
    await run_in_threadpool(set_session_cookie, request, response, security)  # a row in the case store
    await run_in_threadpool(_store(request).record, "login", actor=token_actor(security.token))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    require_csrf(request, form)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
