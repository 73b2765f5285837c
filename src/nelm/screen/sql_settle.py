"""Plans resting on assumed facts, settled inside the database (``nelm sql --settle``).

The view (:mod:`nelm.screen.sql`) leaves ``plan.leading`` and ``plan.status`` NULL where the
plan rests on facts a board may assume (contract v3); ``nelm screen`` settles those rows in
rounds of filled-in facts (:mod:`nelm.screen.settle`). This module writes the same rounds as
a SQL script of small statements around the view, which is defined **once**, over a table of
*worlds* (a patient's row with some facts filled in, and the bookkeeping settle.py keeps:
``__w``, ``__base``, ``__fixed``, ``__assumed``, ``__restaging``, ``__known``):

1. ``<view>_base``: the patients' rows as worlds with nothing filled in (every input column,
   typed NULL where the table lacks it); ``<view>_worlds`` the view's table, ``<view>_eval``
   the view over it (with what the rounds read: the pathway followed, its candidate lead,
   the missing-facts bits, the assumption records' conditions), ``<view>_check`` the
   model's consistency checks (the view's ``refused``) over ``<view>_chk``;
2. each round (``nelm.plan.ROUNDS`` and one more, as :func:`nelm.screen.settle._run`): the
   worlds evaluated once through the view; finished worlds (settled, or nothing left to
   fill in, or the last round) written to ``<view>_done``; the others' blocking facts
   filled in (``CASE`` expressions from :func:`nelm.screen.settle.fill_steps`, the one
   description the Polars rounds run too), checked for consistency, and where the filled-in
   facts together contradict the record, filled one field at a time
   (:func:`nelm.screen.settle._one_at_a_time`), each field's records tried in one statement;
3. the other values of each assumed fact (:func:`nelm.screen.settle.alternative_seeds`),
   settled by the same rounds: one that does not settle or leads elsewhere makes the plan
   conditional;
4. ``<view>``: a table with the view's columns for every patient, ``plan.leading`` and
   ``plan.status`` settled (``nelm screen``'s values); the other tables and views are dropped.

The treatment history is spread per therapy in the table (:mod:`nelm.screen.sql`): filling
in a history's unrecorded outcomes gives each therapy whose outcome is unknown
(``prior_therapies.<therapy>`` NULL) and that is not ongoing the assumed outcome, and a
filled-in course gives an ongoing therapy's unknown outcome (``nelm.patient.worst_outcome``);
the count of therapies progressed on follows. This is exact for a history that names each
therapy once; where one therapy is listed several times, some ongoing and some not, with an
outcome unknown, the spread table cannot tell which entry's outcome is unknown, and the
script reads it as the ongoing one's.

Timings (BENCHMARKS.md, Session 12; 20,000 patients, 15 % unknown, a shared two-core
machine): PostgreSQL 65 s for the script against 1.6 s for the plain view, DuckDB 71 s against
1.5 s; much of it a fixed cost per statement (about 2,500 statements) and DuckDB planning the
view anew on each of its 11 evaluations.
"""
from __future__ import annotations

# SAFETY (bandit B608, marked on each statement built as text): every identifier in the
# script goes through _i or self.name, which quote it with sqlglot (a table or view name
# given on the command line cannot close its quotes), and every value is a literal from
# the knowledge base (_lit) or a number; no patient value or other user text is pasted in.

from typing import Any, Collection

import sqlglot
from sqlglot import exp

from ..knowledge import KnowledgeBase, assumption_column, load
from ..patient import COLUMN_TYPES, OPTION_IDS, SITE_COLUMNS, _COURSE_OUTCOME
from ..plan import ROUNDS
from .columns import output_columns
from .layout import PRIOR, SITES
from ..engine.plan_program import FIELD_BIT
from .settle import COURSE, HISTORY, alternative_seeds, fill_steps, _also_fields
from .sql import DIALECTS, _parse, build_view, engine_inputs, table_column
from .sql_build import TABLE, Pipeline, World, case, known_true, or_, paren, q, t

_BOOK = [("__w", "BIGINT"), ("__base", "BIGINT"), ("__fixed", "BIGINT"), ("__assumed", "BIGINT"),
         ("__restaging", "BOOLEAN"), ("__known", "BIGINT"), ("__rank", "BIGINT"), ("__contra", "BOOLEAN")]
