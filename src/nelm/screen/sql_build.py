"""Building blocks of the SQL view (:mod:`nelm.screen.sql`): the chain of CTEs pruned to what
is read, and the sqlglot expression helpers and column names of :mod:`nelm.engine.sqlexpr`
(re-exported here: the plan's expressions are generated below the plan, the view lays them out).

Every value is a sqlglot expression tree (rendered per dialect at the end), never a string
with values pasted in.
"""
from __future__ import annotations

from typing import Collection

from sqlglot import exp

from ..engine.sqlexpr import (  # noqa: F401 - re-exported for the view's modules
    World, and_, bit_or, case, coalesce, eq, first_true, has_bits, is_null, known_true, least, lit, lt, lte, not_,
    not_null, num, or_, paren, q, reads, switch,
)


TABLE = "nelm_table"   # the table's alias in the first CTE


def t(name: str) -> exp.Column:
    """A column of the table itself (read only in the first CTE)."""
    return exp.column(name, table=TABLE, quoted=True)


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
