"""The same rules as SQL: ``CREATE VIEW`` computing the screening columns in a database.

The knowledge base's conditions are SQL already (Polars SQL, PostgreSQL-like); this
module parses each with sqlglot, renames its columns and renders the whole as one view
for PostgreSQL, DuckDB or Spark SQL, so the rules run where the data lives. Every value is
a named column (an expression over the table's and other named columns);
:class:`nelm.screen.sql_build.Pipeline` lays them out as a chain of CTEs by dependency
depth, each column in the last CTE before its first reader, a column read by one other
column only written into that one's expression, a column computed by the same expression
as another (one condition in several options' rules) read from that one, and each CTE
keeping only what something later reads (each CTE is a step every row passes through,
carrying its columns forward: the fewer, the faster). In PostgreSQL each CTE ends in
``OFFSET 0``, which keeps the planner from pulling it up into the next (see
:func:`build_view`). The columns come in
these groups (a CTE is named after its first column's group; placed by their readers, one
CTE mixes several groups):

- ``patients_…``: the engine's input columns from the table's (dotted field paths, quoted),
  with the filling-in of :func:`nelm.patient.flatten` (the sites list known only when it
  names a site or extrahepatic disease is known absent; the facts that follow from facts,
  knowledge/follows.yaml, the same records the other executors read), and the
  pre-treatment checks in their passing values while unknown (knowledge/checks.yaml), as
  ``f__<column>``: the option rules and the plan read these;
- ``layer_…``: the derived variables, criterion items and sets, rule and pathway
  conditions in dependency order, each computed twice where needed — on the facts as
  entered (classification, criteria) and with the checks passing (``f__<column>``: rules,
  verdicts, plan) — exactly as ``evaluate_frame`` does; beside them, for the plan, which
  kinds of missing facts each value hangs on (``f__missing__<column>``, a bit mask:
  :mod:`nelm.engine.plan_program`);
- ``verdicts_…``: the engine's verdict resolution (``nelm.engine.resolve_verdict``; the
  batch engine folds the same logic into Boolean columns) — index of the first rule
  certainly true, the bit mask of verdicts still possible (a rule whose
  condition is NULL keeps its verdict possible; one nested ``CASE`` that stops at the rule
  that decides), the caps (in closed form, one ``CASE``, see :func:`verdicts`); the
  verdict is the one ``CASE`` on the mask;
- ``plan_…``: ``plan.leading`` and ``plan.status`` as :mod:`nelm.screen.columns` settles
  them column-wise — the pathway followed, its leading option, whether a missing fact could
  change it, and whether the leading option relies on an unknown pre-treatment check
  (``conditional``). A plan resting on assumed facts (contract v3: working plan and
  branches) is NULL in both columns; ``nelm screen`` settles it in rounds of filled-in
  facts (:mod:`nelm.screen.settle`), ``nelm assess`` per case, and ``nelm sql --settle``
  inside the database: a script running the rounds around this view, defined once over a
  table of filled-in worlds (:mod:`nelm.screen.sql_settle`).

SQL's NULL logic is Kleene logic, the engine's: an unknown input stays NULL through
``AND``/``OR``/``NOT``, comparisons and ``IN``, and ``COALESCE`` stands for Polars'
``fill_null``. The view's columns are those of ``nelm screen``.

The table holds one row per patient: one column per scalar field, named by its dotted
path, with the document's values; the sites list spread as ``extrahepatic.sites.<site>``
(boolean: listed or not; NULL for every site when the list is unknown, false for every
site when it is known empty); the prior therapies as ``prior_therapies.<therapy>`` (worst
outcome, ``none``, ``given`` or NULL while an outcome is unknown), ``prior_therapies.<therapy>.months_to_progression``,
``prior_therapies.<therapy>.ongoing``, ``prior_therapies.progression_count`` and
``prior_therapies.systemic_lines``, as :func:`nelm.patient.flatten` spreads them.
:func:`sql_table` builds it from a screening layout. A table already in the engine's flat
view (filled-in values, sites NULL unless known) gives the same results, except that it
cannot say that an empty sites list was given while extrahepatic disease is unknown, which
matters where a plan assumes extrahepatic disease absent.

A table need not have every column: given the table's columns (``nelm sql --columns`` or
``--database``, :mod:`nelm.screen.sql_source`), the view reads those and takes each other
input column as a typed NULL (:func:`typed_null`), unknown in every row, as ``nelm screen``
takes a column its input lacks; the rest of the view is the same. Given output columns
(``--select``, :func:`nelm.screen.columns.selected`), the pipeline keeps only what they read.
"""
from __future__ import annotations

