"""The plan's decision as columns: one definition, run for one patient (``nelm assess``), by
Polars (``nelm screen``) and by the SQL view (``nelm sql``) alike.

Every value here is a sqlglot expression over named columns, generated from
``pathways.yaml`` and the verdict columns; :mod:`nelm.screen.sql` lays them out as CTEs of the
view, :func:`nelm.screen.columns.certain_plans` runs the very same expressions on a Polars
frame (``pl.sql_expr`` of their PostgreSQL rendering, level by level), and the one-patient
planner (:mod:`nelm.plan`) runs them on each what-if's verdict row as generated Python
(:func:`plan_row`, :mod:`nelm.rowcode`), so a change to the plan's decision is made once. The
planner builds the plan's document from them (steps, reasons, add-ons, branches, work-up) and
settles its assumptions (``nelm.plan._Planner.settle``; :mod:`nelm.screen.settle` column-wise).

1. **follow** (:func:`follow`): each pathway's option for today (``now`` steps, established care
   before a trial, preferred before reasonable, then the step's order), as one integer that
   also tells its step, rank and place in the step (:func:`lead_code`), and which pathway is
   followed, the walk through the pathways in closed form (:func:`walk`):
   with ``a_j`` "pathway j holds and offers an option", ``b_j`` "holds and offers none",
   ``u_j`` "is unknown", the walk stops at ``s = min(jA, jB)``, where ``jA`` is the first
   ``a_j`` and ``jB`` the first ``b_j`` after an unknown pathway; the pathway followed is
   ``jA`` when ``jA < jB``, else the first ``b_j`` up to ``s`` (the fallback), and the
   pathways read while still unknown are the ``u_j`` with ``j < s``. The plan's first step lists a
   step's options in the same order (:func:`step_order`, from the same tries: :func:`_offers`).
2. **uncertainty**: which missing facts the leading option hangs on, as one bit mask per
   computed column (``missing__<column>``: a bit per contract field, ``FIELD_BIT``; a
   pre-treatment check filled with its passing value sets none), ORed along the dependency graph exactly as
   :func:`nelm.knowledge.input_roots` walks it (:func:`mask_expr`); then the unknown pathways
   read before the one followed and the first-step candidates still undetermined that could
   outrank the leading option.
3. **outcome** (:func:`settled`): no missing fact (checks aside) could change the lead: the
   option followed leads, and the plan is ``conditional`` when the leading option relies on a
   pre-treatment check still unknown (its *conditions*, :func:`has_conditions`: a gate's
   requirement read before the rule that decides it, or a cap, unknown on the facts as entered
   because of a missing check), else ``determined``. A plan that rests on facts a board may
   assume (contract v3: working plan and branches) is left NULL here; ``nelm screen`` settles
   it from these columns' missing-facts bits (:mod:`nelm.screen.settle`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlglot import exp

from .. import rowcode
from ..knowledge import KnowledgeBase, pathway_column, rule_column
from ..knowledge.ruleset import MASK_VERDICTS, VERDICTS
from ..patient import COLUMN_FIELDS
from ..once import per_object
from .sqlexpr import (World, and_, bit_or, case, coalesce, eq, first_true, has_bits, is_null, known_true, least, lit, lt,
                      lte, not_, not_null, num, or_, paren, q, reads, switch)

# the verdicts an option may have to be given today, best first
NOW_VERDICTS = NOW = ("preferred", "reasonable")
# a trial follows established care in a step unless nothing else is left (issue 18)
TRIAL = "clinical_trial"


@per_object
def option_ids(step) -> tuple[tuple[str, str | None], ...]:
    """A step's options, each with its own condition (None: it has none), in the step's order."""
    return tuple((o, None) if isinstance(o, str) else (o.id, o.if_) for o in step.options)


_options = option_ids


@per_object
def today_steps(pw) -> tuple[tuple[int, object], ...]:
    """A pathway's ``now`` steps with their indices: the step for today and those that join it."""
    return tuple((i, s) for i, s in enumerate(pw.steps) if s.when == "now")


@per_object
def now_steps(pw) -> tuple[tuple[int, object], ...]:
    """A pathway's ``now`` steps that can open the plan, with their indices: a step that only
    ``joins`` (the analogue continued as the backbone) is never a candidate for the lead."""
    return tuple((i, s) for i, s in today_steps(pw) if not s.joins)

NONE = 99   # "no pathway" in the closed-form walk (more pathways than this are refused)
# a bit per contract field in a missing-facts mask: which missing facts could change the lead
# (the plan assumes some of them: nelm.screen.settle reads the bits)
FIELDS = tuple(sorted(set(COLUMN_FIELDS.values())))
FIELD_BIT = {f: 1 << i for i, f in enumerate(FIELDS)}
ANY_FIELD = (1 << len(FIELDS)) - 1


