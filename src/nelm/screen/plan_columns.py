"""The plan's leading option as columns: one definition, run by Polars (``nelm screen``) and by
the SQL view (``nelm sql``) alike.

Every value here is a sqlglot expression over named columns, generated from
``pathways.yaml`` and the verdict columns; :mod:`nelm.screen.sql` lays them out as CTEs of the
view, and :func:`nelm.screen.columns.certain_plans` runs the very same expressions on a Polars
frame (``pl.sql_expr`` of their PostgreSQL rendering, level by level), so a change to the plan's
decision is made once. The one-patient planner (:mod:`nelm.plan`) decides the same things; the
tests hold the columns equal to it on every row.

1. **follow** (:func:`follow`): each pathway's option for today (``now`` steps, established care
   before a trial, preferred before reasonable, then the step's order), as one integer that
   also tells its step, rank and place in the step (:func:`lead_code`), and which pathway is
   followed (``nelm.plan.follow``), the walk in closed form (:func:`walk`):
   with ``a_j`` "pathway j holds and offers an option", ``b_j`` "holds and offers none",
   ``u_j`` "is unknown", the walk stops at ``s = min(jA, jB)``, where ``jA`` is the first
   ``a_j`` and ``jB`` the first ``b_j`` after an unknown pathway; the pathway followed is
   ``jA`` when ``jA < jB``, else the first ``b_j`` up to ``s`` (the fallback), and the
   pathways read while still unknown are the ``u_j`` with ``j < s``.
2. **uncertainty**: which missing facts the leading option hangs on, as one bit mask per
   computed column (``missing__<column>``: a bit per contract field, ``FIELD_BIT``; a
   pre-treatment check filled with its passing value sets none), ORed along the dependency graph exactly as
   :func:`nelm.knowledge.input_roots` walks it (:func:`mask_expr`); then the unknown pathways
   read before the one followed and the first-step candidates still undetermined that could
   outrank the leading option (``nelm.plan._blocking``).
3. **outcome** (:func:`settled`): no missing fact (checks aside) could change the lead: the
   option followed leads, and the plan is ``conditional`` when the leading option relies on a
   pre-treatment check still unknown (its *conditions*, :func:`has_conditions`: a gate's
   requirement read before the rule that decides it, or a cap, unknown on the facts as entered
   because of a missing check), else ``determined``. A plan that rests on facts a board may
   assume (contract v3: working plan and branches) is left NULL here; ``nelm screen`` settles
   it from these columns' missing-facts bits (:mod:`nelm.screen.settle`).
"""
from __future__ import annotations

from typing import Callable

from sqlglot import exp

from ..knowledge import KnowledgeBase, pathway_column, rule_column
from ..knowledge.ruleset import MASK_VERDICTS, VERDICTS
from ..patient import COLUMN_FIELDS
# the planner's own reading of a step and of a pathway's `now` steps, and its constants
# (``now_steps``: the ``now`` steps that can open the plan; one that only joins is never a lead candidate)
from ..plan import NOW_VERDICTS as NOW, TRIAL, _option_ids as _options, lead_steps as now_steps
from .sql_build import (World, and_, bit_or, case, coalesce, eq, first_true, has_bits, is_null, known_true, least, lit, lt,
                        lte, not_, not_null, num, or_, paren, q, switch)

NONE = 99   # "no pathway" in the closed-form walk (more pathways than this are refused)
# a bit per contract field in a missing-facts mask: which missing facts could change the lead
# (the plan assumes some of them: nelm.screen.settle reads the bits)
FIELDS = tuple(sorted(set(COLUMN_FIELDS.values())))
FIELD_BIT = {f: 1 << i for i, f in enumerate(FIELDS)}
ANY_FIELD = (1 << len(FIELDS)) - 1


def trial_last(step) -> list[tuple[int, str, str, str | None]]:
    """A ``now`` step's (rank, verdict, option, condition) in the order the plan tries them:
    every established option by verdict then order, then the trial (``nelm.plan._now_key``)."""
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
    nelm.plan._blocking)."""
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


def _pathway_lead(kb: KnowledgeBase, w: World, pw) -> exp.Expression:
    """The lead code (above) of the option a pathway leads with today; NULL: none."""
    index = option_index(kb)
    whens = []
    for i, step in now_steps(pw):
        applies = _applies(w, pw, i, step)
        positions = {oid: p for p, (oid, _) in enumerate(_options(step))}
        if len(positions) < len(_options(step)) or len(positions) >= OPTION_CODES:
            # (the plan's position of the lead in its step would then not follow from the option)
            raise NotImplementedError(f"pathway {pw.id}: an option twice in one step, or {OPTION_CODES} options")
        # established care before a trial, then preferred before reasonable, then order (nelm.plan._now_key)
        for rank, verdict, oid, cond in trial_last(step):
            ok = and_(applies, verdict_is(w, oid, verdict), _in_step(w, pw, i, oid, cond, unknown=False))
            whens.append((ok, num(lead_code(i, rank, positions[oid], index[oid]))))
    return case(*whens) if whens else exp.Null()


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
    # it (nelm.plan._blocking). The terms of pathway j are read only where it is followed (one CASE),
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
                # option only where no other established option of the step is left (nelm.plan._now_key)
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
    # preferred or reasonable could give the plan a lead (nelm.plan._blocking)
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
    """An unknown pathway could still lead with something today (``nelm.plan._could_offer``): a
    candidate that may still lead (:func:`may_lead`). One that could not is passed over by the walk."""
    terms = [may for _, may in may_lead(w, pw)]
    return or_(*terms) if terms else exp.false()


def walk(pathways: list[exp.Expression], offers: list[exp.Expression], name: Callable[[str], str],
         could: list[exp.Expression] | None = None) -> dict[str, exp.Expression]:
    """``nelm.plan.follow``'s walk through the pathways in closed form (module docstring):
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


def inputs_of_follow(kb: KnowledgeBase, w: World) -> dict[str, exp.Expression]:
    """What :func:`follow` reads besides the rule, pathway and possible-verdict columns: the
    missing-facts masks of the columns it reads and each candidate's first rule that holds
    (the SQL view computes these beside the rules and verdicts it has anyway)."""
    bits = mask_bits(kb)
    masked = closure(kb, mask_targets(kb))
    cols = {}
    for batch in kb.nodes:
        for node in batch:
            if node.column in masked:
                cols[w.mask(node.column)] = mask_expr(kb, w, node.column, bits)
    opts = {o.id: o for o in kb.options}
    for oid in now_options(kb):
        cols[w.first(oid)] = first_rule(w, opts[oid])
    return cols