from typing import Callable, Collection, NamedTuple

import sqlglot
from sqlglot import exp

from .. import follows
from ..knowledge import KnowledgeBase, _check_columns, assumption_column, item_column, load, pathway_column, rule_column
from ..knowledge.ruleset import MASK_VERDICTS, VERDICTS
from ..patient import (COLUMN_FIELDS, COLUMN_TYPES, SCALAR_FIELDS, SITE_COLUMNS, column_of,
                       field_constraints)
from ..engine import plan_program
from .columns import CLASSIFICATION, selected
from .sql_build import (TABLE, Pipeline, World, and_, bit_or, case, coalesce, eq, has_bits, is_null, known_true,
                        lit, not_, num, or_, paren, q, t)

DIALECTS = {"postgres": "postgres", "duckdb": "duckdb", "spark": "spark"}
_SQL_TYPES = {"float": "DOUBLE", "bool": "BOOLEAN", "str": "TEXT"}
_SCALAR_COLUMNS = {column_of(f): f for f in SCALAR_FIELDS}


def table_column(column: str) -> str:
    """The table's name for an engine input column (see the module docstring)."""
    if column in _SCALAR_COLUMNS:
        return _SCALAR_COLUMNS[column]
    if column.startswith("extrahepatic_sites_"):
        return "extrahepatic.sites." + column.removeprefix("extrahepatic_sites_")
    if column in ("prior_progression_count", "prior_systemic_lines"):
        return "prior_therapies." + column.removeprefix("prior_")
    for suffix, field in (("_months", ".months_to_progression"), ("_ongoing", ".ongoing")):
        if column.endswith(suffix):
            return "prior_therapies." + column.removeprefix("prior_").removesuffix(suffix) + field
    return "prior_therapies." + column.removeprefix("prior_")


_INPUT_ORDER = {table_column(c): i for i, c in enumerate(COLUMN_TYPES)}


def _input_order(column: str) -> int:
    return _INPUT_ORDER.get(column, -1)   # the identifying column first


def sql_table(layout_frame):  # -> pl.DataFrame
    """The table the view reads, from typed screening layout rows (with ``__row``)."""
    import polars as pl

    from ..engine import SCHEMA
    from .flat import engine_frame
    from .layout import SITES

    frame = engine_frame(layout_frame)
    sites = pl.col(SITES)
    listed = layout_frame.select(
        [pl.col(f).cast(SCHEMA[column_of(f)]).alias(column_of(f)) for f in SCALAR_FIELDS]
        + [pl.when(sites.is_not_null()).then(sites.list.contains(c.removeprefix("extrahepatic_sites_"))).alias(c)
           for c in SITE_COLUMNS])
    out = frame.with_columns(listed).select(pl.col(c).alias(table_column(c)) for c in frame.columns)
    if "id" in layout_frame.columns:
        out = out.insert_column(0, layout_frame["id"])
    return out


def _parse(sql: str, rename: Callable[[str], str]) -> exp.Expression:
    tree = sqlglot.parse_one(sql, read="postgres")
    return tree.transform(lambda n: q(rename(n.name)) if isinstance(n, exp.Column) else n)


class View(NamedTuple):
    sql: str              # the CREATE VIEW statement
    reads: list[str]      # the table columns it reads
    unknown: list[str]    # the input columns it needs that the table lacks: NULL in every row


def create_view(table: str, *, view: str = "nelm_assessment", dialect: str = "postgres",
                guideline: str | None = None, id_column: str | None = "id",
                columns: Collection[str] | None = None, select: list[str] | None = None) -> str:
    """``CREATE VIEW`` text for ``table`` in ``dialect`` (see the module docstring and
    :func:`build_view`)."""
    return build_view(table, view=view, dialect=dialect, guideline=guideline, id_column=id_column,
                      columns=columns, select=select).sql


