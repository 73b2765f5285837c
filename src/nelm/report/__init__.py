"""The printable tumour-board report: one self-contained HTML page, or a PDF of it.

:func:`build_html` renders ``templates/report.html`` (Jinja2) with the CSS inlined and
every chart inline as SVG, so the file opens anywhere without a network. :func:`build_pdf`
renders the same template with PNG charts through WeasyPrint. Both read only the
patient and the assessment (plus the evidence records for the citation table), so a
stored assessment can be printed again exactly as it was made.
"""
from __future__ import annotations

import base64
import json
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from .. import labels
from ..evidence import cite, citation_label, citation_labels, evidence_index, identity_established, public_text, verification_state
from ..outcomes import charts
from ..knowledge.ruleset import MODALITY_LABELS
from ..summary import as_dict, depends_line, patient_sections, plan_view, show

HERE = Path(__file__).resolve().parent
CHART_VERDICTS = ("preferred", "reasonable")

STATUS_MARK = {"met": "✓", "not_met": "✗", "unknown": "?"}

# --------------------------------------------------------------------------- helpers

def cited_ids(node: Any, out: list[str] | None = None) -> list[str]:
    """Every evidence id cited anywhere in an assessment, in first-cited order."""
    out = [] if out is None else out
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "sources" and isinstance(v, list):
                out.extend(s for s in v if isinstance(s, str))
            elif k == "source" and isinstance(v, str):
                out.append(v)
            else:
                cited_ids(v, out)
    elif isinstance(node, list):
        for v in node:
            cited_ids(v, out)
    return out


def evidence_rows(assessment: dict[str, Any]) -> list[dict[str, Any]]:
    index = evidence_index()
    ids = sorted({i for i in cited_ids(assessment) if i in index})
    rows = []
    for i in ids:
        r = index[i]
        c = r.citation
        rows.append({"id": r.id, "authors": c.authors, "title": c.title, "journal": c.journal, "year": c.year,
                     "reference": c.reference, "design": r.design.replace("_", " "), "level": r.level,
                     "n": "—" if r.n is None else r.n, "newer": r.newer_than_sources,
                     "verified": r.verified, "doi": r.doi, "doi_url": r.doi_url,
                     "pmid": r.pmid, "pubmed_url": r.pubmed_url, "identified": identity_established(r)})
    return rows


