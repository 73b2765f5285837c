"""The plan's leading option for a whole table, column-wise from the pathway definitions.

:func:`nelm.plan.build_plan` decides the leading option in three stages; this module
writes each stage as Polars expressions generated from ``pathways.yaml`` (the pathway
conditions, each step's options and their ``if`` conditions, in order) and from the
verdict columns of :func:`nelm.engine.evaluate_frame`:

1. **follow** — the first pathway whose condition holds and whose ``now`` steps offer an
   option the verdicts allow (preferred before reasonable, then the step's order); a
   pathway that holds but offers nothing is kept as the fallback, and an unknown pathway
   before it stops the search (``nelm.plan.follow``);
2. **uncertainty** — the missing defining facts that could change the leading option:
   the inputs of unknown pathway conditions read before it, and of the unknown rules of
   each first-step candidate still undetermined that could outrank it
   (``nelm.plan._uncertain``). "Which inputs a value hangs on" is
   :func:`nelm.knowledge.input_roots`, here one boolean column per computed column: does
   it hang on a missing non-check field, does it hang on an assumable one;
3. **outcome** — no such fact: the plan is determined or conditional on pre-treatment
   checks, and the leading option is the one followed; such facts but none a board may
   assume (``assumptions`` in pathways.yaml): undetermined, no leading option.

4. **assumptions** — such facts and some a board may assume: ``build_plan`` evaluates
   the patient again with those facts assumed (a document the assumption makes
   contradictory, e.g. an assumed ``extrahepatic.present = false`` beside listed sites,
   gets no plan), requires that plan to be certain, rebuilds its steps with today's
   verdicts ranked by the assumed ones, and keeps the leading option when both agree.
   :func:`leading` flags those rows with the facts to assume (``assume.<field>``);
   :mod:`nelm.screen.columns` lays out the assumed patients, validates and evaluates
   them as a batch, and :func:`conditional_leading` does the rest column-wise.
"""
from __future__ import annotations

from typing import Any

import polars as pl

from ..knowledge import KnowledgeBase, pathway_column, rule_column
from ..knowledge.ruleset import VERDICTS
from ..patient import COLUMN_FIELDS

NOW = ("preferred", "reasonable")
TRIAL = "clinical_trial"
# the plan is flat and ordered already; the optimiser spends more on hundreds of columns than it saves
_FLAT = pl.QueryOptFlags.none()


def _options(step: Any) -> list[tuple[str, str | None]]:
    return [(o, None) if isinstance(o, str) else (o.id, o.if_) for o in step.options]


def _targets(kb: KnowledgeBase) -> list[str]:
    cols = [pathway_column(pw.id) for pw in kb.pathways]
    opts = {o.id: o for o in kb.options}
    for pw in kb.pathways:
        for oid, _ in _options(pw.steps[0]):
            opt = opts[oid]
            cols += [rule_column(oid, r.id) for r in opt.deciding + opt.caps]
    return list(dict.fromkeys(cols))


_FLAGS: dict[tuple[int, str], tuple[KnowledgeBase, list[list[pl.Expr]]]] = {}


def _flag_names(kb: KnowledgeBase, mode: str) -> list[str]:
    """``certain``: only whether a missing non-check fact matters; ``any``: also whether an
    assumable one does; ``fields``: which assumable ones (one flag each)."""
    return {"certain": ["n"], "any": ["n", "a"],
            "fields": ["n"] + [f"a{i}" for i in range(len(assumable_fields(kb)))]}[mode]


def _flag_batches(kb: KnowledgeBase, mode: str) -> list[list[pl.Expr]]:
    key = (id(kb), mode)
    if key not in _FLAGS:
        _FLAGS[key] = (kb, _build_flags(kb, mode))   # the knowledge base is kept so that its id stays its own
    return _FLAGS[key][1]


def assumable_fields(kb: KnowledgeBase) -> list[str]:
    """The missing facts a plan may assume (pathways.yaml), pre-treatment checks excepted."""
    checks = {c.field for c in kb.checks}
    return list(dict.fromkeys(a.field for a in kb.assumptions if a.field not in checks))