def build_view(table: str, *, view: str = "nelm_assessment", dialect: str = "postgres",
               guideline: str | None = None, id_column: str | None = "id",
               columns: Collection[str] | None = None, select: list[str] | None = None,
               settle: bool = False) -> View:
    """``CREATE VIEW`` for ``table`` in ``dialect``, and the table columns it reads.

    ``columns``: the table's column names, when known; the view then reads only those and
    takes every other input column as unknown (a typed NULL), as ``nelm screen`` takes a
    column its input lacks. ``select``: the output columns (``nelm screen --select``'s
    names and patterns); the view computes only those and what they read. ``settle``: the
    view :mod:`nelm.screen.sql_settle`'s rounds read (:func:`view_query`)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; allowed: {', '.join(DIALECTS)}")
    if columns is not None and id_column and id_column not in columns:
        # nelm screen falls back to the row number; a view has no row order to number by,
        # and its rows could not be traced back to the patients without an identifier
        raise ValueError(f"table {table} has no column {id_column!r} to identify its patients; "
                         "name the identifying column with --id-column")
    kb = load(guideline)
    query = view_query(kb, exp.to_table(table), id_column, columns=columns, select=select, settle=settle)
    if dialect == "postgres":
        # PostgreSQL would pull each CTE (read once) up into the next, substituting every
        # column's expression wherever it is read: one expression tree hundreds of columns deep,
        # each value computed as often as it is read, which its planner cannot digest. OFFSET 0
        # keeps each layer a subquery of its own, computed once per row and passed up as it is
        # (AS MATERIALIZED would do as much but write every layer's wide rows to a tuplestore,
        # spilling to disk: 3-4 times slower)
        with_ = query.args.get("with_") or query.args["with"]
        for cte in with_.expressions:
            cte.this.set("offset", exp.Offset(expression=num(0)))
    create = exp.Create(this=exp.to_table(view), kind="VIEW", expression=query)
    reads = {c.name for c in query.find_all(exp.Column) if c.table == TABLE}
    unknown = {n.meta[_UNKNOWN] for n in query.find_all(exp.Cast) if _UNKNOWN in n.meta}
    return View(create.sql(dialect=DIALECTS[dialect], pretty=True) + ";",
                sorted(reads, key=_input_order), sorted(unknown, key=_input_order))


# --------------------------------------------------------------------------- the patient's columns

# the input columns whose value flatten() may fill in (the others are the document's own)
FILLED_IN = frozenset(SITE_COLUMNS) | frozenset(follows.by_column())


def engine_inputs(document: Callable[[str], exp.Expression]) -> dict[str, exp.Expression]:
    """The engine's input columns from a document's values (``document(column)``), filled in
    as :func:`nelm.patient.flatten` fills them (see the module docstring)."""
    out = {c: document(c) for c in COLUMN_TYPES}
    absent = eq(document("extrahepatic_present"), exp.false())
    # an empty list says "no sites" only when extrahepatic disease is known to be absent
    known_sites = or_(*[document(c) for c in SITE_COLUMNS], absent)
    for c in SITE_COLUMNS:
        out[c] = case((known_sites, document(c)))
    # the facts that follow from facts (knowledge/follows.yaml, nelm.follows): while the column
    # is unknown, the first record whose condition holds on the document's values
    for col, recs in follows.by_column().items():
        out[col] = case(*[(and_(is_null(document(col)), _substitute(r.when, lambda name: document(name))),
                           lit(r.value)) for r in recs], default=document(col))
    assert {c for c in out if out[c] != document(c)} <= FILLED_IN
    return out


def fill_checks(kb: KnowledgeBase, w: World, inputs: dict[str, exp.Expression]) -> dict[str, exp.Expression]:
    """The checks' columns of world ``w`` in their passing values while unknown (``kb.assume``),
    written over the input columns' own expressions ``inputs`` (so they need no CTE of their own)."""
    out = {}
    for c in kb.checks:
        for col, sql in _check_columns(c).items():
            passing = exp.Cast(this=_substitute(sql, lambda name: inputs[name].copy()),
                               to=exp.DataType.build(_SQL_TYPES[COLUMN_TYPES[col]]))
            out[w.col(col)] = coalesce(inputs[col].copy(), passing)
    return out


