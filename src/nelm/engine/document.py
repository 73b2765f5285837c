"""Write one evaluation as the contract's assessment document, and its prose.

:func:`assessment_from` gives the classification, criteria, each option's verdict with
its reasons and conditions, the missing data and where sources disagree;
:func:`plan_view` is what the planner (:mod:`nelm.plan`) reads of it, without text.
Reason templates, units, levels of evidence and the disclaimer live here.

The top of :mod:`nelm.engine`: reads :mod:`.verdicts`, :mod:`.row` and :mod:`.guidelines`.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any, Iterable

from .. import __version__, follows
from ..classify import GRADES, REPORTED_WHEN_UNKNOWN, classification_from_row, grade_label
from ..knowledge import KnowledgeBase, UnknownRoots, fields_of_mask, item_column, rule_column, template_names
from ..knowledge.ruleset import VERDICTS, OptionDef, Rule
from ..patient import COLUMN_FIELDS, Patient, recorded_row
from ..labels import field_unit
from ..once import per_object
from ..summary import fact_label, show, value_label
from .guidelines import _verdicts_under_other_guidelines
from .row import Evaluation
from .verdicts import _MASK_VERDICT, _rule_mask, possible_verdicts


DISCLAIMER = ("nelm supports, and does not replace, the judgement of a multidisciplinary tumour board. "
              "Verdicts restate published evidence for the facts entered; check every reason against its sources.")


# --------------------------------------------------------------------------- formatting

class _Values(dict):
    """The row's values as text for reason templates, each formatted when first read
    (a reason reads a few of some 500 columns)."""

    def __init__(self, row: dict[str, Any], patient: Patient | dict[str, Any] | None = None,
                 assumed: frozenset[str] = frozenset(), kb: KnowledgeBase | None = None):
        super().__init__()
        self._row = row
        self._patient = patient
        self._follows: dict[str, str] | None = None
        self._assumed = assumed
        self._kb = kb
        self._filled: dict[str, Any] | None = None

    def __missing__(self, key: str) -> str:
        v = self._row[key]  # KeyError for a name that is no column, as a plain dict gives
        text = value_label(COLUMN_FIELDS.get(key), v) if key in COLUMN_FIELDS else show(v)
        if v is not None and self._assumed and self._rests_on_assumption(key):
            # a value the plan assumed is quoted as one, never as the patient's (board review 9: an
            # assumed Ki-67 of 5 % read as a measured index): "Ki-67 assumed 5 %"
            text = f"assumed {text}"
        self[key] = text
        return text

    def _rests_on_assumption(self, key: str) -> bool:
        """The column's value is one the plan filled in: an assumed fact, a fact that follows from
        one (an assumed "all removable" makes the removable share 100 %), or a value computed
        from one (the grade from an assumed Ki-67) -- board review 10, D2."""
        field = COLUMN_FIELDS.get(key)
        if field is not None:
            if field in self._assumed:
                return True
            if self._patient is None:
                return False
            if self._filled is None:
                doc = self._patient if isinstance(self._patient, dict) else self._patient.model_dump()
                self._filled = follows.filled_from(recorded_row(doc))
            rec = self._filled.get(key)
            return rec is not None and any(COLUMN_FIELDS.get(c) in self._assumed for c in rec.reads)
        return self._kb is not None and not self._assumed.isdisjoint(_every_input(self._kb).fields(key))

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self._row

    def follows_from(self, column: str) -> str | None:
        """For a column the record left unknown and another fact settled (contract v3, facts
        that follow from facts; knowledge/follows.yaml): "follows from <those facts>"."""
        if column not in follows.by_column() or self._patient is None:
            return None
        if self._follows is None:   # worked out when a reason first quotes such a column
            doc = self._patient if isinstance(self._patient, dict) else self._patient.model_dump()
            recorded = recorded_row(doc)
            self._follows = {
                col: "follows from " + ", ".join(f"{fact_label(COLUMN_FIELDS[c], c)}: {value_label(COLUMN_FIELDS[c], recorded[c])}"
                                                 for c in rec.reads if recorded[c] is not None)
                for col, rec in follows.filled_from(recorded).items()}
        return self._follows.get(column)


@per_object
def _every_input(kb: KnowledgeBase) -> UnknownRoots:
    """The unknown-inputs walk with every column taken as unknown: each computed column's contract fields, however
    indirectly it reads them (once per knowledge base)."""
    return UnknownRoots(kb, set(kb.roots) | set(COLUMN_FIELDS))


def _values(row: dict[str, Any], patient: Patient | dict[str, Any], kb: KnowledgeBase,
            assumed: frozenset[str] = frozenset()) -> dict[str, str]:
    vals = _Values(row, patient, assumed, kb)
    for g in GRADES:
        label = grade_label(row.get(g))
        # (a grade the report states stays the patient's, whatever index the plan assumed within it)
        vals[g] = ("unknown" if label is None
                   else f"assumed {label}" if assumed and vals._rests_on_assumption(g)
                   and row.get("pathology_reported_grade") != label else label)
    # the patient, or its document in the model's dumped shape (the plan's what-if patients)
    if isinstance(patient, dict):
        sites = (patient.get("extrahepatic") or {}).get("sites")
    else:
        sites = patient.extrahepatic.sites if patient.extrahepatic is not None else None
    vals["extrahepatic_sites"] = ("unknown" if sites is None
                                  else ", ".join(value_label("extrahepatic.sites", s) for s in sites) or "none")
    for cs in kb.criteria:
        vals[cs.id] = _status(row.get(cs.id)).replace("_", " ")
        for status, key in (("not_met", False), ("unknown", None)):
            texts = [it.text for it in cs.items if row.get(item_column(cs.id, it.id)) is key]
            vals[f"{cs.id}__{status}"] = "; ".join(texts) or "none"
    return vals


def _status(value: Any) -> str:
    return {True: "met", False: "not_met"}.get(value, "unknown")


# --------------------------------------------------------------------------- the plan's view

def plan_view(ev: Evaluation, kb: KnowledgeBase, *, conditions: bool = True, missing: bool = True) -> dict[str, Any]:
    """What the planner reads of one evaluation (:mod:`nelm.plan`), without any text: each
    option's verdict, the verdicts still possible, its unknown pre-treatment checks
    (``conditions``, as :func:`assessment_from` lists them) and ``missing_data`` entries
    with the options each missing fact affects, worked out as :func:`assessment_from`
    does for options. Without ``conditions`` (an evaluation with the verdict pass only)
    the options' conditions are left out: they are unknown checks, which pass while
    unknown and so never change what leads.

    Without ``missing`` (and without ``conditions``: a what-if of the planner) the missing
    data are not listed; ``affected(option)`` gives the missing facts that affect an option
    instead (the fields of its ``missing_data`` entries), worked out when asked: the planner
    asks about the few options that could lead, for tens of what-ifs per plan."""
    if not missing and not conditions:
        return _lean_view(ev, kb)
    row = ev.verdicts
    roots = UnknownRoots(kb, {c for c, v in ev.facts.items() if v is None}) if conditions else None
    filled_mask: dict[str, int] = {}
    filled_roots = None   # the row's unknown columns are found only if an option has several verdicts
    checks = {c.field: c for c in kb.checks}
    options = []
    # the planner reads this for every what-if (tens per plan): the columns of each option
    # are named once, and the rules are read only where their reading is used (the masks of
    # an option with several verdicts still possible; the deciding rule, for conditions)
    for opt, verdict_col, possible_col, deciding, caps in _view_columns(kb):
        verdict = row[verdict_col]
        possible = _possible(row[possible_col])
        several = len(possible) > 1
        decided_by = None
        mask = 0
        if several or roots is not None:
            if several and filled_roots is None:
                filled_roots = ev.filled_roots(kb)
            for r, col in deciding:
                cond = row[col]
                if cond is False:
                    continue
                if cond is None:
                    if several:
                        mask |= filled_roots.mask(col)
                    continue
                decided_by = r
                break
        if several:
            for r, col in caps:
                if row[col] is None:
                    mask |= filled_roots.mask(col)
        out = {"id": opt.id, "verdict": verdict, "intent": _deciding_intent(opt, deciding, row), "reasons": []}
        if several:
            out["possible_verdicts"] = list(possible)
        if roots is not None and (verdict in ("preferred", "reasonable")
                                  or (several and ("preferred" in possible or "reasonable" in possible))):
            found = _conditions(opt, ev, kb, checks, roots, decided_by)
            if found:
                out["conditions"] = found
        if mask:
            filled_mask[opt.id] = mask
        options.append(out)
    affects = _affects(filled_mask, options)
    return {"options": options, "missing_data": [{"field": f, "affects": sorted(a)} for f, a in sorted(affects.items())]}


def _deciding_intent(opt: OptionDef, deciding: Iterable[tuple[Rule, str]], row: dict[str, Any]) -> str:
    """The intent of the rule that decides the option on this row (the first that holds, none before it unknown), or
    the option's own: a branch's step read "curative" for a resection its world decides as debulking (the red-line
    scan of session 17)."""
    for r, col in deciding:
        cond = row[col]
        if cond is True:
            return r.intent or opt.intent
        if cond is None:
            break   # several verdicts still possible, or rules that agree: the option's own intent
    return opt.intent


def _lean_view(ev: Evaluation, kb: KnowledgeBase) -> dict[str, Any]:
    options = LeanOptions(ev, kb)
    # (the planner's options are shared and read only: the view gives each its own, as plan_view's)
    return {"options": [_own(options[opt.id]) for opt in kb.options], "affected": options.affected}


def _own(option: dict[str, Any]) -> dict[str, Any]:
    """A copy of a planner's (shared, read-only) option as plan_view gives it: lists, its own."""
    out = dict(option, reasons=[])
    if "possible_verdicts" in out:
        out["possible_verdicts"] = list(out["possible_verdicts"])
    return out