INPUTS = [table_column(c) for c in COLUMN_TYPES]        # the table's columns, all of them in a world
_PG_TYPES = {"float": "DOUBLE PRECISION", "bool": "BOOLEAN", "str": "TEXT"}
_TYPE = {table_column(c): _PG_TYPES[COLUMN_TYPES[c]] for c in COLUMN_TYPES}
WORLD = [n for n, _ in _BOOK] + INPUTS
_SITES = [table_column(c) for c in SITE_COLUMNS]
_COURSE = "course.status"
_COUNT, _LINES = "prior_therapies.progression_count", "prior_therapies.systemic_lines"


def _i(name: str) -> str:
    """A quoted identifier (PostgreSQL text; each statement is transpiled to the dialect)."""
    return exp.to_identifier(name, quoted=True).sql("postgres")


def _s(e: exp.Expression) -> str:
    return e.sql("postgres")


def _lit(column: str, value: Any) -> str:
    if value is None:
        return f"CAST(NULL AS {_TYPE[column]})"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return f"CAST({value!r} AS {_TYPE[column]})"
    return "'" + str(value).replace("'", "''") + "'"


def _writes(field: str, value: Any) -> dict[str, str]:
    """The table columns a field's value sets (the sites list spread per site). The treatment
    history is not among them (:meth:`_Script.history`)."""
    if field == SITES:
        return {c: "TRUE" if c.removeprefix(SITES + ".") in value else "FALSE" for c in _SITES}
    return {field: _lit(field, value)}


def _known(field: str, alias: str) -> str:
    """Does the record itself give ``field`` (settle._base's ``__known``)?"""
    col = _SITES[0] if field == SITES else field
    return f"{alias}.{_i(col)} IS NOT NULL"


