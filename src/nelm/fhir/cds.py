"""CDS Hooks 2.0 services: ``patient-view`` (the plan) and ``order-select`` (a warning for an
ordered drug or procedure that is contraindicated for this patient).

The hook's FHIR data (prefetch, or fetched from ``fhirServer`` with ``fhirAuthorization``
when the client sent none) becomes one Bundle, read by :mod:`nelm.fhir.reader` and
assessed by :func:`nelm.assessment.assess`; cards restate that assessment. Nothing is
decided here that the assessment did not decide.
"""
from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from .. import inputgate
from ..patient import InvalidPatient, Patient
from ..summary import or_join
from .auth import CdsSettings, fhir_server_problem
from .guidance import _verdict_words
from .mapping import load_mapping
from .reader import FhirImport, Unread, read_bundle

SUMMARY_MAX = 139  # the specification: "less than 140 characters"
FETCH_TIMEOUT_SECONDS = 10.0
MAX_FETCH_PAGES = 5  # a searchset is followed through at most this many pages (newest first)

def _observation_codes() -> str:
    """Every Observation code the mapping table reads, as a token list (system|code,...)."""
    m = load_mapping()
    return ",".join(f"{system}|{code}" for system, code in m.observations)


# What the reader reads, asked for the way EHRs accept (an Observation search names its codes:
# Epic refuses one without a code or category), newest first (a server that stops after a page
# drops the oldest records), with MedicationRequest and the Medications it names.
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    # no category filter: a Condition recorded without one (Synthea, some problem lists) would be lost
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&code=" + _observation_codes() + "&_sort=-date",
    "procedures": "Procedure?patient={{context.patientId}}&_sort=-date",
    "medications": "MedicationStatement?patient={{context.patientId}}",
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication",
}

SERVICES: dict[str, dict[str, Any]] = {
    "nelm-plan": {
        "hook": "patient-view",
        "id": "nelm-plan",
        "title": "nelm: treatment plan for neuroendocrine liver metastases",
        "description": "The treatment plan and a verdict for every option, with reasons and evidence, from the "
                       "patient's record (supports, never replaces, the tumour board).",
        "prefetch": PREFETCH,
        "usageRequirements": "The patient has neuroendocrine liver metastases.",
    },
    "nelm-order-check": {
        "hook": "order-select",
        "id": "nelm-order-check",
        "title": "nelm: is the selected order contraindicated?",
        "description": "Warns when a selected drug or procedure order is contraindicated (critical) or not "
                       "recommended (warning) for this patient with neuroendocrine liver metastases.",
        "prefetch": PREFETCH,
    },
    "nelm-order-sign": {
        "hook": "order-sign",
        "id": "nelm-order-sign",
        "title": "nelm: check the orders about to be signed",
        "description": "Before signing: warns when a drug or procedure order is contraindicated (critical, with a "
                       "suggestion to remove it) or not recommended (warning) for this patient with neuroendocrine "
                       "liver metastases.",
        "prefetch": PREFETCH,
    },
}
ORDER_HOOKS = ("order-select", "order-sign")

INDICATOR = {"contraindicated": "critical", "not_recommended": "warning"}


class HookError(Exception):
    """A hook that cannot be answered: ``status`` 412 (data unobtainable) or 422 (bad request)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class WrongPatient(HookError):
    """The prefetched or fetched Patient is not the ``context.patientId`` the EHR asked about:
    nothing is assessed; the hook answers with a critical card (:func:`wrong_patient_card`)."""

    def __init__(self, asked: str, got: list[str]):
        super().__init__(200, f"the record sent is of Patient {', '.join(got)}, not of Patient {asked} "
                              "(context.patientId): nothing was assessed")
        self.asked = asked
        self.got = got


# ------------------------------------------------------------------ the request

def _context(body: dict[str, Any]) -> dict[str, Any]:
    context = body.get("context")
    if not isinstance(context, dict):
        raise HookError(422, "context: required, an object")
    if not isinstance(context.get("patientId"), str) or not context["patientId"]:
        raise HookError(422, "context.patientId: required, the FHIR id of the patient")
    return context


def check_request(service_id: str, body: Any) -> dict[str, Any]:
    """The hook request's required members (CDS Hooks 2.0 §HTTP Request), or HookError 422."""
    if service_id not in SERVICES:
        raise HookError(404, f"no CDS service {service_id!r}; see GET /cds-services")
    if not isinstance(body, dict):
        raise HookError(422, "the hook request must be a JSON object")
    for key in ("hook", "hookInstance"):
        if not isinstance(body.get(key), str):
            raise HookError(422, f"{key}: required, a string")
    if body["hook"] != SERVICES[service_id]["hook"]:
        raise HookError(422, f"hook: this service answers {SERVICES[service_id]['hook']!r}, got {body['hook']!r}")
    _context(body)
    if "prefetch" in body and not isinstance(body["prefetch"], dict):
        raise HookError(422, "prefetch: an object of prefetch keys")
    return body


