"""The plan's leading option for a whole table, column-wise from the pathway definitions.

:func:`nelm.plan.build_plan` decides the leading option in three stages; this module
writes each stage as Polars expressions generated from ``pathways.yaml`` (the pathway
conditions, each step's options and their ``if`` conditions, in order) and from the
verdict columns of :func:`nelm.engine.evaluate_frame`:

1. **follow** — the first pathway whose condition holds and whose ``now`` steps offer an
   option the verdicts allow (preferred before reasonable, then the step's order); a
   pathway that holds but offers nothing is kept as the fallback, and an unknown pathway
   before it stops the search (``nelm.plan.follow``);
2. **uncertainty** — the missing facts that could change the leading option: the inputs
   of unknown pathway conditions read before it, of the unknown rules of each first-step
   candidate that could outrank it, and, when nothing is offered today, of any ``now``
   candidate that could still be recommended (``nelm.plan._blocking``). "Which inputs a
   value hangs on" is :func:`nelm.knowledge.input_roots`, here one boolean column per
   computed column;
3. **outcome** — no such fact: the leading option is the one followed (:func:`leading`).
   Every other plan rests on assumptions (contract v3: working plan and branches) and is
   planned per case (:func:`nelm.screen.columns.certain_plans`).
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


def now_steps(pw: Any) -> list[tuple[int, Any]]:
    """A pathway's ``now`` steps with their indices (they come first)."""
    return [(i, s) for i, s in enumerate(pw.steps) if s.when == "now"]


def _targets(kb: KnowledgeBase) -> list[str]:
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


_FLAGS: dict[tuple[int, str], tuple[KnowledgeBase, list[list[pl.Expr]]]] = {}


def _flag_names(kb: KnowledgeBase, mode: str) -> list[str]:
    """``certain``: whether a missing fact (a check left unknown included) could change the lead."""
    return {"certain": ["n"]}[mode]


def _flag_batches(kb: KnowledgeBase, mode: str) -> list[list[pl.Expr]]:
    key = (id(kb), mode)
    if key not in _FLAGS:
        _FLAGS[key] = (kb, _build_flags(kb, mode))   # the knowledge base is kept so that its id stays its own
    return _FLAGS[key][1]


def _build_flags(kb: KnowledgeBase, mode: str) -> list[list[pl.Expr]]:
    """For each computed column the leading option may hang on: ``__n__<col>`` (it hangs on
    a missing field that is not a pre-treatment check), ``__a__<col>`` (on a field a plan
    may assume) or ``__a<i>__<col>`` (on the i-th such field), as
    :func:`nelm.knowledge.input_roots` walks the graph."""
    # a check filled with its passing value is not null in the frame, so "n" counts only the
    # checks left unknown (nelm.plan._blocking)
    wanted = {"n": lambda f: True}
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


def follow(frame: pl.DataFrame, kb: KnowledgeBase, mode: str = "certain") -> pl.LazyFrame:
    """The plan's stages as columns (see the module docstring): ``__followed`` (index of the
    pathway followed, null when none), ``__lead`` (its leading option when it offers one),
    and ``__certain`` (no missing fact could change it).

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
    candidates = list(dict.fromkeys(oid for pw in pws for _, step in now_steps(pw) for oid, _ in _options(step)))
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
            for i, step, oid, cond in ((i, step, oid, cond) for i, step in now_steps(pw) for oid, cond in _options(step)):
                ok = pl.col(pathway_column(pw.id)).fill_null(True)
                if step.if_:
                    ok = ok & pl.col(pathway_column(pw.id, i)).fill_null(True)
                if cond:
                    ok = ok & pl.col(pathway_column(pw.id, i, oid)).fill_null(True)
                several = (pl.col(f"possible__{oid}") & (pl.col(f"possible__{oid}") - 1)) != 0
                terms.append(pl.col("__lead").is_null() & ok & several & (_possible(oid, "preferred") | _possible(oid, "reasonable"))
                             & pl.col(f"__affects_{flag}__{oid}"))
        return pl.any_horizontal(terms)

    lf = lf.with_columns([hangs(f).alias("__fields" if f == "n" else f"__in{f[1:]}") for f in flags])
    # 3. outcome
    return lf.with_columns(__certain=pl.col("__followed").is_not_null() & ~pl.col("__fields"))


def leading(frame: pl.DataFrame, kb: KnowledgeBase) -> pl.DataFrame:
    """``plan.leading`` where no missing fact could change it (null elsewhere: those plans rest
    on assumptions and are planned per case, :func:`nelm.screen.columns.certain_plans`)."""
    return follow(frame, kb).select(
        pl.when(pl.col("__certain")).then(pl.col("__lead")).alias("plan.leading")).collect(optimizations=_FLAT)