def trial_last(step) -> list[tuple[int, str, str, str | None]]:
    """A ``now`` step's (rank, verdict, option, condition) in the order the plan tries them:
    every established option by verdict then order, then the trial."""
    opts = _options(step)
    out = [(rank, v, oid, cond) for rank, v in enumerate(NOW) for oid, cond in opts if oid != TRIAL]
    return out + [(rank, v, oid, cond) for rank, v in enumerate(NOW) for oid, cond in opts if oid == TRIAL]


def _targets(kb: KnowledgeBase) -> list[str]:
    """The computed columns the plan reads: pathway and step conditions, the first-step
    candidates' deciding rules and caps."""
    cols = [pathway_column(pw.id) for pw in kb.pathways]
    opts = {o.id: o for o in kb.options}
    for pw in kb.pathways:
        for i, step in now_steps(pw):
            if step.if_:
                cols.append(pathway_column(pw.id, i))
            for oid, cond in _options(step):
                opt = opts[oid]
                cols += [rule_column(oid, r.id) for r in opt.deciding + opt.caps]
                if cond:
                    cols.append(pathway_column(pw.id, i, oid))
    return list(dict.fromkeys(cols))


def closure(kb: KnowledgeBase, targets: list[str]) -> set[str]:
    """The computed columns ``targets`` read, directly or through others, and themselves."""
    computed = {n.column for batch in kb.nodes for n in batch}
    seen: set[str] = set()
    stack = list(targets)
    while stack:
        c = stack.pop()
        if c in seen or c not in computed:
            continue
        seen.add(c)
        stack += list(kb.roots.get(c, ()))
    return seen


_READS_CHECKS: dict[tuple[str, str | None, frozenset[str]], dict[str, bool]] = {}


def reads_checks(kb: KnowledgeBase, column: str, checks: frozenset[str]) -> bool:
    """Does a computed column read one of the ``checks`` input columns, directly or not?"""
    memo = _READS_CHECKS.setdefault((kb.sha256, kb.guideline, checks), {})
    if column not in memo:
        memo[column] = False   # (the graph has no cycles; this only guards the recursion)
        memo[column] = any(r in checks if r in COLUMN_FIELDS else reads_checks(kb, r, checks)
                           for r in kb.roots.get(column, ()))
    return memo[column]


def first_rule(w: World, opt) -> exp.Expression:
    """``first__<option>``: the index of the option's first deciding rule that certainly
    holds (the number of rules if none): the verdict it resolves to, and which unknown rules
    before it could still change it."""
    conds = [q(w.col(rule_column(opt.id, r.id))) for r in opt.deciding]
    return first_true(conds, len(conds))


def mask_bits(kb: KnowledgeBase) -> Callable[[str], int]:
    """The bit a missing field sets in a mask: its own (``FIELD_BIT``; a check filled with its
    passing value is not NULL in the world read, so only the checks left unknown set theirs:
    the planner's blocking facts)."""
    return FIELD_BIT.__getitem__


def mask_targets(kb: KnowledgeBase) -> list[str]:
    """The computed columns whose masks the plan reads (pathway conditions, candidates' rules)."""
    return _targets(kb)


def mask_expr(kb: KnowledgeBase, w: World, column: str, bits: Callable[[str], int],
              guarded: bool = False) -> exp.Expression:
    """``missing__<column>``: the OR over its roots that are NULL, of an input's own bits or
    a computed root's mask (``input_roots``: a known computed value passes nothing on).

    A mask is read only where its column is NULL (here, by :func:`follow` and by
    :func:`has_conditions`); ``guarded``: computed only there (NULL elsewhere), which spares a
    row-at-a-time engine (the SQL view) the mask of every known value, for one step more."""
    terms = []
    by_bits: dict[int, list[exp.Expression]] = {}   # the inputs setting the same bits: one CASE
    for r in sorted(kb.roots[column]):
        if r in COLUMN_FIELDS:
            b = bits(COLUMN_FIELDS[r])
            if b:
                by_bits.setdefault(b, []).append(is_null(q(w.col(r))))
        else:
            terms.append(case((is_null(q(w.col(r))), q(w.mask(r))), default=num(0)))
    # (a bit typed BIGINT: the fields' bits go past 32 bits, and an executor may type a small literal narrower)
    mask = bit_or([case((or_(*nulls), exp.cast(num(b), "BIGINT")), default=num(0)) for b, nulls in by_bits.items()] + terms)
    return case((is_null(q(w.col(column))), mask)) if guarded else mask


def now_options(kb: KnowledgeBase) -> list[str]:
    """The options some pathway's ``now`` steps that can open the plan name (the options that can lead)."""
    return list(dict.fromkeys(oid for pw in kb.pathways for _, step in now_steps(pw) for oid, _ in _options(step)))


def verdict_is(w: World, oid: str, verdict: str) -> exp.Expression:
    """The option's verdict is ``verdict`` (its mask has that one bit); ``undetermined``: several."""
    masks = [m for m, v in MASK_VERDICTS.items() if v == verdict]
    if verdict == "undetermined":
        return not_(exp.In(this=q(w.possible(oid)), expressions=[num(m) for m in MASK_VERDICTS]))
    if len(masks) == 1:
        return eq(q(w.possible(oid)), num(masks[0]))
    return exp.In(this=q(w.possible(oid)), expressions=[num(m) for m in masks])