class LeanOptions(dict):
    """A what-if's options as the planner reads them (:func:`plan_view` without conditions
    and missing data), each built when first read: option id -> id, verdict, intent, no
    reasons, and the verdicts still possible where there are several. Following the pathways
    and finding what blocks reads a few options of the 19, tens of times a plan.

    Read by key only (``options[oid]``): an option not read yet is not in the dict. The
    options are read only: one option's view is the same dict in every what-if where its
    verdict and the verdicts still possible are the same (no reasons, ``()``; the possible
    verdicts a tuple), built once per knowledge base, not tens of times a plan."""

    def __init__(self, ev: Evaluation, kb: KnowledgeBase):
        super().__init__()
        self._ev, self._kb, self._columns = ev, kb, _view_columns_by_id(kb)
        self._found: dict[str, frozenset[str]] = {}

    def __missing__(self, oid: str) -> dict[str, Any]:
        cols = self._columns[oid]
        opt, verdict_col, possible_col, deciding = cols[:4]
        row = self._ev.verdicts
        key = (oid, _deciding_intent(opt, deciding, row), row[verdict_col], row[possible_col])   # all the view shows
        out = _LEAN_OPTIONS.get(key)
        if out is None:
            possible = _possible(key[3])
            out = {"id": oid, "verdict": key[2], "intent": key[1], "reasons": ()}
            if len(possible) > 1:
                out["possible_verdicts"] = possible
            _LEAN_OPTIONS[key] = out
        self[oid] = out
        return out

    def affected(self, oid: str) -> frozenset[str]:
        """The missing facts that affect an option: the fields of its ``missing_data`` entries
        in :func:`plan_view` (the unknown deciding rules read before the first that holds,
        and unknown caps), worked out when asked."""
        found = self._found.get(oid)
        if found is None:
            mask = 0
            row = self._ev.verdicts
            _, _, possible_col, deciding, caps = self._columns[oid]
            if len(_possible(row[possible_col])) > 1:
                roots = self._ev.filled_roots(self._kb)
                for _, col in deciding:
                    cond = row[col]
                    if cond is False:
                        continue
                    if cond is None:
                        mask |= roots.mask(col)
                        continue
                    break
                for _, col in caps:
                    if row[col] is None:
                        mask |= roots.mask(col)
            found = self._found[oid] = frozenset(fields_of_mask(mask)) if mask else frozenset()
        return found