class _Script:
    def __init__(self, kb: KnowledgeBase, table: str, view: str, dialect: str, id_column: str,
                 columns: Collection[str] | None) -> None:
        self.kb, self.table, self.dialect, self.id_column = kb, table, dialect, id_column
        self.columns = None if columns is None else set(columns)
        target = exp.to_table(view)
        self.view = _s(target)
        self.name = lambda suffix: _s(exp.table_(target.name + "_" + suffix, db=target.args.get("db"),  # noqa: E731
                                                 catalog=target.args.get("catalog"), quoted=True))
        self.steps = fill_steps(kb)
        self.written: dict[str, set[str]] = {}    # field -> the world columns its filling-in writes
        self.checked: set[str] = set()            # the columns the consistency checks read
        self.out: list[str] = []

    def add(self, sql: str) -> None:
        self.out.append(sql)

    def n(self, suffix: str) -> str:
        return self.name(suffix)

    # ------------------------------------------------------------------ filling in

    def fill(self, alias: str, picks: dict[str, list[tuple[str, int | None, Any]]],
             follows: dict[str, list[tuple[str, str, Any]]]) -> dict[str, str]:
        """A world's columns with facts filled in, as ``alias``'s columns are read.

        ``picks``: field -> (condition, record or None, value) in the order they are filled in
        (a later one overwrites); ``follows``: field -> (condition, fact, value) of the facts
        that follow from it, each filled in only where the record leaves the fact unknown."""
        writes: dict[str, list[tuple[str, str]]] = {}   # column -> (condition, value), in order
        history: list[tuple[str, Any]] = []
        assumed: list[tuple[str, int]] = []
        fixed: list[tuple[str, int]] = []
        # (the steps' order: each field's facts that follow, then its own value)
        for field, cases in picks.items():
            for f_cond, f, v in follows.get(field, ()):
                unknown = f"({f_cond} AND ({alias}.{_i('__known')} & {FIELD_BIT[f]}) = 0)"
                for c, val in _writes(f, v).items():
                    writes.setdefault(c, []).append((unknown, val))
                fixed.append((unknown, FIELD_BIT[f]))
            for cond, record, value in cases:
                if record is not None:
                    assumed.append((cond, 1 << record))
                fixed.append((cond, FIELD_BIT[field]))
                if field == PRIOR:
                    history.append((cond, value))
                    continue
                for c, val in _writes(field, value).items():
                    writes.setdefault(c, []).append((cond, val))
        out = {n: f"{alias}.{_i(n)}" for n in WORLD}
        for c, cases in writes.items():
            whens = " ".join(f"WHEN {cond} THEN {val}" for cond, val in reversed(cases))
            out[c] = f"CASE {whens} ELSE {alias}.{_i(c)} END"
        out["__fixed"] = " | ".join([f"{alias}.{_i('__fixed')}"]
                                    + [f"CASE WHEN {cond} THEN {bits} ELSE 0 END" for cond, bits in fixed])
        if assumed:
            out["__assumed"] = " | ".join([f"{alias}.{_i('__assumed')}"]
                                          + [f"CASE WHEN {cond} THEN {bits} ELSE 0 END" for cond, bits in assumed])
        if history or _COURSE in writes:
            out.update(self.history(alias, history, out[_COURSE]))
        return out

    def history(self, alias: str, fills: list[tuple[str, Any]], course: str) -> dict[str, str]:
        """The treatment-history columns once unrecorded outcomes are filled in (``fills``:
        (condition, outcome)) and the course is ``course`` (module docstring)."""
        col = lambda name: f"{alias}.{_i(name)}"  # noqa: E731
        known = f"{col(_LINES)} IS NOT NULL"
        new_course = " ".join(f"WHEN ({course}) = '{c}' THEN '{o}'" for c, o in _COURSE_OUTCOME.items())
        course_touched = f"({col(_COURSE)} IS NULL AND ({course}) IS NOT NULL)"
        touched = " OR ".join([f"({cond})" for cond, _ in fills] + [course_touched])
        out: dict[str, str] = {}
        contra = []
        for th in OPTION_IDS:
            p, ongoing, months = (f"prior_therapies.{th}", f"prior_therapies.{th}.ongoing",
                                  f"prior_therapies.{th}.months_to_progression")
            whens = [f"WHEN {col(p)} IS NOT NULL THEN {col(p)}"]
            for cond, v in fills:
                whens.append(f"WHEN ({cond}) AND {known} AND NOT COALESCE({col(ongoing)}, FALSE) THEN '{v}'")
                if v != "progression":   # months to progression contradict another outcome (settle._consistent)
                    contra.append(f"(({cond}) AND {known} AND {col(p)} IS NULL AND NOT COALESCE({col(ongoing)}, FALSE)"
                                  f" AND {col(months)} IS NOT NULL)")
            whens.append(f"WHEN COALESCE({col(ongoing)}, FALSE) THEN CASE {new_course} END")
            out[p] = f"CASE {' '.join(whens)} END"
        count = " + ".join(f"CASE WHEN ({out[f'prior_therapies.{th}']}) = 'progression' THEN 1 ELSE 0 END"
                           for th in OPTION_IDS)
        unknown = " OR ".join(f"({out[f'prior_therapies.{th}']}) IS NULL" for th in OPTION_IDS)
        out[_COUNT] = (f"CASE WHEN NOT ({touched}) THEN {col(_COUNT)} WHEN NOT ({known}) OR {unknown} THEN NULL "
                       f"ELSE CAST({count} AS DOUBLE PRECISION) END")
        for th in OPTION_IDS:
            p = f"prior_therapies.{th}"
            out[p] = f"CASE WHEN {touched} THEN {out[p]} ELSE {col(p)} END"
        out["__contra"] = " OR ".join([col("__contra")] + contra)
        return out

    def insert(self, into: str, exprs: dict[str, str], source: str, where: str | None = None,
               extra: dict[str, str] | None = None) -> str:
        cols = {**exprs, **(extra or {})}
        sel = ", ".join(f"{e} AS {_i(n)}" for n, e in cols.items())
        return (f"INSERT INTO {into} ({', '.join(_i(n) for n in cols)}) SELECT {sel} FROM {source}"  # nosec B608 - see SAFETY
                + (f" WHERE {where}" if where else ""))

    # ------------------------------------------------------------------ the rounds

    def fill_views(self) -> None:
        """The filling-in, each defined once as a view over a table of worlds to fill: ``<view>_fill``
        (the assumed values of the records picked, ``__pick__<field>``: :func:`nelm.screen.settle.fill_steps`)
        and ``<view>_fill_alt`` (one other value of an assumed fact, ``__seed``:
        :func:`nelm.screen.settle.alternative_seeds`). Both set ``__rank`` to the row's ``__r``."""
        picks = {st.field: [(f"t.{_i('__pick__' + st.field)} = {i}", i, v) for i, v in st.records] for st in self.steps}
        follows = {st.field: [(f"t.{_i('__pick__' + st.field)} = {i}", f, v) for f, vs in st.follows.items() for i, v in vs]
                   for st in self.steps}
        cols = self.fill("t", picks, follows) | {"__rank": f"t.{_i('__r')}"}
        self.add(f"CREATE VIEW {self.n('fill')} AS SELECT {', '.join(f'{cols[c]} AS {_i(c)}' for c in WORLD)} "  # nosec B608 - see SAFETY
                 f"FROM {self.n('tofill')} t")
        # (one field's alone, for the one-at-a-time fallback: a small view is planned fast)
        for k, st in enumerate(self.steps):
            cols = self.fill("t", {st.field: picks[st.field]}, {st.field: follows[st.field]}) | {"__rank": f"t.{_i('__r')}"}
            self.written[st.field] = {c for c in WORLD if cols[c] != f"t.{_i(c)}"} - {"__rank", "__fixed", "__assumed"}
            self.add(f"CREATE VIEW {self.n(f'fill{k}')} AS SELECT {', '.join(f'{cols[c]} AS {_i(c)}' for c in WORLD)} "  # nosec B608 - see SAFETY
                     f"FROM {self.n('tofill')} t")
        alt_picks: dict[str, list] = {}
        alt_follows: dict[str, list] = {}
        for k, (i, field, value, fol) in enumerate(alternative_seeds(self.kb)):
            cond = f"t.{_i('__seed')} = {k}"
            alt_picks.setdefault(field, []).append((cond, None, value))
            alt_follows.setdefault(field, []).extend((cond, f, v) for f, v in fol.items())
        cols = self.fill("t", alt_picks, alt_follows) | {"__rank": "CAST(0 AS BIGINT)"}
        self.add(f"CREATE VIEW {self.n('fill_alt')} AS SELECT {', '.join(f'{cols[c]} AS {_i(c)}' for c in WORLD)} "  # nosec B608 - see SAFETY
                 f"FROM {self.n('toalt')} t")

    def run(self, done: str, first: str | None) -> None:
        """settle._run over the worlds in ``<view>_worlds``, the finished ones into ``done``."""
        W, CHK, CHECK, EVAL = self.n("worlds"), self.n("chk"), self.n("check"), self.n("eval")
        TOFILL, FILL = self.n("tofill"), self.n("fill")
        conds = [assumption_column(i) for i, a in enumerate(self.kb.assumptions) if a.when]
        wanted = ["id", "refused", "plan.status", "plan.followed", "plan.candidate", "plan.missing", *conds]
        picks = ["__pick__" + st.field for st in self.steps]
        usable = [f"__usable__{i}" for st in self.steps for i, _ in st.records]
        world_cols = ", ".join(_i(c) for c in WORLD)
        for round_ in range(ROUNDS + 1):
            last = round_ == ROUNDS
            ev = first if round_ == 0 and first else self.n("ev")
            if ev == self.n("ev"):
                self.add(f"CREATE TABLE {ev} AS SELECT {', '.join(_i(c) for c in wanted)} FROM {EVAL}")  # nosec B608 - see SAFETY
                # (the view names its identifying column "id": here the world's __w)
            missing = f'e.{_i("plan.missing")}'
            blocking = (f"({missing} | CASE WHEN ({missing} & {HISTORY}) <> 0 AND w.{_i('__restaging')} "
                        f"AND (w.{_i('__fixed')} & {COURSE}) = 0 THEN {COURSE} ELSE 0 END)")
            inner = (f"SELECT w.*, e.{_i('refused')} AS {_i('__refused')}, e.{_i('plan.status')} AS {_i('__status')}, "
                     f"e.{_i('plan.followed')} AS {_i('__followed')}, e.{_i('plan.candidate')} AS {_i('__lead')}, "
                     + "".join(f"e.{_i(c)} AS {_i(c)}, " for c in conds)
                     + f"{blocking} AS {_i('__blocking')} FROM {W} w JOIN {ev} e ON e.{_i('id')} = w.{_i('__w')}")
            # each blocking fact not filled in yet: the first of its records that is for this patient
            sel = []
            for step in self.steps:
                bit = FIELD_BIT[step.field]
                want = f"((y.{_i('__blocking')} & {bit}) <> 0 AND (y.{_i('__fixed')} & {bit}) = 0)"
                whens = []
                for i, _ in step.records:
                    applies = f"COALESCE(y.{_i(assumption_column(i))}, FALSE)" if self.kb.assumptions[i].when else "TRUE"
                    whens.append(f"WHEN {applies} THEN {i}")
                    sel.append(f"({want} AND {applies}) AS {_i(f'__usable__{i}')}")
                sel.append(f"CASE WHEN {want} THEN CASE {' '.join(whens)} END END AS {_i('__pick__' + step.field)}")
            settled = f"COALESCE(y.{_i('__followed')} IS NOT NULL AND y.{_i('__blocking')} = 0, FALSE)"
            ST = self.n("st")
            self.add(f"CREATE TABLE {ST} AS SELECT z.*, ({'TRUE' if last else 'FALSE'} OR z.{_i('__settled')} "  # nosec B608 - see SAFETY
                     f"OR z.{_i('__refused')} IS NOT NULL OR ({' AND '.join(f'z.{_i(p)} IS NULL' for p in picks)})) "
                     f"AS {_i('__finished')} FROM (SELECT y.*, {settled} AS {_i('__settled')}, {', '.join(sel)} "
                     f"FROM ({inner}) y) z")
            if ev == self.n("ev"):
                self.add(f"DROP TABLE {ev}")
            finished = f"SELECT {_i('__w')}, {_i('__settled')}, {_i('__lead')}, {_i('__status')}, {_i('__assumed')} FROM "  # nosec B608 - see SAFETY
            self.add(f"INSERT INTO {done} {finished}{ST} WHERE {_i('__finished')}")
            self.add(f"DELETE FROM {W}")  # nosec B608 - see SAFETY
            if last:
                self.add(f"DROP TABLE {ST}")
                break
            REST, OK, CUR, USABLE, TOOK = self.n("rest"), self.n("ok"), self.n("cur"), self.n("usable"), self.n("took")
            self.add(f"CREATE TABLE {REST} AS SELECT * FROM {ST} WHERE NOT {_i('__finished')}")  # nosec B608 - see SAFETY
            self.add(f"DROP TABLE {ST}")
            # every blocking fact filled in at once, then checked
            self.add(f"DELETE FROM {TOFILL}")  # nosec B608 - see SAFETY
            self.add(f"INSERT INTO {TOFILL} SELECT {world_cols}, 0, {', '.join(_i(p) for p in picks)} FROM {REST}")  # nosec B608 - see SAFETY
            self.add(f"DELETE FROM {CHK}")  # nosec B608 - see SAFETY
            self.add(f"INSERT INTO {CHK} SELECT * FROM {FILL}")  # nosec B608 - see SAFETY
            self.add(f"CREATE TABLE {OK} AS SELECT c.{_i('__w')}, (v.{_i('refused')} IS NULL AND NOT c.{_i('__contra')}) "  # nosec B608 - see SAFETY
                     f"AS {_i('__ok')} FROM {CHK} c JOIN {CHECK} v ON v.{_i('__w')} = c.{_i('__w')} "
                     f"AND v.{_i('__rank')} = c.{_i('__rank')}")
            self.add(f"INSERT INTO {W} SELECT c.* FROM {CHK} c JOIN {OK} o ON o.{_i('__w')} = c.{_i('__w')} "  # nosec B608 - see SAFETY
                     f"WHERE o.{_i('__ok')}")
            # together they contradict the record: one field at a time, each record for the patient in turn
            bad = f"JOIN {OK} o ON o.{_i('__w')} = r.{_i('__w')} WHERE NOT o.{_i('__ok')}"
            self.add(f"CREATE TABLE {CUR} AS SELECT {', '.join('r.' + _i(c) for c in WORLD)} FROM {REST} r {bad}")  # nosec B608 - see SAFETY
            self.add(f"CREATE TABLE {USABLE} AS SELECT r.{_i('__w')}, {', '.join('r.' + _i(c) for c in usable)} "  # nosec B608 - see SAFETY
                     f"FROM {REST} r {bad}")
            self.add(f"CREATE TABLE {TOOK} AS SELECT {_i('__w')} FROM {CUR} WHERE 1 = 0")  # nosec B608 - see SAFETY
            for step in self.steps:
                self.one_field(step, picks)
            self.add(f"INSERT INTO {done} {finished}{REST} r WHERE EXISTS (SELECT 1 FROM {USABLE} u WHERE "  # nosec B608 - see SAFETY
                     f"u.{_i('__w')} = r.{_i('__w')}) AND NOT EXISTS (SELECT 1 FROM {TOOK} k WHERE k.{_i('__w')} = r.{_i('__w')})")
            self.add(f"INSERT INTO {W} SELECT c.* FROM {CUR} c WHERE EXISTS (SELECT 1 FROM {TOOK} k "  # nosec B608 - see SAFETY
                     f"WHERE k.{_i('__w')} = c.{_i('__w')})")
            for tb in (CUR, USABLE, TOOK, OK, REST):
                self.add(f"DROP TABLE {tb}")

    def one_field(self, step, picks: list[str]) -> None:
        """settle._one_at_a_time for one field: each usable record of it filled in alone (the
        fill view's ``__rank`` the record's index), the first (in the knowledge base's order)
        that keeps the record consistent taken."""
        CHK, CHECK, CUR, WON = self.n("chk"), self.n("check"), self.n("cur"), self.n("won")
        TOFILL, USABLE, TOOK = self.n("tofill"), self.n("usable"), self.n("took")
        self.add(f"DELETE FROM {TOFILL}")  # nosec B608 - see SAFETY
        parts = []
        for i, _ in step.records:
            cols = ", ".join(str(i) if p == "__pick__" + step.field else "CAST(NULL AS BIGINT)" for p in picks)
            parts.append(f"SELECT c.*, {i}, {cols} FROM {CUR} c JOIN {USABLE} u ON u.{_i('__w')} = c.{_i('__w')} "  # nosec B608 - see SAFETY
                         f"WHERE u.{_i(f'__usable__{i}')}")
        self.add(f"INSERT INTO {TOFILL} " + " UNION ALL ".join(parts))
        self.add(f"DELETE FROM {CHK}")  # nosec B608 - see SAFETY
        k = self.steps.index(step)
        self.add(f"INSERT INTO {CHK} SELECT * FROM {self.n(f'fill{k}')}")  # nosec B608 - see SAFETY
        if self.written[step.field] & (self.checked | {"__contra"}):
            self.add(f"CREATE TABLE {WON} AS SELECT c.{_i('__w')}, MIN(c.{_i('__rank')}) AS {_i('__r')} FROM {CHK} c "  # nosec B608 - see SAFETY
                     f"JOIN {CHECK} v ON v.{_i('__w')} = c.{_i('__w')} AND v.{_i('__rank')} = c.{_i('__rank')} "
                     f"WHERE v.{_i('refused')} IS NULL AND NOT c.{_i('__contra')} GROUP BY c.{_i('__w')}")
        else:   # (what it fills in is read by no check: the world stays as consistent as it was)
            self.add(f"CREATE TABLE {WON} AS SELECT {_i('__w')}, MIN({_i('__rank')}) AS {_i('__r')} FROM {CHK} "  # nosec B608 - see SAFETY
                     f"GROUP BY {_i('__w')}")
        self.add(f"DELETE FROM {CUR} WHERE EXISTS (SELECT 1 FROM {WON} n WHERE n.{_i('__w')} = {CUR}.{_i('__w')})")  # nosec B608 - see SAFETY
        self.add(f"INSERT INTO {CUR} SELECT c.* FROM {CHK} c JOIN {WON} n ON n.{_i('__w')} = c.{_i('__w')} "  # nosec B608 - see SAFETY
                 f"AND n.{_i('__r')} = c.{_i('__rank')}")
        self.add(f"INSERT INTO {TOOK} SELECT {_i('__w')} FROM {WON}")  # nosec B608 - see SAFETY
        self.add(f"DROP TABLE {WON}")