def several_possible(w: World, oid: str) -> exp.Expression:
    """More than one verdict still possible (undetermined, or the milder verdict of one side)."""
    return not_(exp.In(this=q(w.possible(oid)), expressions=[num(1 << j) for j in range(len(VERDICTS))]))


def _applies(w: World, pw, i: int, step) -> exp.Expression:
    return exp.true() if not step.if_ else known_true(q(w.col(pathway_column(pw.id, i))))


def _in_step(w: World, pw, i: int, oid: str, cond: str | None, *, unknown: bool) -> exp.Expression:
    """An option's own ``if`` in a step (unknown counts as ``unknown``)."""
    if not cond:
        return exp.true()
    return coalesce(q(w.col(pathway_column(pw.id, i, oid))), exp.Boolean(this=unknown))


# A pathway's option for today as one integer, the *lead code*: the ``now`` step it comes from,
# its rank there (0 preferred, 1 reasonable), its position among the step's options and the
# option itself (its index in kb.options), each in bits of its own, most significant first.
# The plan then compares integers with constants where it compared text: "the lead comes from
# step i" is a range of codes, "the lead outranks candidate (rank r, position p) of its step"
# is ``code > lead_code(i, r, p, LAST)`` (a later rank, or the same rank and a later position);
# its option is ``code % OPTION_CODES``. The option's id is written out once, for the outputs
# (:func:`lead_text`).
OPTION_CODES = 64                      # options, and options in one step, below this
RANK_CODES = OPTION_CODES * 64         # one rank's codes within a step
STEP_CODES = RANK_CODES * len(NOW)     # one step's codes


def lead_code(step: int, rank: int, position: int, option: int) -> int:
    return step * STEP_CODES + rank * RANK_CODES + position * OPTION_CODES + option


def option_index(kb: KnowledgeBase) -> dict[str, int]:
    """Each option's number in lead codes (its index in ``kb.options``)."""
    if len(kb.options) >= OPTION_CODES:
        raise NotImplementedError(f"{OPTION_CODES} options or more")
    return {o.id: i for i, o in enumerate(kb.options)}


def lead_option(code: exp.Expression) -> exp.Expression:
    """The option (its index, :func:`option_index`) of a lead code; NULL for none."""
    return paren(exp.Mod(this=code, expression=num(OPTION_CODES)))


def lead_text(kb: KnowledgeBase, w: World) -> exp.Expression:
    """The leading option's id (``plan__lead``, an option index), NULL for none."""
    index = option_index(kb)
    return switch(q(w.plan("lead")), [(num(index[oid]), lit(oid)) for oid in now_options(kb)])


def _offers(kb: KnowledgeBase, w: World, pw, i: int, step) -> list[tuple[str, int, exp.Expression, int]]:
    """How a ``now`` step ranks its options today, in the order the plan tries them: established
    care before a trial, then preferred before reasonable, then the step's order (``trial_last``).
    Each try is (option, its place in that order, "it is offered at this rank": the step applies,
    the option's own condition holds and its verdict is that rank's, its lead code). The lead a
    pathway offers (:func:`_pathway_lead`) and the order of a step's options in the plan's
    document (:func:`step_order`) are both read from here."""
    index = option_index(kb)
    applies = _applies(w, pw, i, step)
    positions = {oid: p for p, (oid, _) in enumerate(_options(step))}
    if len(positions) < len(_options(step)) or len(positions) >= OPTION_CODES:
        # (the plan's position of the lead in its step would then not follow from the option)
        raise NotImplementedError(f"pathway {pw.id}: an option twice in one step, or {OPTION_CODES} options")
    return [(oid, k, and_(applies, verdict_is(w, oid, verdict), _in_step(w, pw, i, oid, cond, unknown=False)),
             lead_code(i, rank, positions[oid], index[oid]))
            for k, (rank, verdict, oid, cond) in enumerate(trial_last(step))]


def _pathway_lead(kb: KnowledgeBase, w: World, pw) -> exp.Expression:
    """The lead code (above) of the option a pathway leads with today; NULL: none."""
    whens = [(ok, num(code)) for i, step in now_steps(pw) for _, _, ok, code in _offers(kb, w, pw, i, step)]
    return case(*whens) if whens else exp.Null()


def order_column(w: World, pw, i: int, oid: str) -> str:
    """The column of an option's place in a ``now`` step of a pathway (:func:`step_order`)."""
    return w.plan(f"order__{pw.id}__{i}__{oid}")