def _substitute(sql: str, value: Callable[[str], exp.Expression]) -> exp.Expression:
    """A knowledge-base condition with each column replaced by ``value(column)``."""
    tree = sqlglot.parse_one(sql, read="postgres")
    return exp.Paren(this=tree.transform(lambda n: value(n.name) if isinstance(n, exp.Column) else n))


# --------------------------------------------------------------------------- the knowledge base

def _node_sql(kb: KnowledgeBase) -> dict[str, str | list[str]]:
    """Each computed column's SQL for the governing guideline (a set: its items' columns)."""
    out: dict[str, str | list[str]] = {}
    g = kb.guideline
    pick = lambda sql, variants: next((v.sql for v in variants if v.guideline == g), sql)  # noqa: E731
    for d in kb.derived:
        out[d.name] = pick(d.sql, d.variants)
    for cs in kb.criteria:
        for it in cs.items:
            out[item_column(cs.id, it.id)] = pick(it.sql, it.variants)
        out[cs.id] = [item_column(cs.id, it.id) for it in cs.items]
    for opt in kb.options:
        for r in opt.rules:
            out[rule_column(opt.id, r.id)] = r.when
    for pw in kb.pathways:
        out[pathway_column(pw.id)] = pw.when
        for i, step in enumerate(pw.steps):
            if step.if_:
                out[pathway_column(pw.id, i)] = step.if_
            for o in step.options:
                if not isinstance(o, str) and o.if_:
                    out[pathway_column(pw.id, i, o.id)] = o.if_
    for i, a in enumerate(kb.assumptions):     # (read by nelm.screen.sql_settle's rounds only)
        if a.when:
            out[assumption_column(i)] = a.when
    return out


def _node(column: str, nodes_sql: dict[str, str | list[str]], rename: Callable[[str], str]) -> exp.Expression:
    sql = nodes_sql[column]
    if isinstance(sql, list):   # a criteria set: Kleene AND of its items
        return exp.Paren(this=exp.and_(*[q(rename(c)) for c in sql]))
    return exp.Paren(this=_parse(sql, rename))


def evaluation(kb: KnowledgeBase, w: World, needed: set[str], masked: set[str] = frozenset(),
               bits: Callable[[str], int] | None = None, guarded: bool = False) -> dict[str, exp.Expression]:
    """World ``w``'s computed columns among ``needed``, and the masks of those in ``masked``
    (``guarded``: only where the column is NULL, :func:`nelm.engine.plan_program.mask_expr`)."""
    nodes_sql = _node_sql(kb)
    cols: dict[str, exp.Expression] = {}
    for batch in kb.nodes:
        for node in batch:
            if node.column in needed:
                cols[w.col(node.column)] = _node(node.column, nodes_sql, w.col)
            if node.column in masked:
                cols[w.mask(node.column)] = plan_program.mask_expr(kb, w, node.column, bits, guarded)
    return cols


def verdicts(kb: KnowledgeBase, w: World, options: list) -> dict[str, exp.Expression]:
    """Each option's possible verdicts in world ``w`` (``nelm.engine.resolve_verdict``), a
    bit mask (bit j: ``VERDICTS[j]``): the rules read in order, the first certainly true
    deciding — a rule keeps its verdict possible when its condition is not false and no
    earlier condition is true; ``otherwise`` when none is true — then the caps; beside it
    ``first__<option>``, the index of the first rule certainly true (the plan reads it).

    The rules' mask is one nested ``CASE`` read from the first rule on, which stops at the
    first rule certainly true (:func:`_rules_mask`): it reads no column of its own, so the
    mask comes in the same step as the rules' index, and no rule after the deciding one is
    read. The caps are one ``CASE`` too (:func:`_capped`)."""
    out = {}
    for opt in options:
        out[w.first(opt.id)] = plan_program.first_rule(w, opt)
        rules = _rules_mask(w, opt)
        if not opt.caps:
            out[w.possible(opt.id)] = rules
            continue
        out[w.possible(opt.id) + "__rules"] = rules
        caps = [(q(w.col(rule_column(opt.id, r.id))), VERDICTS.index(r.cap)) for r in opt.caps]
        out[w.possible(opt.id)] = _capped(q(w.possible(opt.id) + "__rules"), caps)
    return out