def _modalities(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for o in options:
        groups.setdefault(o.get("modality") or "other", []).append(o)
    return [{"id": m, "label": MODALITY_LABELS.get(m, m.replace("_", " ")), "options": opts}
            for m, opts in groups.items()]


def _image(arms: list[dict[str, Any]], fmt: str) -> Markup:
    title = arms[0].get("title") or arms[0]["cohort"]
    if fmt == "svg":
        return Markup(charts.inline_svg(arms))
    data = _png(_chart_key(arms))
    alt = f"{title}: reconstructed {arms[0]['endpoint']} curves"
    return Markup('<img class="chart-img" alt="{}" src="data:image/png;base64,{}">').format(alt, Markup(data))


def _chart_key(arms: list[dict[str, Any]]) -> str:
    """What a chart draws, as text: the picture does not show why the cohort matches a patient,
    so it is the same chart for every patient shown that cohort."""
    return json.dumps([{k: v for k, v in a.items() if k not in ("match", "match_reason")} for a in arms],
                      sort_keys=True, default=str)


def draw_every_chart(kb: Any = None) -> int:
    """Draw the chart of every cohort of the knowledge base into nelm's cache (a printed report
    then only lays out its pages); the number of charts. ``nelm serve`` runs it once, in a
    report worker's process, when it starts (nelm.web.reportjob.warm_charts)."""
    from ..knowledge import load
    from ..outcomes import arm_item, cohort_arms

    n = 0
    for arms in cohort_arms(kb or load()).values():
        for group in charts.group_by_cohort([arm_item(a) for a in arms]):
            _png(_chart_key(group))
            n += 1
    return n


@lru_cache(maxsize=64)
def _png(arms_json: str) -> str:
    """A chart as base64 PNG; 150 dpi is print quality at the printed size. A chart is the same
    picture for every patient its cohort is shown to (the published curves), and drawing one
    takes about a tenth of a second (matplotlib's text), so it is drawn once and kept: in this
    process, and on disk in nelm's cache (:mod:`nelm.cache`, keyed by what is drawn, nelm's
    source and matplotlib's version), for the report jobs that run each in a fresh process."""
    import hashlib

    import matplotlib

    from ..cache import cached

    key = f"{hashlib.sha256(arms_json.encode()).hexdigest()}|{matplotlib.__version__}"
    return cached("chart-png", key, lambda: base64.b64encode(_opaque(
        charts.render(json.loads(arms_json), "png", width=5.2, height=3.9, dpi=150))).decode("ascii"))


def _opaque(png: bytes) -> bytes:
    """The PNG without its alpha channel, over white (a chart's figure is opaque white anyway, so
    the picture is the same): WeasyPrint re-encodes a PNG with alpha as two images (colour and an
    alpha mask) in every PDF it is printed in."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png))
    if image.mode == "RGB":
        return png
    flat = Image.new("RGB", image.size, "white")
    flat.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
    out = io.BytesIO()
    flat.save(out, format="PNG")
    return out.getvalue()


def _chart_block(arms: list[dict[str, Any]], option: dict[str, Any], factors: list[dict[str, Any]],
                 fmt: str, options: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    first = arms[0]
    cohort = first["cohort"]
    rf = [f for f in factors if cohort in f.get("cohorts", [])]
    return {
        "cohort": cohort, "title": first.get("title") or cohort, "image": _image(arms, fmt),
        "source": first["source"], "source_label": first.get("source_label") or first["source"],
        "endpoint": first["endpoint"], "population": first.get("population"),
        "match_reason": first.get("match_reason"), "match": first.get("match"),
        "hazard_ratio": charts.hazard_ratio_text(first.get("hazard_ratio")),
        "arms": [{"label": a.get("label") or a["arm"], "arm": a["arm"], "median": charts.median_text(a),
                  "reported": a.get("reported", []), "method": a.get("method")} for a in arms],
        "risk_factors": rf, "option": option,
        "also": [o for o in options if o is not option],
    }


def _outcome_sections(assessment: dict[str, Any], fmt: str, progress: Any = None
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Charts of preferred/reasonable options, then the other comparisons (multi-arm cohorts).
    ``progress(step, done, total)`` hears of each chart drawn (the full report's progress page)."""
    if progress is not None:
        total = _chart_count(assessment) + 1

        def _drawn(block: dict[str, Any]) -> dict[str, Any]:
            _drawn.n += 1
            progress(f"drawing outcome chart {_drawn.n} of {total - 1}", _drawn.n, total)
            return block
        _drawn.n = 0
    else:
        def _drawn(block: dict[str, Any]) -> dict[str, Any]:
            return block
    # A cohort is drawn once, under the first option it supports; a later option that rests on
    # the same cohort points back to that chart (the same curve drawn three times added pages
    # and nothing else), and the chart names every option it serves.
    drawn: dict[str, dict[str, Any]] = {}
    sections = []
    options = assessment.get("options", [])
    for o in options:
        if o.get("verdict") not in CHART_VERDICTS:
            continue
        blocks, see = [], []
        for arms in charts.group_by_cohort(o.get("outcomes", [])):
            cid = arms[0]["cohort"]
            if cid in drawn:
                drawn[cid]["serves"].append(o)
                see.append(drawn[cid])
                continue
            block = _drawn(_chart_block(arms, o, o.get("risk_factors", []), fmt))
            block["serves"] = []
            drawn[cid] = block
            blocks.append(block)
        sections.append({"option": o, "charts": blocks, "see": see})
    comparisons: dict[str, dict[str, Any]] = {}
    users: dict[str, list[dict[str, Any]]] = {}
    for o in options:
        for arms in charts.group_by_cohort(o.get("outcomes", [])):
            cid = arms[0]["cohort"]
            if len(arms) < 2 or cid in drawn:
                continue
            users.setdefault(cid, []).append(o)
            if cid not in comparisons:
                comparisons[cid] = {"arms": arms, "option": o}
    blocks = [_drawn(_chart_block(c["arms"], c["option"], c["option"].get("risk_factors", []), fmt, users[cid]))
              for cid, c in comparisons.items()]
    return sections, blocks


def _chart_count(assessment: dict[str, Any]) -> int:
    """How many charts the full report draws (the same walk as :func:`_outcome_sections`)."""
    n, drawn, compared = 0, set(), set()
    options = assessment.get("options", [])
    for o in options:
        if o.get("verdict") in CHART_VERDICTS:
            for arms in charts.group_by_cohort(o.get("outcomes", [])):
                drawn.add(arms[0]["cohort"])
    n = len(drawn)
    for o in options:
        for arms in charts.group_by_cohort(o.get("outcomes", [])):
            if len(arms) >= 2 and arms[0]["cohort"] not in drawn:
                compared.add(arms[0]["cohort"])
    return n + len(compared)


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["show"] = show
    env.filters["verdict"] = labels.verdict_label
    env.filters["mark"] = lambda s: STATUS_MARK.get(s, "?")
    env.filters["words"] = lambda s: "" if s is None else str(s).replace("_", " ")
    env.filters["pct"] = lambda v: f"{v * 100:g} %"
    env.filters["ratio"] = charts.fmt_ratio
    env.filters["cite"] = lambda ids: cite(ids) if isinstance(ids, (list, tuple)) else citation_label(ids)
    env.filters["guideline"] = labels.guideline_label
    env.filters["first_sentence"] = first_sentence
    env.filters["public"] = public_text
    env.filters["field_label"] = labels.field_label
    env.filters["depends"] = depends_line
    env.filters["affects_label"] = _affects_label
    env.filters["soft_hyphens"] = soft_hyphens
    return env


_VOWELS = frozenset("aeiouyAEIOUY")


@lru_cache(maxsize=512)
def soft_hyphens(text: str, longest: int = 12) -> str:
    """``text`` with soft hyphens (U+00AD) in its words longer than ``longest`` letters, where a
    consonant stands between two vowels (che-mo-em-bo-li-za-tion), at least four letters from
    either end; a line break after a slash too. For the printed option names in their narrow
    column: WeasyPrint then breaks a long word only there, without loading a hyphenation
    dictionary (``hyphens: auto``: about a tenth of a second a report) and never mid-letter."""
    import re

    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        if len(w) <= longest:
            return w
        cuts = [i for i in range(4, len(w) - 3)
                if w[i - 1] in _VOWELS and w[i] not in _VOWELS and w[i + 1] in _VOWELS]
        for i in reversed(cuts):
            w = w[:i] + "\u00ad" + w[i:]
        return w

    return re.sub(r"[A-Za-z]+", word, text).replace("/", "/\u200b")


def _affects_label(what: str) -> str:
    """What a missing fact would settle, in words: an option, a criteria set or a classification."""
    from ..knowledge.ruleset import OPTION_LABELS

    if what in OPTION_LABELS:
        return OPTION_LABELS[what]
    if what.startswith("classification."):
        return labels.classification_label(what.removeprefix("classification.")).lower()
    return {"enets_curative_resection": "ENETS resection criteria", "milan_transplant": "Milan criteria"}.get(
        what, what.replace("_", " "))


def first_sentence(text: str) -> str:
    """The first sentence of a pathway's generic text (what goes first when space is short)."""
    import re

    m = re.search(r"(?<=[a-z0-9)%])[.] (?=[A-Z])", text or "")
    return (text[:m.start()] + ".") if m else (text or "")


def _css(inline: bool) -> Markup:
    """report.css for the page's own <style>, or nothing where WeasyPrint is handed it parsed
    (:func:`_print_css`)."""
    return Markup((HERE / "report.css").read_text(encoding="utf-8")) if inline else Markup("")


@lru_cache(maxsize=1)
def _print_css() -> Any:
    """report.css parsed by WeasyPrint once per process, for every PDF it prints: parsing it
    again from each page's <style> (and building its selector matcher) was a fifth of a board
    summary's layout, which is laid out up to seven times. A style sheet given this way has the
    "user" origin: the summary's own rules, in its page, still come after it."""
    from weasyprint import CSS

    return CSS(string=(HERE / "report.css").read_text(encoding="utf-8"), base_url=str(HERE))


def _context(patient: Any, assessment: dict[str, Any], fmt: str, progress: Any = None,
             inline_css: bool = True) -> dict[str, Any]:
    sections, comparisons = _outcome_sections(assessment, fmt, progress)
    kb = assessment.get("knowledge_base", {})
    return {
        "a": assessment,
        "patient_id": assessment.get("patient_id") or as_dict(patient).get("id"),
        "patient_sections": patient_sections(patient),
        "plan": plan_view(assessment),
        "classification": assessment.get("classification", {}),
        "criteria": assessment.get("criteria", {}),
        "modalities": _modalities(assessment.get("options", [])),
        "outcome_sections": sections,
        "comparisons": comparisons,
        "missing": assessment.get("missing_data", []),
        "disagreements": assessment.get("disagreements", []),
        "evidence": evidence_rows(assessment),
        "kb": kb,
        "assessed_on": assessment.get("assessed_on") or date.today().isoformat(),
        "printed_on": date.today().isoformat(),
        "nelm_version": assessment.get("nelm_version"),
        "disclaimer": assessment.get("disclaimer", ""),
        "css": _css(inline_css),
        "caption": charts.CAPTION,
        "for_print": fmt == "png",
    }


def _key_charts(assessment: dict[str, Any], fmt: str, limit: int = 2) -> list[dict[str, Any]]:
    """The first cohort of the plan's first options, for the summary's second page."""
    options = {o["id"]: o for o in assessment.get("options", [])}
    planned = [oid for st in (assessment.get("plan") or {}).get("steps", []) for oid in st.get("options", [])]
    if not planned:
        planned = [o["id"] for o in assessment.get("options", []) if o.get("verdict") in CHART_VERDICTS]
    blocks = []
    for oid in dict.fromkeys(planned):
        o = options.get(oid)
        groups = charts.group_by_cohort(o.get("outcomes", [])) if o else []
        if groups and groups[0][0].get("curve"):
            block = _chart_block(groups[0], o, o.get("risk_factors", []), fmt)
            block["single_median"] = any(charts.single_median(a) for a in groups[0])
            blocks.append(block)
        if len(blocks) == limit:
            break
    return blocks


def _decision_view(decision: dict[str, Any] | None) -> dict[str, Any] | None:
    from ..knowledge.ruleset import OPTION_LABELS

    if decision is None:
        return None
    return decision | {"chosen_labels": [OPTION_LABELS.get(o, o) for o in decision.get("chosen", [])]}


def _summary_context(patient: Any, assessment: dict[str, Any], fmt: str,
                     decision: dict[str, Any] | None, inline_css: bool = True) -> dict[str, Any]:
    from ..summary import class_line, facts_line, obtain_list

    kb = assessment.get("knowledge_base", {})
    decision = _decision_view(decision)
    return {
        "a": assessment, "patient_id": assessment.get("patient_id") or as_dict(patient).get("id"),
        "plan": plan_view(assessment), "class_line": class_line(assessment.get("classification", {})),
        "facts_line": facts_line(patient), "obtain": obtain_list(assessment),
        "criteria": assessment.get("criteria", {}), "modalities": _modalities(assessment.get("options", [])),
        "key_charts": _key_charts(assessment, fmt), "caption": charts.CAPTION, "decision": decision,
        "kb": kb, "assessed_on": assessment.get("assessed_on") or date.today().isoformat(),
        "printed_on": date.today().isoformat(), "nelm_version": assessment.get("nelm_version"),
        "disclaimer": assessment.get("disclaimer", ""),
        "css": _css(inline_css),
    }


def build_html(patient: Any, assessment: dict[str, Any], *, chart_format: str = "svg", full: bool = True,
               decision: dict[str, Any] | None = None, progress: Any = None, inline_css: bool = True) -> str:
    """The report as one self-contained HTML page (inline CSS, inline SVG charts): the full
    report by default, or with ``full=False`` the two-page board summary. ``inline_css=False``
    leaves report.css out of the page (for WeasyPrint, handed it parsed: :func:`_print_css`)."""
    if chart_format not in ("svg", "png"):
        raise ValueError("chart_format must be 'svg' or 'png'")
    if not full:
        return _env().get_template("summary.html").render(**_summary_context(patient, assessment, chart_format,
                                                                              decision, inline_css), compact=0)
    return _env().get_template("report.html").render(**_context(patient, assessment, chart_format, progress,
                                                                inline_css) |
                                                     {"decision": _decision_view(decision)})


# How far the board summary is compacted to stay on two pages: 0 as written; 1 each step's
# generic pathway text cut to its first sentence; 2 the generic text dropped where the step has
# its patient-specific sentence (which is always kept); 3 the work-up list cut to six items,
# each assumption's consequence to its first sentence, and the first step's sentence on the facts its
# other options rest on dropped; 4 tighter lines and table rows; 5 a smaller
# type; 6 (a long decision that would push the sign-off to a third page) no charts. Page 2 (charts
# of fixed height, the decision and sign-off) starts on its own page.
SUMMARY_LEVELS = 7


def render_summary(patient: Any, assessment: dict[str, Any], *, decision: dict[str, Any] | None = None,
                   chart_format: str = "png"):
    """The board summary laid out by WeasyPrint at the first compaction level that fits two
    pages: (document, level)."""
    from weasyprint import HTML

    ctx = _summary_context(patient, assessment, chart_format, decision, inline_css=False)
    template = _env().get_template("summary.html")
    doc = None
    for level in range(SUMMARY_LEVELS):
        doc = HTML(string=template.render(**ctx, compact=level), base_url=str(HERE)).render(
            stylesheets=[_print_css()])
        if len(doc.pages) <= 2:
            return doc, level
    return doc, SUMMARY_LEVELS - 1


def warm() -> None:
    """Do ahead what every printed report does first, in a process that report jobs are forked
    from (``nelm serve``'s report fork server, :mod:`nelm.report.preload`): import WeasyPrint,
    read the evidence records, compile both templates, parse report.css, and lay out a few lines in the report's
    style (fonts, the default style sheets). A job then only renders
    and lays out its own pages."""
    from weasyprint import HTML

    evidence_index()
    citation_labels()
    _env().get_template("report.html")
    _env().get_template("summary.html")
    HTML(string=f"<html lang='en'><p style='width: 18mm'><strong>"
                f"{soft_hyphens('Chemoembolization')}</strong> <span class='verdict verdict-preferred'>preferred</span></p>",
         base_url=str(HERE)).write_pdf(stylesheets=[_print_css()])


def build_pdf(patient: Any, assessment: dict[str, Any], *, full: bool = False,
              decision: dict[str, Any] | None = None, progress: Any = None) -> bytes:
    """The report as PDF (WeasyPrint; charts embedded as PNG): the board summary on one or two
    pages, or with ``full=True`` the whole report (criteria, every reason, the evidence table)."""
    from weasyprint import HTML

    if not full:
        return render_summary(patient, assessment, decision=decision)[0].write_pdf()
    html = build_html(patient, assessment, chart_format="png", full=full, decision=decision, progress=progress,
                      inline_css=False)
    if progress is not None:
        total = _chart_count(assessment) + 1
        progress("laying out the pages", total - 1, total)
    return HTML(string=html, base_url=str(HERE)).write_pdf(stylesheets=[_print_css()])