def step_order(kb: KnowledgeBase, w: World, pw) -> dict[str, exp.Expression]:
    """Each option of each ``now`` step of a pathway (those that only join today's treatment
    included) with its place in the order the plan gives it today (:func:`_offers`), NULL where
    it is not offered today: the plan's first step lists a step's offered options in this order,
    the first of the step that can open the plan being the lead (:func:`_pathway_lead`)."""
    cols: dict[str, exp.Expression] = {}
    for i, step in today_steps(pw):
        by_option: dict[str, list[tuple[exp.Expression, exp.Expression]]] = {}
        for oid, k, ok, _ in _offers(kb, w, pw, i, step):
            by_option.setdefault(oid, []).append((ok, num(k)))
        for oid, whens in by_option.items():
            cols[order_column(w, pw, i, oid)] = case(*whens)
    return cols


def follow(kb: KnowledgeBase, w: World, guarded: bool = False) -> dict[str, exp.Expression]:
    """Stages 1-2 of the module docstring in world ``w``: ``plan__followed`` (index of the
    pathway followed, NULL when none), ``plan__lead`` (its leading option, an index:
    :func:`lead_text` gives its id) and ``plan__missing`` (which kinds of missing facts could
    change it, a mask), with the columns they are computed from. Reads ``w``'s rule, pathway,
    possible-verdict and mask columns. ``guarded``: each candidate's missing facts computed
    only where they are read (where its verdict is still open; 0 elsewhere), which spares a
    row-at-a-time engine (the SQL view) them in most rows."""
    pws = kb.pathways
    if len(pws) >= NONE:
        raise NotImplementedError(f"more than {NONE - 1} pathways")
    P = w.plan  # noqa: N806 - the plan's column names in this world
    index = option_index(kb)
    cols: dict[str, exp.Expression] = {}
    # 1. each pathway's option for today, as a lead code; only where the pathway holds, the only
    # place the walk reads it (a pathway that does not hold offers nothing the plan could follow)
    for j, pw in enumerate(pws):
        cols[P(f"code{j}")] = case((q(w.col(pathway_column(pw.id))), _pathway_lead(kb, w, pw)))
    cols |= walk([q(w.col(pathway_column(pw.id))) for pw in pws],
                 [not_null(q(P(f"code{j}"))) for j in range(len(pws))], P,
                 [could_offer(w, pw) for pw in pws])
    # the lead code of the pathway followed for the option it offers (``result`` of the walk,
    # written out: one CTE fewer than reading it); its option
    offering = q(P("offering"))
    cols[P("lead_code")] = case((lt(offering, q(P("stopping"))),
                                 switch(offering.copy(), [(num(j), q(P(f"code{j}"))) for j in range(len(pws))])))
    code = q(P("lead_code"))
    cols[P("lead")] = lead_option(code.copy())

    def lead_is(oid: str) -> exp.Expression:
        return eq(lead_option(code.copy()), num(index[oid]))

    # 2. uncertainty: the missing facts (as masks) of each first-step candidate still undetermined ...
    opts = {o.id: o for o in kb.options}
    candidates = list(dict.fromkeys(oid for pw in pws for _, step in now_steps(pw) for oid, _ in _options(step)))
    for oid in candidates:
        opt = opts[oid]
        conds = [q(w.col(rule_column(oid, r.id))) for r in opt.deciding]
        # an unknown deciding rule read before the first that holds, or an unknown cap
        terms = [case((and_(is_null(c), lt(num(i), q(w.first(oid)))), q(w.mask(rule_column(oid, r.id)))), default=num(0))
                 for i, (r, c) in enumerate(zip(opt.deciding, conds))]
        terms += [case((is_null(q(w.col(rule_column(oid, r.id)))), q(w.mask(rule_column(oid, r.id)))), default=num(0))
                  for r in opt.caps]
        # (every reader below reads it only where several verdicts are still possible)
        cols[P(f"affects__{oid}")] = (case((several_possible(w, oid), bit_or(terms)), default=num(0)) if guarded
                                      else bit_or(terms))
    # ... and where the leading option stands among the candidates of the step it comes from
    now_bits = sum(1 << VERDICTS.index(v) for v in NOW)
    fol = q(P("followed"))
    unknown_before = [q(P(f"unknown{j}")) for j in range(len(pws))]
    terms = [case((and_(u, or_(is_null(fol), lt(num(k), fol))), q(w.mask(pathway_column(pw.id)))), default=num(0))
             for k, (pw, u) in enumerate(zip(pws, unknown_before))]
    # a candidate of the pathway followed (j) that could take the lead: in a ``now`` step before the
    # one the lead comes from, any that may still be offered; in that step, one that could outrank
    # it. The terms of pathway j are read only where it is followed (one CASE),
    # where the lead, if any, is pathway j's own
    by_followed = []
    for j, pw in enumerate(pws):
        taking = []
        for i, step in now_steps(pw):
            cands = _options(step)
            applies = coalesce(q(w.col(pathway_column(pw.id, i))), exp.true()) if step.if_ else exp.true()
            # (each step's terms behind one test of where the lead comes from: a row reads the terms
            # of the steps before the lead's, and of the lead's own step, only)
            earlier = lte(num(lead_code(i + 1, 0, 0, 0)), code.copy())              # the lead's step is after i
            mays = [case((and_(several_possible(w, oid), has_bits(q(w.possible(oid)), now_bits),
                               _in_step(w, pw, i, oid, cond, unknown=True)), q(P(f"affects__{oid}"))), default=num(0))
                    for oid, cond in cands]
            taking.append(case((and_(earlier, applies), bit_or(mays)), default=num(0)))
            here = and_(lte(num(lead_code(i, 0, 0, 0)), code.copy()), lt(code.copy(), num(lead_code(i + 1, 0, 0, 0))))
            # a trial leads only where nothing else offers itself: any candidate may outrank it
            trial_leads = lead_is(TRIAL) if TRIAL in index else exp.false()
            outranking = []
            for p, (oid, cond) in enumerate(cands):
                # the lead comes later than (rank, p) in the step's order: a later rank, or the same and a later position
                better = [and_(has_bits(q(w.possible(oid)), 1 << VERDICTS.index(v)),
                               or_(trial_leads.copy(), lt(num(lead_code(i, rank, p, OPTION_CODES - 1)), code.copy())))
                          for rank, v in enumerate(NOW)]
                # the leading option does not outrank itself; a trial outranks an established leading
                # option only where no other established option of the step is left (trial_last)
                outranks = and_(several_possible(w, oid), _in_step(w, pw, i, oid, cond, unknown=True),
                                not_(lead_is(oid)), or_(*better))
                if oid == TRIAL:
                    others = [and_(_in_step(w, pw, i, o, c, unknown=True), not_(lead_is(o)))
                              for o, c in cands if o != TRIAL]
                    if others:
                        outranks = and_(outranks, not_(or_(*others)))
                outranking.append(case((outranks, q(P(f"affects__{oid}"))), default=num(0)))
            taking.append(case((here, bit_or(outranking)), default=num(0)))
        if taking:
            by_followed.append((eq(fol.copy(), num(j)), bit_or(taking)))
    if by_followed:
        terms.append(case(*by_followed, default=num(0)))
    # nothing offered today: a candidate of any pathway not ruled out that may still be
    # preferred or reasonable could give the plan a lead
    # (read only where nothing leads: one CASE on the lead)
    # (by option: its own tests once, then whether any place names it; OR-ing its mask once per
    # place that holds gives the same bits)
    places: dict[str, list[exp.Expression]] = {}
    for pw in pws:
        for oid, where in may_lead(w, pw, verdict=False):
            places.setdefault(oid, []).append(and_(coalesce(q(w.col(pathway_column(pw.id))), exp.true()), where))
    opening = [case((and_(several_possible(w, oid), has_bits(q(w.possible(oid)), now_bits), or_(*where)),
                     q(P(f"affects__{oid}"))), default=num(0)) for oid, where in places.items()]
    if opening:
        terms.append(case((is_null(code.copy()), bit_or(opening)), default=num(0)))
    cols[P("missing")] = bit_or(terms)
    return cols