def _rules_mask(w: World, opt) -> exp.Expression:
    """The verdicts the deciding rules leave possible: from rule i on, ``CASE WHEN c_i THEN
    b_i ELSE (b_i if c_i is unknown, else 0) | <the same from rule i + 1> END``, ending in
    ``otherwise``'s bit: rule i's verdict when its condition is true (the rules after it are
    not read) or unknown (and the later ones' too), none when it is false."""
    mask: exp.Expression = num(1 << VERDICTS.index(opt.otherwise.verdict))
    for r in reversed(opt.deciding):
        c = q(w.col(rule_column(opt.id, r.id)))
        bit = num(1 << VERDICTS.index(r.verdict))
        mask = case((c, bit), default=bit_or([case((is_null(c.copy()), bit.copy()), default=num(0)), mask]))
    return mask


def _capped(mask: exp.Expression, caps: list[tuple[exp.Expression, int]]) -> exp.Expression:
    """The caps (condition, verdict level) applied to the rules' ``mask``.

    The engine applies the caps one after the other (a true cap lowers the verdicts better
    than it to itself, an unknown one adds that lowering to the possibilities). Lowering to
    one level then another equals lowering to the lower of the two, and lowering distributes
    over the verdicts' union, so the result is the union of the lowerings to every strongest
    cap a completion of the unknown conditions can give: the strongest cap certainly
    holding (none: the mask as it is) and each level stronger than it with an unknown cap.
    One ``CASE`` from the strongest level down: its first branch whose caps hold (Kleene
    OR: one certainly true) is that strongest cap."""
    levels = sorted({lv for _, lv in caps}, reverse=True)
    unknown = {lv: case((or_(*[is_null(c.copy()) for c, l in caps if l == lv]), _cap(mask, lv)), default=num(0))
               for lv in levels}
    whens = [(or_(*[c.copy() for c, l in caps if l == lv]), bit_or([_cap(mask, lv)] + [unknown[h].copy() for h in levels[:n]]))
             for n, lv in enumerate(levels)]
    return case(*whens, default=bit_or([mask.copy()] + [u.copy() for u in unknown.values()]))


def verdict_text(w: World, option: str) -> exp.Expression:
    """The verdict: the only possible one, else ``undetermined``."""
    return case(*[(eq(q(w.possible(option)), num(m)), lit(v)) for m, v in MASK_VERDICTS.items()],
                default=lit("undetermined"))


def _cap(mask: exp.Expression, level: int) -> exp.Expression:
    """``nelm.engine._cap``: the verdicts better than the cap become the cap itself."""
    better = (1 << level) - 1
    keep = ((1 << len(VERDICTS)) - 1) ^ better
    return exp.Paren(this=exp.BitwiseOr(
        this=exp.Paren(this=exp.BitwiseAnd(this=mask.copy(), expression=num(keep))),
        expression=case((has_bits(mask, better), num(1 << level)), default=num(0))))


# --------------------------------------------------------------------------- the view

def missing_inputs(columns: Collection[str]) -> list[str]:
    """The table columns the view reads (:func:`table_column`) that ``columns`` lacks."""
    have = set(columns)
    return [table_column(c) for c in COLUMN_TYPES if table_column(c) not in have]


_UNKNOWN = "nelm_unknown_input"   # meta key: the table column a typed NULL stands for


def typed_null(column: str) -> exp.Expression:
    """An input column the table lacks: unknown in every row, typed as the column (an untyped
    NULL would leave PostgreSQL to guess ``text`` where a comparison needs a number). Marked
    with the table column it stands for, so that :func:`build_view` can name the ones the
    view still needs once pruned."""
    null = exp.Cast(this=exp.Null(), to=exp.DataType.build(_SQL_TYPES[COLUMN_TYPES[column]]))
    null.meta[_UNKNOWN] = table_column(column)
    return null