def _build_flags(kb: KnowledgeBase, mode: str) -> list[list[pl.Expr]]:
    """For each computed column the leading option may hang on: ``__n__<col>`` (it hangs on
    a missing field that is not a pre-treatment check), ``__a__<col>`` (on a field a plan
    may assume) or ``__a<i>__<col>`` (on the i-th such field), as
    :func:`nelm.knowledge.input_roots` walks the graph."""
    checks = {c.field for c in kb.checks}
    assumable = assumable_fields(kb)
    # a check filled with its passing value is not null in the frame, so "n" counts only the
    # checks left unknown (nelm.plan._blocking)
    wanted = {"n": lambda f: True, "a": lambda f: f in assumable}
    wanted |= {f"a{i}": (lambda f, a=a: f == a) for i, a in enumerate(assumable)}
    kinds = [(name, wanted[name]) for name in _flag_names(kb, mode)]
    needed: set[str] = set()
    stack = _targets(kb)
    while stack:
        col = stack.pop()
        if col in needed or col in COLUMN_FIELDS:
            continue
        needed.add(col)
        stack += list(kb.roots.get(col, ()))
    batches = []
    for batch in kb.nodes:
        exprs = []
        for node in batch:
            if node.column not in needed:
                continue
            for flag, wanted in kinds:
                terms = []
                for r in sorted(node.roots):
                    if r in COLUMN_FIELDS:
                        if wanted(COLUMN_FIELDS[r]):
                            terms.append(pl.col(r).is_null())
                    else:
                        terms.append(pl.col(r).is_null() & pl.col(f"__{flag}__{r}"))
                exprs.append((pl.any_horizontal(terms) if terms else pl.lit(False)).alias(f"__{flag}__{node.column}"))
        if exprs:
            batches.append(exprs)
    return batches


def _first(kb: KnowledgeBase, oid: str) -> pl.Expr:
    """Index of the option's first deciding rule that certainly holds (the number of rules if none)."""
    opt = next(o for o in kb.options if o.id == oid)
    conds = [pl.col(rule_column(oid, r.id)) for r in opt.deciding]
    k = len(conds)
    return pl.min_horizontal([pl.when(c.fill_null(False)).then(pl.lit(i)).otherwise(pl.lit(k))
                              for i, c in enumerate(conds)] + [pl.lit(k)]).alias(f"__first__{oid}")


def _affects(kb: KnowledgeBase, oid: str, flag: str) -> pl.Expr:
    """An undetermined option's missing facts (``missing_data[].affects``): the inputs of its
    unknown deciding rules before the first that holds, and of its unknown caps."""
    opt = next(o for o in kb.options if o.id == oid)
    conds = [pl.col(rule_column(oid, r.id)) for r in opt.deciding]
    first = pl.col(f"__first__{oid}")
    terms = [c.is_null() & (first > i) & pl.col(f"__{flag}__{rule_column(oid, r.id)}")
             for i, (r, c) in enumerate(zip(opt.deciding, conds))]
    terms += [pl.col(rule_column(oid, r.id)).is_null() & pl.col(f"__{flag}__{rule_column(oid, r.id)}") for r in opt.caps]
    return (pl.any_horizontal(terms) if terms else pl.lit(False)).alias(f"__affects_{flag}__{oid}")


def _verdict(oid: str) -> pl.Expr:
    return pl.col(f"verdict__{oid}")


def _possible(oid: str, verdict: str) -> pl.Expr:
    return (pl.col(f"possible__{oid}") & (1 << VERDICTS.index(verdict))) != 0


def trial_last(step: Any) -> list[tuple[int, str, str, str | None]]:
    """A ``now`` step's (rank, verdict, option, condition) in the order the plan tries them:
    every established option by verdict then order, then the trial (``nelm.plan._now_key``)."""
    opts = _options(step)
    out = [(rank, v, oid, cond) for rank, v in enumerate(NOW) for oid, cond in opts if oid != TRIAL]
    return out + [(rank, v, oid, cond) for rank, v in enumerate(NOW) for oid, cond in opts if oid == TRIAL]