def may_lead(w: World, pw, verdict: bool = True) -> list[tuple[str, exp.Expression]]:
    """Each ``now`` candidate of a pathway with: its step and own condition are not certainly
    false and (``verdict``) it may still be preferred or reasonable."""
    now_bits = sum(1 << VERDICTS.index(v) for v in NOW)
    out = []
    for i, step in now_steps(pw):
        applies = coalesce(q(w.col(pathway_column(pw.id, i))), exp.true()) if step.if_ else exp.true()
        for oid, cond in _options(step):
            out.append((oid, and_(applies.copy(), _in_step(w, pw, i, oid, cond, unknown=True),
                                  *([has_bits(q(w.possible(oid)), now_bits)] if verdict else []))))
    return out


def could_offer(w: World, pw) -> exp.Expression:
    """An unknown pathway could still lead with something today: a
    candidate that may still lead (:func:`may_lead`). One that could not is passed over by the walk."""
    terms = [may for _, may in may_lead(w, pw)]
    return or_(*terms) if terms else exp.false()


def walk(pathways: list[exp.Expression], offers: list[exp.Expression], name: Callable[[str], str],
         could: list[exp.Expression] | None = None) -> dict[str, exp.Expression]:
    """The walk through the pathways in closed form (module docstring; tests/screen/test_plan_columns.py
    holds it equal to the sequential walk):
    ``pathways[j]`` is pathway j's condition (NULL: unknown), ``offers[j]`` whether it has an
    option for today. Columns ``name("result")`` (the pathway followed because it offers an
    option), ``name("followed")`` (that, else the fallback: the first that holds and offers
    nothing, up to where the walk stops) and ``name("unknown<j>")`` (pathway j was read while
    unknown), with the first-index columns they are computed from. ``could[j]``: an unknown
    pathway j could still offer something (:func:`could_offer`); one that could not does not
    count as unknown (none given: every unknown pathway counts)."""
    holds = [known_true(p) for p in pathways]
    # (an unknown pathway that ``could`` not offer anything is passed over as if it did not hold)
    unknown = [is_null(p.copy()) if could is None else and_(is_null(p.copy()), c) for p, c in zip(pathways, could or pathways)]

    def first(conds: list[exp.Expression]) -> exp.Expression:
        return first_true(conds, NONE)

    # (a column of its own: ``stopping`` reads it once per pathway)
    cols = {name("first_unknown"): first(unknown)}
    first_unknown = q(name("first_unknown"))
    cols |= {
        name("offering"): first([and_(h, o) for h, o in zip(holds, offers)]),            # holds and offers
        name("stopping"): first([and_(h, not_(o), lt(first_unknown.copy(), num(j)))      # holds, offers nothing,
                                 for j, (h, o) in enumerate(zip(holds, offers))]),       # after an unknown one
        name("empty"): first([and_(h, not_(o)) for h, o in zip(holds, offers)]),        # holds, offers nothing
    }
    ja, jb, jf = q(name("offering")), q(name("stopping")), q(name("empty"))
    stop = least(ja, jb)
    cols[name("result")] = case((lt(ja, jb), ja))
    cols[name("followed")] = coalesce(case((lt(ja, jb), ja)), case((and_(lt(jf, num(NONE)), lte(jf, stop)), jf)))
    cols |= {name(f"unknown{j}"): and_(u, lt(num(j), stop)) for j, u in enumerate(unknown)}
    return cols