def view_query(kb: KnowledgeBase, source: exp.Expression, id_column: str | None = "id", *,
               columns: Collection[str] | None = None, select: list[str] | None = None,
               settle: bool = False) -> exp.Select:
    """The view's ``SELECT`` over the table ``source`` (see the module docstring), reading
    only the table's ``columns`` when given (the others are unknown: :func:`typed_null`) and
    giving only the output columns ``select`` names (:func:`nelm.screen.columns.selected`,
    refusing a name that is none). ``settle``: also what the rounds of
    :mod:`nelm.screen.sql_settle` read of each world, whether refused or not (:data:`SETTLE_OUTPUTS`
    and the assumption records' conditions ``assumption__<i>``)."""
    wanted = selected(kb, select)
    absent = set(missing_inputs(columns)) if columns is not None else set()
    checks = frozenset(col for c in kb.checks for col in _check_columns(c))
    facts = World(prefix="", input_prefix="", filled_prefix=None)
    # a column that reads no check has the same value with the checks passing: computed once
    shared = frozenset(c for c in kb.roots if not plan_program.reads_checks(kb, c, checks))
    today = World(prefix="f__", input_prefix="", filled_prefix="f__", checks=checks, shared=shared)
    pathways = [c for c in _node_sql(kb) if c.startswith("pathway__")]
    masked = plan_program.closure(kb, plan_program.mask_targets(kb))
    facts_needed = plan_program.closure(kb, [d.name for d in kb.derived if d.name in CLASSIFICATION] + [cs.id for cs in kb.criteria])
    conditions = [assumption_column(i) for i, a in enumerate(kb.assumptions) if a.when] if settle else []
    today_needed = plan_program.closure(kb, [rule_column(o.id, r.id) for o in kb.options for r in o.deciding + o.caps]
                            + pathways + sorted(masked) + conditions)
    facts_needed |= today_needed & shared
    today_needed -= shared

    pipe = Pipeline()
    # from the table's columns; each read gets a node of its own (a sqlglot tree is no DAG)
    inputs = engine_inputs(lambda c: typed_null(c) if table_column(c) in absent else t(table_column(c)))
    pipe.add("patients", {facts.col(c): e for c, e in inputs.items()} | fill_checks(kb, today, inputs))
    if id_column:
        pipe.add("patients", {"id": t(id_column)})
    # the facts as entered also give the requirement rules the leading option's conditions read,
    # with which missing checks each hangs on (plan_program.has_conditions)
    cond_needed, check_bits = plan_program.condition_inputs(kb)
    # (each mask computed only where its column is unknown, the only place it is read)
    pipe.add("layer", evaluation(kb, facts, facts_needed | cond_needed, cond_needed, check_bits, guarded=True))
    pipe.add("layer", evaluation(kb, today, today_needed, masked, plan_program.mask_bits(kb), guarded=True))
    pipe.add("verdicts", verdicts(kb, today, kb.options))
    pipe.add("plan", plan_program.follow(kb, today, guarded=True))

    # the plan where it rests on nothing assumed (determined, or conditional on the leading
    # option's unknown checks); NULL where it rests on assumed facts (contract v3): settling
    # them takes rounds of filled-in facts (nelm.screen.settle), which the view does not run
    leading, plan_status = plan_program.settled(kb, today, facts)

    # the patient model's consistency checks (knowledge/consistency.yaml), the same SQL conditions
    # the model and nelm screen's batch validator run, on the facts as entered: a row failing one
    # is refused (nelm screen leaves it out), its failed checks named, every other column NULL
    pipe.add("refused", {"refused": refused(facts)})

    out: list[tuple[str, exp.Expression]] = []
    grade = case(*[(eq(q("who_grade"), num(g)), lit(f"G{g}")) for g in (1, 2, 3)])
    out += [("classification.who_grade", grade), ("classification.category", q("category")),
            ("classification.frilling_type", q("frilling_type"))]
    for cs in kb.criteria:
        c = q(cs.id)
        out.append((f"criteria.{cs.id}", case((c, lit("met")), (exp.Not(this=c.copy()), lit("not_met")),
                                              default=lit("unknown"))))
    out += [(f"options.{opt.id}.verdict", verdict_text(today, opt.id)) for opt in kb.options]
    out.append(("plan.leading", leading))
    out.append(("plan.status", plan_status))
    # only the outputs selected: the pipeline keeps only the columns these read, so the view
    # computes nothing else (and reads only the table's columns those need)
    by_name = dict(out)
    ok = is_null(q("refused"))
    out = ([("id", q("id"))] if id_column else []) + [("refused", q("refused"))]
    out += [(c, case((ok.copy(), by_name[c]))) for c in wanted]
    if settle:
        # (as nelm.screen.columns.plan_outputs gives them to nelm.screen.settle; the assumption
        # records' conditions on the world with the checks passing, as evaluate_both_passes' second pass)
        out += [("plan.followed", q(today.plan("followed"))), ("plan.candidate", plan_program.lead_text(kb, today)),
                ("plan.missing", q(today.plan("missing")))]
        out += [(c, q(today.col(c))) for c in conditions]
    # each column as late as its readers allow, those read once written into their reader:
    # every CTE carries fewer columns forward (Pipeline.query). The requirement rules on the
    # facts as entered, and their masks, are read only for the leading option (has_conditions,
    # behind the lead's CASE): written into their readers, each row computes the lead's
    # alone instead of every option's (the values they read stay columns: written into every
    # rule, they would make the view longer for nothing)
    requirements = plan_program.condition_targets(kb)
    lazy = {facts.col(c) for c in requirements if c not in facts_needed} | {facts.mask(c) for c in requirements}
    return pipe.query(source, out, late=True, inline=True, lazy=lazy, share=True)


