"""Building blocks of the SQL view (:mod:`nelm.screen.sql`): sqlglot expression helpers, the
names one evaluation gives its columns, and the chain of CTEs pruned to what is read.

Every value is a sqlglot expression tree (rendered per dialect at the end), never a string
with values pasted in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Iterable

from sqlglot import exp

from ..patient import COLUMN_FIELDS


TABLE = "nelm_table"   # the table's alias in the first CTE


def q(name: str) -> exp.Column:
    """A column, by its (quoted) name."""
    return exp.column(name, quoted=True)


def t(name: str) -> exp.Column:
    """A column of the table itself (read only in the first CTE)."""
    return exp.column(name, table=TABLE, quoted=True)


def num(n: int) -> exp.Literal:
    return exp.Literal.number(n)


def lit(value: Any) -> exp.Expression:
    """A literal of a knowledge-base value (an assumption's assumed value, an option id)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def paren(e: exp.Expression) -> exp.Paren:
    return exp.Paren(this=e)


def _is_true(e: exp.Expression) -> bool:
    return isinstance(e, exp.Boolean) and e.this is True


def and_(*terms: exp.Expression) -> exp.Expression:
    """Kleene AND; ``TRUE`` terms left out (``TRUE AND x`` is ``x``)."""
    terms = tuple(e for e in terms if not _is_true(e)) or (exp.true(),)
    return paren(exp.and_(*terms)) if len(terms) > 1 else terms[0]


def or_(*terms: exp.Expression) -> exp.Expression:
    return paren(exp.or_(*terms)) if len(terms) > 1 else terms[0]


def not_(e: exp.Expression) -> exp.Expression:
    return paren(exp.Not(this=paren(e)))


def is_null(e: exp.Expression) -> exp.Expression:
    return paren(exp.Is(this=e, expression=exp.Null()))


def not_null(e: exp.Expression) -> exp.Expression:
    return not_(is_null(e))


def eq(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return paren(exp.EQ(this=a, expression=b))


def lt(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return paren(exp.LT(this=a, expression=b))


def lte(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return paren(exp.LTE(this=a, expression=b))


def _never_null(e: exp.Expression) -> bool:
    return isinstance(e, (exp.Literal, exp.Boolean))


def coalesce(*args: exp.Expression) -> exp.Expression:
    """``COALESCE``; leading ``CASE``s without ``ELSE`` whose results are never NULL
    (literals) are merged into one ``CASE`` with the rest as its ``ELSE`` (the first
    condition that holds gives its value either way; one node, not a node per argument)."""
    k = 0
    while (k < len(args) and isinstance(args[k], exp.Case) and args[k].args.get("default") is None
           and all(_never_null(w.args["true"]) for w in args[k].args["ifs"])):
        k += 1
    if k > 1 or (k == 1 and len(args) > 1):
        rest = coalesce(*args[k:]) if k < len(args) else None
        return case(*[(w.this, w.args["true"]) for a in args[:k] for w in a.args["ifs"]], default=rest)
    return exp.func("COALESCE", *args) if len(args) > 1 else args[0]


def least(*args: exp.Expression) -> exp.Expression:
    """``LEAST`` of values that are never NULL (dialects differ on NULL arguments)."""
    return exp.func("LEAST", *args) if len(args) > 1 else args[0]


def case(*whens: tuple[exp.Expression, exp.Expression], default: exp.Expression | None = None) -> exp.Expression:
    out = exp.Case()
    for cond, then in whens:
        out = out.when(cond, then)
    return out.else_(default) if default is not None else out


def switch(value: exp.Expression, whens: list[tuple[exp.Expression, exp.Expression]],
           default: exp.Expression | None = None) -> exp.Expression:
    """``CASE value WHEN a THEN x ...``: ``value`` computed once, then compared with each ``a``."""
    out = exp.Case(this=value, ifs=[exp.If(this=a, true=x) for a, x in whens])
    return out.else_(default) if default is not None else out


def first_true(conds: list[exp.Expression], none: int) -> exp.Expression:
    """The index of the first condition certainly true (``none`` if none is): one ``CASE``,
    which stops at the first, instead of ``LEAST`` over a ``CASE`` per condition."""
    return case(*[(c, num(i)) for i, c in enumerate(conds)], default=num(none)) if conds else num(none)


def known_true(e: exp.Expression) -> exp.Expression:
    """Polars' ``fill_null(False)``: NULL counts as false."""
    return coalesce(e, exp.false())


def bit_or(terms: Iterable[exp.Expression]) -> exp.Expression:
    """Bitwise OR of integer terms (0 for none)."""
    terms = list(terms)
    if not terms:
        return num(0)
    out = terms[0]
    for t in terms[1:]:
        out = exp.BitwiseOr(this=out, expression=t)
    return paren(out)


def has_bits(e: exp.Expression, bits: int) -> exp.Expression:
    """Are any of ``bits`` set in the integer ``e``?"""
    return paren(exp.NEQ(this=paren(exp.BitwiseAnd(this=e, expression=num(bits))), expression=num(0)))


def reads(e: exp.Expression) -> set[str]:
    """The column names an expression reads (other than the table's own, see :func:`t`)."""
    return {c.name for c in e.find_all(exp.Column) if not c.table}


# --------------------------------------------------------------------------- naming

@dataclass(frozen=True)
class World:
    """The names one evaluation of the knowledge base gives its columns in the view.

    The view evaluates the knowledge base three times: ``facts`` (the facts as entered:
    classification, criteria), ``checks`` (unknown pre-treatment checks in their passing
    value: rules, verdicts, today's plan) and ``assumed`` (the patient with the facts a
    plan assumes filled in, and the checks passing: the conditional plan).
    """

    prefix: str                   # of its computed columns
    input_prefix: str             # of its input columns ...
    filled_prefix: str | None     # ... and of the checks' columns once filled (None: not filled)
    checks: frozenset[str] = frozenset()   # the input columns of the pre-treatment checks
    # computed columns that read no check, directly or not: the same value as on the facts as
    # entered, so this world reads that world's column (``shared_prefix``) instead of its own
    shared: frozenset[str] = frozenset()
    shared_prefix: str = ""

    def col(self, column: str) -> str:
        if column in COLUMN_FIELDS:
            if self.filled_prefix is not None and column in self.checks:
                return self.filled_prefix + column
            return self.input_prefix + column
        if column in self.shared:
            return self.shared_prefix + column
        return self.prefix + column

    def input(self, column: str) -> str:
        """An input column before the checks are filled."""
        return self.input_prefix + column

    def mask(self, column: str) -> str:
        """Which kinds of missing facts a computed column hangs on (a bit mask)."""
        return f"{self.prefix}missing__{column}"

    def first(self, option: str) -> str:
        return f"{self.prefix}first__{option}"

    def possible(self, option: str) -> str:
        return f"{self.prefix}possible__{option}"

    def verdict(self, option: str) -> str:
        return f"{self.prefix}verdict__{option}"

    def plan(self, name: str) -> str:
        return f"{self.prefix}plan__{name}"


# --------------------------------------------------------------------------- the chain of CTEs

class Pipeline:
    """Named columns, each an expression over the table's columns and other named columns,
    laid out as a chain of CTEs.

    The chain is as short as the longest chain of dependencies (Spark's analyzer resolves
    about one CTE per iteration of a batch limited to 100). By default each column goes in
    the first CTE after everything it reads; :meth:`query` can instead put it in the last
    CTE before its first reader and write a column read by one other column only into that
    one's expression (the SQL view does both): every CTE is a step the engine passes each
    row through, copying the columns it carries forward, so the fewer it carries the faster
    the view. A CTE carries forward only the columns something later reads (PostgreSQL also
    allows at most 1,664 columns in one select list). CTEs are named after the group of
    their first column.
    """

    def __init__(self) -> None:
        self.columns: dict[str, tuple[str, exp.Expression]] = {}

    @classmethod
    def _of(cls, columns: dict[str, tuple[str, exp.Expression]]) -> "Pipeline":
        out = cls()
        out.columns = columns
        return out

    def add(self, group: str, columns: dict[str, exp.Expression]) -> None:
        for name, e in columns.items():
            if name in self.columns:
                raise ValueError(f"column {name!r} defined twice")
            self.columns[name] = (group, e)

    def levels(self, outputs: list[tuple[str, exp.Expression]]) -> list[list[tuple[str, exp.Expression]]]:
        """The named columns ``outputs`` read, directly or not, grouped by dependency depth
        (each group reads only the table's columns and earlier groups), in definition order:
        what another executor (Polars, :func:`nelm.screen.columns.certain_plans`) computes
        one group at a time."""
        deps = {n: reads(e) for n, (_, e) in self.columns.items()}
        level: dict[str, int] = {}

        def level_of(n: str) -> int:
            if n not in self.columns:
                return 0
            if n not in level:
                level[n] = 1 + max((level_of(d) for d in deps[n]), default=0)
            return level[n]

        for _, e in outputs:
            for n in reads(e):
                level_of(n)
        groups: dict[int, list[tuple[str, exp.Expression]]] = {}
        for n, (_, e) in self.columns.items():
            if n in level:
                groups.setdefault(level[n], []).append((n, e))
        return [groups[k] for k in sorted(groups)]

    def _shared(self, outputs: list[tuple[str, exp.Expression]]
                ) -> tuple[dict[str, tuple[str, exp.Expression]], list[tuple[str, exp.Expression]]]:
        """The columns with each one computed from other columns by the same expression as an
        earlier one left out, its readers reading the earlier one (the same value: the knowledge
        base writes one condition into several options' rules); again until none is left, since
        the readers of two such columns may then be the same too. And ``outputs`` read so."""
        cols = self.columns
        to: dict[str, str] = {}       # a column left out -> the one read instead

        def rename(e: exp.Expression) -> exp.Expression:
            if not any(c.name in to for c in e.find_all(exp.Column) if not c.table):
                return e
            if isinstance(e, exp.Column):      # (a node cannot replace itself)
                return q(to[e.name])
            e = e.copy()
            for c in list(e.find_all(exp.Column)):
                if not c.table and c.name in to:
                    c.replace(q(to[c.name]))
            return e

        while True:
            first: dict[str, str] = {}
            found = {}
            for n, (_, e) in cols.items():
                if not reads(e) or any(c.table for c in e.find_all(exp.Column)):
                    continue      # (an input column, or a constant: each its own)
                key = e.sql()
                if key in first:
                    found[n] = first[key]
                else:
                    first[key] = n
            if not found:
                return cols, outputs
            to = found
            cols = {n: (g, rename(e)) for n, (g, e) in cols.items() if n not in found}
            outputs = [(a, rename(e)) for a, e in outputs]

    def _inlined(self, outputs: list[tuple[str, exp.Expression]], lazy: Collection[str] = ()
                 ) -> tuple[dict[str, tuple[str, exp.Expression]], list[tuple[str, exp.Expression]]]:
        """The columns with each one read by one other column only written into it, and each
        ``lazy`` one into every reader (see :meth:`query`); and ``outputs`` with the lazy
        columns they read written in."""
        cols = self.columns
        lazy = {n for n in lazy if n in cols and not any(c.table for c in cols[n][1].find_all(exp.Column))}
        uses: dict[str, dict[str, int]] = {}    # column -> reader -> how often it reads it
        for n, (_, e) in cols.items():
            for c in e.find_all(exp.Column):
                if not c.table:
                    by = uses.setdefault(c.name, {})
                    by[n] = by.get(n, 0) + 1
        out_reads = set().union(*(reads(e) for _, e in outputs))
        host: dict[str, str] = {}     # an inlined column -> the column it is written into

        def final(n: str) -> str:     # (a lazy column is written into each of its readers: it stops here)
            while n in host:
                n = host[n]
            return n

        for n in reversed(list(cols)):   # (readers first: a column's readers come after it)
            if n in lazy or n in out_reads or any(c.table for c in cols[n][1].find_all(exp.Column)):
                continue
            into: dict[str, int] = {}
            for r, k in uses.get(n, {}).items():
                into[final(r)] = into.get(final(r), 0) + k
            if len(into) == 1 and next(iter(into.values())) == 1:   # read once, by one column
                host[n] = next(iter(into))
        gone = set(host) | lazy

        def expand(e: exp.Expression) -> exp.Expression:
            e = e.copy()
            for c in list(e.find_all(exp.Column)):
                if not c.table and c.name in gone:
                    sub = paren(expand(cols[c.name][1]))
                    if c is e:
                        e = sub
                    else:
                        c.replace(sub)
            return e

        return ({n: (g, expand(e) if any(d in gone for d in reads(e)) else e) for n, (g, e) in cols.items() if n not in gone},
                [(a, expand(e) if any(d in lazy for d in reads(e)) else e) for a, e in outputs])

    def query(self, source: exp.Expression, outputs: list[tuple[str, exp.Expression]],
              prune: int = 60, late: bool = False, inline: bool = False, lazy: Collection[str] = (),
              share: bool = False) -> exp.Select:
        """The ``SELECT`` of ``outputs`` over ``source`` with the CTEs before it. A CTE
        reads its predecessor as ``*`` unless that would carry ``prune`` or more columns
        nothing reads any more: then it names what it keeps.

        ``late``: each column in the last CTE before its first reader, not the first after
        what it reads (as deep a chain, fewer computed columns carried forward). ``inline``:
        a column read by one other column only (and not reading the table) is written into
        that one's expression instead of being a column of its own (computed as often: once),
        which shortens the chain and what each CTE carries; and each ``lazy`` column into every
        reader, whatever their number: for values read only behind a condition that seldom
        holds (a ``CASE`` branch), computed where it holds instead of in every row. ``share``:
        a column computed by the same expression as an earlier one is read from that one
        (:meth:`_shared`): each value computed once."""
        if share:
            shared, outputs = self._shared(outputs)
            self = Pipeline._of(shared)
        columns, outputs = self._inlined(outputs, lazy) if inline else (self.columns, outputs)
        deps = {n: reads(e) for n, (_, e) in columns.items()}
        needed: list[str] = []
        seen: set[str] = set()
        stack = sorted(set().union(*(reads(e) for _, e in outputs)))
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            needed.append(n)
            if n in columns:
                stack += sorted(deps[n])
        level: dict[str, int] = {}

        def level_of(n: str) -> int:   # 0: a column of the table
            if n not in columns:
                return 0
            if n not in level:       # (recursion as deep as the chain of dependencies, a few dozen)
                level[n] = 1 + max((level_of(d) for d in deps[n]), default=0)
            return level[n]

        for n in needed:
            level_of(n)
        depth = max(level.values(), default=0)
        if late:
            # each column as late as its readers allow (the chain as deep): a CTE then carries
            # forward fewer computed columns; those reading the table stay in the first
            readers: dict[str, list[str]] = {}
            for n in needed:
                if n in columns:
                    for d in deps[n]:
                        readers.setdefault(d, []).append(n)
            out_reads = set().union(*(reads(e) for _, e in outputs))
            late_level: dict[str, int] = {}

            def late_of(n: str) -> int:
                if n not in late_level:
                    if any(c.table for c in columns[n][1].find_all(exp.Column)):
                        late_level[n] = level[n]
                    else:
                        late_level[n] = min([late_of(r) - 1 for r in readers.get(n, ())]
                                            + ([depth] if n in out_reads else []))
                return late_level[n]

            for n in level:
                late_of(n)
            level.update(late_level)
        last_use = {n: depth + 1 for n in set().union(*(reads(e) for _, e in outputs))}
        for n in needed:
            if n in columns:
                for d in deps[n]:
                    last_use[d] = max(last_use.get(d, 0), level[n])
        by_level: dict[int, list[str]] = {}
        for n in columns:          # definition order within a CTE
            if n in level:
                by_level.setdefault(level[n], []).append(n)
        ctes: list[tuple[str, exp.Select]] = []
        names: dict[str, int] = {}
        previous: exp.Expression = exp.alias_(source, TABLE, quoted=True)
        available: set[str] | None = None     # the previous CTE's columns (None: the table's, not known)
        for lv in range(1, depth + 1):
            new = by_level.get(lv, [])
            carried = {n for n, last in last_use.items() if level_of(n) < lv < last}
            if lv > 1 and any(c.table for n in new for c in columns[n][1].find_all(exp.Column)):
                raise ValueError(f"a column of level {lv} reads the table itself: {new}")
            cols = [columns[n][1].as_(n, quoted=True) for n in new]
            if available is not None and len(available - carried) < prune:
                select = exp.select(exp.Star(), *cols)
                available |= set(new)
            else:
                select = exp.select(*[q(c) for c in sorted(carried)], *cols)
                available = carried | set(new)
            group = columns[new[0]][0] if new else "step"
            names[group] = names.get(group, 0) + 1
            name = f"{group}_{names[group]}"
            ctes.append((name, select.from_(previous.copy(), copy=False)))
            previous = exp.to_table(name)
        query = exp.select(*[e.as_(a, quoted=True) for a, e in outputs]).from_(previous, copy=False)
        for name, cte in ctes:
            query = query.with_(name, as_=cte, copy=False)   # (a copy per CTE would copy the whole view each time)
        return query
