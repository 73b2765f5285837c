"""sqlglot expression helpers, and the names one evaluation gives its columns.

The knowledge base's plan decision (:mod:`.plan_program`) is written once as sqlglot
expressions over named columns; the SQL view renders them per dialect, Polars parses their
PostgreSQL text, and the one-patient planner runs them as generated Python
(:mod:`nelm.rowcode`). These helpers build those trees: every value is an expression tree,
never a string with values pasted in. (The view's chain of CTEs is :mod:`nelm.screen.sql_build`.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlglot import exp

from ..patient import COLUMN_FIELDS


def q(name: str) -> exp.Column:
    """A column, by its (quoted) name."""
    return exp.column(name, quoted=True)


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