def certain(w: World) -> exp.Expression:
    """A pathway is followed and no missing fact (checks aside) could change its lead."""
    return and_(not_null(q(w.plan("followed"))), not_(has_bits(q(w.plan("missing")), ANY_FIELD)))


def settled(kb: KnowledgeBase, today: World, facts: World) -> tuple[exp.Expression, exp.Expression]:
    """Stage 3: ``plan.leading`` and ``plan.status`` where the plan rests on nothing assumed
    (NULL elsewhere): certain, and ``conditional`` when the leading option has conditions
    (``nelm.plan.plan_summary``), else ``determined``. Reads :func:`follow`'s columns and the
    facts world's requirement rules and masks (:func:`conditions_of_facts`)."""
    lead = q(today.plan("lead"))
    index = option_index(kb)
    ok = certain(today)
    conditional = [and_(eq(lead.copy(), num(index[oid])), c) for oid in now_options(kb)
                   if (c := has_conditions(kb, today, facts, oid)) is not None]
    status = case((or_(*conditional), lit("conditional")), default=lit("determined")) if conditional else lit("determined")
    return case((ok, lead_text(kb, today))), case((ok.copy(), status))


def check_bits(kb: KnowledgeBase) -> dict[str, int]:
    """A bit for each pre-treatment check (its contract field) in the facts world's masks."""
    return {f: 1 << i for i, f in enumerate(sorted({c.field for c in kb.checks}))}


def _option(kb: KnowledgeBase, oid: str):
    return next(o for o in kb.options if o.id == oid)


def condition_targets(kb: KnowledgeBase) -> list[str]:
    """The rule columns whose value on the facts as entered decides the leading option's conditions."""
    return list(dict.fromkeys(rule_column(oid, r.id) for oid in now_options(kb) for _, r in _option(kb, oid).requirement_rules()))


def has_conditions(kb: KnowledgeBase, today: World, facts: World, oid: str) -> exp.Expression | None:
    """The option relies on an unknown pre-treatment check (``nelm.engine.document._conditions``
    lists at least one): a requirement rule read up to the one that decides the verdict (today's
    ``first__``), or a cap, is unknown on the facts as entered, and among the missing inputs it
    hangs on is a check that rule speaks for. None: the option has no such rule. A rule whose
    failed check could only make the option more recommended is left out, as the plan leaves
    its condition out (``nelm.plan.raises_only``)."""
    bits = check_bits(kb)
    terms = []
    for i, r in _option(kb, oid).requirement_rules():
        if r.raises_only:
            continue
        b = sum(bit for f, bit in bits.items() if r.requirement_for(f))
        if not b:
            continue
        col = rule_column(oid, r.id)
        term = and_(is_null(q(facts.col(col))), has_bits(q(facts.mask(col)), b))
        terms.append(term if i is None else and_(lte(num(i), q(today.first(oid))), term))
    return or_(*terms) if terms else None


def condition_inputs(kb: KnowledgeBase) -> tuple[set[str], Callable[[str], int]]:
    """The facts world's computed columns :func:`has_conditions` reads (the requirement rules and
    what they read), each wanted with its mask; and the bits a missing field sets in those masks
    (its check's bit; any other missing fact none)."""
    bits = check_bits(kb)
    return closure(kb, condition_targets(kb)), lambda field: bits.get(field, 0)