# ------------------------------------------------------------------ FHIR data: prefetch or fetch

def _fill(template: str, context: dict[str, Any]) -> str:
    out = template
    for key in ("patientId", "userId", "encounterId"):
        if isinstance(context.get(key), str):
            out = out.replace("{{context.%s}}" % key, context[key])
    return out


def _fetcher(body: dict[str, Any], settings: CdsSettings | None = None,
             deadline: float | None = None) -> Callable[[str], Any]:
    """GET ``fhirServer``/query with ``fhirAuthorization``; HookError 412 when it cannot.

    Only from a ``fhirServer`` the settings allow (the allow-list; no internal address unless
    allowed); the token goes to that server only (next-page links elsewhere are refused, no
    redirect is followed); every fetch ends by the hook's total ``deadline`` (monotonic time).
    """
    settings = settings or CdsSettings()
    server = body.get("fhirServer")
    if not isinstance(server, str) or urlsplit(server).scheme not in ("http", "https") or not urlsplit(server).netloc:
        raise HookError(412, "prefetch data is missing and no usable fhirServer (http or https URL) was given")
    problem = fhir_server_problem(server, settings)
    if problem:
        raise HookError(412, problem)
    auth = body.get("fhirAuthorization")
    headers = {"Accept": "application/fhir+json"}
    if isinstance(auth, dict) and isinstance(auth.get("access_token"), str):
        headers["Authorization"] = f"Bearer {auth['access_token']}"
    base = server.rstrip("/") + "/"
    end = deadline if deadline is not None else time.monotonic() + settings.deadline_seconds

    def fetch(query: str) -> Any:
        import httpx  # imported when a hook has to fetch

        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", query) and not query.startswith(base):
            raise HookError(412, "a next-page link points away from the fhirServer; not followed")
        url = query if query.startswith(base) else base + query.lstrip("/")
        left = end - time.monotonic()
        if left <= 0:
            raise HookError(412, f"the FHIR server did not answer within the hook's {settings.deadline_seconds:g} s")
        timeout = httpx.Timeout(min(FETCH_TIMEOUT_SECONDS, left))
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, headers=headers) as client:
                with client.stream("GET", url) as response:
                    if response.status_code == 404 and query.startswith("Patient/"):
                        raise HookError(412, f"the FHIR server has no {query}")
                    if response.status_code != 200:
                        raise HookError(412, f"the FHIR server answered {response.status_code} to {_short(query)}")
                    raw = b""
                    for chunk in response.iter_bytes():
                        raw += chunk
                        if len(raw) > inputgate.MAX_DOCUMENT_BYTES:
                            raise HookError(412, f"the FHIR server's answer to {_short(query)} is larger than "
                                                 f"{inputgate.MAX_DOCUMENT_BYTES // 1024} KiB")
                        if time.monotonic() > end:
                            raise HookError(412, "the FHIR server did not answer within the hook's "
                                                 f"{settings.deadline_seconds:g} s")
        except httpx.HTTPError as exc:
            raise HookError(412, f"the FHIR server could not be reached for {_short(query)} "
                                 f"({type(exc).__name__})") from None
        try:
            return inputgate.parse_text(inputgate.decode(raw, "FHIR server answer"), "json")
        except InvalidPatient as exc:
            raise HookError(412, f"the FHIR server's answer to {_short(query)} is not usable JSON: {exc}") from None

    return fetch


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _short(query: str) -> str:
    return query.split("?")[0] + ("?…" if "?" in query else "")