def _pathway_lead(pw: Any) -> tuple[pl.Expr, pl.Expr]:
    """The option a pathway leads with today (null: its ``now`` steps offer nothing), and
    its rank (0 preferred, 1 reasonable)."""
    kinds = [s.when for s in pw.steps]
    first_later = next((i for i, w in enumerate(kinds) if w != "now"), len(kinds))
    if "now" in kinds[first_later:]:
        raise NotImplementedError(f"pathway {pw.id}: a 'now' step after a later one")
    leads, ranks = [], []
    for i, step in enumerate(pw.steps[:first_later]):
        applies = pl.lit(True) if not step.if_ else pl.col(pathway_column(pw.id, i)).fill_null(False)
        # established care before a trial (nelm.plan._now_key), then preferred before reasonable, then order
        for rank, verdict, oid, cond in trial_last(step):
            ok = applies & (_verdict(oid) == verdict)
            if cond:
                ok = ok & pl.col(pathway_column(pw.id, i, oid)).fill_null(False)
            leads.append(pl.when(ok).then(pl.lit(oid)))
            ranks.append(pl.when(ok).then(pl.lit(rank)))
    # coalesce = the first step with an option, and in it preferred before reasonable, then order
    # (within one step, all preferred candidates come before all reasonable ones)
    return pl.coalesce(leads), pl.coalesce(ranks)


