"""The treatment plan (contract v3): the working plan, its branches and the work-up.

The sequences are data (``knowledge/pathways.yaml``, after ESMO 2020 and ENETS 2023);
this module follows the pathway that fits the patient and keeps, step by step, the
options the verdicts allow. A board never goes home with "undetermined", so neither
does the plan:

- a missing fact counts only if some value of it could change the **leading
  recommendation** (judged in the verdicts' three-valued logic: a pathway whose
  candidates are all ruled out, or a candidate that cannot outrank the lead, never
  blocks);
- such a fact is **assumed** with the value boards usually meet for this patient
  (``assumptions`` in pathways.yaml, each with its reason), and the plan made under it
  is the **working plan**; each assumption gets a **branch**: the plan if the fact turns
  out otherwise (branches leading with the same option are merged; an assumption whose
  branch leads with the working plan's option could not change the lead and is dropped);
- the **work-up** lists the tests whose results decide between the working plan and its
  branches, the most decisive first;
- ``determined``: no missing fact could change the lead; ``conditional``: the working
  plan rests on assumptions (or on unknown pre-treatment checks of the leading option);
  ``undetermined``: only when a fact that defines the disease cannot be assumed.

Later steps are in the future tense: ``expected_verdicts`` re-assess the patient with
the step's event (progression on the treatments before it, response, symptoms that
persist), and a later step never names an option then expected to be contraindicated.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable


from .engine import (
    Evaluation, LeanOptions, brief_options, default_executor, evaluate, row_program, strongest_level, with_facts,
)
# the plan's decision (the pathway followed, today's order of its options, the facts that could
# change its lead) is the plan program's, the expressions the screen and the SQL view run too
from .engine.plan_program import NOW_VERDICTS, TRIAL, fields_of, option_ids as _option_ids, plan_row
from .knowledge import KnowledgeBase, assumption_column, fields_of_mask, pathway_column, rule_column
from .knowledge.ruleset import OPTION_LABELS
from .consistency import contradicts
from .once import per_object
from .patient import COLUMN_FIELDS, Patient, flatten_document, patched_row, set_field
from .summary import OTHER_OPTIONS_REST_ON, and_join, fact_label

RANK = {"preferred": 0, "reasonable": 1, "undetermined": 2, "not_recommended": 3, "contraindicated": 4}
# a step names at most this many options, add-ons included
STEP_NAMES = 3
# how many rounds of assumptions a plan may need (each round assumes every fact that blocks)
ROUNDS = 5

# (kept for callers: the planner words its steps from engine.brief_options and needs no callback)
Reassess = Callable[[Patient], tuple[Evaluation, dict[str, Any]]]


def _label(oid: str) -> str:
    return OPTION_LABELS.get(oid, oid)


# --------------------------------------------------------------------------- following a pathway

def follow(ev: Evaluation, options: dict[str, dict[str, Any]], kb: KnowledgeBase
           ) -> tuple[Any | None, list[dict[str, Any]], frozenset[str]]:
    """The pathway to follow, its step for today (``build_steps(..., lean=True)``: the lead and
    what is given with it, without texts; none when no pathway is followed), and the missing
    facts that could change the lead (the fields, dotted).

    Which pathway is followed and what could change its lead is the plan program's decision
    (:mod:`nelm.engine.plan_program`, module docstring), run on the evaluation's verdict row. The
    first pathway that holds and has an option for today is followed: when what rules out its
    first choice cannot be undone today (curative surgery in a patient with Child-Pugh B), the
    next pathway that holds takes over; when no pathway that holds offers anything today, the
    first one is followed with its ``nothing_now`` step. An unknown pathway whose candidates are
    all ruled out today cannot change the lead and is passed over. What could change the lead:
    the facts behind the unknown pathways read before the one followed, a candidate that could
    take the lead from an earlier step or outrank it in its own, or, when nothing leads, any
    candidate that may still be preferred or reasonable. A pre-treatment check reads as passing
    (the verdict row's), so it is a condition of the option, not a blocking fact; one the record
    leaves unassumed (Child-Pugh class with liver function known to be impaired) is a missing
    fact like any other.
    """
    followed, lead, missing = plan_row(kb).decide(ev, kb)
    if followed is None:
        return None, [], fields_of(missing)
    pw = kb.pathways[followed]
    steps = build_steps(pw, ev.verdicts, options, kb, lean=True)
    # (the step lists the options in the order the decision ranked them: its first is the lead)
    assert (steps[0]["options"][:1] or [None])[0] == (None if lead is None else kb.options[lead].id), (pw.id, lead)
    return pw, steps, fields_of(missing)


def _today(pw: Any, row: dict[str, Any], kb: KnowledgeBase) -> dict[int, list[str]]:
    """Each ``now`` step of the pathway (index) with the options it offers today, in the plan
    program's order (established care before a trial, preferred before reasonable, then the
    step's order: plan_program.step_order); a step that offers nothing is left out."""
    program = plan_row(kb)
    j = _pathway_index(kb)[pw.id]
    ranked: dict[int, list[tuple[int, str]]] = {}
    for (i, oid), place in zip(program.layout[j], program.order[j](row)):
        if place is not None:
            ranked.setdefault(i, []).append((place, oid))
    return {i: [oid for _, oid in sorted(got)] for i, got in ranked.items()}


@per_object
def _pathway_index(kb: KnowledgeBase) -> dict[str, int]:
    return {pw.id: j for j, pw in enumerate(kb.pathways)}


def build_steps(pw: Any, row: dict[str, Any], options: dict[str, dict[str, Any]], kb: KnowledgeBase,
                future: dict[str, Mapping[str, dict[str, Any]]] | None = None, *, lean: bool = False) -> list[dict[str, Any]]:
    """The pathway's steps for this patient, from ``options`` (the verdicts the plan reads).

    The first ``now`` step that offers something is the step for today; options of the
    later ``now`` steps join it as add-ons given together with it (the analogue continued
    beside the next line, syndrome control covering an operation), never as a second
    "now". ``future`` maps a later step's ``when`` to the verdicts expected when it comes.
    ``lean``: today's step alone (the first step of the steps built in full), its texts left
    empty (what settling the plan reads, tens of times per plan).
    """
    steps: list[dict[str, Any]] = []
    used: set[str] = set()
    first: dict[str, Any] | None = None
    today = _today(pw, row, kb)
    for i, step in enumerate(pw.steps):
        if lean and step.when != "now":
            continue   # (today's step alone: the later steps are not read)
        if step.if_ and row[pathway_column(pw.id, i)] is not True:
            continue
        if step.when == "now":
            if first is None and step.joins:
                continue   # given only beside today's treatment: it never opens the plan alone
            chosen = [oid for oid in today.get(i, ()) if oid not in used]
            if not chosen:
                continue
            if first is None:
                first = _step(pw, step, chosen[: STEP_NAMES], options, kb, texts=not lean)
                used.update(first["options"])
                steps.append(first)
            else:
                # an add-on (the analogue continued, syndrome control) is kept: the step's last
                # alternatives make room for it, the first one always stays
                extra = chosen[: min(step.limit, STEP_NAMES - 1 - len(first["add_on"]))]
                if extra:
                    alternatives = [o for o in first["options"] if o not in first["add_on"]]
                    drop = max(0, len(first["options"]) + len(extra) - STEP_NAMES)
                    for o in alternatives[::-1][:min(drop, len(alternatives) - 1)]:
                        first["options"].remove(o)
                        used.discard(o)
                    _add_on(first, extra, step, kb, texts=not lean)
                    used.update(extra)
            continue
        if lean:
            continue
        foreseen = future is not None and step.when in future
        expected = future[step.when] if foreseen else options
        picked = []
        for order, (oid, cond) in enumerate(_option_ids(step)):
            if oid in used or (cond and row[pathway_column(pw.id, i, oid)] is not True):
                continue
            if not _may_name_later(options[oid], expected[oid], foreseen, kb):
                continue
            # the pathway's order, as the sources rank them
            picked.append((0, order, oid))
        chosen = [oid for *_, oid in sorted(picked)][: step.limit]
        if not chosen:
            continue
        used.update(chosen)
        s = _step(pw, step, chosen, options, kb, decisive=False)
        s["expected_verdicts"] = {oid: expected[oid]["verdict"] for oid in chosen}
        steps.append(s)
    if first is None and lean:
        steps.insert(0, {"step": 1, "when": "now", "options": [], "add_on": [], "intent": "disease_control",
                         "combine": "single", "reason": "", "sources": [], "level": None, "expected_verdicts": {}})
    elif first is None:
        # nothing of the pathway fits today: say so (surveillance, supportive care) rather
        # than promote a later step to today
        steps.insert(0, {"step": 1, "when": "now", "options": [], "add_on": [], "intent": "disease_control",
                         "combine": "single", "reason": " ".join(pw.nothing_now.reason.split()),
                         "sources": list(pw.nothing_now.sources), "level": strongest_level(pw.nothing_now.sources, kb),
                         "expected_verdicts": {}})
    for n, s in enumerate(steps, 1):
        s["step"] = n
    return steps


def _step(pw: Any, step: Any, chosen: list[str], options: dict[str, dict[str, Any]], kb: KnowledgeBase,
          decisive: bool = True, texts: bool = True) -> dict[str, Any]:
    if not texts:
        return {"step": 0, "when": step.when, "options": list(chosen), "add_on": [],
                "intent": step.intent or options[chosen[0]]["intent"],
                "combine": step.combine if len(chosen) > 1 else "single", "reason": "", "sources": [], "level": None,
                "expected_verdicts": {oid: options[oid]["verdict"] for oid in chosen}}
    how = ("" if len(chosen) == 1 else " Given together." if step.combine == "together"
           else " Alternatives, in order of preference.")
    reason, sources = " ".join(step.reason.split()) + how, list(step.sources)
    if decisive:
        # what makes the first choice fit this patient, in the option's own decisive reason
        why = next((r for r in options[chosen[0]]["reasons"] if r["kind"] == "decisive"), None)
        if why and why.get("text"):
            reason += f" For this patient: {why['text']}"
            sources += [x for x in why["sources"] if x not in sources]
    return {"step": 0, "when": step.when, "options": list(chosen), "add_on": [],
            "intent": step.intent or options[chosen[0]]["intent"],
            "combine": step.combine if len(chosen) > 1 else "single",
            "reason": reason, "sources": sources, "level": strongest_level(sources, kb),
            "expected_verdicts": {oid: options[oid]["verdict"] for oid in chosen}}


def _add_on(first: dict[str, Any], extra: list[str], step: Any, kb: KnowledgeBase, texts: bool = True) -> None:
    """Options of a later ``now`` step given together with today's step."""
    if texts:
        names = " and ".join(_label(o) for o in extra)
        first["reason"] += f" Together with it: {names}. " + " ".join(step.reason.split())
        first["sources"] += [x for x in step.sources if x not in first["sources"]]
        first["level"] = strongest_level(first["sources"], kb)
    first["options"] += extra
    first["add_on"] += extra
    first["expected_verdicts"] = {o: v for o, v in first["expected_verdicts"].items() if o in first["options"]}
    if len(first["options"]) - len(first["add_on"]) == 1:
        first["combine"] = "together"   # one treatment and what is given with it


def _may_name_later(today: dict[str, Any], then: dict[str, Any], foreseen: bool, kb: KnowledgeBase) -> bool:
    """May a later step name this option, ``then`` its verdict expected when the step comes
    (``foreseen``: with the step's event applied; else today's, no event)? With the event applied,
    a negative verdict then is final; read against today's verdicts, a rule the event undoes
    (``later``) keeps it. (The planner's steps and the narrowing of a merged branch read it alike.)"""
    v = then["verdict"]
    return not (v == "contraindicated" or (foreseen and v == "not_recommended")) and _later(today, then, kb)


def _later(today: dict[str, Any], then: dict[str, Any], kb: KnowledgeBase) -> bool:
    """May a later step name this option? Not when the verdict expected then is negative
    for a reason the step's event does not undo (a gate: organ function, fitness, what the
    disease progressed on): the event was applied, so a negative verdict then is final
    unless the rule that decides it is marked ``later``."""
    if then["verdict"] in ("preferred", "reasonable", "undetermined"):
        return True
    if then["verdict"] == "contraindicated":
        return False
    later = _later_rules(kb)[then["id"]]
    decisive = [r.get("rule") for r in then["reasons"] if r["kind"] == "decisive"]
    return bool(decisive) and all(later.get(r, False) for r in decisive)


@per_object
def _later_rules(kb: KnowledgeBase) -> dict[str, dict[Any, bool]]:
    """Option -> its deciding rules' ``later`` flags (None: ``otherwise``), once per knowledge base."""
    return {opt.id: {r.id: r.later for r in opt.deciding} | {None: opt.otherwise.later} for opt in kb.options}


# --------------------------------------------------------------------------- what could change the lead

def _fields(kb: KnowledgeBase, columns: list[str], ev: Evaluation) -> set[str]:
    if not columns:
        return set()
    # the fields of the columns' unknown inputs together: one mask, named once
    mask, roots = 0, ev.filled_roots(kb)
    for col in columns:
        mask |= roots.mask(col)
    return set(fields_of_mask(mask))


_FIELD_COLUMNS: dict[str, list[str]] = {}
for _col, _field in COLUMN_FIELDS.items():
    _FIELD_COLUMNS.setdefault(_field, []).append(_col)


# --------------------------------------------------------------------------- the planner

def _key(values: dict[str, Any]) -> tuple:
    """A set of filled-in facts as a key of the planner's caches (the same facts, the same key)."""
    return tuple(sorted(zip(values, map(repr, values.values()))))


class _Planner:
    """One patient's plan: evaluations of the patient with facts filled in, cached."""

    def __init__(self, patient: Patient, ev: Evaluation, assessment: dict[str, Any], kb: KnowledgeBase,
                 reassess: Reassess | None = None):
        self.patient, self.kb = patient, kb
        self.base = patient.model_dump()
        self.base_row = flatten_document(self.base)
        self.base_fits = not contradicts(self.base_row)
        # a patched row's input columns are its patient's with the patched ones cast (id -> (row, columns))
        self._program = row_program(kb)
        self._executor = default_executor()
        self._base_inputs = self._program.inputs(self.base_row) if self._program is not None else None
        self._patched: dict[int, tuple[dict[str, Any], frozenset[str]]] = {}
        self._states: dict[Any, tuple[Evaluation, dict[str, Any] | None, dict[str, dict[str, Any]]] | None] = {
            (): (ev, assessment, {o["id"]: o for o in assessment["options"]})}
        self.today = self._states[()][2]
        self.assumable = list(enumerate(kb.assumptions))
        # field -> (the record, the column saying whether it is for this patient, None: always)
        self._assumable_by_field: dict[str, list[tuple[Any, str | None]]] = {}
        for i, a in self.assumable:
            self._assumable_by_field.setdefault(a.field, []).append((a, assumption_column(i) if a.when else None))
        self._assumable = frozenset(self._assumable_by_field)

    # -- evaluations
    def state(self, values: dict[str, Any], key: tuple | None = None):
        """The evaluation with ``values`` filled in, as the planner reads it: (the evaluation, None
        (the facts as entered: the assessment), its options' verdicts, no text). ``key``:
        ``_key(values)``, where the caller has it."""
        key = _key(values) if key is None else key
        if key not in self._states:
            row = self.completed(values, key)
            if row is None:
                self._states[key] = None
            else:
                # what engine.plan_view(..., conditions=False, missing=False) gives, each option
                # built when first read (following the pathways reads a few of them)
                ev = self._evaluated(row)
                options = LeanOptions(ev, self.kb)
                self._states[key] = (ev, None, options)
        return self._states[key]

    def _evaluated(self, row: dict[str, Any]) -> Evaluation:
        """The verdict pass on a flat row; two sets of filled-in facts that give the same row
        (a fact that follows, a value the record already implies) share one evaluation."""
        key = ("row",) + tuple(row.values())
        if key not in self._states:
            patched = self._patched.get(id(row))
            inputs = None
            if patched is not None and patched[0] is row and self._base_inputs is not None:
                inputs = self._program.patched_inputs(self._base_inputs, row, patched[1])
            self._states[key] = evaluate(row, self.kb, verdicts_only=True, inputs=inputs, executor=self._executor)
        return self._states[key]

    def completed(self, values: dict[str, Any], key: tuple | None = None) -> dict[str, Any] | None:
        """The flat row of the patient with ``values`` filled in (None: the record contradicts
        them). The document derives from one that passed the input gate and the model, and
        the values come from the knowledge base, so the model's checks that can fail are the
        consistency checks, run here on the row, and a history's filled-in outcome against
        its months to progression (the one check of a therapy record). ``key``: ``_key(values)``,
        where the caller has it."""
        key = ("patient",) + (_key(values) if key is None else key)
        if key not in self._states and self.base_fits:
            # most what-ifs fill in facts whose columns the patient's own row shows directly:
            # that row with those columns replaced, checked against the consistency checks
            # that read them (the patient's row fails none); the same row and answer as the
            # document's, without building and flattening it
            as_set = _as_set(self.base, values)
            patched = None if as_set is None else patched_row(self.base, self.base_row, as_set)
            if as_set is None:
                self._states[key] = None
            elif patched is not None:
                row, changed = patched
                self._states[key] = None if contradicts(row, changed) else row
                self._patched[id(row)] = (row, changed)
        if key not in self._states:
            data = _document(self.base, values)
            if data is None:
                self._states[key] = None
            else:
                row = flatten_document(data)
                self._states[key] = None if contradicts(row) else row
        return self._states[key]

    def patient_with(self, values: dict[str, Any]) -> Patient:
        """The patient model with ``values`` filled in (the assessment that words a step)."""
        return Patient.model_validate(_document(self.base, values))

    def valid(self, values: dict[str, Any], key: tuple | None = None) -> bool:
        """Is the document with ``values`` filled in still consistent (the model's checks only)?"""
        return self.completed(values, key) is not None

    def full(self, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The options with their decisive reasons (the steps' texts) with ``values`` filled in."""
        if not values:
            return self.today
        key = ("full",) + _key(values)
        if key not in self._states:
            # the brief assessment's options, each worked out when first read beyond its verdict
            # (the working plan's steps read the reasons and conditions of a few): the same
            # options as assessment_from(..., brief=True) gives
            # (the evaluation settled on, with its facts pass added; the document for the model:
            # the same row, tests/test_plan_v3.py, and the same facts the reasons quote)
            ev = with_facts(self.state(values)[0], self.completed(values), self.kb)
            self._states[key] = brief_options(ev, _document(self.base, values), self.kb,
                                              frozenset(f for f in values if not self.known(f)))
        return self._states[key]

    def assumptions_for(self, field: str, row: dict[str, Any]) -> list[Any]:
        """The assumption records for a field that fit this patient, in the knowledge base's order."""
        return [a for a, when in self._assumable_by_field.get(field, ()) if when is None or row.get(when) is True]

    def restaging_decides(self, values: dict[str, Any]) -> bool:
        """A therapy still given with its outcome unrecorded takes the outcome of the next
        restaging (nelm.patient.worst_outcome): the course decides it while unknown."""
        return ("course.status" not in values and not self.known("course.status")
                and any(r.get("outcome") is None and r.get("ongoing") is True
                        for r in self.base.get("prior_therapies") or []))

    def known(self, dotted: str) -> bool:
        node: Any = self.base
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node is not None

    def filled(self, a: Any, value: Any, also: dict[str, Any]) -> dict[str, Any]:
        """The assumed (or alternative) value and the facts that follow from it, where unknown."""
        return {a.field: value} | {f: v for f, v in also.items() if not self.known(f)}

    # -- settling the lead
    def settle(self, fixed: dict[str, Any]) -> dict[str, Any]:
        """The plan with ``fixed`` facts filled in, assuming what still blocks the lead.

        Returns the state reached: ``values`` (everything filled in), ``assumed`` (the
        assumption records used, by field), the pathway, its steps, the facts still
        blocking that no assumption covers, and the leading option's conditions."""
        values = dict(fixed)
        key = _key(values)   # (each round's values are checked, then evaluated: keyed once)
        assumed: dict[str, Any] = {}
        st = self.state(values, key)
        if st is None:
            return {"invalid": True}
        for _ in range(ROUNDS):
            ev, _, options = st
            pw, steps, blocking = follow(ev, options, self.kb)
            if "prior_therapies" in blocking and self.restaging_decides(values):
                blocking = blocking | {"course.status"}
            done = {"values": values, "assumed": assumed, "pw": pw, "steps": steps, "blocking": blocking,
                    "state": st}
            if pw is not None and not blocking:
                return done
            # (a field no assumption names gives none: only those that have one are asked)
            new = [xs for xs in (self.assumptions_for(f, ev.verdicts) for f in sorted(blocking & self._assumable)
                                 if f not in values) if xs]
            if not new:
                return done
            trial = dict(values)
            for xs in new:
                trial |= self.filled(xs[0], xs[0].assumed, xs[0].also)
            trial_key = _key(trial)
            if self.valid(trial, trial_key):
                values, key = trial, trial_key
                assumed.update({xs[0].field: xs[0] for xs in new})
            else:
                # together they contradict the record: one fact at a time, each record that fits
                # it in turn (the next record of a field when the first contradicts the record)
                grown = False
                for xs in new:
                    for x in xs:
                        more = values | self.filled(x, x.assumed, x.also)
                        more_key = _key(more)
                        if self.valid(more, more_key):
                            values, key, assumed[x.field], grown = more, more_key, x, True
                            break
                if not grown:
                    return done
            st = self.state(values, key)
        ev, _, options = st
        pw, steps, blocking = follow(ev, options, self.kb)
        return {"values": values, "assumed": assumed, "pw": pw, "steps": steps, "blocking": blocking,
                "state": st}

    # -- the future tense
    def future(self, values: dict[str, Any], pw: Any, steps: list[dict[str, Any]]) -> dict[str, _Expected]:
        """The verdicts expected when each later kind of step comes (the working plan's
        facts, plus the event), each evaluated when a step first reads it."""
        given = [o for s in steps if s["when"] == "now" for o in s["options"][:1] + s.get("add_on", [])]
        prior = list(_history(self.base.get("prior_therapies"), values.get("prior_therapies")) or [])
        out: dict[str, _Expected] = {}
        kinds = {s.when for s in pw.steps if s.when != "now"}
        events = {
            "at_progression": {"course.status": "progressive", "prior_therapies": prior + [
                {"therapy": o, "outcome": "progression", "months_to_progression": None, "ongoing": False}
                for o in given if o not in _LOCAL]},
            "after_response": {"course.status": "stable", "prior_therapies": prior + [
                {"therapy": o, "outcome": "response", "months_to_progression": None, "ongoing": o not in _LOCAL}
                for o in given]},
            "if_symptoms_persist": {"symptomatic": True},
        }
        # an untreated syndrome is untreated no longer once the steps before were given:
        # its control then is what that treatment achieved (unknown), and a syndrome whose
        # symptoms persist is refractory
        control = values.get("functional_control") or self.base.get("functional_control")
        if given and control == "untreated":
            events["at_progression"]["functional_control"] = None
            events["after_response"]["functional_control"] = None
        if given and control in ("untreated", "controlled"):
            # (a syndrome controlled until now whose symptoms persist is refractory too: board review 8)
            events["if_symptoms_persist"]["functional_control"] = "refractory"
        # after an operation or ablation, what recurs is a new extent: whether it can be
        # removed again is open (repeat local treatment when limited, otherwise the sequence
        # for unresectable disease)
        if set(given) & _LOCAL:
            events["at_progression"] |= {"liver.resectable": None, "liver.resectable_fraction_percent": None}
        for kind in kinds:
            out[kind] = _Expected(self, values, values | events[kind])
        return out

    def verdicts(self, values: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
        """Each option's verdict and deciding rule with ``values`` filled in (what a later
        step reads), without the assessment's reasons and missing data; each option worked
        out when first read (a later step reads a few of them)."""
        key = ("verdicts",) + _key(values)
        if key not in self._states:
            row = self.completed(values)
            self._states[key] = None if row is None else _VerdictsOnly(self._evaluated(row), self.kb)
        return self._states[key]


class _Expected(Mapping):
    """The verdicts expected when a later kind of step comes (option -> verdict and deciding
    rule), evaluated when a step first reads one: a later step whose options are all given
    before it, or left out by their own conditions, reads none, and then the what-if with
    its event is not evaluated at all (about a third of them). Where the event contradicts
    the record, the working plan's own verdicts stand in, as before."""

    def __init__(self, planner: _Planner, values: dict[str, Any], then: dict[str, Any]):
        self._planner, self._values, self._then = planner, values, then
        self._got: dict[str, dict[str, Any]] | None = None

    def _verdicts(self) -> dict[str, dict[str, Any]]:
        if self._got is None:
            got = self._planner.verdicts(self._then)
            self._got = got if got is not None else self._planner.state(self._values)[2]
        return self._got

    def __getitem__(self, oid: str) -> dict[str, Any]:
        return self._verdicts()[oid]

    def __iter__(self):
        return iter(self._verdicts())

    def __len__(self) -> int:
        return len(self._verdicts())


class _VerdictsOnly(dict):
    """Options as the plan's later steps read them: verdict, and the rule that decided it
    (the first deciding rule that certainly holds; none when ``otherwise`` decides), each
    worked out when first read. Read by key only (``options[oid]``), as LeanOptions."""

    def __init__(self, ev: Evaluation, kb: KnowledgeBase):
        super().__init__()
        self._row, self._columns = ev.verdicts, _deciding_columns(kb)

    def __missing__(self, oid: str) -> dict[str, Any]:
        verdict_col, deciding = self._columns[oid]
        row = self._row
        verdict = row[verdict_col]
        if verdict == "undetermined":
            out = {"id": oid, "verdict": verdict, "reasons": []}
        else:
            rule = next((rid for rid, col in deciding if row[col] is True), None)
            out = {"id": oid, "verdict": verdict, "reasons": [{"kind": "decisive", "rule": rule}]}
        self[oid] = out
        return out


@per_object
def _deciding_columns(kb: KnowledgeBase) -> dict[str, tuple[str, tuple[tuple[str, str], ...]]]:
    """Option -> (its verdict column, (rule, column) of its deciding rules), once per knowledge base."""
    return {opt.id: (f"verdict__{opt.id}", tuple((r.id, rule_column(opt.id, r.id)) for r in opt.deciding))
            for opt in kb.options}


# options whose "progression on" is a recurrence after a procedure, not a line to exclude
_LOCAL = {"liver_resection", "thermal_ablation", "liver_transplant"}


def build_plan(patient: Patient, ev: Evaluation, assessment: dict[str, Any], kb: KnowledgeBase,
               reassess: Reassess | None = None) -> dict[str, Any]:
    """The plan section of an assessment (``reassess``: no longer read)."""
    planner = _Planner(patient, ev, assessment, kb, reassess)
    work = planner.settle({})
    if work.get("invalid") or work["pw"] is None or work["blocking"]:
        return _undetermined(planner, work, assessment, kb)

    steps = _steps_for(planner, work)
    lead = steps[0]["options"][0] if steps[0]["options"] else None
    # each assumption gets a branch; one that leads the same way could not change the lead
    assumptions, branches = [], []
    quiet_facts = []   # (field, record, the first-step options of each other value that leads the same way)
    for field, a in work["assumed"].items():
        found = []   # (branch index, the lead there, the settled branch) for each other value that changes the lead
        same_lead = []
        for k, value, alt, alt_lead, settled in _other_values(planner, a):
            if settled and alt_lead == lead:
                same_lead.append(alt["steps"][0]["options"])
                continue
            label = (a.if_not_label if k == 0 else None) or f"{fact_label(field)}: {value}"
            cond = {"field": field, "value": value, "label": label,
                    "with": {f: v for f, v in (a.also_if_not if k == 0 else {}).items() if not planner.known(f)}}
            # a settled branch has steps (build_steps always gives today's step): one that leads
            # like a branch already built joins it, and its own steps (their later steps' expected
            # verdicts are evaluations) are not built only to be dropped
            same = next((b for b in branches if settled and b["_lead"] == alt_lead and b["steps"]), None)
            if same is not None:
                same["if"].append(cond)
                _narrow(same, alt, kb, planner.future(alt["values"], alt["pw"], alt["steps"]) if alt["pw"] is not None else None)
                index = branches.index(same)
            else:
                alt_steps = _steps_for(planner, alt, branch=True) if settled else []
                branches.append(_branch(planner, alt, alt_steps, alt_lead, cond, kb))
                index = len(branches) - 1
            found.append((index, alt_lead, alt))
        if not found:
            quiet_facts.append((field, a, same_lead))
            continue   # no other value changes the lead: the fact could not change it
        index, alt_lead, alt = found[0]
        assumptions.append({"field": field, "label": fact_label(field), "assumed": a.assumed,
                            "statement": a.label or f"{fact_label(field)}: {a.assumed}",
                            "if_not": _if_not(alt_lead, alt, branches[index]), "branch": index,
                            "branches": sorted({i for i, *_ in found}),
                            "reason": " ".join(a.reason.split()), "sources": list(a.sources)})
    # facts assumed on the way whose other values lead the same way cannot change the lead (no
    # branch, not missing); where one changes the first step's other options, the step says so
    # rather than rest on a fact nobody sees
    listed = {a["field"] for a in assumptions}
    # (only the facts whose other values change the step's options: board review 9 saw the sentence
    # printed with nothing after its colon)
    quiet = [w for field, a, others in quiet_facts if field not in listed and (w := _quiet_words(a, work, others))]
    if quiet and steps[0]["options"]:
        steps[0]["reason"] += OTHER_OPTIONS_REST_ON + "; ".join(quiet) + "."
    # the leading option's unknown pre-treatment checks, read from its full assessment (the
    # what-if evaluations skip the facts pass that conditions come from)
    working = planner.full(work["values"])
    conds = _lead_conditions(working, lead, kb)
    checks = [_check_assumption(c, steps, kb, planner, work["values"]) for c in conds]
    for b in branches:
        b.pop("_lead")
    status = "conditional" if assumptions or checks else "determined"
    missing = sorted({a["field"] for a in assumptions} | {c["field"] for c in checks})
    plan = _plan(status, work["pw"], steps, assumptions + checks, missing)
    plan["branches"] = branches
    plan["workup"] = _workup(assumptions, checks, lead, branches, kb)
    plan["deferred"] = _deferred(work["pw"], steps, assessment, kb)
    return plan


def _quiet_words(a: Any, work: dict[str, Any], others: list[list[str]]) -> str | None:
    """An assumed fact that cannot change the lead, in words, where another of its values
    changes the first step's other options: what it is and which options would join or leave
    (None where no other value changes them)."""
    mine = work["steps"][0]["options"]
    joins = [o for opts in others for o in opts if o not in mine]
    leaves = [o for o in mine if any(o not in opts for opts in others)]
    if not joins and not leaves:
        return None
    change = []
    if joins:
        change.append(and_join([_label(o) for o in dict.fromkeys(joins)]) + " would join the step")
    if leaves:
        change.append(and_join([_label(o) for o in dict.fromkeys(leaves)]) + " would leave it")
    return f"{a.label} (otherwise {' and '.join(change)})"


def _other_values(planner: _Planner, a: Any):
    """Each other value of an assumed fact with the plan settled on it: (index, value, the
    settled state, its leading option, whether it settled). The lead comes from the steps
    follow() built; a branch's whole steps are built only where its lead differs."""
    for k, value in enumerate([a.alternative, *a.also_alternatives]):
        alt = planner.settle(planner.filled(a, value, a.also_if_not if k == 0 else {}))
        if alt.get("invalid"):
            continue
        settled = alt["pw"] is not None and not alt["blocking"]
        alt_lead = alt["steps"][0]["options"][0] if settled and alt["steps"] and alt["steps"][0]["options"] else None
        yield k, value, alt, alt_lead, settled


def plan_summary(patient: Patient, ev: Evaluation, assessment: dict[str, Any], kb: KnowledgeBase,
                 reassess: Reassess | None = None) -> tuple[str, str | None]:
    """The status and leading option of :func:`build_plan`'s plan, decided the same way
    without what only the document shows (the steps' texts and expected verdicts, the
    branches' steps, the work-up): what screening a registry asks. The first value of an
    assumed fact that leads elsewhere is enough to make the plan conditional."""
    planner = _Planner(patient, ev, assessment, kb, reassess)
    work = planner.settle({})
    if work.get("invalid") or work["pw"] is None or work["blocking"]:
        return "undetermined", None
    lead = work["steps"][0]["options"][0] if work["steps"][0]["options"] else None
    for a in work["assumed"].values():
        for _, _, _, alt_lead, settled in _other_values(planner, a):
            if not (settled and alt_lead == lead):
                return "conditional", lead
    if _lead_conditions(planner.full(work["values"]), lead, kb):
        return "conditional", lead
    return "determined", lead


_WHEN_WORDS = {"after_response": "after a response", "at_progression": "at progression",
               "if_symptoms_persist": "if symptoms persist"}


def _deferred(pw: Any, steps: list[dict[str, Any]], assessment: dict[str, Any], kb: KnowledgeBase
              ) -> list[dict[str, Any]]:
    """Options preferred today that the plan does not give today, each with why it waits
    (issue 18: a plan, not a menu); the reason is also added to the option's own reasons."""
    today = set(steps[0]["options"]) if steps else set()
    out = []
    for o in assessment["options"]:
        if o["verdict"] != "preferred" or o["id"] in today:
            continue
        later = next((s for s in steps if o["id"] in s["options"]), None)
        first = [x for x in steps[0]["options"] if x not in steps[0].get("add_on", [])] if steps else []
        if later is not None:
            why = f"The plan gives it {_WHEN_WORDS.get(later['when'], later['when'])} (step {later['step']})."
        elif o["id"] == TRIAL and first:
            why = (f"A trial follows established care: the plan starts with {_label(first[0])}; a trial is offered "
                   "where no standard line remains or where one is open beside it.")
        elif first:
            why = (f"The plan names at most {STEP_NAMES} options today and ranks {', '.join(_label(x) for x in first)} "
                   f"first for this patient ({pw.label}).")
        else:
            why = f"Not part of the {pw.label} sequence for today."
        out.append({"option": o["id"], "why": why})
        o["reasons"].append({"kind": "note", "text": f"Preferred, but not in today's step: {why}",
                             "sources": list(pw.sources), "level": strongest_level(pw.sources, kb),
                             "rule": None, "facts": []})
    return out


def _steps_for(planner: _Planner, work: dict[str, Any], *, branch: bool = False) -> list[dict[str, Any]]:
    """The settled plan's steps, later steps with the verdicts expected then; ``now``
    options show today's verdict (``expected_verdicts`` of a ``now`` step). The working
    plan's first step quotes its leading option's own reason for this patient; a branch's
    steps give the pathway's reasons (its options' reasons are in the assessment)."""
    ev, _, lean = work["state"]
    pw = work["pw"]
    future = planner.future(work["values"], pw, work["steps"])
    steps = build_steps(pw, ev.verdicts, lean if branch else planner.full(work["values"]), planner.kb, future)
    for s in steps:
        # a branch's ``now`` step keeps the verdicts of its own world (the verdict it has today once the
        # branch's facts are known); the working plan's shows today's, on the facts as entered
        if s["when"] == "now" and not branch:
            working = s["expected_verdicts"]
            s["expected_verdicts"] = {oid: planner.today[oid]["verdict"] for oid in s["options"]}
            # the step is ordered on the working plan's facts; where an option's verdict there is
            # not today's (a fact assumed, a check taken to pass), say so, or the order reads wrong
            differ = [f"{_label(o)} {_VERDICT_WORDS[working[o]]}" for o in s["options"]
                      if working.get(o) in _VERDICT_WORDS and working[o] != s["expected_verdicts"][o]]
            if differ:
                s["reason"] += (" On the plan's assumptions " + and_join(differ)
                                + "; the verdicts shown are today's, until those are confirmed.")
    return steps


_VERDICT_WORDS = {"preferred": "is preferred", "reasonable": "is reasonable", "not_recommended": "is not recommended",
                  "contraindicated": "is contraindicated"}



def _branch(planner: _Planner, alt: dict[str, Any], steps: list[dict[str, Any]], lead: str | None,
            cond: dict[str, Any], kb: KnowledgeBase) -> dict[str, Any]:
    if not steps:
        missing = sorted(alt.get("blocking") or [])
        return {"if": [cond], "status": "undetermined", "pathway": alt["pw"].id if alt.get("pw") else None,
                "steps": [], "missing": missing, "_lead": None}
    own = [{"field": f, "label": fact_label(f), "assumed": x.assumed,
            "statement": x.label or f"{fact_label(f)}: {x.assumed}", "reason": " ".join(x.reason.split()),
            "sources": list(x.sources)} for f, x in alt["assumed"].items()]
    return {"if": [cond], "status": "conditional" if own else "determined", "pathway": alt["pw"].id,
            "pathway_label": alt["pw"].label, "steps": steps, "assumptions": own,
            "missing": sorted(a["field"] for a in own), "_lead": lead}


def _narrow(branch: dict[str, Any], alt: dict[str, Any], kb: KnowledgeBase, future: Mapping[str, Any] | None = None) -> None:
    """A branch another way of the facts joins (the same lead) keeps only what holds in that
    world too, so that no condition of a merged branch meets an option or an assumption it
    rules out (board review 3: a branch "SSTR imaging negative, or more than 75 % of the liver
    replaced" listed PRRT today; one "the surgeon judges the disease unresectable, or ..."
    assumed the disease removable). The lead is the same in both by construction. Its steps
    keep, today, the options that world allows now and, later, those it does not rule out;
    its assumptions, those both worlds make, about facts no condition of the branch names.
    ``future``: that world's verdicts expected when each later kind of step comes: a later
    option is kept only where it is expected positive there too, and shows the weaker of the
    two expected verdicts (red-line test: a branch "insulinoma, or SSTR imaging negative" kept
    the insulinoma's sunitinib at progression for a non-functioning duodenal NET)."""
    _, _, options = alt["state"]
    fixed = {c["field"] for c in branch["if"]} | {f for c in branch["if"] for f in c.get("with", {})}
    kept = []
    for s in branch["steps"]:
        # the verdicts that world expects when the step comes: today's there for a ``now`` step
        foreseen = future is not None and s["when"] in future
        then = future[s["when"]] if foreseen else options
        if s["when"] == "now":
            allowed = [o for o in s["options"] if then[o]["verdict"] in NOW_VERDICTS]
        else:
            # (the same test as the planner's own later steps)
            allowed = [o for o in s["options"] if _may_name_later(options[o], then[o], foreseen, kb)]
        if s["when"] == "now" or foreseen:
            for o in allowed:
                # the weaker of the two ways' verdicts (red-line test: a merged branch showed one way's
                # verdict for an option the other way holds back)
                mine, theirs = s["expected_verdicts"].get(o), then[o]["verdict"]
                if mine is not None and RANK.get(theirs, 2) > RANK.get(mine, 2):
                    s["expected_verdicts"][o] = theirs
        if not allowed and s is not branch["steps"][0]:
            continue
        s["options"] = allowed
        s["add_on"] = [o for o in s.get("add_on", []) if o in allowed]
        s["expected_verdicts"] = {o: v for o, v in s["expected_verdicts"].items() if o in allowed}
        kept.append(s)
    for n, s in enumerate(kept, 1):
        s["step"] = n
    branch["steps"] = kept
    theirs = {f: x.assumed for f, x in alt["assumed"].items()}
    branch["assumptions"] = [a for a in branch.get("assumptions", [])
                             if a["field"] not in fixed and a["field"] in theirs and theirs[a["field"]] == a["assumed"]]
    branch["missing"] = sorted(a["field"] for a in branch["assumptions"])
    branch["status"] = "conditional" if branch["assumptions"] else "determined"


def _if_not(alt_lead: str | None, alt: dict[str, Any], branch: dict[str, Any]) -> str:
    if not branch["steps"]:
        return "the plan would wait for the remaining data (" + ", ".join(fact_label(f) for f in branch["missing"]) + ")."
    if alt_lead is None:
        return f"no active treatment would be indicated today ({alt['pw'].label})."
    return f"{_label(alt_lead)} would lead; pathway: {alt['pw'].label}."


def _workup(assumptions: list[dict[str, Any]], checks: list[dict[str, Any]], lead: str | None,
            branches: list[dict[str, Any]], kb: KnowledgeBase) -> list[dict[str, Any]]:
    """The tests whose results decide the plan, the most decisive first (the order of the
    assumptions in pathways.yaml), merged where one test settles several facts."""
    out: dict[str, dict[str, Any]] = {}
    now = _label(lead) if lead else "no active treatment"
    for a in assumptions:
        b = branches[a["branch"]]
        other = (_label(b["steps"][0]["options"][0]) if b["steps"] and b["steps"][0]["options"]
                 else "no active treatment" if b["steps"] else "a plan after further work-up")
        order = kb.order_for(a["field"])
        got = out.setdefault(order, {"fields": [], "order": order, "decides": []})
        got["fields"].append(a["field"])
        got["decides"].append(f"{now} or {other}")
    if checks:
        # the leading option's pre-treatment checks: one order, the checks named in it
        labels = {x.field: x.label for x in kb.checks}
        names = list(dict.fromkeys(labels.get(c["field"], kb.order_for(c["field"])) for c in checks))
        out["checks"] = {"fields": [c["field"] for c in checks], "order": "pre-treatment checks: " + "; ".join(names),
                         "decides": [f"whether {now} can go ahead"]}
    return [{"fields": w["fields"], "order": w["order"], "decides": "; ".join(dict.fromkeys(w["decides"]))}
            for w in out.values()]


def _undetermined(planner: _Planner, work: dict[str, Any], assessment: dict[str, Any],
                  kb: KnowledgeBase) -> dict[str, Any]:
    """No treatment can be named without a diagnostic step first: the plan says which
    tests decide, and gives branches where the possibilities are few."""
    pw = work.get("pw")
    blocking = sorted(work.get("blocking") or [])
    if not blocking and pw is None and not work.get("invalid"):
        # no pathway holds and none still unknown could offer anything today: the facts that
        # decide which pathway applies are still what the board needs
        ev = work["state"][0]
        blocking = sorted(_fields(kb, [pathway_column(p.id) for p in kb.pathways
                                       if ev.verdicts[pathway_column(p.id)] is None], ev))
    blocking = blocking or _missing_defining(assessment)
    plan = _plan("undetermined", pw, [], [], blocking)
    branches = []
    # a fact with few values that defines the disease: the plan for each value (the first such fact)
    for field, values in _FEW_VALUES.items():
        if field not in blocking or branches:
            continue
        for value in values:
            alt = planner.settle({field: value})
            if alt.get("invalid") or alt["pw"] is None or alt["blocking"]:
                continue
            steps = _steps_for(planner, alt, branch=True)
            lead = steps[0]["options"][0] if steps[0]["options"] else None
            cond = {"field": field, "value": value, "label": f"{fact_label(field)}: {_VALUE_WORDS.get(value, value)}"}
            b = _branch(planner, alt, steps, lead, cond, kb)
            b.pop("_lead")
            branches.append(b)
    plan["branches"] = branches
    grouped: dict[str, list[str]] = {}
    for f in blocking:
        grouped.setdefault(kb.order_for(f), []).append(f)
    plan["workup"] = [{"fields": fs, "order": order, "decides": "which treatment pathway applies"}
                      for order, fs in grouped.items()]
    return plan


# defining facts with few values, for the branches of an undetermined plan
_FEW_VALUES = {"pathology.differentiation": ("well", "poor"),
               "primary.site": ("pancreas", "jejunum_ileum")}
_VALUE_WORDS = {"well": "well differentiated (NET)", "poor": "poorly differentiated (NEC)",
                "pancreas": "pancreatic primary", "jejunum_ileum": "small-intestinal primary"}


def _missing_defining(assessment: dict[str, Any]) -> list[str]:
    keys = ("classification.category", "classification.who_grade")
    return sorted({m["field"] for m in assessment["missing_data"] if set(m["affects"]) & set(keys)})


# a check of the option's own history: intolerance of one drug says nothing of another
_OWN_CHECKS = {"prior_therapies"}


def raises_only(kb: KnowledgeBase, option: str, field: str) -> bool:
    """Every rule of ``option`` that speaks for the check ``field`` can only make the option more
    recommended when the check fails (``Rule.raises_only``: portal vein thrombosis makes SIRT
    preferred): the check cannot rule out a plan that the option leads, nor change its lead."""
    opt = next(o for o in kb.options if o.id == option)
    rules = [r for _, r in opt.requirement_rules() if field in _checks_read(kb, opt.id, r)]
    return bool(rules) and all(r.raises_only for r in rules)


_READS: dict[tuple[str, str | None, str, str], frozenset[str]] = {}


def _checks_read(kb: KnowledgeBase, option: str, rule: Any) -> frozenset[str]:
    """The pre-treatment checks (contract fields) a rule of ``option`` speaks for: those it reads,
    directly or through derived values, and names a requirement for (a requirement given as one
    text speaks for every check the rule reads, and only for those)."""
    key = (kb.sha256, kb.guideline, option, rule.id)
    got = _READS.get(key)
    if got is None:
        from .engine.frame import _needed
        cols = _needed(kb, [rule_column(option, rule.id)])
        got = _READS[key] = frozenset(c.field for c in kb.checks if rule.requirement_for(c.field)
                                      and cols.intersection(_FIELD_COLUMNS.get(c.field, ())))
    return got


def _lead_conditions(options: Mapping[str, Any], lead: str | None, kb: KnowledgeBase) -> list[dict[str, str]]:
    """The leading option's conditions that the plan rests on: those whose check could rule it
    out (a check that could only make it more recommended cannot change the lead, contract v3)."""
    if not lead:
        return []
    return [c for c in options[lead].get("conditions", []) if not raises_only(kb, lead, c["field"])]


def _failing_value(kb: KnowledgeBase, field: str) -> Any:
    """The one value a failed check takes, where there is one: a yes/no check whose passing value is
    a plain true or false (portal vein thrombosis found, unfit for surgery); None otherwise."""
    check = next((c for c in kb.checks if c.field == field), None)
    if check is None or not isinstance(check.assume, str):
        return None
    return {"true": False, "false": True}.get(check.assume.strip().lower())


def _check_assumption(cond: dict[str, str], steps: list[dict[str, Any]], kb: KnowledgeBase,
                      planner: "_Planner | None" = None, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """An unknown pre-treatment check of the leading option, as a plan assumption. What would
    lead if the check fails: where the check fails in one way only (a yes/no check: portal vein
    thrombosis found), the lead of the plan settled with it failed; otherwise the plan's next
    option that does not hang on it as strictly (a performance status that rules out
    everolimus, ECOG 0-2, rules out sunitinib, ECOG 0-1, too; the analogue only asks ECOG 0-3,
    and only to be given for symptom control)."""
    lead = steps[0]["options"][0]
    rest = [o for s in steps for o in s["options"] if o != lead]
    field = cond["field"]
    texts, own, same = _strictness(kb)
    # (as the leading option's own rules put it: two gates may word their requirement alike, "Child-Pugh A
    # or B" ruling out a clinical trial earlier in gates.yaml than embolization; by its text alone otherwise)
    bar = same.get((lead, field, cond["requirement"]), texts.get((field, cond["requirement"]), -1))
    # (read from each option's rules, not from its conditions: an option not offered today lists none)
    # (an option whose own rules ask the same requirement hangs on it as strictly, wherever its gate stands)
    shares = set() if field in _OWN_CHECKS else {o for o in rest if own.get((o, field), float("inf")) <= bar
                                                  or (o, field, cond["requirement"]) in same}
    free = [o for o in rest if o not in shares]
    failed = _failing_value(kb, field) if planner is not None else None
    alt_lead = None
    if failed is not None and not planner.known(field):
        alt = planner.settle(dict(values or {}) | {field: failed})
        if not alt.get("invalid") and alt["pw"] is not None and not alt["blocking"] and alt["steps"][0]["options"]:
            alt_lead = alt["steps"][0]["options"][0]
    if alt_lead is not None and alt_lead != lead:
        with_it = [o for o in rest if o in shares]
        nxt = (f", and with it {' and '.join(_label(o) for o in with_it)}" if with_it else "") + \
            f"; {_label(alt_lead)} would lead instead"
    elif free:
        nxt = f"; {_label(free[0])} would lead instead"
    elif shares:
        nxt = (f", and with it {' and '.join(_label(o) for o in rest)}, which hang on the same check: "
               "the plan is then reconsidered with the result")
    else:
        nxt = ""
    return {"field": field, "label": fact_label(field), "assumed": cond["requirement"],
            "statement": cond["requirement"], "if_not": f"{_label(lead)} may be ruled out{nxt}.", "check": True}


_Strictness = tuple[dict[tuple[str, str], float], dict[tuple[str, str], float], dict[tuple[str, str, str], float]]


@per_object
def _strictness(kb: KnowledgeBase) -> _Strictness:
    """How strict a requirement on a check is, by (check field, requirement text); each option's
    strictest requirement on each check it has one on, by (option, check field); and each
    option's own requirement texts, by (option, check field, text). A
    gate's place in gates.yaml (which lists, among the gates reading one check, the strictest
    first); a requirement of a rule that does not rule its option out (the analogue's best
    supportive care: it is then given for symptom control) the loosest; any other rule's the
    strictest, as nothing says otherwise."""
    texts: dict[tuple[str, str], float] = {}
    own: dict[tuple[str, str], float] = {}
    by_option: dict[tuple[str, str, str], float] = {}
    for opt in kb.options:
        for _, r in opt.requirement_rules():
            rules_out = r.cap is not None or r.verdict in ("not_recommended", "contraindicated")
            rank = float(r.rank) if r.rank is not None else (-1.0 if rules_out else float("inf"))
            reads = _checks_read(kb, opt.id, r)   # a one-text requirement speaks only for what it reads
            for c in kb.checks:
                text = r.requirement_for(c.field) if c.field in reads else None
                if text:
                    texts[(c.field, text)] = min(texts.get((c.field, text), rank), rank)
                    own[(opt.id, c.field)] = min(own.get((opt.id, c.field), rank), rank)
                    by_option[(opt.id, c.field, text)] = min(by_option.get((opt.id, c.field, text), rank), rank)
    return texts, own, by_option


def _history(records: list[dict[str, Any]] | None, outcome: Any) -> list[dict[str, Any]] | None:
    """The treatment history with the unrecorded outcome of each therapy no longer given
    taken as ``outcome`` (an assumption of pathways.yaml on ``prior_therapies``); a therapy
    still given takes its outcome from the course instead (nelm.patient.worst_outcome)."""
    if records is None or not isinstance(outcome, str):
        return records
    return [r | {"outcome": outcome} if r.get("outcome") is None and r.get("ongoing") is not True else r
            for r in records]


def _document(data: dict[str, Any], values: dict[str, Any]) -> dict[str, Any] | None:
    """The patient document with ``values`` (dotted paths) filled in; ``prior_therapies``
    given as an outcome fills the history's unrecorded outcomes, and None says that filling
    contradicts a record's months to progression (months are given only with progression)."""
    values = _as_set(data, values)
    if values is None:
        return None
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for dotted, value in values.items():
        set_field(data, dotted, value)
    return data


def _as_set(data: dict[str, Any], values: dict[str, Any]) -> dict[str, Any] | None:
    """``values`` as they are set in the document: ``prior_therapies`` given as an outcome
    becomes the history with it filled in (in the values' order, after the other fields);
    None when that contradicts a record's months to progression."""
    if not isinstance(values.get("prior_therapies"), str):
        return values
    values = dict(values)
    history = _history(data.get("prior_therapies"), values.pop("prior_therapies"))
    if any(r.get("months_to_progression") is not None and r.get("outcome") not in ("progression", None)
           for r in history or []):
        return None
    if history is None:
        return values      # no history: nothing to fill in
    return values | {"prior_therapies": history}


def _plan(status: str, pw: Any, steps: list[dict[str, Any]], assumptions: list[dict[str, Any]],
          missing: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"status": status, "pathway": pw.id if pw else None,
                           "pathway_label": pw.label if pw else None, "steps": steps}
    if status == "conditional":
        out["assumptions"] = assumptions
    out["missing"] = missing if status != "determined" else []
    out["missing_labels"] = [fact_label(f) for f in out["missing"]]
    return out