def settle_script(table: str, *, view: str = "nelm_assessment", dialect: str = "postgres",
                  guideline: str | None = None, id_column: str = "id",
                  columns: Collection[str] | None = None) -> str:
    """The SQL script (module docstring) that leaves in ``view`` a table of the screening
    columns for the patients of ``table``, plans on assumed facts settled."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; allowed: {', '.join(DIALECTS)}")
    if columns is not None and id_column not in columns:
        raise ValueError(f"table {table} has no column {id_column!r} to identify its patients; "
                         "name the identifying column with --id-column")
    kb = load(guideline)
    s = _Script(kb, table, view, dialect, id_column, columns)
    n = s.n
    BASE, W, CHK, EVAL, CHECK, FIRST = n("base"), n("worlds"), n("chk"), n("eval"), n("check"), n("first")
    DONE, ALT, SEEDS, DIFF = n("done"), n("done_alt"), n("seeds"), n("differs")
    fills = [n("fill"), n("fill_alt")] + [n(f"fill{k}") for k in range(len(s.steps))]
    for v in (EVAL, CHECK, *fills):
        s.add(f"DROP VIEW IF EXISTS {v}")
    for tb in (BASE, W, CHK, FIRST, DONE, ALT, SEEDS, DIFF, n("ev"), n("st"), n("rest"), n("ok"), n("cur"), n("cur2"),
               n("won"), n("usable"), n("took"), n("tofill"), n("toalt"), s.view):
        s.add(f"DROP TABLE IF EXISTS {tb}")
    # 1. the patients as worlds with nothing filled in
    have = s.columns
    cols = [f"p.{_i(c)}" if have is None or c in have else f"CAST(NULL AS {_TYPE[c]})" for c in INPUTS]
    inner = (f"SELECT CAST(ROW_NUMBER() OVER () AS BIGINT) AS {_i('__base')}, p.{_i(id_column)} AS {_i('__id')}, "
             + ", ".join(f"{e} AS {_i(c)}" for e, c in zip(cols, INPUTS)) + f" FROM {_s(exp.to_table(table))} p")
    restaging = " OR ".join(f"(x.{_i('prior_therapies.' + th)} IS NULL AND COALESCE(x.{_i('prior_therapies.' + th + '.ongoing')}, FALSE))"
                            for th in OPTION_IDS)
    known = " | ".join(f"CASE WHEN {_known(f, 'x')} THEN {FIELD_BIT[f]} ELSE 0 END" for f in _also_fields(kb)) or "0"
    s.add(f"CREATE TABLE {BASE} AS SELECT x.{_i('__base')} AS {_i('__w')}, x.{_i('__base')}, CAST(0 AS BIGINT) AS {_i('__fixed')}, "
          f"CAST(0 AS BIGINT) AS {_i('__assumed')}, (x.{_i(_COURSE)} IS NULL AND ({restaging})) AS {_i('__restaging')}, "
          f"CAST({known} AS BIGINT) AS {_i('__known')}, CAST(0 AS BIGINT) AS {_i('__rank')}, FALSE AS {_i('__contra')}, "
          + ", ".join(f"x.{_i(c)}" for c in INPUTS) + f", x.{_i('__id')} FROM ({inner}) x")
    world_cols = ", ".join(_i(c) for c in WORLD)
    s.add(f"CREATE TABLE {W} AS SELECT {world_cols} FROM {BASE} WHERE 1 = 0")  # nosec B608 - see SAFETY
    s.add(f"CREATE TABLE {CHK} AS SELECT {world_cols} FROM {BASE} WHERE 1 = 0")  # nosec B608 - see SAFETY
    s.add(f"CREATE TABLE {DONE} ({_i('__w')} BIGINT, {_i('__settled')} BOOLEAN, {_i('__lead')} TEXT, "
          f"{_i('__status')} TEXT, {_i('__assumed')} BIGINT)")
    s.add(f"CREATE TABLE {ALT} AS SELECT * FROM {DONE} WHERE 1 = 0")  # nosec B608 - see SAFETY
    picks = ", ".join(f"CAST(NULL AS BIGINT) AS {_i('__pick__' + st.field)}" for st in s.steps)
    s.add(f"CREATE TABLE {n('tofill')} AS SELECT {world_cols}, CAST(0 AS BIGINT) AS {_i('__r')}, {picks} FROM {BASE} WHERE 1 = 0")  # nosec B608 - see SAFETY
    s.add(f"CREATE TABLE {n('toalt')} AS SELECT {world_cols}, CAST(0 AS BIGINT) AS {_i('__seed')} FROM {BASE} WHERE 1 = 0")  # nosec B608 - see SAFETY
    s.fill_views()
    # the view, once, over the worlds; and the model's consistency checks over the worlds to check
    built = build_view(W, view=EVAL, dialect=dialect, guideline=guideline, id_column="__w", settle=True)
    s.add(("RAW", built.sql.rstrip(";")))
    check_sql, s.checked = _check_query(CHK, dialect)
    s.add(("RAW", f"CREATE VIEW {_render(exp.to_table(CHECK), dialect)} AS {check_sql}"))
    # 2. the rounds
    s.add(f"INSERT INTO {W} SELECT {world_cols} FROM {BASE}")  # nosec B608 - see SAFETY
    s.add(f"CREATE TABLE {FIRST} AS SELECT * FROM {EVAL}")  # nosec B608 - see SAFETY
    s.run(DONE, FIRST)
    # 3. the other values of each assumed fact (each a seed: fill_alt's __seed), settled the same way
    seeds = alternative_seeds(kb)
    values = " UNION ALL ".join(f"SELECT {k} AS {_i('__seed')}, {1 << i} AS {_i('__bit')}" for k, (i, *_) in enumerate(seeds))
    listed = ", ".join(f"b.{_i('__base')} * {len(seeds)} + s.{_i('__seed')}" if c == "__w" else f"b.{_i(c)}" for c in WORLD)
    s.add(f"INSERT INTO {n('toalt')} SELECT {listed}, s.{_i('__seed')} FROM {BASE} b JOIN {DONE} d ON "  # nosec B608 - see SAFETY
          f"d.{_i('__w')} = b.{_i('__base')} JOIN ({values}) s ON (d.{_i('__assumed')} & s.{_i('__bit')}) <> 0 "
          f"WHERE d.{_i('__settled')}")
    s.add(f"CREATE TABLE {SEEDS} AS SELECT b.{_i('__base')} * {len(seeds)} + s.{_i('__seed')} AS {_i('__w')}, "  # nosec B608 - see SAFETY
          f"b.{_i('__base')}, d.{_i('__lead')} AS {_i('__wlead')} FROM {BASE} b JOIN {DONE} d ON "
          f"d.{_i('__w')} = b.{_i('__base')} JOIN ({values}) s ON (d.{_i('__assumed')} & s.{_i('__bit')}) <> 0 "
          f"WHERE d.{_i('__settled')}")
    s.add(f"DELETE FROM {CHK}")  # nosec B608 - see SAFETY
    s.add(f"INSERT INTO {CHK} SELECT * FROM {n('fill_alt')}")  # nosec B608 - see SAFETY
    s.add(f"INSERT INTO {W} SELECT c.* FROM {CHK} c JOIN {CHECK} v ON v.{_i('__w')} = c.{_i('__w')} AND "  # nosec B608 - see SAFETY
          f"v.{_i('__rank')} = c.{_i('__rank')} WHERE v.{_i('refused')} IS NULL AND NOT c.{_i('__contra')}")
    s.run(ALT, None)
    # one that does not settle, or leads elsewhere, makes the plan conditional
    s.add(f"CREATE TABLE {DIFF} AS SELECT s.{_i('__base')}, MAX(CASE WHEN d.{_i('__settled')} AND (d.{_i('__lead')} = "  # nosec B608 - see SAFETY
          f"s.{_i('__wlead')} OR (d.{_i('__lead')} IS NULL AND s.{_i('__wlead')} IS NULL)) THEN 0 ELSE 1 END) AS {_i('__differs')} "
          f"FROM {ALT} d JOIN {SEEDS} s ON s.{_i('__w')} = d.{_i('__w')} GROUP BY s.{_i('__base')}")
    # 4. the screening columns, the plan settled
    outs = [c for c in output_columns(kb) if not c.startswith("plan.")]
    ok = f"f.{_i('refused')} IS NULL"
    s.add(f"CREATE TABLE {s.view} AS SELECT b.{_i('__id')} AS {_i(id_column)}, f.{_i('refused')}, "
          + "".join(f"f.{_i(c)}, " for c in outs)
          + f"CASE WHEN {ok} AND d.{_i('__settled')} THEN d.{_i('__lead')} END AS {_i('plan.leading')}, "
          f"CASE WHEN NOT ({ok}) THEN NULL WHEN NOT d.{_i('__settled')} THEN 'undetermined' "
          f"WHEN COALESCE(x.{_i('__differs')}, 0) = 1 THEN 'conditional' ELSE d.{_i('__status')} END AS {_i('plan.status')} "
          f"FROM {FIRST} f JOIN {BASE} b ON b.{_i('__base')} = f.{_i('id')} JOIN {DONE} d ON d.{_i('__w')} = f.{_i('id')} "
          f"LEFT JOIN {DIFF} x ON x.{_i('__base')} = f.{_i('id')}")
    for v in (EVAL, CHECK, *fills):
        s.add(f"DROP VIEW {v}")
    for tb in (FIRST, DONE, ALT, SEEDS, DIFF, W, CHK, n("tofill"), n("toalt"), BASE):
        s.add(f"DROP TABLE {tb}")
    return _render_script(s.out, dialect)


def _render(e: exp.Expression, dialect: str) -> str:
    return e.sql(dialect=DIALECTS[dialect])


def _check_query(chk: str, dialect: str) -> tuple[str, set[str]]:
    """The model's consistency checks (``consistency.yaml``, as the view's ``refused`` renders
    them; ``refused`` here: a check fails) of each world in ``chk``, as
    :func:`nelm.screen.settle._consistent` runs them; and the table columns they read."""
    from ..consistency import checks

    facts = World(prefix="", input_prefix="", filled_prefix=None)
    pipe = Pipeline()
    pipe.add("patients", engine_inputs(lambda c: t(table_column(c))))
    pipe.add("patients", {"__w": t("__w"), "__rank": t("__rank")})
    failing = [known_true(paren(_parse(c.condition, facts.col))) for c in checks()]
    pipe.add("refused", {"refused": case((or_(*failing), exp.true()))})
    query = pipe.query(sqlglot.parse_one(chk, read="postgres"), [("__w", q("__w")), ("__rank", q("__rank")),
                                                                  ("refused", q("refused"))], late=True, inline=True)
    reads = {c.name for c in query.find_all(exp.Column) if c.table == TABLE} - {"__w", "__rank"}
    return query.sql(dialect=DIALECTS[dialect]), reads


def _render_script(statements: list, dialect: str) -> str:
    out = []
    for st in statements:
        if isinstance(st, tuple):
            out.append(st[1])
        elif dialect == "postgres":
            out.append(st)
        else:
            out.append(sqlglot.transpile(st, read="postgres", write=DIALECTS[dialect])[0])
    return ";\n".join(out) + ";\n"


__all__ = ["INPUTS", "WORLD", "settle_script"]