def _resources(value: Any, fetch: Callable[[str], Any] | None, skipped: list[Unread]) -> list[dict[str, Any]]:
    """The resources of one prefetch value: a resource, or a (searchset) Bundle followed page by page;
    a next page that cannot be fetched is noted in ``skipped``. Search-outcome entries are kept:
    the reader lists their warnings (records possibly missing)."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") != "Bundle":
        return [value]
    out, page, pages = [], value, 0
    while True:
        out += [e["resource"] for e in _list(page.get("entry")) if isinstance(e, dict)
                and isinstance(e.get("resource"), dict)]
        nxt = next((link.get("url") for link in _list(page.get("link")) if isinstance(link, dict)
                    and link.get("relation") == "next" and isinstance(link.get("url"), str)), None)
        pages += 1
        if nxt and (fetch is None or pages >= MAX_FETCH_PAGES):
            why = "no fhirServer to fetch it from" if fetch is None else f"at most {MAX_FETCH_PAGES} pages are read"
            skipped.append(Unread(f"search page {_short(nxt)}", f"WARNING: records may be missing: not read: {why}"))
        if not nxt or fetch is None or pages >= MAX_FETCH_PAGES:
            return out
        try:
            page = fetch(nxt)
        except HookError as exc:
            skipped.append(Unread(f"search page {_short(nxt)}", f"WARNING: records may be missing: {exc.message}"))
            return out
        if not isinstance(page, dict):
            return out


def _failed(value: Any) -> str | None:
    """What an OperationOutcome the EHR sent in place of a prefetch says (None: not one)."""
    if not isinstance(value, dict) or value.get("resourceType") != "OperationOutcome":
        return None
    issues = [i for i in _list(value.get("issue")) if isinstance(i, dict)]
    return "; ".join(str(i.get("diagnostics") or _get(i.get("details"), "text") or i.get("code") or "")
                     for i in issues[:3]) or "no details"


def hook_bundle(body: dict[str, Any], skipped: list[Unread] | None = None,
                settings: CdsSettings | None = None) -> dict[str, Any]:
    """One collection Bundle of the hook's data: prefetch, and fetched what the client left out.

    A prefetch key sent as ``null`` means the client found nothing; an absent key is fetched
    from ``fhirServer`` (412 when there is none, it is not allowed, or it does not answer in
    time). A prefetch the EHR reports as failed (an OperationOutcome) is fetched again when a
    fhirServer is usable; otherwise it is listed, so the card says records may be missing.
    All fetches run in parallel, within one deadline for the whole hook.
    """
    settings = settings or CdsSettings()
    skipped = skipped if skipped is not None else []
    context = _context(body)
    prefetch = body.get("prefetch") or {}
    failed = {k: _failed(prefetch.get(k)) for k in PREFETCH if _failed(prefetch.get(k))}
    missing = [k for k in PREFETCH if k not in prefetch]
    deadline = time.monotonic() + settings.deadline_seconds
    fetch: Callable[[str], Any] | None = None
    if missing:
        fetch = _fetcher(body, settings, deadline)  # 412 when there is no usable fhirServer
    elif body.get("fhirServer"):
        try:
            fetch = _fetcher(body, settings, deadline)  # for next pages and failed prefetches
        except HookError:
            fetch = None
    values: dict[str, Any] = {k: prefetch[k] for k in PREFETCH if k in prefetch and k not in failed}
    to_fetch = [k for k in PREFETCH if k in missing or (k in failed and fetch is not None)]
    for key, why in failed.items():
        if fetch is None:
            skipped.append(Unread(f"prefetch {key}", f"WARNING: records may be missing: the EHR could not supply "
                                                     f"them ({why}) and there is no fhirServer to fetch them from"))
    if to_fetch:
        assert fetch is not None
        with ThreadPoolExecutor(max_workers=min(6, len(to_fetch))) as pool:
            futures = {k: pool.submit(fetch, _fill(PREFETCH[k], context)) for k in to_fetch}
            for key, future in futures.items():
                try:
                    values[key] = future.result()
                except HookError as exc:
                    if key == "patient" or key in missing:
                        raise
                    skipped.append(Unread(f"prefetch {key}", f"WARNING: records may be missing: the EHR could not "
                                                             f"supply them ({failed[key]}), and fetching them "
                                                             f"again failed: {exc.message}"))
    resources: list[dict[str, Any]] = []
    for key in PREFETCH:
        if key in values:
            resources += _resources(values[key], fetch, skipped)
    if not any(r.get("resourceType") == "Patient" for r in resources):
        raise HookError(412, f"no Patient resource for patient {context['patientId']!r} in prefetch or on the FHIR server")
    others = sorted({str(r.get("id")) for r in resources if r.get("resourceType") == "Patient"} - {context["patientId"]})
    if others and not any(r.get("resourceType") == "Patient" and r.get("id") == context["patientId"] for r in resources):
        raise WrongPatient(context["patientId"], others)
    seen: set[str] = set()
    entries = []
    for r in resources:
        key = f"{r.get('resourceType')}/{r.get('id')}"
        if r.get("id") and key in seen:
            continue  # the same resource from two queries
        seen.add(key)
        entries.append({"fullUrl": key if r.get("id") else f"urn:uuid:{uuid.uuid4()}", "resource": r})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


# ------------------------------------------------------------------ cards

def _clip(text: str, limit: int = SUMMARY_MAX) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _md(text: str) -> str:
    # cards' detail is Markdown: keep the facts' text from being read as markup
    return "".join("\\" + ch if ch in "\\`*_[]<>#|" else ch for ch in text)


@dataclass
class Assessed:
    fhir: FhirImport
    patient: Patient
    assessment: dict[str, Any]
    link: str | None   # the full assessment page
    launch: dict[str, str] | None = None   # the SMART launch link (smart.card_link), when configured


def _source(a: dict[str, Any], base_url: str, sources: list[str]) -> dict[str, Any]:
    kb = a.get("knowledge_base") or {}
    src: dict[str, Any] = {"label": f"nelm {a.get('nelm_version', '')}, knowledge base {kb.get('version')}".strip()}
    src["url"] = f"{base_url}evidence/{sources[0]}" if sources else f"{base_url}evidence"
    return src


def _links(done: Assessed) -> list[dict[str, str]]:
    """The card's link to the case: a SMART launch (CDS Hooks 2.0 Link ``type: "smart"`` with the
    case in ``appContext``) when nelm has a SMART client id, else the page itself."""
    if done.launch:
        return [done.launch]
    return [{"label": "Full assessment in nelm", "url": done.link, "type": "absolute"}] if done.link else []


def _words(field: str | None) -> str:
    """A contract field in a clinician's words (labels.yaml), never its dotted path."""
    from ..labels import field_label

    return field_label(str(field)) if field else "record"