def inputs_of_follow(kb: KnowledgeBase, w: World, guarded: bool = False) -> dict[str, exp.Expression]:
    """What :func:`follow` reads besides the rule, pathway and possible-verdict columns: the
    missing-facts masks of the columns it reads and each candidate's first rule that holds
    (the SQL view computes these beside the rules and verdicts it has anyway). ``guarded``:
    each mask only where its column is NULL (:func:`mask_expr`)."""
    bits = mask_bits(kb)
    masked = closure(kb, mask_targets(kb))
    cols = {}
    for batch in kb.nodes:
        for node in batch:
            if node.column in masked:
                cols[w.mask(node.column)] = mask_expr(kb, w, node.column, bits, guarded)
    opts = {o.id: o for o in kb.options}
    for oid in now_options(kb):
        cols[w.first(oid)] = first_rule(w, opts[oid])
    return cols


# --------------------------------------------------------------------------- one patient

# what the planner reads of the decision: the pathway followed, its lead, the facts that could change it
_DECISION = ("followed", "lead", "missing")


@dataclass(frozen=True)
class PlanRow:
    """The plan's decision for one evaluated patient: the expressions above, the very ones the
    screen's Polars frame and the SQL view run, as generated Python (:mod:`nelm.rowcode`, Polars'
    null semantics) over the verdict pass's row (unknown pre-treatment checks passing).

    :meth:`decide` gives (the index of the pathway followed, the index in ``kb.options`` of its
    leading option, the mask of the missing facts that could change the lead: a bit per contract
    field, :data:`FIELD_BIT`), each None where there is none; ``order[j](row)`` gives, for pathway
    j's ``now`` steps, each option's place in today's order (:func:`step_order`), in the layout
    ``layout[j]`` ((step index, option) of each value). The planner decides on every what-if it
    settles and orders only the pathway it follows.

    The one thing this executor states its own way is a column's missing-facts mask
    (``missing__<column>``, :func:`mask_expr`): the decision reads a few masks behind conditions
    that seldom hold, so a row asks :class:`nelm.knowledge.UnknownRoots` (the walk
    :func:`mask_expr` restates, tests/test_roots.py) for those it reads, when it reads them,
    rather than computing some 350 masks every time."""

    _decide: Callable[..., tuple]
    order: tuple[Callable[[dict], tuple], ...]
    layout: tuple[tuple[tuple[int, str], ...], ...]

    def decide(self, ev: Any, kb: KnowledgeBase) -> tuple[int | None, int | None, int]:
        """(pathway followed, its leading option, missing facts that could change it) of an
        evaluation (``nelm.engine.Evaluation``: its verdict row, and its unknown inputs, worked
        out only if a mask is read)."""
        return self._decide(ev.verdicts, lambda column: field_mask(ev.filled_roots(kb).mask(column)))


# a bit of UnknownRoots' masks (an input column) -> the bit of its contract field in FIELD_BIT
_FIELD_OF_INPUT_BIT = tuple(FIELD_BIT[COLUMN_FIELDS[c]] for c in sorted(COLUMN_FIELDS))
_FIELD_MASKS: dict[int, int] = {}


def field_mask(m: int) -> int:
    """An :class:`UnknownRoots` mask (a bit per input column, in name order) as a mask of the
    contract fields those columns belong to (:data:`FIELD_BIT`)."""
    got = _FIELD_MASKS.get(m)
    if got is None:
        got, rest = 0, m
        while rest:
            low = rest & -rest
            got |= _FIELD_OF_INPUT_BIT[low.bit_length() - 1]
            rest ^= low
        if len(_FIELD_MASKS) < 65536:   # a pure function of the mask (bounded, not per patient)
            _FIELD_MASKS[m] = got
    return got


_FIELDS_OF: dict[int, frozenset[str]] = {}


def fields_of(m: int) -> frozenset[str]:
    """The contract fields of a mask of :data:`FIELD_BIT` (a plan's ``missing``)."""
    got = _FIELDS_OF.get(m)
    if got is None:
        got = frozenset(f for f, bit in FIELD_BIT.items() if m & bit)
        if len(_FIELDS_OF) < 65536:   # a pure function of the mask (bounded, not per patient)
            _FIELDS_OF[m] = got
    return got


@per_object
def plan_row(kb: KnowledgeBase) -> PlanRow:
    """:class:`PlanRow` of a knowledge base: generated and compiled once, kept in nelm's cache on
    disk beside the row program (keyed by the knowledge base and nelm's own source)."""
    import marshal

    from ..cache import cached

    code, layout = cached("plan-rowcode", f"{kb.sha256}|{kb.guideline}", lambda: _plan_row_code(kb))
    namespace: dict[str, Any] = dict(rowcode.HELPERS)
    exec(marshal.loads(code), namespace)  # noqa: S102  # nosec B102, B302 - our code object, compiled by _plan_row_code from the knowledge base, read from our own cache
    return PlanRow(namespace["decide"], tuple(namespace[f"order_{j}"] for j in range(len(kb.pathways))), layout)