def refused(facts: World) -> exp.Expression:
    """What the patient model refuses in the row, comma-separated (NULL: nothing): each field
    outside its own constraints (named by its dotted path: range, allowed values, whole
    number, :func:`nelm.patient.field_constraints`), then the id of each consistency check it
    fails (a check whose condition is unknown does not fail, as in the model)."""
    from ..consistency import checks

    failing = field_refusals(facts)
    failing += [(c.id, known_true(paren(_parse(c.condition, facts.col)))) for c in checks()]
    # ', name' for each, written out with || (CONCAT_WS is NULL-strict in some dialects and
    # sqlglot guards it so), the leading ', ' cut off
    pieces = [coalesce(case((cond.copy(), lit(f", {name}"))), lit("")) for name, cond in failing]
    joined = pieces[0]
    for piece in pieces[1:]:
        joined = exp.DPipe(this=joined, expression=piece)
    # the text is put together only in a row failing something (each condition is TRUE or
    # FALSE, never NULL): building it costs a string per check, in every row otherwise
    return case((or_(*[cond for _, cond in failing]), exp.Substring(this=joined, start=num(3))))


def field_refusals(facts: World) -> list[tuple[str, exp.Expression]]:
    """(dotted field, TRUE when its value breaks the model's own constraints) for each scalar
    field with any; a NULL value breaks none."""
    out = []
    for field, rule in field_constraints().items():
        col = q(facts.col(column_of(field)))
        terms = []
        for key, op in (("minimum", exp.LT), ("maximum", exp.GT), ("exclusiveMinimum", exp.LTE),
                        ("exclusiveMaximum", exp.GTE)):
            if key in rule:
                terms.append(op(this=col.copy(), expression=exp.Literal.number(rule[key])))
        if rule.get("integer"):
            terms.append(exp.NEQ(this=col.copy(), expression=exp.Floor(this=col.copy())))
        if "enum" in rule:
            terms.append(not_(exp.In(this=col.copy(), expressions=[lit(v) for v in rule["enum"]])))
        if terms:
            out.append((field, known_true(paren(or_(*terms)))))
    return out


__all__ = ["View", "build_view", "create_view", "missing_inputs", "sql_table", "table_column", "typed_null", "view_query", "COLUMN_FIELDS"]