def _value_words(field: str | None, value: Any) -> str:
    from ..labels import value_label

    return value_label(str(field), value) if field else str(value)


def _conflict_words(c: Any) -> str:
    values = "; ".join(f"{_value_words(c.field, r.value)} ({r.source})" for r in c.readings)
    outcome = (f"the most recent governs: {_value_words(c.field, c.governing.value)}" if c.governing
               else "no date settles it, so it stays unknown")
    return f"{_words(c.field)}: {values}: {outcome}"


def _reason_words(reason: str) -> str:
    """An unread record's reason with any contract field path put in words."""
    from ..labels import fields

    for dotted in sorted(fields(), key=len, reverse=True):
        if "." in dotted and dotted in reason:
            reason = reason.replace(dotted, _words(dotted))
    return reason


def _reading_notes(done: Assessed) -> str:
    lines = []
    warnings = [u for u in done.fhir.unread if u.reason.startswith("WARNING")]
    if warnings:
        lines.append("\n**Records may be missing:**\n")
        lines += [f"- {_md(u.resource)}: {_md(_reason_words(u.reason))}" for u in warnings]
    if done.fhir.conflicts:
        lines.append("\n**Conflicting records** (the most recent governs):\n")
        lines += [f"- {_md(_conflict_words(c))}" for c in done.fhir.conflicts]
    for note in done.fhir.notes:
        lines.append(f"\n_{_md(_reason_words(note))}_")
    others = [u for u in done.fhir.unread if not u.reason.startswith("WARNING")]
    if others:
        lines.append(f"\n**Not read** ({len(others)} records):\n")
        lines += [f"- {_md(u.resource)}: {_md(_reason_words(u.reason))}" for u in others[:20]]
        if len(others) > 20:
            lines.append(f"- … and {len(others) - 20} more")
    return "\n".join(lines)