def compile_row(kb: KnowledgeBase, cols: dict[str, exp.Expression], outputs: list[str]) -> Callable[..., tuple]:
    """Named expressions as one function ``f(row, _m)`` of a verdict row giving the ``outputs``'
    values (``_m``: a column's missing-facts mask, as :meth:`PlanRow.decide` supplies it), compiled
    now and not kept: for checking a part of the program on its own."""
    kinds = _row_kinds(kb)
    source = rowcode.function_source("f", _steps(cols, outputs, kinds, row_world()), kinds, returns=outputs,
                                     params=", _m", hoist=False)
    namespace: dict[str, Any] = dict(rowcode.HELPERS)
    exec(compile(source, "<nelm plan rowcode, a part>", "exec"), namespace)  # noqa: S102  # nosec B102 - generated here from the knowledge base
    return namespace["f"]


def row_world() -> World:
    """The names of one patient's verdict row (the row program's own column names)."""
    return World(prefix="", input_prefix="", filled_prefix=None)


def _plan_row_code(kb: KnowledgeBase) -> tuple[bytes, tuple[tuple[tuple[int, str], ...], ...]]:
    """:func:`plan_row`'s functions as a compiled code object, and each pathway's order layout."""
    import marshal

    w = row_world()
    kinds = _row_kinds(kb)
    # (guarded: each candidate's missing facts worked out only where its verdict is still open;
    # the masks themselves are not columns here but read when read: PlanRow)
    cols = {c: e for c, e in inputs_of_follow(kb, w).items() if not c.startswith(w.mask(""))}
    cols |= follow(kb, w, guarded=True)
    # each candidate's missing facts written into the terms that read them: a term is read only
    # where the row is followed by a pathway that names the candidate (a CASE branch), so it is
    # worked out there, not for every candidate of every what-if
    cols = _written_into_readers(cols, {c for c in cols if c.startswith(w.plan("affects__"))})
    # (an input read where it is read: most of the hundreds the decision reads sit behind conditions
    # that seldom hold, and reading each once at the start was a third of its time)
    source = rowcode.function_source("decide", _steps(cols, [w.plan(n) for n in _DECISION], kinds, w), kinds,
                                     returns=[w.plan(n) for n in _DECISION], params=", _m", hoist=False)
    layout = []
    for j, pw in enumerate(kb.pathways):
        order = step_order(kb, w, pw)
        names = list(order)
        source += rowcode.function_source(f"order_{j}", _steps(order, names, kinds, w), kinds, returns=names,
                                          hoist=False)
        by_name = {order_column(w, pw, i, oid): (i, oid) for i, step in today_steps(pw) for oid, _ in _options(step)}
        layout.append(tuple(by_name[n] for n in names))
    return marshal.dumps(compile(source, f"<nelm plan rowcode {kb.guideline}>", "exec")), tuple(layout)


def _written_into_readers(cols: dict[str, exp.Expression], lazy: set[str]) -> dict[str, exp.Expression]:
    """The columns with each ``lazy`` one written into the expressions that read it (the same
    value, worked out where it is read) instead of being a column of its own."""
    def expand(e: exp.Expression) -> exp.Expression:
        if not reads(e) & lazy:
            return e
        e = e.copy()
        for c in list(e.find_all(exp.Column)):
            if c.name in lazy:
                c.replace(paren(expand(cols[c.name])))
        return e

    return {n: expand(e) for n, e in cols.items() if n not in lazy}


def _row_kinds(kb: KnowledgeBase) -> dict[str, str]:
    """The kind (``float``, ``int``, ``bool``, ``str``) of every column of the verdict row."""
    from ..patient import COLUMN_TYPES
    from .frame import _lazy, patients_frame
    from .row import _type_name

    filled = _lazy(patients_frame([]).lazy().with_columns(kb.assume), kb, False, False, None).collect_schema()
    kinds = dict(COLUMN_TYPES) | {c: rowcode.coercion(_type_name(t)) for c, t in filled.items()}
    return kinds | {f"possible__{o.id}": "int" for o in kb.options} | {f"verdict__{o.id}": "str" for o in kb.options}


def _steps(cols: dict[str, exp.Expression], outputs: list[str], kinds: dict[str, str], w: World
           ) -> list[tuple[str, str, str]]:
    """The columns ``outputs`` read, directly or not, each after those it reads, as rowcode steps
    (column, Python expression, kind); ``kinds`` gains each column's kind as it is worked out. A
    read of a mask (``w.mask(column)``) becomes a call ``_m(column)`` (:class:`PlanRow`)."""
    import ast
    import re

    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in cols:
            return
        seen.add(name)
        for r in sorted(reads(cols[name])):
            visit(r)
        order.append(name)

    for n in outputs:
        visit(n)
    mask_read = re.compile(r"r\[" + re.escape(repr(w.mask(""))[:-1]) + r"([^']*)'\]")
    steps = []
    for name in order:
        python = mask_read.sub(lambda m: f"_m({m.group(1)!r})", rowcode.translate_tree(cols[name]))
        kind = rowcode._kind_of(ast.parse(python, mode="eval").body, kinds)
        if kind not in ("bool", "int"):
            raise rowcode.Unsupported(f"plan column {name}: values of kind {kind}")
        kinds[name] = kind
        steps.append((name, python, kind))
    return steps
