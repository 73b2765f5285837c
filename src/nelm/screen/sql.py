"""The same rules as SQL: ``CREATE VIEW`` computing the screening columns in a database.

The knowledge base's conditions are SQL already (Polars SQL, PostgreSQL-like); this
module parses each with sqlglot, renames its columns and renders the whole as one view
for PostgreSQL, DuckDB or Spark SQL, so the rules run where the data lives:

- ``patients``: the table's columns (dotted field paths, quoted) under the engine's names;
- ``checks``: the pre-treatment checks in their passing values while unknown
  (knowledge/checks.yaml), as ``f__<column>``: the option rules read these (contract v2);
- ``layer_1`` … ``layer_n``: the derived variables, criterion items and sets, and rule
  conditions in the knowledge base's own dependency batches, each computed twice where
  needed — on the facts as entered (classification, criteria) and with the checks
  passing (``f__<column>``: rules and verdicts) — exactly as ``evaluate_frame`` does;
- ``first``, ``possible``, ``cap_1`` …: the verdict resolution of
  ``nelm.engine._verdict_stages`` — index of the first rule certainly true, the bit mask
  of verdicts still possible (a rule whose condition is NULL keeps its verdict
  possible), each cap lowering what is better than it — then one ``CASE`` on the mask.

SQL's NULL logic is Kleene logic, the engine's: an unknown input stays NULL through
``AND``/``OR``/``NOT``, comparisons and ``IN``, and ``COALESCE`` stands for Polars'
``fill_null``. The view's columns are those of ``nelm screen`` except ``plan.leading``
(see README: the plan's assumption step re-assesses a changed patient, which a view
cannot do; ``nelm screen`` computes it).

The table holds the patients in the engine's flat view (:func:`nelm.patient.flatten`):
one column per scalar field, named by its dotted path, and the list fields spread as
``extrahepatic.sites.<site>`` (boolean), ``prior_therapies.<therapy>`` (worst outcome,
``none`` or ``given``), ``prior_therapies.<therapy>.months_to_progression``,
``prior_therapies.<therapy>.ongoing``, ``prior_therapies.progression_count`` and
``prior_therapies.systemic_lines``. :func:`sql_table` builds it from a screening layout.
"""
from __future__ import annotations

import sqlglot
from sqlglot import exp

from ..knowledge import KnowledgeBase, _check_columns, item_column, load, rule_column
from ..knowledge.ruleset import VERDICTS
from ..patient import COLUMN_FIELDS, COLUMN_TYPES, SCALAR_FIELDS, column_of
from .columns import CLASSIFICATION

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


def sql_table(layout_frame):  # -> pl.DataFrame
    """The table the view reads, from typed screening layout rows (with ``__row``)."""
    from .flat import engine_frame

    frame = engine_frame(layout_frame)
    out = frame.rename({c: table_column(c) for c in frame.columns})
    if "id" in layout_frame.columns:
        out = out.insert_column(0, layout_frame["id"])
    return out