def plan_card(done: Assessed, base_url: str) -> dict[str, Any]:
    a = done.assessment
    plan = a.get("plan") or {}
    options = {o["id"]: o for o in a.get("options", [])}
    steps = plan.get("steps") or []
    status = plan.get("status", "undetermined")
    leading = next((step["options"][0] for step in steps if step["options"]), None)
    if leading is not None:
        lead = options.get(leading, {})
        summary = f"NELM plan ({status}): {lead.get('label', leading)}, {lead.get('verdict', '').replace('_', ' ')}"
    elif steps:  # a first step without an option: e.g. correct what rules surgery out, then reconsider
        summary = f"NELM plan ({status}): {steps[0].get('reason') or steps[0]['when']}"
    else:
        summary = f"NELM plan {status}: " + (", ".join(_words(m) for m in plan.get("missing") or [])
                                             or "no leading recommendation")
    lines = [f"**Plan: {status}**" + (f" ({_md(plan['pathway_label'])})" if plan.get("pathway_label") else ""), ""]
    for step in steps:
        names = ", ".join(f"{_md(options[i].get('label', i))} ({_verdict_words(options[i], step)})"
                          for i in step["options"] if i in options)
        lines.append(f"{step['step']}. **{step['when'].replace('_', ' ')}**: {names}  \n   {_md(step.get('reason') or '')}"
                     + (f" [{', '.join(step.get('sources') or [])}]" if step.get("sources") else ""))
    for assumption in plan.get("assumptions") or []:
        field = assumption.get("field")
        lines.append(f"- Assumes {_md(_words(field))}: {_md(_value_words(field, assumption.get('assumed')))}; "
                     f"if not: {_md(str(assumption.get('if_not') or ''))}")
    for branch in plan.get("branches") or []:
        # a merged branch's conditions are alternatives, each enough alone (contract v3)
        cond = or_join([str(c.get("label") or f"{_words(c.get('field'))}: {_value_words(c.get('field'), c.get('value'))}")
                        for c in branch.get("if") or []])
        names = "; ".join(", ".join(options.get(i, {}).get("label", i) for i in st.get("options") or [])
                          for st in branch.get("steps") or [])
        lines.append(f"- If {_md(cond)}: {_md(names or 'see the full assessment')}")
    for w in plan.get("workup") or []:
        lines.append(f"- First: {_md(str(w.get('order') or ''))}"
                     + (f" (decides {_md(str(w['decides']))})" if w.get("decides") else ""))
    if plan.get("missing"):
        lines.append("\n**Missing facts that would settle the plan:** " + ", ".join(_md(_words(m)) for m in plan["missing"]))
    lines.append("\n**Verdicts**\n")
    for o in a.get("options", []):
        decisive = next((r for r in o.get("reasons", []) if r.get("kind") == "decisive"), None) or (o.get("reasons") or [None])[0]
        lines.append(f"- {_md(o.get('label', o['id']))}: **{o['verdict'].replace('_', ' ')}**"
                     + (f": {_md(decisive['text'])} [{', '.join(decisive.get('sources', []))}]" if decisive else ""))
    lines.append(_reading_notes(done))
    lines.append(f"\n_{_md(a.get('disclaimer') or '')}_")
    missing_records = any(u.reason.startswith("WARNING") for u in done.fhir.unread)
    indicator = "warning" if status == "undetermined" or done.fhir.conflicts or missing_records else "info"
    first_sources = (steps[0].get("sources") if steps else None) or []
    return {"uuid": str(uuid.uuid4()), "summary": _clip(summary), "indicator": indicator, "detail": "\n".join(lines),
            "source": _source(a, base_url, first_sources), "links": _links(done)}