# (option, intent, verdict, possible-verdict mask) -> LeanOptions' view of it, shared (bounded:
# each option has a few verdicts and masks)
_LEAN_OPTIONS: dict[tuple[str, Any, str, int], dict[str, Any]] = {}
_POSSIBLE: dict[int, tuple[str, ...]] = {}


@per_object
def _view_columns(kb: KnowledgeBase) -> tuple[tuple[Any, ...], ...]:
    """(option, its verdict column, its possible-verdicts column, deciding rules, caps), once per knowledge base."""
    return tuple((opt, f"verdict__{opt.id}", f"possible__{opt.id}", *_rule_columns(opt)[:2]) for opt in kb.options)


@per_object
def _view_columns_by_id(kb: KnowledgeBase) -> dict[str, tuple[Any, ...]]:
    """:func:`_view_columns` by option id, once per knowledge base."""
    return {cols[0].id: cols for cols in _view_columns(kb)}


def _possible(mask: int) -> tuple[str, ...]:
    """:func:`possible_verdicts` of a mask, worked out once per mask."""
    got = _POSSIBLE.get(mask)
    if got is None:
        got = _POSSIBLE[mask] = tuple(possible_verdicts(mask))
    return got


def _affects(pending: dict[str, int], options: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Missing field -> what it affects: the inputs each value hangs on (a bit mask per
    value), and each option's unknown pre-treatment checks."""
    affects: dict[str, set[str]] = {}
    for what, mask in pending.items():
        for f in fields_of_mask(mask):
            affects.setdefault(f, set()).add(what)
    for o in options:
        for c in o.get("conditions", []):
            affects.setdefault(c["field"], set()).add(o["id"])
    return affects


# --------------------------------------------------------------------------- assessment

def assessment_from(ev: Evaluation, patient: Patient, kb: KnowledgeBase, *, brief: bool = False) -> dict[str, Any]:
    """The contract's assessment (without plan and outcomes, see :mod:`nelm.assessment`).

    ``brief`` is for the plan's what-if assessments (:func:`nelm.plan.build_plan`), which
    read verdicts, decisive reasons, conditions and the missing data of options only: the
    texts of the other reasons are left empty, the criteria and the classification's
    missing data are left out, and disagreements between sources are not worked out."""
    row = ev.facts
    nulls = {c for c, v in row.items() if v is None}
    roots = UnknownRoots(kb, nulls)
    filled_roots = ev.filled_roots(kb)
    vals = _values(row, patient, kb)
    pending: dict[str, int] = {}  # what -> the unknown inputs it hangs on, as one bit mask

    def note_missing(column: str, what: str, *, filled: bool = False) -> list[str]:
        which = filled_roots if filled else roots
        pending[what] = pending.get(what, 0) | which.mask(column)
        return which.fields(column)

    classification = classification_from_row(row)
    for key in () if brief else REPORTED_WHEN_UNKNOWN:
        if row[key] is None:
            note_missing(key, f"classification.{key}")

    criteria: dict[str, Any] = {}
    for cs in () if brief else kb.criteria:
        items = []
        for it in cs.items:
            col = item_column(cs.id, it.id)
            status = _status(row[col])
            if status == "unknown" and row[cs.id] is None:  # only what could still settle the set
                note_missing(col, cs.id)
            items.append({"id": it.id, "text": it.text, "status": status,
                          "reason": _prose(_template(it.reason).format_map(vals)), "sources": list(it.sources),
                          "level": strongest_level(it.sources, kb)})
        criteria[cs.id] = {"label": cs.label, "status": _status(row[cs.id]), "items": items,
                           "sources": list(cs.sources)}

    checks = {c.field: c for c in kb.checks}
    options = [_option(opt, ev, vals, kb, note_missing, checks, roots, brief) for opt in kb.options]
    affects = _affects(pending, options)

    missing = [{"field": f, "label": fact_label(f), "obtain": checks[f].label if f in checks else kb.order_for(f),
                "check": f in checks, "affects": sorted(a)} for f, a in sorted(affects.items())]
    result = {
        "patient_id": patient.id,
        "classification": classification,
        "criteria": criteria,
        "options": options,
        "missing_data": missing,
        "disagreements": [] if brief else _disagreements(row, kb, vals),
        "knowledge_base": {"version": kb.version, "sha256": kb.sha256, "guideline": kb.guideline},
        "nelm_version": __version__,
        "assessed_on": date.today().isoformat(),
        "disclaimer": DISCLAIMER,
    }
    if not brief:
        _verdicts_under_other_guidelines(result, ev, kb)
    return result


class _LazyOption(dict):
    """One option of a brief assessment: its id and verdict at once, everything else (intent,
    reasons, conditions, ...) worked out in full when first read."""

    def __init__(self, oid: str, verdict: str, work: Any):
        super().__init__(id=oid, verdict=verdict)
        self._work = work

    def _whole(self) -> None:
        if self._work is not None:
            work, self._work = self._work, None
            self.update(work())

    def __missing__(self, key: str) -> Any:
        self._whole()
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        self._whole()
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        self._whole()
        return dict.__contains__(self, key)


def brief_options(ev: Evaluation, patient: Patient | dict[str, Any], kb: KnowledgeBase,
                  assumed: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """The options of ``assessment_from(ev, patient, kb, brief=True)`` by id, each worked out
    when first read beyond its verdict: the plan words the steps of its working plan from
    them, and reads the reasons and conditions of a few options only. ``patient`` may be the
    patient's document in the model's dumped shape; ``assumed``: the contract fields whose
    values the plan filled in, quoted as assumed."""
    row = ev.facts
    roots = UnknownRoots(kb, {c for c, v in row.items() if v is None})
    vals = _values(row, patient, kb, assumed)
    checks = {c.field: c for c in kb.checks}

    def note_missing(column: str, what: str, *, filled: bool = False) -> list[str]:
        return []   # a brief option reads nothing of what its missing facts are (the missing data are not listed)

    def work(opt: OptionDef) -> Any:
        return lambda: _option(opt, ev, vals, kb, note_missing, checks, roots, True)

    return {opt.id: _LazyOption(opt.id, ev.verdicts[f"verdict__{opt.id}"], work(opt)) for opt in kb.options}


# "Ki-67 unknown %" reads as a number that went missing; an unknown value takes no unit
_UNIT_AFTER_UNKNOWN = re.compile(r"\bunknown(?: ?(?:%|cm|months?|years?|mg/dL|mL/min|×10⁹/L|/10 HPF))")


def _prose(text: str) -> str:
    if "  " in text or "\n" in text or "\t" in text:
        text = " ".join(text.split())
    return _UNIT_AFTER_UNKNOWN.sub("unknown", text) if "unknown" in text else text


_TEMPLATES: dict[str, str] = {}


def _template(template: str) -> str:
    """A reason template with its YAML line breaks folded (once per template)."""
    got = _TEMPLATES.get(template)
    if got is None:
        got = _TEMPLATES[template] = " ".join(template.split())
    return got


# One reason's quoted facts, worked out once per (columns read, template): which columns are
# patient fields (with label and unit) and which are derived values (with label).
# Keyed by the knowledge base's content hash and guideline, not its id: a knowledge base
# built in a test may reuse a freed one's id.
_FACT_PLANS: dict[tuple[str, str, frozenset[str], frozenset[str]], tuple[tuple[str, str, str, str | None], ...]] = {}


def _fact_plan(columns: frozenset[str], quoted: frozenset[str], kb: KnowledgeBase
               ) -> tuple[tuple[str, str, str, str | None], ...]:
    key = (kb.sha256, kb.guideline, columns, quoted)
    got = _FACT_PLANS.get(key)
    if got is None:
        labels = _labels(kb)
        plan = []
        for col in sorted(columns):
            if col in quoted or col.startswith("rule__"):
                continue
            if col in COLUMN_FIELDS:
                field = COLUMN_FIELDS[col]
                plan.append((col, field, fact_label(field, col), field_unit(field)))
            else:
                plan.append((col, col, labels.get(col, col.replace("_", " ")), None))
        got = _FACT_PLANS[key] = tuple(plan)
    return got


def _facts(columns: Iterable[str], vals: dict[str, str], quoted: frozenset[str], kb: KnowledgeBase
           ) -> list[dict[str, str]]:
    """The patient values a condition read, so each reason can be checked against the chart."""
    out = []
    for col, field, label, unit in _fact_plan(frozenset(columns), quoted, kb):
        value = vals.get(col, "unknown")
        if unit is not None and value != "unknown":  # a patient field: its unit after a known value
            value = _prose(f"{value} {unit}" if unit else value)
        note = vals.follows_from(col) if isinstance(vals, _Values) else None
        if note:   # the record did not give it: say from what it follows
            value = f"{value} — {note}"   # (a dash: the pages list facts with semicolons)
        out.append({"field": field, "label": label, "value": value})
    return out


@per_object
def _labels(kb: KnowledgeBase) -> dict[str, str]:
    """Derived variables' and criteria sets' labels (once per knowledge base)."""
    return {d.name: d.label for d in kb.derived} | {cs.id: cs.label for cs in kb.criteria}


def _reason(rule: Rule | Any, vals: dict[str, str], kind: str, rule_id: str | None,
            kb: KnowledgeBase, reads: Iterable[str] = (), brief: bool = False) -> dict[str, Any]:
    if brief and kind != "decisive":
        return {"text": "", "sources": list(rule.sources), "level": None, "kind": kind, "rule": rule_id, "facts": []}
    # one clinical sentence: the template quotes the deciding values; every input the rule
    # read stays in ``facts`` (the page's "show logic", ``nelm assess --explain``), not in the text
    text = _prose(_template(rule.reason).format_map(vals))
    facts = _facts(reads, vals, template_names(rule.reason), kb)
    return {"text": text, "sources": list(rule.sources), "level": strongest_level(rule.sources, kb),
            "kind": kind, "rule": rule_id, "facts": facts}


# Oxford CEBM 2009, strongest first (evidence.Level)
LEVEL_ORDER = ("1a", "1b", "2a", "2b", "3", "4", "5")


def strongest_level(sources: Iterable[str], kb: KnowledgeBase) -> str | None:
    """The strongest level of evidence among a reason's sources (Oxford CEBM 2009)."""
    key = (kb.sha256, kb.guideline, tuple(sources))
    if key in _STRONGEST:
        return _STRONGEST[key]
    levels = [kb.evidence[s].level for s in key[2] if s in kb.evidence]
    got = _STRONGEST[key] = min(levels, key=_LEVEL_RANK.__getitem__) if levels else None
    return got


_STRONGEST: dict[tuple[str, str, tuple[str, ...]], str | None] = {}


_LEVEL_RANK = {level: i for i, level in enumerate(LEVEL_ORDER)}


def _option(opt: OptionDef, ev: Evaluation, vals: dict[str, str], kb: KnowledgeBase, note_missing,
            checks: dict[str, Any], roots: UnknownRoots, brief: bool = False) -> dict[str, Any]:
    """One option's verdict with its reasons. ``brief`` (the plan's what-if assessments) keeps
    the decisive reasons only, but still notes every missing fact the verdict hangs on."""
    row = ev.verdicts
    deciding, caps, notes = _rule_columns(opt)
    verdict = row[f"verdict__{opt.id}"]
    base = _MASK_VERDICT[_rule_mask(opt, row)]   # before caps
    reasons: list[dict[str, Any]] = []
    intent = opt.intent
    possible = possible_verdicts(row[f"possible__{opt.id}"])
    # several verdicts still possible: the reasons name what each hangs on, whether the
    # verdict is undetermined or the milder of one side (contract v3, MASK_VERDICTS)
    undetermined = len(possible) > 1
    blocked = False
    intent_set = False
    decided_by: Rule | None = None
    for r, col in deciding:
        cond = row[col]
        if blocked or cond is False:
            continue
        if cond is None:
            # an unknown condition: name it, with what would settle it
            if undetermined:
                fields = note_missing(col, opt.id, filled=True)
                if brief:
                    continue
                got = _reason(r, vals, "possible", r.id, kb, kb.roots[col])
                reasons.append(got | {
                    "verdict_if_true": r.verdict, "unknown": fields,
                    "text": _if_known(r.verdict, fields, got["text"])})
            continue
        # cond is True: this rule decides
        blocked = True
        decided_by = r
        if not undetermined and r.verdict == base:
            reasons.insert(0, _reason(r, vals, "decisive", r.id, kb, kb.roots[col]))
            if not intent_set:
                intent, intent_set = r.intent or opt.intent, True
        elif undetermined and not brief:
            reasons.append(_reason(r, vals, "possible", r.id, kb, kb.roots[col]) | {"verdict_if_true": r.verdict})
    if not blocked:
        kind = "decisive" if base == opt.otherwise.verdict and not undetermined else "possible"
        if kind == "decisive" or not brief:
            # the facts the indications read (what rules the option out is reported by its gates)
            reasons.append(_reason(opt.otherwise, vals, kind, None, kb, _indication_inputs(opt, kb), brief) | (
                {"verdict_if_true": opt.otherwise.verdict} if kind == "possible" else {}))
    if not undetermined and not intent_set:
        # decided by rules whose conditions were unknown but agreed, or by `otherwise`
        first = next((r for r, col in deciding if r.verdict == base and row[col] is not False), None)
        intent = (first.intent if first and first.intent else opt.intent)
    # a cap that holds and lowered the verdict explains it first
    for r, col in caps:
        cond = row[col]
        if cond is True and (base not in VERDICTS or VERDICTS.index(r.cap) > VERDICTS.index(base)):
            if brief and undetermined:
                continue
            reasons.insert(0, _reason(r, vals, "possible" if undetermined else "decisive", r.id, kb, brief=brief))
        elif cond is None and undetermined:
            fields = note_missing(col, opt.id, filled=True)
            if not brief:
                reasons.append(_reason(r, vals, "possible", r.id, kb) | {
                    "verdict_if_true": f"at most {r.cap}", "unknown": fields})
    # notes give context to an option still on the table, not to one already set aside
    if not brief and verdict in ("preferred", "reasonable", "undetermined"):
        for r, col in notes:
            if row[col] is True:
                reasons.append(_reason(r, vals, "note", r.id, kb))
    if undetermined and verdict != "undetermined" and not brief:
        reasons.insert(0, _one_side(opt, verdict, possible, reasons))
    # every gate that holds appears on the option, binding or not: one that neither decided nor limited the
    # verdict (another gate or rule did) is shown as a note, so that no caveat vanishes
    if not brief:
        shown = {x.get("rule") for x in reasons}
        for r, col in _gate_columns(opt):
            if row[col] is True and r.id not in shown:
                reasons.append(_reason(r, vals, "note", r.id, kb))
    out = {"id": opt.id, "label": opt.label, "modality": opt.modality, "verdict": verdict,
           "intent": intent, "reasons": reasons}
    if undetermined:
        out["possible_verdicts"] = possible
    if verdict in ("preferred", "reasonable") or (undetermined and ("preferred" in possible or "reasonable" in possible)):
        conditions = _conditions(opt, ev, kb, checks, roots, decided_by)
        if conditions:
            out["conditions"] = conditions
    return out


def _one_side(opt: OptionDef, verdict: str, possible: list[str], reasons: list[dict[str, Any]]) -> dict[str, Any]:
    """The lead reason of a verdict that is the milder of one side (contract v3): what it
    is either way, and what would make it the other verdict of that side."""
    other = next(v for v in possible if v != verdict)
    why = next((r for r in reasons if r.get("verdict_if_true") in (other, f"at most {verdict}")), None)
    settle = list(dict.fromkeys(f for r in reasons for f in r.get("unknown") or ()))
    text = (f"{verdict.replace('_', ' ').capitalize()} whichever way the missing facts turn out; it would be "
            f"{other.replace('_', ' ')} depending on {_what(settle) if settle else 'the conditions below'}.")
    return {"text": text, "sources": list(why["sources"]) if why else [], "level": why.get("level") if why else None,
            "kind": "decisive", "rule": why.get("rule") if why else None, "facts": [],
            "verdict_if_true": other}


_RULE_COLUMNS: dict[int, tuple[OptionDef, tuple[list[tuple[Rule, str]], ...]]] = {}


def _rule_columns(opt: OptionDef) -> tuple[list[tuple[Rule, str]], ...]:
    """(rule, its column) for the deciding rules, the caps and the notes, once per option."""
    got = _RULE_COLUMNS.get(id(opt))
    if got is None or got[0] is not opt:
        got = (opt, tuple([(r, rule_column(opt.id, r.id)) for r in rules] for rules in (opt.deciding, opt.caps, opt.notes)))
        _RULE_COLUMNS[id(opt)] = got
    return got[1]


_GATE_COLUMNS: dict[int, tuple[OptionDef, list[tuple[Rule, str]]]] = {}


def _gate_columns(opt: OptionDef) -> list[tuple[Rule, str]]:
    """(rule, its column) of the option's gates, in the order they are read (most severe first)."""
    got = _GATE_COLUMNS.get(id(opt))
    if got is None or got[0] is not opt:
        got = (opt, [(r, rule_column(opt.id, r.id)) for r in opt.rules if isinstance(r, Rule) and r.gate])
        _GATE_COLUMNS[id(opt)] = got
    return got[1]


_WHAT: dict[tuple[str, ...], str] = {}


def _what(fields: list[str]) -> str:
    """The missing facts an unknown condition reads, in words ("Ki-67, mitotic count and ...")."""
    key = tuple(fields)
    got = _WHAT.get(key)
    if got is None:
        names = list(dict.fromkeys(fact_label(f) for f in fields))
        names = [n[:1].lower() + n[1:] if _lowerable(n) else n for n in names]
        got = (", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)) or "a derived value"
        if len(_WHAT) < 65536:
            _WHAT[key] = got
    return got


def _lowerable(label: str) -> bool:
    """Whether a label starts with a common word (not Ki-67, ECOG, Child-Pugh, SSTR, ...)."""
    first = label.split(" ")[0]
    return not any(ch.isdigit() for ch in first) and not any(ch.isupper() for ch in first[1:])


def _if_known(verdict: str, fields: list[str], text: str) -> str:
    """A rule whose condition is still unknown, in one sentence: the verdict it would give and
    the missing facts it waits for, then its own reason."""
    what = _what(fields)
    return f"{verdict.replace('_', ' ').capitalize()} if {what} {'show' if ' and ' in what else 'shows'} this: {text}"


_INDICATION_INPUTS: dict[tuple[str, str, str], frozenset[str]] = {}


def _indication_inputs(opt: OptionDef, kb: KnowledgeBase) -> frozenset[str]:
    """The columns an option's indications (its rules that are not gates) read."""
    key = (kb.sha256, kb.guideline, opt.id)
    got = _INDICATION_INPUTS.get(key)
    if got is None:
        got = _INDICATION_INPUTS[key] = frozenset(
            c for r in opt.deciding if not r.gate for c in kb.roots[rule_column(opt.id, r.id)])
    return got


def _conditions(opt: OptionDef, ev: Evaluation, kb: KnowledgeBase, checks: dict[str, Any], roots: UnknownRoots,
                decided_by: Rule | None) -> list[dict[str, str]]:
    """The unknown pre-treatment checks this option's verdict assumed to pass.

    A rule with a ``requirement`` read before the deciding one (or the deciding rule
    itself, or a cap) whose condition is unknown on the facts as entered relied on each
    unknown check it reads; its requirement says what passing means."""
    out: dict[str, dict[str, str]] = {}
    for r, col in _requirement_rules(opt, decided_by):
        if ev.facts[col] is not None:
            continue
        for c in roots.columns(col):  # in name order: a set's order varies between processes
            field = COLUMN_FIELDS[c]
            if field in checks and field not in out:
                text = r.requirement_for(field)
                if text:
                    out[field] = {"field": field, "requirement": text}
    return list(out.values())


def _requirement_rules(opt: OptionDef, decided_by: Rule | None) -> list[tuple[Rule, str]]:
    """(rule, column) of the rules read up to the deciding one, and of the caps, that say
    what passing means (only those speak for a check: gates do), the strictest first: gates in
    gates.yaml's order (which lists, among the gates reading one check, the strictest first),
    then the option's own rules, so that a condition names the strictest requirement."""
    deciding = opt.deciding
    upto = next((i + 1 for i, r in enumerate(deciding) if r is decided_by), len(deciding))
    got = [(r, rule_column(opt.id, r.id)) for i, r in opt.requirement_rules() if i is None or i < upto]
    return sorted(got, key=lambda rc: (rc[0].rank is None, rc[0].rank or 0))


def _disagreements(row: dict[str, Any], kb: KnowledgeBase, vals: dict[str, str]) -> list[dict[str, Any]]:
    """Where another source's threshold would classify this patient differently."""
    labels = {d.name: d.label for d in kb.derived}
    for cs in kb.criteria:
        for it in cs.items:
            labels[item_column(cs.id, it.id)] = f"{cs.label}: {it.text}"
    out: dict[str, dict[str, Any]] = {}
    for col, guideline, vn in kb.variant_nodes:
        theirs, ours = row[vn.column], row[col]
        if theirs == ours or theirs is None or ours is None:
            continue
        entry = out.setdefault(col, {"topic": col, "label": labels.get(col, col), "governing": kb.guideline,
                                     "values": [{"source": kb.guideline, "value": _show(col, ours)}]})
        entry["values"].append({"source": guideline, "value": _show(col, theirs)})
    return list(out.values())


def _show(col: str, value: Any) -> Any:
    if col in GRADES:
        return grade_label(value)
    if isinstance(value, bool) and "__" in col:
        return _status(value)
    return value
