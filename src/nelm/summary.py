"""The facts a tumour board was given, as a person reads them: one summary of the
patient document by section, with unknowns shown as 'unknown' (never 'no').

Used by the printable report and the web assessment page, so both show the same record.
"""
from __future__ import annotations

from functools import lru_cache

from typing import Any

from . import labels

# (section, dotted field, label, unit), in the order of the labels table; the prior-therapy
# row's parts are shown inside its one row
PATIENT_FIELDS: list[tuple[str, str, str, str]] = [
    (e["section"], path, e["label"], e.get("unit", "")) for path, e in labels.fields().items()
    if not path.startswith("prior_therapies.")]
_SECTION_ORDER = list(dict.fromkeys(s for s, *_ in PATIENT_FIELDS))


def value_label(field: str | None, value: Any) -> str:
    """A value of a contract field as a clinician reads it, without its unit."""
    if isinstance(value, str):
        return labels.value_label(field, value)
    return show(value)


# the words that open the working plan's sentence on the facts its first step's other options rest on
# (written by nelm.plan.build_plan, split off again by plan_steps)
OTHER_OPTIONS_REST_ON = " Its other options rest on facts assumed until confirmed: "


def with_unit(field: str, text: str) -> str:
    unit = labels.field_unit(field)
    return f"{text} {unit}" if unit and text != "unknown" else text


@lru_cache(maxsize=4096)  # a pure function of its arguments, called for every reason
def fact_label(field: str, column: str | None = None) -> str:
    """A person's name for a contract field (or for one therapy's column of the history)."""
    if column and column.startswith("prior_") and field.startswith("prior_therapies"):
        from .knowledge.ruleset import OPTION_LABELS

        rest = column.removeprefix("prior_")
        for suffix, what in (("_months", "months to progression on earlier "), ("_ongoing", "still receiving ")):
            if rest.endswith(suffix):
                return what + OPTION_LABELS.get(rest.removesuffix(suffix), rest)
        if rest == "progression_count":
            return "number of earlier treatments the disease progressed on"
        if rest == "systemic_lines":
            return "number of earlier systemic treatment lines"
        return "earlier " + OPTION_LABELS.get(rest, rest)
    return labels.field_label(field)


def as_dict(patient: Any) -> dict[str, Any]:
    if patient is None:
        return {}
    if isinstance(patient, dict):
        return patient
    if hasattr(patient, "model_dump"):
        return patient.model_dump()
    raise TypeError(f"patient must be a Patient or a mapping, not {type(patient).__name__}")