def follow(frame: pl.DataFrame, kb: KnowledgeBase, mode: str = "any") -> pl.LazyFrame:
    """The plan's stages as columns (see the module docstring): ``__followed`` (index of the
    pathway followed, null when none), ``__lead`` (its leading option when it offers one),
    ``__certain`` (no missing fact could change it), ``__assume`` (it hangs on a missing fact
    a plan may assume; modes ``any`` and ``fields``) and ``__in<i>`` (the i-th assumable
    field is among those facts; mode ``fields``).

    ``frame`` is :func:`nelm.engine.evaluate_frame` of the patients *with the unknown
    pre-treatment checks in their passing values* (``kb.assume``), as the plan reads them.
    """
    lf = frame.lazy()
    for batch in _flag_batches(kb, mode):
        lf = lf.with_columns(batch)
    pws = kb.pathways
    leads = [_pathway_lead(pw) for pw in pws]
    lf = lf.with_columns([e.alias(f"__lead{j}") for j, (e, _) in enumerate(leads)]
                         + [r.alias(f"__rank{j}") for j, (_, r) in enumerate(leads)])
    # 1. follow: the pathways in order, as nelm.plan.follow reads them
    lf = lf.with_columns(__decided=pl.lit(False), __result=pl.lit(None, pl.Int32), __fallback=pl.lit(None, pl.Int32),
                         __unknown_seen=pl.lit(False))
    for j, pw in enumerate(pws):
        p = pl.col(pathway_column(pw.id))
        live = ~pl.col("__decided")
        holds = live & p.fill_null(False)
        offers = pl.col(f"__lead{j}").is_not_null()
        lf = lf.with_columns(
            (live & p.is_null()).alias(f"__unknown{j}"),
            pl.when(holds & offers).then(pl.lit(j)).otherwise(pl.col("__result")).alias("__result"),
            pl.when(holds & ~offers & pl.col("__fallback").is_null()).then(pl.lit(j))
              .otherwise(pl.col("__fallback")).alias("__fallback"),
            (pl.col("__decided") | (holds & offers) | (holds & ~offers & pl.col("__unknown_seen"))).alias("__decided"),
        ).with_columns(__unknown_seen=pl.col("__unknown_seen") | pl.col(f"__unknown{j}"))
    followed = pl.coalesce("__result", "__fallback")
    lead = pl.coalesce([pl.when(pl.col("__result") == j).then(pl.col(f"__lead{j}")) for j in range(len(pws))])
    lead_rank = pl.coalesce([pl.when(pl.col("__result") == j).then(pl.col(f"__rank{j}")) for j in range(len(pws))])
    lf = lf.with_columns(__followed=followed, __lead=lead, __lead_rank=lead_rank)

    # 2. uncertainty: missing facts that could change the leading option
    flags = _flag_names(kb, mode)
    candidates = list(dict.fromkeys(oid for pw in pws for oid, _ in _options(pw.steps[0])))
    lf = lf.with_columns([_first(kb, oid) for oid in candidates])
    lf = lf.with_columns([_affects(kb, oid, flag) for oid in candidates for flag in flags])
    # a first-step candidate still undetermined that could outrank the leading option
    # (or lead where none does): one column per pathway and candidate, whatever the flag
    outrank_cols: list[tuple[str, str]] = []
    for j, pw in enumerate(pws):
        cands = _options(pw.steps[0])
        in_step = [pl.lit(True) if not cond else pl.col(pathway_column(pw.id, 0, oid)).fill_null(True)
                   for oid, cond in cands]
        lead_pos = pl.coalesce([pl.when((pl.col("__lead") == oid) & ok).then(pl.lit(p))
                                for p, ((oid, _), ok) in enumerate(zip(cands, in_step))])
        # a trial leads only where nothing else offers itself: any candidate may outrank it
        lf = lf.with_columns(
            pl.when(lead_pos.is_not_null() & (pl.col("__lead") != TRIAL)).then(pl.col("__lead_rank"))
              .otherwise(pl.lit(9)).alias(f"__lr{j}"),
            lead_pos.fill_null(99).alias(f"__lp{j}"))
        lr, lp = pl.col(f"__lr{j}"), pl.col(f"__lp{j}")
        exprs = []
        for p, ((oid, _), ok) in enumerate(zip(cands, in_step)):
            outranks = pl.lit(False)
            for rank, verdict in enumerate(NOW):
                outranks = outranks | (_possible(oid, verdict) & ((rank < lr) | ((rank == lr) & (p < lp))))
            name = f"__outranks{j}_{p}"
            several = (pl.col(f"possible__{oid}") & (pl.col(f"possible__{oid}") - 1)) != 0   # several verdicts possible
            exprs.append(((pl.col("__followed") == j).fill_null(False) & ok & several
                          & outranks).alias(name))
            outrank_cols.append((name, oid))
        lf = lf.with_columns(exprs)

    def hangs(flag: str) -> pl.Expr:
        terms = [pl.col(f"__unknown{k}") & (pl.col("__followed").is_null() | (pl.lit(k) < pl.col("__followed")))
                 & pl.col(f"__{flag}__{pathway_column(pw.id)}") for k, pw in enumerate(pws)]
        terms += [pl.col(name) & pl.col(f"__affects_{flag}__{oid}") for name, oid in outrank_cols]
        # nothing offered today: a candidate of any pathway not ruled out that may still be
        # preferred or reasonable could give the plan a lead (nelm.plan._blocking)
        for pw in pws:
            for oid, cond in _options(pw.steps[0]):
                ok = pl.col(pathway_column(pw.id)).fill_null(True)
                if cond:
                    ok = ok & pl.col(pathway_column(pw.id, 0, oid)).fill_null(True)
                several = (pl.col(f"possible__{oid}") & (pl.col(f"possible__{oid}") - 1)) != 0
                terms.append(pl.col("__lead").is_null() & ok & several & (_possible(oid, "preferred") | _possible(oid, "reasonable"))
                             & pl.col(f"__affects_{flag}__{oid}"))
        return pl.any_horizontal(terms)

    lf = lf.with_columns([hangs(f).alias("__fields" if f == "n" else f"__in{f[1:]}") for f in flags])
    # 3. outcome
    lf = lf.with_columns(__certain=pl.col("__followed").is_not_null() & ~pl.col("__fields"))
    if mode == "certain":
        return lf
    assumable = pl.col("__in") if mode == "any" else pl.any_horizontal(pl.col(f"__in{f[1:]}") for f in flags[1:])
    return lf.with_columns(__assume=assumable & (pl.col("__fields") | pl.col("__followed").is_null()))