def _orders(context: dict[str, Any]) -> list[dict[str, Any]]:
    draft = context.get("draftOrders")
    entries = _list(draft.get("entry")) if isinstance(draft, dict) else []
    resources = [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    selections = context.get("selections")
    if isinstance(selections, list) and selections:
        chosen = {s for s in selections if isinstance(s, str)}
        resources = [r for r in resources if f"{r.get('resourceType')}/{r.get('id')}" in chosen]
    return resources


def _order_concept(resource: dict[str, Any]) -> dict[str, Any]:
    concept = resource.get("medicationCodeableConcept") or resource.get("code")
    if not isinstance(concept, dict):  # a contained Medication (medicationReference "#id")
        ref = _get(resource.get("medicationReference"), "reference")
        ref = ref if isinstance(ref, str) else None
        med = next((c for c in _list(resource.get("contained")) if isinstance(c, dict)
                    and ref and c.get("id") == ref.lstrip("#")), None)
        concept = (med or {}).get("code")
    return concept if isinstance(concept, dict) else {}


def _order_option(resource: dict[str, Any]) -> tuple[str | None, str]:
    """The option an order stands for (by code: RxNorm, ATC incl. BfArM, SNOMED CT, nelm's own; or
    a text naming one drug by its international name), and how it was recognised."""
    mapping = load_mapping()
    concept = _order_concept(resource)
    codings = concept.get("coding")
    for c in codings if isinstance(codings, list) else []:
        if isinstance(c, dict) and isinstance(c.get("code"), str):
            option = mapping.option_of(c.get("system") if isinstance(c.get("system"), str) else None, c["code"])
            if option:
                return option, f"{mapping.system_name(c.get('system'))} {c.get('code')}"
    text = concept.get("text")
    if isinstance(text, str) and not codings:
        words = set(re.findall(r"[a-z][a-z0-9-]*", text.lower()))
        hits = {t.option for name, t in mapping.treatment_names.items() if name in words}
        if len(hits) == 1:
            return hits.pop(), f"the text {text[:60]!r}"
    return None, ""


def _order_name(resource: dict[str, Any]) -> str:
    concept = _order_concept(resource)
    codings = concept.get("coding") if isinstance(concept.get("coding"), list) else []
    display = next((c.get("display") for c in codings if isinstance(c, dict) and isinstance(c.get("display"), str)), None)
    shown = concept.get("text") if isinstance(concept.get("text"), str) else display
    code = next((f"{load_mapping().system_name(c.get('system') if isinstance(c.get('system'), str) else None)} "
                 f"{c.get('code')}" for c in codings if isinstance(c, dict) and c.get("code")), None)
    return ", ".join(x for x in (shown, code) if x) or "an order without a code"


OVERRIDE_SYSTEM = "urn:nelm:override-reason"
OVERRIDE_REASONS = [
    {"system": OVERRIDE_SYSTEM, "code": "board-decision", "display": "The tumour board decided otherwise"},
    {"system": OVERRIDE_SYSTEM, "code": "record-incomplete", "display": "The record nelm read is incomplete or outdated"},
    {"system": OVERRIDE_SYSTEM, "code": "patient-preference", "display": "Informed patient preference"},
]


def order_cards(done: Assessed, context: dict[str, Any], base_url: str) -> list[dict[str, Any]]:
    """One card per selected (order-select) or draft (order-sign) order: critical with a suggestion
    to remove the draft when the option is contraindicated, warning when not recommended, info
    otherwise; an order nelm has no rule on gets an info card saying so (never silence, which
    would read as "no concern")."""
    options = {o["id"]: o for o in done.assessment.get("options", [])}
    cards = []
    for resource in _orders(context):
        option_id, code = _order_option(resource)
        if option_id is None or option_id not in options:
            cards.append({"uuid": str(uuid.uuid4()), "indicator": "info",
                          "summary": _clip(f"NELM has no rule on this order: {_order_name(resource)}"),
                          "detail": (f"nelm does not recognise **{_md(_order_name(resource))}** as one of the "
                                     "treatments it assesses for neuroendocrine liver metastases, so it says nothing "
                                     "about it: this is not a judgement that the order is safe."),
                          "source": _source(done.assessment, base_url, [])})
            continue
        o = options[option_id]
        verdict = o["verdict"]
        label = o.get("label", option_id)
        summary = {"contraindicated": f"{label} is contraindicated for this patient",
                   "not_recommended": f"{label} is not recommended for this patient",
                   "undetermined": f"{label}: undetermined until missing facts are known"}.get(
            verdict, f"{label}: {verdict.replace('_', ' ')} for this patient")
        reasons = o.get("reasons") or []
        lines = [f"**{_md(label)}** (ordered as {_md(code)}): **{verdict.replace('_', ' ')}**", ""]
        lines += [f"- {_md(r['text'])} [{', '.join(r.get('sources', []))}]" for r in reasons]
        for c in o.get("conditions") or []:
            lines.append(f"- Check before treatment: {_md(_words(c.get('field')))}: {_md(str(c.get('requirement')))}")
        lines.append(_reading_notes(done))
        lines.append(f"\n_{_md(done.assessment.get('disclaimer') or '')}_")
        sources = list(dict.fromkeys(s for r in reasons for s in r.get("sources", [])))
        card: dict[str, Any] = {"uuid": str(uuid.uuid4()), "summary": _clip("NELM: " + summary),
                                "indicator": INDICATOR.get(verdict, "info"), "detail": "\n".join(lines),
                                "source": _source(done.assessment, base_url, sources), "links": _links(done)}
        rid = resource.get("id")
        if verdict in ("contraindicated", "not_recommended"):
            card["overrideReasons"] = OVERRIDE_REASONS
        if verdict == "contraindicated" and isinstance(rid, str) and isinstance(resource.get("resourceType"), str):
            card["selectionBehavior"] = "at-most-one"
            card["suggestions"] = [{"label": f"Remove the {label} order", "uuid": str(uuid.uuid4()), "isRecommended": True,
                                    "actions": [{"type": "delete", "description": f"Remove the draft {label} order",
                                                 "resourceId": f"{resource['resourceType']}/{rid}"}]}]
        cards.append(card)
    return cards


def invalid_card(exc: InvalidPatient, base_url: str) -> dict[str, Any]:
    """The record could not be assessed: say which facts, in words, from which records."""
    lines = ["No assessment was made from the patient's FHIR record: it gives values nelm refuses, or none "
             "of the facts an assessment starts from could be read:", ""]
    lines += [f"- **{_md(_words(f) if f else 'record')}**: {_md(_reason_words(m))}" for f, m in exc.problems]
    named = list(dict.fromkeys(_words(f) if f else "record" for f, _ in exc.problems))
    return {"uuid": str(uuid.uuid4()), "summary": _clip("NELM could not assess this record: " + ", ".join(named)),
            "indicator": "warning", "detail": "\n".join(lines),
            "source": {"label": "nelm", "url": f"{base_url}evidence"}}


def feedback_detail(service_id: str, item: dict[str, Any], case_id: str | None) -> str:
    """What the audit log keeps of one feedback item: card, outcome, coded reason, never free text."""
    reason = item.get("overrideReason") or {}
    coding = (reason.get("reason") or {}) if isinstance(reason, dict) else {}
    kept = {"service": service_id, "card": item.get("card"), "outcome": item.get("outcome"),
            "outcomeTimestamp": item.get("outcomeTimestamp"),
            "acceptedSuggestions": [s.get("id") for s in item.get("acceptedSuggestions") or [] if isinstance(s, dict)],
            "overrideReason": {k: coding.get(k) for k in ("system", "code", "display") if coding.get(k)} or None,
            # a user's comment may name the patient: the log says one was given, not what it said
            "userComment": bool(isinstance(reason, dict) and reason.get("userComment")),
            "case": case_id}
    return json.dumps(kept, ensure_ascii=False, sort_keys=True)


def wrong_patient_card(exc: WrongPatient, base_url: str) -> dict[str, Any]:
    """A critical card: the EHR sent another patient's record than the one open."""
    return {"uuid": str(uuid.uuid4()),
            "summary": _clip("NELM: the record sent belongs to another patient; no assessment was made"),
            "indicator": "critical",
            "detail": (f"The EHR asked about patient **{_md(exc.asked)}**, but the Patient record it sent is "
                       f"**{_md(', '.join(exc.got))}**. nelm did not assess it: check that the right chart is open "
                       "and that the prefetch is configured for the current patient."),
            "source": {"label": "nelm", "url": f"{base_url}evidence"}}


def read_hook(body: dict[str, Any], on: Any = None, settings: CdsSettings | None = None) -> FhirImport:
    """The hook's records read as the patient ``context.patientId`` names; records of any other
    patient (prefetched or fetched) are listed as unread, never read."""
    skipped: list[Unread] = []
    imported = read_bundle(hook_bundle(body, skipped, settings), on, patient_id=_context(body)["patientId"])
    imported.unread += skipped
    return imported