def _get(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def show(value: Any, unit: str = "") -> str:
    """A value as the report prints it; None is 'unknown', never 'no'."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        value = f"{value:g}"
    text = str(value).replace("_", " ")
    return f"{text} {unit}" if unit else text


def _prior(p: dict[str, Any]) -> str:
    from .knowledge.ruleset import OPTION_LABELS

    what = [labels.value_label("prior_therapies.outcome", p.get("outcome"))]
    if p.get("months_to_progression") is not None:
        what.append(f"progression after {show(p['months_to_progression'])} months")
    if p.get("ongoing"):
        what.append("ongoing")
    return f"{OPTION_LABELS.get(p.get('therapy'), show(p.get('therapy')))} ({', '.join(what)})"


def patient_rows(patient: Any) -> list[dict[str, Any]]:
    data = as_dict(patient)
    rows = []
    for section, field, label, unit in PATIENT_FIELDS:
        value = _get(data, field)
        if field == "extrahepatic.sites":
            text = "unknown" if value is None else (", ".join(value_label(field, s) for s in value) or "none")
        elif field == "prior_therapies":
            text = "unknown" if value is None else ("; ".join(_prior(p) for p in value) or "none")
        elif field == "id" and value is None:
            continue
        else:
            text = with_unit(field, value_label(field, value))
        rows.append({"section": section, "field": field, "label": label, "value": text,
                     "unknown": text == "unknown"})
    return rows


def patient_sections(patient: Any) -> dict[str, list[dict[str, Any]]]:
    """:func:`patient_rows` grouped by section, in order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in patient_rows(patient):
        out.setdefault(r["section"], []).append(r)
    return out


# ---------------------------------------------------------------------------- the plan



def assumption_lines(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """The plan's assumptions in words, (assumed, if not). Unknown pre-treatment checks that
    would change the plan the same way are one line (performance status, Child-Pugh class and
    bilirubin, each of which could rule out the leading option); an assumed fact stated twice
    is one line with each of its consequences."""
    # (is a check, what the line is keyed by) -> the other half of the line, in order
    merged: dict[tuple[bool, str], list[str]] = {}
    for asm in plan.get("assumptions", []):
        if asm.get("check"):
            key, other = (True, asm["if_not"]), asm["assumed"]
        else:
            key, other = (False, f"{_in_sentence(asm['label'])}: {_assumed_value(asm)}"), asm["if_not"]
        if other not in merged.setdefault(key, []):
            merged[key].append(other)
    return [(f"{and_join(others)} (not yet known)", key) if check else (f"{key} (to be confirmed)", " ".join(others))
            for (check, key), others in merged.items()]


def _in_sentence(label: str) -> str:
    """A field's label inside a sentence: 'Number of liver lesions' -> 'number of liver lesions';
    a name that is not a common word keeps its capitals ('Ki-67', 'Child-Pugh class', 'ECOG')."""
    first = label.split(" ", 1)[0]
    if any(c.isdigit() for c in first) or any(c.isupper() for c in first[1:]):
        return label
    return label[:1].lower() + label[1:]


def _assumed_value(asm: dict[str, Any]) -> str:
    """An assumed value as the patient's own would read, with its unit ('5 %', not '5'): as the
    patient's facts table shows it (patient_rows)."""
    field = asm.get("field")
    return with_unit(field, value_label(field, asm.get("assumed"))) if field else show(asm.get("assumed"))


def _steps_view(raw_steps: list[dict[str, Any]], verdicts: dict[str, str], branch: bool = False
                ) -> list[dict[str, Any]]:
    """Plan steps as people read them. A step taken now shows today's verdict; a later step
    shows the verdict expected when it comes (contract v3 ``expected_verdicts``) as "expected
    then", never today's verdict alone (today's is given beside it when it differs). A branch (the
    plan if a fact turns out otherwise) shows only the verdicts it expects: today's are not its own."""
    from .evidence import cite
    from .knowledge.ruleset import OPTION_LABELS

    steps = []
    for st in raw_steps:
        expected = st.get("expected_verdicts") or {}
        now = st["when"] == "now"
        options = []
        for o in st["options"]:
            today = "" if branch else verdicts.get(o, "")
            if branch:
                badge = expected.get(o, "")
                note = "expected then" if badge and not now else ""
            elif now:
                badge, note = (expected.get(o) or today), ""
            elif o in expected:
                badge = expected[o]
                note = "expected then" + (f"; today {labels.verdict_label(today)}" if today and today != badge else "")
            else:
                badge, note = "", ""
            options.append({"id": o, "label": OPTION_LABELS.get(o, o), "verdict": badge, "today": today,
                            "note": note})
        # what stands between two options as read: alternatives with "or"; a drug given with the
        # chosen line (an add-on: the analogue continued, telotristat) after ", with", so that
        # "PRRT or TACE, with the analogue" never reads as a third alternative
        together = st.get("combine") == "together"
        add_on = set(st.get("add_on") or [])
        for o, nxt in zip(options, options[1:] + [None]):
            if nxt is None:
                o["after"] = ""
            elif together:
                o["after"] = " + "
            elif nxt["id"] in add_on:
                o["after"] = " and " if o["id"] in add_on else ", with "
            else:
                o["after"] = " or "
        reason = st.get("reason", "")
        # the facts the step's other options rest on (plan.build_plan): a sentence the board summary
        # drops first when it must fit two pages; the other views print the reason whole
        reason, _, resting = reason.partition(OTHER_OPTIONS_REST_ON)
        generic, _, specific = reason.partition(" For this patient: ")
        steps.append({"n": st["step"], "when": labels.word("when", st["when"]), "now": now, "options": options,
                      "generic": generic, "specific": specific,
                      "resting": (OTHER_OPTIONS_REST_ON.strip() + " " + resting) if resting else "",
                      "intent": labels.word("intents", st["intent"]), "reason": st.get("reason", ""),
                      "sources": st.get("sources", []), "cite": cite(st.get("sources", [])),
                      "level": st.get("level")})
    return steps


def _lead(raw_steps: list[dict[str, Any]]) -> str | None:
    from .knowledge.ruleset import OPTION_LABELS

    lead = raw_steps[0]["options"][0] if raw_steps and raw_steps[0]["options"] else None
    return OPTION_LABELS.get(lead, lead) if lead else None


def workup_lines(plan: dict[str, Any]) -> list[dict[str, str]]:
    """Contract v3 ``plan.workup``: what to obtain to decide the plan, most decisive first."""
    out = []
    for w in plan.get("workup") or []:
        facts = and_join([_lower(fact_label(f)) for f in w.get("fields", [])])
        out.append({"order": w.get("order") or facts, "facts": facts, "decides": w.get("decides") or "",
                    "fields": list(w.get("fields", []))})
    return out


def plan_view(assessment: dict[str, Any]) -> dict[str, Any] | None:
    """The plan as the text summary, the web page and the report show it (contract v3's
    branches, workup and expected verdicts when the plan has them)."""
    plan = assessment.get("plan")
    if not plan:
        return None
    verdicts = {o["id"]: o["verdict"] for o in assessment.get("options", [])}
    branches = []
    for b in plan.get("branches") or []:
        conds = [c.get("label") or f"{fact_label(c['field'])} {show(c.get('value'))}" for c in b.get("if", [])]
        # the conditions of a merged branch are alternatives (contract v3: branches that lead the same way are
        # merged), each one alone enough: "or" (board review 10, D7: "at most five metastases and a single metastasis")
        branches.append({"if": or_join(conds), "status": b.get("status", ""),
                         "steps": _steps_view(b.get("steps", []), verdicts, branch=True),
                         "leading": _lead(b.get("steps", []))})
    return {"status": plan["status"], "pathway": plan.get("pathway_label"),
            "steps": _steps_view(plan["steps"], verdicts), "leading": _lead(plan["steps"]),
            "assumptions": assumption_lines(plan), "missing": plan.get("missing_labels", []),
            "branches": branches, "workup": workup_lines(plan)}


# ---------------------------------------------------------------------------- one-liners

def class_line(c: dict[str, Any]) -> str:
    """The classification in one line, as a board says it ("NET G2 · Frilling type II · ...")."""
    grade = " ".join(x for x in (c.get("category"), c.get("who_grade")) if x) or "grade unknown"
    if c.get("grading_system") == "who_thoracic":
        # a lung or thymic primary: typical or atypical carcinoid by the WHO thoracic scheme; the G grade
        # is only the digestive band of the same indices that the treatment rules read
        kind = (labels.classification_value("thoracic_type", c["thoracic_type"]) if c.get("thoracic_type")
                else "typical or atypical not settled")
        band = f", digestive band {c['who_grade']}" if c.get("who_grade") else ""
        grade = f"{c.get('category') or 'NEN'} of thoracic origin: {kind} (WHO thoracic{band})"
    parts = [grade,
             f"Frilling type {c['frilling_type']}" if c.get("frilling_type") else "Frilling type unknown",
             "hepatic burden " + (labels.classification_value("burden_band", c["burden_band"])
                                  if c.get("burden_band") else "unknown")]
    if c.get("grade_basis"):
        parts.append("grade from " + labels.classification_value("grade_basis", c["grade_basis"]))
    return " · ".join(parts)


FACTS_LINE = ("age_years", "ecog", "primary.site", "pathology.ki67_percent", "liver.lesion_count",
              "liver.largest_lesion_cm", "liver.burden_percent", "extrahepatic.present", "functional_syndrome",
              "course.status")


def facts_line(patient: Any) -> str:
    """The key facts in one line (the summary page's header; the full list is in the report)."""
    data = as_dict(patient)
    return " · ".join(f"{labels.field_label(f)} {with_unit(f, value_label(f, _get(data, f)))}" for f in FACTS_LINE)


def obtain_list(assessment: dict[str, Any]) -> list[str]:
    """One short list of the work-up that would complete the assessment (most decisive first, no repeats)."""
    out: list[str] = []
    for m in sorted(assessment.get("missing_data", []), key=lambda m: -len(m.get("affects", []))):
        what = m.get("obtain") or labels.field_label(m["field"])
        if what not in out:
            out.append(what)
    return out


def and_join(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def or_join(words: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``: a merged branch's conditions, each of which alone leads to its plan."""
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else "".join(words)


def _lower(label: str) -> str:
    """A label inside a sentence: 'Somatostatin-receptor imaging' -> 'somatostatin-receptor
    imaging', but Ki-67, ECOG, Child-Pugh class, SSTR ... as they are."""
    first = label.split(" ")[0]
    if any(ch.isdigit() for ch in first) or any(ch.isupper() for ch in first[1:]):
        return label
    return label[:1].lower() + label[1:]


def depends_on(option: dict[str, Any], assessment: dict[str, Any] | None = None) -> list[str]:
    """The missing facts an undetermined option's verdict waits for (dotted paths, in the order
    its rules read them); from the rules' open conditions, else from the missing data."""
    fields: list[str] = []
    for r in option.get("reasons", []):
        for f in r.get("unknown") or []:
            if f not in fields:
                fields.append(f)
    if not fields and assessment:
        fields = [m["field"] for m in assessment.get("missing_data", [])
                  if option["id"] in m.get("affects", []) and not m.get("check")]
    return fields


def depends_line(option: dict[str, Any], assessment: dict[str, Any] | None = None) -> str:
    """An undetermined option in one line: what it depends on and what it could become
    ("Depends on somatostatin-receptor imaging and the course: preferred or not recommended")."""
    fields = depends_on(option, assessment)
    what = and_join([_lower(fact_label(f)) for f in dict.fromkeys(fields)]) or "facts not yet entered"
    could = [labels.verdict_label(v) for v in option.get("possible_verdicts", [])]
    tail = f": could be {_or(could)}" if could else ""
    return f"Depends on {what}{tail}."


def _or(words: list[str]) -> str:
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else "".join(words)