def _q(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _parse(sql: str, rename) -> exp.Expression:
    tree = sqlglot.parse_one(sql, read="postgres")
    return tree.transform(lambda n: _q(rename(n.name)) if isinstance(n, exp.Column) else n)


def create_view(table: str, *, view: str = "nelm_assessment", dialect: str = "postgres",
                guideline: str | None = None, id_column: str | None = "id") -> str:
    """``CREATE VIEW`` text for ``table`` in ``dialect`` (see the module docstring)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; allowed: {', '.join(DIALECTS)}")
    kb = load(guideline)
    query = _query(kb, table, id_column)
    if dialect == "postgres":
        # PostgreSQL inlines CTEs into one expression tree hundreds of columns deep, which its
        # planner cannot digest; MATERIALIZED keeps each layer a step of its own
        for cte in query.args["with_"].expressions if query.args.get("with_") else query.args["with"].expressions:
            cte.set("materialized", True)
    create = exp.Create(this=exp.to_table(view), kind="VIEW", expression=query)
    return create.sql(dialect=DIALECTS[dialect], pretty=True) + ";"


def _query(kb: KnowledgeBase, table: str, id_column: str | None) -> exp.Select:
    checks: dict[str, str] = {}
    for c in kb.checks:
        checks |= _check_columns(c)
    computed = {n.column for batch in kb.nodes for n in batch}
    # which computed columns each pass needs
    raw_targets = [d.name for d in kb.derived if d.name in CLASSIFICATION] + \
                  [cs.id for cs in kb.criteria]
    filled_targets = [rule_column(o.id, r.id) for o in kb.options for r in o.deciding + o.caps]

    def closure(targets: list[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(targets)
        while stack:
            c = stack.pop()
            if c in seen or c not in computed:
                continue
            seen.add(c)
            stack += list(kb.roots.get(c, ()))
        return seen

    raw_needed, filled_needed = closure(raw_targets), closure(filled_targets)

    def raw_name(c: str) -> str:
        return c

    def filled_name(c: str) -> str:
        return f"f__{c}" if (c in checks or c in computed) else c

    ctes: list[tuple[str, exp.Select]] = []
    base = [_q(table_column(c)).as_(c, quoted=True) for c in COLUMN_TYPES]
    if id_column:
        base.insert(0, _q(id_column).as_("id", quoted=True))
    ctes.append(("patients", exp.select(*base).from_(exp.to_table(table))))
    assume = [exp.func("COALESCE", _q(col), exp.Cast(this=_parse(sql, raw_name),
                                                     to=exp.DataType.build(_SQL_TYPES[COLUMN_TYPES[col]])))
              .as_(f"f__{col}", quoted=True) for col, sql in checks.items()]
    ctes.append(("checks", exp.select(exp.Star(), *assume).from_("patients")))
    nodes_sql = _node_sql(kb)
    for i, batch in enumerate(kb.nodes, 1):
        cols = []
        for node in batch:
            if node.column in raw_needed:
                cols.append(_node(node.column, nodes_sql, raw_name).as_(node.column, quoted=True))
            if node.column in filled_needed:
                cols.append(_node(node.column, nodes_sql, filled_name).as_(filled_name(node.column), quoted=True))
        if cols:
            ctes.append((f"layer_{len(ctes) - 1}", exp.select(exp.Star(), *cols).from_(ctes[-1][0])))
    # verdicts (nelm.engine._verdict_stages): first rule certainly true, possible verdicts, caps
    firsts, masks = [], []
    for opt in kb.options:
        conds = [_q(filled_name(rule_column(opt.id, r.id))) for r in opt.deciding]
        k = len(conds)
        firsts.append(exp.func("LEAST", *[exp.Case().when(c, exp.Literal.number(i)).else_(exp.Literal.number(k))
                                          for i, c in enumerate(conds)], exp.Literal.number(k))
                      .as_(f"first__{opt.id}", quoted=True))
    ctes.append(("first", exp.select(exp.Star(), *firsts).from_(ctes[-1][0])))
    for opt in kb.options:
        first = _q(f"first__{opt.id}")
        terms: dict[str, list[exp.Expression]] = {v: [] for v in VERDICTS}
        for i, r in enumerate(opt.deciding):
            c = _q(filled_name(rule_column(opt.id, r.id)))
            terms[r.verdict].append(exp.and_(exp.GTE(this=first, expression=exp.Literal.number(i)),
                                             exp.func("COALESCE", c, exp.true())))
        terms[opt.otherwise.verdict].append(exp.EQ(this=first, expression=exp.Literal.number(len(opt.deciding))))
        bits = [exp.Case().when(exp.or_(*t), exp.Literal.number(1 << j)).else_(exp.Literal.number(0))
                for j, t in enumerate(terms.values()) if t]
        total = bits[0]
        for b in bits[1:]:
            total = exp.Add(this=total, expression=b)
        masks.append(total.as_(f"possible__{opt.id}", quoted=True))
    ctes.append(("possible", exp.select(exp.Star(), *masks).from_("first")))
    current = {opt.id: f"possible__{opt.id}" for opt in kb.options}
    depth = max((len(o.caps) for o in kb.options), default=0)
    for level in range(depth):
        capped = []
        for opt in kb.options:
            if level >= len(opt.caps):
                continue
            r = opt.caps[level]
            cond = _q(filled_name(rule_column(opt.id, r.id)))
            mask = _q(current[opt.id])
            lowered = _cap(mask, VERDICTS.index(r.cap))
            current[opt.id] = f"possible__{opt.id}__cap{level + 1}"
            capped.append(exp.Case().when(exp.Is(this=cond.copy(), expression=exp.Null()),
                                          exp.BitwiseOr(this=mask.copy(), expression=lowered.copy()))
                          .when(cond.copy(), lowered.copy()).else_(mask.copy()).as_(current[opt.id], quoted=True))
        ctes.append((f"cap_{level + 1}", exp.select(exp.Star(), *capped).from_(ctes[-1][0])))
    out = []
    if id_column:
        out.append(_q("id"))
    grade = exp.Case()
    for g in (1, 2, 3):
        grade = grade.when(exp.EQ(this=_q("who_grade"), expression=exp.Literal.number(g)), exp.Literal.string(f"G{g}"))
    out += [grade.as_("classification.who_grade", quoted=True),
            _q("category").as_("classification.category", quoted=True),
            _q("frilling_type").as_("classification.frilling_type", quoted=True)]
    for cs in kb.criteria:
        c = _q(cs.id)
        out.append(exp.Case().when(c, exp.Literal.string("met")).when(exp.Not(this=c.copy()), exp.Literal.string("not_met"))
                   .else_(exp.Literal.string("unknown")).as_(f"criteria.{cs.id}", quoted=True))
    for opt in kb.options:
        case = exp.Case()
        for j, v in enumerate(VERDICTS):
            case = case.when(exp.EQ(this=_q(current[opt.id]), expression=exp.Literal.number(1 << j)),
                             exp.Literal.string(v))
        out.append(case.else_(exp.Literal.string("undetermined")).as_(f"options.{opt.id}.verdict", quoted=True))
    query = exp.select(*out).from_(ctes[-1][0])
    for name, cte in ctes:
        query = query.with_(name, as_=cte)
    return query


def _cap(mask: exp.Expression, level: int) -> exp.Expression:
    """``nelm.engine._cap``: the verdicts better than the cap become the cap itself."""
    better = (1 << level) - 1
    keep = ((1 << len(VERDICTS)) - 1) ^ better
    has_better = exp.NEQ(this=exp.BitwiseAnd(this=mask.copy(), expression=exp.Literal.number(better)),
                         expression=exp.Literal.number(0))
    return exp.Paren(this=exp.BitwiseOr(
        this=exp.Paren(this=exp.BitwiseAnd(this=mask.copy(), expression=exp.Literal.number(keep))),
        expression=exp.Case().when(has_better, exp.Literal.number(1 << level)).else_(exp.Literal.number(0))))


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
    for pw in kb.pathways:   # not read by the view, listed for completeness of the graph
        out.setdefault(f"pathway__{pw.id}", pw.when)
    return out


def _node(column: str, nodes_sql: dict[str, str | list[str]], rename) -> exp.Expression:
    sql = nodes_sql[column]
    if isinstance(sql, list):   # a criteria set: Kleene AND of its items
        return exp.Paren(this=exp.and_(*[_q(rename(c)) for c in sql]))
    return exp.Paren(this=_parse(sql, rename))


__all__ = ["create_view", "sql_table", "table_column", "COLUMN_FIELDS"]
