"""Plans resting on assumed facts, settled for a whole table at once (``nelm screen``).

Where a missing fact could change the plan's lead, the one-patient planner
(:class:`nelm.plan._Planner`, ``settle`` and :func:`nelm.plan.plan_summary`) fills in the
blocking facts that ``pathways.yaml`` lets a plan assume, evaluates the patient again, and
repeats (at most ``nelm.plan.ROUNDS`` times); the plan is then ``conditional`` if some other
value of an assumed fact, settled the same way, leads elsewhere (or does not settle), or if
the leading option relies on an unknown pre-treatment check, else ``determined``; a lead
still blocked leaves it ``undetermined``.

This module takes the same steps for every open row at once, each step column-wise:

- the evaluation of a *world* (a row with some facts filled in) is
  :func:`nelm.engine.evaluate_both_passes` and :mod:`nelm.engine.plan_program`' program, the
  columns the SQL view computes: the pathway followed, its lead, the facts that could change
  it (a bit per contract field), and the plan's status where nothing blocks it;
- the facts filled in are Polars expressions on the layout (each assumption record's value,
  and the facts that follow from it where the record leaves them unknown), so the engine's
  columns are derived from them exactly as from a patient's own facts
  (:func:`nelm.screen.flat.engine_frame`);
- a filled-in record must stay consistent: the model's consistency checks
  (``consistency.yaml``) run column-wise, and a prior therapy's months to progression
  contradict a filled-in outcome other than progression (``nelm.plan._as_set``).

Where the filled-in facts together contradict the record, the planner fills them one at a
time, each record that is for the patient in turn; so does :func:`_one_at_a_time`, one
field after another, for all such rows at once. tests/screen/test_settle.py holds the
result equal to the per-case planner's.

The filling-in is described once (:func:`fill_steps`, :func:`alternative_seeds`): this module
runs it as Polars expressions, :mod:`nelm.screen.sql_settle` as SQL views of the same cases
(``nelm sql --settle``, the same rounds inside a database).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import polars as pl

from ..consistency import failing_exprs
from ..engine import evaluate_both_passes
from ..knowledge import KnowledgeBase, assumption_column
from ..patient import COLUMN_FIELDS
from ..plan import ROUNDS
from .flat import engine_frame, prior_columns
from .layout import PRIOR, SCHEMA
from ..engine.plan_program import FIELD_BIT

COURSE = FIELD_BIT["course.status"]
HISTORY_COLUMNS = [c for c, f in COLUMN_FIELDS.items() if f.startswith("prior_therapies")]
HISTORY = FIELD_BIT["prior_therapies"]
_W = "__w"                      # a world's number
_BASE = "__base"                # the row of the table the world is of
_FIXED = "__fixed"              # the facts filled in so far (field bits): never assumed again
_ASSUMED = "__assumed"          # the assumption records used (a bit per record)
_RESTAGING = "__restaging"      # a therapy still given whose outcome the next restaging decides
_KNOWN = "__known"              # the fields the record itself gives (field bits)
_INTERNAL = (_W, _BASE, _FIXED, _ASSUMED, _RESTAGING, _KNOWN)


def settle_plans(layout: pl.DataFrame, kb: KnowledgeBase, first: pl.DataFrame | None = None,
                 engine: pl.DataFrame | None = None) -> pl.DataFrame:
    """``plan.leading`` and ``plan.status`` of typed layout rows (with ``__row``), as
    ``nelm.assessment.plan_status_of`` gives them. ``first`` and ``engine``: the rows' first
    evaluation (:func:`_evaluate`'s columns) and engine frame, when the caller has them."""
    n = layout.height
    base = _base(layout, kb)
    eng = engine_frame(_layout(base.with_columns(pl.col(_BASE).alias(_W)))) if engine is None else engine
    history = eng.select(HISTORY_COLUMNS)   # a what-if that changes neither history nor course keeps them
    work = _run(base.with_columns(pl.int_range(0, n, dtype=pl.Int64).alias(_W)), kb, history, first, eng).sort(_W)
    # each other value of each assumed fact, settled from the record as it is (nelm.plan._other_values):
    # one that does not settle, or leads elsewhere, makes the plan conditional
    seeds, seed_engine = _alternative_worlds(base, work.filter(pl.col("settled")), kb, history)
    differs = pl.Series([False] * n)
    if seeds.height:
        # (a row is conditional once one of its worlds differs: its other worlds are not settled further)
        alt = _run(seeds.drop("__lead"), kb, history, engine=seed_engine, lead=seeds.select(_W, "__lead")).join(
            seeds.select(_W, _BASE, "__lead"), on=_W)
        per_row = alt.group_by(_BASE).agg(
            differs=(~(pl.col("settled") & pl.col("lead").eq_missing(pl.col("__lead")))).any())
        marks = pl.DataFrame({_BASE: pl.int_range(0, n, dtype=pl.Int64, eager=True)}).join(per_row, on=_BASE, how="left")
        differs = marks.sort(_BASE)["differs"].fill_null(False)
    return pl.DataFrame({"settled": work["settled"], "lead": work["lead"], "status": work["status"], "differs": differs}).select(
        pl.when(pl.col("settled")).then(pl.col("lead")).alias("plan.leading"),
        pl.when(~pl.col("settled")).then(pl.lit("undetermined"))
          .when(pl.col("differs")).then(pl.lit("conditional")).otherwise(pl.col("status")).alias("plan.status"))


def _base(layout: pl.DataFrame, kb: KnowledgeBase) -> pl.DataFrame:
    """The rows as worlds with nothing filled in, with what the planner reads of the record itself."""
    history = pl.col(PRIOR)
    ongoing_unknown = history.list.eval((pl.element().struct.field("outcome").is_null()
                                         & pl.element().struct.field("ongoing").fill_null(False))).list.any()
    known = [pl.when(pl.col(f).is_not_null()).then(pl.lit(FIELD_BIT[f])).otherwise(pl.lit(0)) for f in _also_fields(kb)]
    return layout.with_columns(
        pl.int_range(0, layout.height, dtype=pl.Int64).alias(_BASE),
        pl.lit(0, dtype=pl.Int64).alias(_FIXED),
        pl.lit(0, dtype=pl.Int64).alias(_ASSUMED),
        (pl.col("course.status").is_null() & ongoing_unknown.fill_null(False)).alias(_RESTAGING),
        (pl.sum_horizontal(known) if known else pl.lit(0)).cast(pl.Int64).alias(_KNOWN),
    )


def _also_fields(kb: KnowledgeBase) -> list[str]:
    """The fields that follow from an assumed value or its alternative (filled in where unknown)."""
    return sorted({f for a in kb.assumptions for f in [*a.also, *a.also_if_not]} & set(FIELD_BIT))


def _run(worlds: pl.DataFrame, kb: KnowledgeBase, history: pl.DataFrame, first: pl.DataFrame | None = None,
         engine: pl.DataFrame | None = None, lead: pl.DataFrame | None = None) -> pl.DataFrame:
    """``_Planner.settle`` for every world: each world's ``settled`` (a pathway followed and
    nothing blocking its lead), ``lead``, ``status`` (of the settled plan: determined, or
    conditional on the lead's unknown checks) and ``assumed`` records. ``engine``: the worlds'
    engine frame when the caller has it.

    ``lead`` (``_W``, ``__lead``: the working plan's lead of each world's row, for the worlds of
    other values of assumed facts): a row whose plan one of them already makes conditional (a
    world finished unsettled, or leading elsewhere) needs no other; its worlds still open are
    dropped, so the result holds at least one such world for the row and perhaps not all."""
    records = list(enumerate(kb.assumptions))
    by_field = records_by_field(kb)
    done: list[pl.DataFrame] = []
    open_ = worlds
    if engine is None and open_.height:
        engine = _engine(open_, history)
    for round_ in range(ROUNDS + 1):
        if open_.height == 0:
            break
        ev = first if round_ == 0 and first is not None else _evaluate(engine, kb)
        st, picks = _round(open_, ev, by_field)
        finished = _finished_now(st, picks, last=round_ == ROUNDS)
        done.append(_finished(st.filter(finished)))
        rest = st.filter(~finished)
        # (st is open_'s rows in order: the same filter keeps the same worlds)
        before = open_.filter(~finished)
        if lead is not None and rest.height:
            differ = st.filter(finished).join(lead, on=_W).filter(
                ~(pl.col("settled") & pl.col("plan.candidate").eq_missing(pl.col("__lead"))))[_BASE]
            needed = ~rest[_BASE].is_in(differ.implode())
            rest, before = rest.filter(needed), before.filter(needed)
        if rest.height == 0:
            break
        trial = _fill(before.hstack(rest.select(picks)), by_field).drop(picks)
        engine = _engine(trial, history)
        ok = _consistent(trial, engine)
        if not ok.all():
            # together they contradict the record: one fact at a time, each record that is for the
            # patient in turn (the planner's second way); a world that takes none is done
            usable_cols = [f"__usable__{i}" for i, _ in records if f"__usable__{i}" in rest.columns]
            grown, took = _one_at_a_time(before.filter(~ok).hstack(rest.filter(~ok).select(usable_cols)), by_field, history)
            done.append(_finished(rest.filter(~ok).filter(~took)))
            grown = grown.filter(took)
            trial = pl.concat([trial.filter(ok), grown.select(trial.columns)], how="vertical_relaxed")
            engine = pl.concat([engine.filter(ok), _engine(grown, history)], how="vertical_relaxed")
        open_ = trial
    return pl.concat(done, how="vertical_relaxed") if done else pl.DataFrame(
        schema={_W: pl.Int64, "settled": pl.Boolean, "lead": pl.String, "status": pl.String, "assumed": pl.Int64})


def _round(open_: pl.DataFrame, ev: pl.DataFrame, by_field: dict[str, list[tuple[int, Any]]]
           ) -> tuple[pl.DataFrame, list[str]]:
    """One round's reading of the worlds' evaluation ``ev``: ``settled`` (a pathway followed and
    nothing blocking its lead), and for each blocking fact not filled in yet the first of its
    records that is for this patient (``__pick__<field>``) and which records are
    (``__usable__<i>``); the pick columns' names."""
    st = open_.select(_INTERNAL).hstack(ev)
    blocking = pl.col("plan.missing") | pl.when(
        ((pl.col("plan.missing") & HISTORY) != 0) & pl.col(_RESTAGING) & ((pl.col(_FIXED) & COURSE) == 0)
    ).then(pl.lit(COURSE)).otherwise(pl.lit(0))
    st = st.with_columns(blocking.alias("__blocking"))
    settled = pl.col("plan.followed").is_not_null() & (pl.col("__blocking") == 0)
    choices, usable = [], []
    for field in sorted(by_field):
        bit = FIELD_BIT[field]
        wanted = ((pl.col("__blocking") & bit) != 0) & ((pl.col(_FIXED) & bit) == 0)
        pick = pl.lit(None, dtype=pl.Int64)
        for i, a in reversed(by_field[field]):
            applies = pl.lit(True) if not a.when else pl.col(assumption_column(i)).fill_null(False)
            pick = pl.when(applies).then(pl.lit(i, dtype=pl.Int64)).otherwise(pick)
            usable.append((wanted & applies).alias(f"__usable__{i}"))
        choices.append(pl.when(wanted).then(pick).alias(f"__pick__{field}"))
    return st.with_columns(settled.alias("settled"), *choices, *usable), [f"__pick__{f}" for f in sorted(by_field)]


def _finished_now(st: pl.DataFrame, picks: list[str], *, last: bool) -> pl.Series:
    """The worlds a round ends: settled, or with no blocking fact left that a record may fill in
    (undetermined), or in the last round."""
    return st.select(pl.col("settled") | pl.all_horizontal(pl.col(p).is_null() for p in picks) | pl.lit(last)).to_series()


def fills_nothing(layout: pl.DataFrame, kb: KnowledgeBase, first: pl.DataFrame) -> pl.Series:
    """Which open rows (typed layout rows, their first evaluation ``first``) the first round
    ends with nothing filled in: no fact blocking their lead is one a record lets the plan
    assume, so the plan stays undetermined. Settling them column-wise costs one reading of
    ``first`` whatever their number, so ``nelm screen`` sends them there however few they are
    (a registry with every field recorded has thousands, each taking the per-case planner
    about a millisecond)."""
    base = _base(layout, kb)
    st, picks = _round(base.with_columns(pl.col(_BASE).alias(_W)), first, records_by_field(kb))
    return _finished_now(st, picks, last=False)


def _finished(st: pl.DataFrame) -> pl.DataFrame:
    return st.select(_W, pl.col("settled"), pl.col("plan.candidate").alias("lead"),
                     pl.col("plan.status").alias("status"), pl.col(_ASSUMED).alias("assumed"))


def _layout(worlds: pl.DataFrame) -> pl.DataFrame:
    """A world's layout row (what engine_frame reads; ``__row`` numbers the worlds)."""
    return worlds.select(pl.col(_W).alias("__row"), *[c for c in SCHEMA if c in worlds.columns])


def _engine(worlds: pl.DataFrame, history: pl.DataFrame, *, for_checks: bool = False) -> pl.DataFrame:
    """The worlds' engine frame. The treatment-history columns follow from the history and the
    course alone: a world that changed neither keeps its record's (``history``, by row of the
    table); the others are worked out again.

    ``for_checks``: a frame only the consistency checks read (:func:`_consistent`). Filling in
    changes of the history only unrecorded outcomes (``_set``; the course, an ongoing therapy's
    unrecorded outcome), and the checks read of the history columns only those worked out from a
    therapy's months to progression and whether it is ongoing (:func:`_checks_keep_history`), so
    every world keeps its record's."""
    if for_checks and _checks_keep_history():
        return engine_frame(_layout(worlds), history[worlds[_BASE]])
    # (the course decides only an ongoing therapy's unrecorded outcome: _RESTAGING's records)
    touched = ((worlds[_FIXED] & HISTORY) != 0) | (((worlds[_FIXED] & COURSE) != 0) & worlds[_RESTAGING])
    if touched.any():
        lay = _layout(worlds.filter(touched))
        fresh = prior_columns(lay.select("__row", PRIOR, pl.col("course.status").alias("course_status")))
        # the record's columns, and the fresh ones (in the touched worlds' order) after them: one gather
        fresh = fresh.select(pl.col(c).cast(t) for c, t in history.schema.items())
        at = worlds.select(pl.when(touched).then(history.height + touched.cast(pl.Int64).cum_sum() - 1)
                           .otherwise(pl.col(_BASE)).alias("at"))["at"]
        kept = pl.concat([history, fresh])[at]
    else:
        kept = history[worlds[_BASE]]
    return engine_frame(_layout(worlds), kept)


@lru_cache(maxsize=1)
def _checks_keep_history() -> bool:
    """Do the consistency checks read, of the treatment-history columns, only months to
    progression and ongoing (which filling in an unrecorded outcome cannot change)?"""
    read = {c for e in failing_exprs() for c in e.meta.root_names()} & set(HISTORY_COLUMNS)
    return all(c.endswith(("_months", "_ongoing")) for c in read)


def _evaluate(engine: pl.DataFrame, kb: KnowledgeBase) -> pl.DataFrame:
    """The plan program's outputs and the assumption records' conditions, one row per world."""
    from .columns import plan_outputs

    return plan_outputs(engine, evaluate_both_passes(engine, kb)[1], kb)


def _value(field: str, value: Any) -> pl.Expr:
    return pl.lit(value, dtype=SCHEMA[field])


def _set(field: str, value: Any, where: pl.Expr) -> list[pl.Expr]:
    """``field`` set to ``value`` where ``where`` holds; ``prior_therapies`` given as an outcome
    fills in the unrecorded outcome of each therapy no longer given (nelm.plan._history)."""
    if field == PRIOR:
        return [pl.when(where).then(_outcome_filled(value)).otherwise(pl.col(PRIOR)).alias(PRIOR)]
    return [pl.when(where).then(_value(field, value)).otherwise(pl.col(field)).alias(field)]


def _outcome_filled(value: Any) -> pl.Expr:
    """The history with ``value`` as the outcome of each therapy no longer given whose outcome is unrecorded."""
    unrecorded = pl.element().struct.field("outcome").is_null() & ~pl.element().struct.field("ongoing").fill_null(False)
    return pl.col(PRIOR).list.eval(pl.element().struct.with_fields(
        pl.when(unrecorded).then(pl.lit(value)).otherwise(pl.element().struct.field("outcome")).alias("outcome")))


def _one_at_a_time(worlds: pl.DataFrame, by_field: dict[str, list[tuple[int, Any]]], history: pl.DataFrame
                   ) -> tuple[pl.DataFrame, pl.Series]:
    """Each blocking fact in the fields' order, each of its records that is for the patient
    (``__usable__<i>``) in the knowledge base's order: the first that keeps the record
    consistent is filled in. The worlds so grown, and which of them took any.

    A world's fields are tried in the fields' order, and a field's records together: every
    (world, record) pair filled in and checked in one pass, and each world takes the first
    record, in the knowledge base's order, that passed (the same record as trying them one after
    another). Filling in, the engine frame and the checks are row by row, so the worlds' first
    fields with a record for them are tried in one pass whatever the field, then their second
    fields, and so on: as many passes as a world has such fields, not one per field."""
    cur = worlds.with_row_index("__i")
    took = pl.Series("took", [False] * cur.height)
    fields = sorted(by_field)
    picks_all = [f"__pick__{f}" for f in fields]
    tries = [cur.lazy().filter(pl.col(f"__usable__{i}").fill_null(False)).select(
                 "__i", pl.lit(pos, dtype=pl.Int64).alias("__pos"), pl.lit(i, dtype=pl.Int64).alias("__rec"),
                 pl.lit(rank, dtype=pl.Int64).alias("__rank"))
             for pos, field in enumerate(fields) for rank, (i, _) in enumerate(by_field[field])
             if f"__usable__{i}" in cur.columns]
    if not tries:
        return cur.drop("__i"), took
    # each world's fields with a record for it, numbered in the fields' order (its 1st, 2nd, ...)
    tries_df = pl.concat(tries).with_columns(pl.col("__pos").rank("dense").over("__i").cast(pl.Int64).alias("__step")).collect()
    for step in range(1, (tries_df["__step"].max() or 0) + 1):
        these = tries_df.filter(pl.col("__step") == step)
        if these.height == 0:
            continue
        picks = [pl.when(pl.col("__pos") == pos).then(pl.col("__rec")).otherwise(pl.lit(None, dtype=pl.Int64)).alias(f"__pick__{f}")
                 for pos, f in enumerate(fields)]
        stacked = cur.join(these.select("__i", "__pos", "__rec", "__rank"), on="__i").with_columns(*picks).drop("__pos", "__rec")
        more = _fill(stacked, by_field).drop(picks_all)
        ok = _consistent(more, _engine(more, history, for_checks=True))
        if not ok.any():
            continue
        kept = more.filter(ok).sort("__i", "__rank").unique("__i", keep="first", maintain_order=True).drop("__rank")
        hit = cur["__i"].is_in(kept["__i"].implode())
        cur = pl.concat([cur.filter(~hit), kept.select(cur.columns)], how="vertical_relaxed").sort("__i")
        took = took | hit
    return cur.drop("__i"), took


class Step(NamedTuple):
    """One assumed field's filling-in, as ``_Planner.settle``'s ``trial |= filled(...)`` does it:
    the one description :func:`_fill` (Polars) and :mod:`nelm.screen.sql_settle` (SQL) both run."""
    field: str
    records: list[tuple[int, Any]]                 # (record index, assumed value), the knowledge base's order
    follows: dict[str, list[tuple[int, Any]]]      # fact that follows -> (record index, its value): filled in
    #                                                where the record itself leaves it unknown


def fill_steps(kb: KnowledgeBase) -> list[Step]:
    """The fields a plan may assume, in the order they are filled in (a later field's fact
    that follows overwrites an earlier one's), each with its records and the facts that follow."""
    return _steps_of(records_by_field(kb))


def records_by_field(kb: KnowledgeBase) -> dict[str, list[tuple[int, Any]]]:
    """The assumption records by the field they fill in, each as (record index, record), in the
    knowledge base's order."""
    by_field: dict[str, list[tuple[int, Any]]] = {}
    for i, a in enumerate(kb.assumptions):
        by_field.setdefault(a.field, []).append((i, a))
    return by_field


def alternative_seeds(kb: KnowledgeBase) -> list[tuple[int, str, Any, dict[str, Any]]]:
    """(record, field, other value, facts that follow where unknown) of each other value of each
    assumption record (``nelm.plan._other_values``): the alternative with the record's
    ``also_if_not``, then each of ``also_alternatives`` alone."""
    return [(i, a.field, value, a.also_if_not if k == 0 else {})
            for i, a in enumerate(kb.assumptions) for k, value in enumerate([a.alternative, *a.also_alternatives])]


def _fill(worlds: pl.DataFrame, by_field: dict[str, list[tuple[int, Any]]], steps: list[Step] | None = None) -> pl.DataFrame:
    """Each world with its picked records' assumed values (and the facts that follow from
    them where the record leaves them unknown) filled in, field by field in order, as
    ``trial |= filled(...)`` does (a later field's fact that follows overwrites):
    :func:`fill_steps`' description."""
    lf = worlds.lazy()
    for step in steps if steps is not None else _steps_of(by_field):
        field = step.field
        pick = f"__pick__{field}"
        if worlds[pick].null_count() == worlds.height:
            continue    # no world fills this field in
        out: list[pl.Expr] = []
        fixed = pl.col(_FIXED) | pl.when(pl.col(pick).is_not_null()).then(pl.lit(FIELD_BIT[field])).otherwise(0)
        assumed = pl.col(_ASSUMED) | pl.col(pick).replace_strict({i: 1 << i for i, _ in step.records}, default=0,
                                                                 return_dtype=pl.Int64)
        if field == PRIOR:      # (a history's unrecorded outcome; one expression for all of the field's records)
            value = pl.col(PRIOR)
            for i, v in reversed(step.records):
                value = pl.when((pl.col(pick) == i).fill_null(False)).then(_outcome_filled(v)).otherwise(value)
            out.append(value.alias(PRIOR))
        for f, cases in step.follows.items():
            cases = [((pl.col(pick) == i).fill_null(False) & ((pl.col(_KNOWN) & FIELD_BIT[f]) == 0), v) for i, v in cases]
            for where, _ in cases:
                fixed = fixed | pl.when(where).then(pl.lit(FIELD_BIT[f])).otherwise(0)
            if len(cases) == 1:
                out += _set(f, cases[0][1], cases[0][0])
            else:
                value = pl.col(f)
                for where, v in reversed(cases):
                    value = pl.when(where).then(_value(f, v)).otherwise(value)
                out.append(value.alias(f))
        if field != PRIOR:
            value = pl.col(field)
            for i, v in reversed(step.records):
                value = pl.when(pl.col(pick) == i).then(_value(field, v)).otherwise(value)
            out.append(value.alias(field))
        # (one field's value and the facts that follow from it are different columns: one step)
        lf = lf.with_columns(*out, fixed.alias(_FIXED), assumed.alias(_ASSUMED))
    return lf.collect()


def _steps_of(by_field: dict[str, list[tuple[int, Any]]]) -> list[Step]:
    steps = []
    for field in sorted(by_field):
        follows: dict[str, list[tuple[int, Any]]] = {}
        for i, a in by_field[field]:
            for f, v in a.also.items():
                follows.setdefault(f, []).append((i, v))
        steps.append(Step(field, [(i, a.assumed) for i, a in by_field[field]], follows))
    return steps


def _consistent(worlds: pl.DataFrame, engine: pl.DataFrame) -> pl.Series:
    """Does each world's record stay consistent with what is filled in (``_Planner.completed``):
    every consistency check passes, and no therapy with months to progression has a filled-in
    outcome other than progression."""
    exprs = failing_exprs()
    fails = engine.select(pl.any_horizontal(exprs).fill_null(False).alias("x"))["x"] if exprs else \
        pl.Series([False] * worlds.height)
    months = worlds.select(pl.col(PRIOR).list.eval(
        pl.element().struct.field("months_to_progression").is_not_null()
        & ~pl.element().struct.field("outcome").is_in(["progression"]).fill_null(True)).list.any().fill_null(False).alias("x"))["x"]
    return ~(fails | months)


def _alternatives(base: pl.DataFrame, work: pl.DataFrame, kb: KnowledgeBase, history: pl.DataFrame) -> pl.DataFrame:
    """:func:`_alternative_worlds`' worlds."""
    return _alternative_worlds(base, work, kb, history)[0]


def _alternative_worlds(base: pl.DataFrame, work: pl.DataFrame, kb: KnowledgeBase, history: pl.DataFrame
                        ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The worlds of each other value of each fact a settled plan assumed: the record with
    that value (and, for the first other value, the facts that follow from it where unknown)
    filled in; ``__lead`` the working plan's lead. Worlds the record contradicts are dropped
    (the planner skips them)."""
    parts = []
    for i, field, value, follows in alternative_seeds(kb):
        used = work.filter((pl.col("assumed") & (1 << i)) != 0).select(pl.col(_W).alias(_BASE), pl.col("lead").alias("__lead"))
        if used.height == 0:
            continue
        world = base.join(used, on=_BASE).with_columns(_set(field, value, pl.lit(True)))
        world = world.with_columns(pl.lit(FIELD_BIT[field], dtype=pl.Int64).alias(_FIXED))
        for f, v in follows.items():
            unknown = (pl.col(_KNOWN) & FIELD_BIT[f]) == 0
            world = world.with_columns(_set(f, v, unknown))
            world = world.with_columns((pl.col(_FIXED) | pl.when(unknown).then(pl.lit(FIELD_BIT[f])).otherwise(0)).alias(_FIXED))
        parts.append(world)
    if not parts:
        return base.clear().with_columns(pl.lit(None, dtype=pl.Int64).alias(_W),
                                         pl.lit(None, dtype=pl.String).alias("__lead")), None
    seeds = pl.concat(parts, how="vertical_relaxed")
    seeds = seeds.with_columns(pl.int_range(0, seeds.height, dtype=pl.Int64).alias(_W))
    engine = _engine(seeds, history)
    ok = _consistent(seeds, engine)
    # (the engine frame is row by row: the kept worlds' rows are their own engine frame, for _run)
    return seeds.filter(ok), engine.filter(ok)