def leading(frame: pl.DataFrame, kb: KnowledgeBase) -> pl.DataFrame:
    """``plan.leading`` where no assumption is needed (null elsewhere), ``needs_assumption``
    and, for those rows, ``assume.<field>``: the missing facts the plan assumes."""
    fields = assumable_fields(kb)
    out = follow(frame, kb, "any").select(
        pl.when(pl.col("__certain")).then(pl.col("__lead")).alias("plan.leading"),
        pl.col("__assume").alias("needs_assumption"),
    ).collect(optimizations=_FLAT)
    # which facts to assume: one flag per assumable field, only for the rows that need it
    rows = out["needs_assumption"].arg_true()
    which = follow(frame[rows], kb, "fields").select(
        pl.col(f"__in{i}").alias(f"assume.{f}") for i, f in enumerate(fields)).collect(optimizations=_FLAT)
    return out.with_columns(pl.Series(f"assume.{f}", [False] * out.height, dtype=pl.Boolean).scatter(rows, which[f"assume.{f}"])
                            for f in fields)


def conditional_leading(alt: pl.DataFrame, today: pl.DataFrame, kb: KnowledgeBase) -> pl.Series:
    """The leading option of a plan resting on assumptions (``nelm.plan.build_plan``).

    ``alt`` is the evaluation of the patients with the assumed facts (as ``frame`` of
    :func:`follow`), ``today`` their verdict and possible-verdict columns as entered. The
    alternative's own plan must be certain; the steps are those of its pathway with
    today's verdicts (an undetermined option that may still be preferred or reasonable
    counts) ranked by the verdicts under the assumptions; the plan holds when both lead
    with the same option, else it is undetermined (null).
    """
    state = follow(alt, kb, "certain").select("__followed", "__lead", "__certain").collect(optimizations=_FLAT)
    today = today.select([pl.col(c).alias(f"t__{c}") for c in today.columns])
    lf = alt.hstack(state).hstack(today).lazy()
    # each candidate's "allowed today" and its rank under the assumptions, once as columns
    # (read three times below: an expression repeated inline is evaluated each time)
    now_bits = sum(1 << VERDICTS.index(v) for v in NOW)
    allowed, ranks, plans = [], {}, []
    for j, pw in enumerate(kb.pathways):
        kinds = [s.when for s in pw.steps]
        first_later = next((i for i, w in enumerate(kinds) if w != "now"), len(kinds))
        per_step = []
        for i, step in enumerate(pw.steps[:first_later]):
            applies = pl.lit(True) if not step.if_ else pl.col(pathway_column(pw.id, i)).fill_null(False)
            options = []
            for oid, cond in _options(step):
                tv = pl.col(f"t__verdict__{oid}")
                ok = applies & (tv.is_in(list(NOW)) | ((tv == "undetermined") & ((pl.col(f"t__possible__{oid}") & now_bits) != 0)))
                if cond:
                    ok = ok & pl.col(pathway_column(pw.id, i, oid)).fill_null(False)
                allowed.append(ok.alias(f"__ok{j}_{i}_{oid}"))
                if oid not in ranks:
                    v = _verdict(oid)
                    ranks[oid] = (pl.when(v == "preferred").then(pl.lit(0, pl.Int8)).when(v == "reasonable")
                                  .then(pl.lit(1, pl.Int8)).otherwise(pl.lit(2, pl.Int8)).alias(f"__rank_{oid}"))
                options.append((oid, pl.col(f"__ok{j}_{i}_{oid}"), pl.col(f"__rank_{oid}")))
            per_step.append(options)
        plans.append(per_step)
    lf = lf.with_columns(allowed + list(ranks.values()))
    leads = []
    for j, per_step in enumerate(plans):
        steps = [pl.coalesce([pl.when(ok & (rank == r)).then(pl.lit(oid)) for r in (0, 1, 2) for oid, ok, rank in options])
                 for options in per_step]
        leads.append(pl.when(pl.col("__followed") == j).then(pl.coalesce(steps)))
    lead_c = pl.coalesce(leads)
    out = lf.select(pl.when(pl.col("__certain") & lead_c.eq_missing(pl.col("__lead"))).then(lead_c).alias("plan.leading"))
    return out.collect(optimizations=_FLAT).to_series()
