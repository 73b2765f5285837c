"""One patient's row without Polars: the knowledge base's SQL conditions as Python code.

A table of patients is evaluated by Polars (:func:`nelm.engine.evaluate_frame`). For
one patient, Polars' fixed cost per query (planning ~400 expressions for a one-row
frame) is most of an assessment, so the engine evaluates the *same* SQL strings a
second way: each condition is parsed once (sqlglot) and translated into a Python
expression with Polars' null semantics (Kleene AND/OR/NOT, a comparison with an
unknown side is unknown, ``CASE``/``IF`` take an unknown condition as not true,
``COALESCE``/``GREATEST`` skip unknowns). The expressions of a whole knowledge base
are written out as one straight-line function per pass, compiled once and cached
(:mod:`nelm.cache`) by the knowledge base's content hash.

The definitions stay the single source: nothing here knows a rule. A construct this
translator does not know raises :class:`Unsupported`, and the engine then keeps the
Polars path for that knowledge base. tests/test_rowcode.py checks, over thousands of
random patients, that both executors give the same value, of the same type, in every
column.
"""
from __future__ import annotations

import operator
import re
from typing import Any, Callable, Iterable

# Polars dtype names -> how a value of that column is represented in a row dict
_COERCE = {"Float64": "float", "Float32": "float", "Boolean": "bool", "String": "str",
           "Int8": "int", "Int16": "int", "Int32": "int", "Int64": "int",
           "UInt8": "int", "UInt16": "int", "UInt32": "int", "UInt64": "int"}


class Unsupported(ValueError):
    """An SQL construct the row translator does not handle (the engine keeps Polars)."""


# --------------------------------------------------------------------------- run-time helpers
# Kleene logic over True / False / None (unknown), as Polars computes it.

def _and(*xs: Any) -> Any:
    unknown = False
    for x in xs:
        if x is None:
            unknown = True
        elif not x:
            return False
    return None if unknown else True


def _or(*xs: Any) -> Any:
    unknown = False
    for x in xs:
        if x is None:
            unknown = True
        elif x:
            return True
    return None if unknown else False


def _not(x: Any) -> Any:
    return None if x is None else not x


def _coalesce(*xs: Any) -> Any:
    for x in xs:
        if x is not None:
            return x
    return None


def _greatest(*xs: Any) -> Any:
    known = [x for x in xs if x is not None]
    return max(known) if known else None


def _least(*xs: Any) -> Any:
    known = [x for x in xs if x is not None]
    return min(known) if known else None


def _cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    def compare(a: Any, b: Any) -> Any:
        return None if a is None or b is None else op(a, b)
    return compare


def _isin(x: Any, values: tuple) -> Any:
    return None if x is None else x in values


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        return None if a is None or b is None else op(a, b)
    return apply


def _f(x: Any) -> Any:
    return None if x is None else float(x)


def _i(x: Any) -> Any:
    return None if x is None else int(x)


def _bor(*xs: Any) -> Any:
    out = 0
    for x in xs:
        if x is None:
            return None
        out |= x
    return out


def _band(a: Any, b: Any) -> Any:
    return None if a is None or b is None else a & b


def _mod(a: Any, b: Any) -> Any:
    # (the plan's codes and masks are never negative, where Python's % and SQL's agree)
    return None if a is None or b is None else a % b


def _b(x: Any) -> Any:
    return None if x is None else bool(x)


def _s(x: Any) -> Any:
    return None if x is None else str(x)


HELPERS: dict[str, Callable[..., Any]] = {
    "_and": _and, "_or": _or, "_not": _not, "_coalesce": _coalesce, "_greatest": _greatest,
    "_least": _least, "_isin": _isin, "_eq": _cmp(operator.eq), "_ne": _cmp(operator.ne),
    "_gt": _cmp(operator.gt), "_ge": _cmp(operator.ge), "_lt": _cmp(operator.lt), "_le": _cmp(operator.le),
    "_f": _f, "_i": _i, "_b": _b, "_s": _s,
    "_add": _arith(operator.add), "_sub": _arith(operator.sub), "_mul": _arith(operator.mul),
    "_bor": _bor, "_band": _band, "_mod": _mod,
}
_CAST = {"float": "_f", "int": "_i", "bool": "_b", "str": "_s"}


# --------------------------------------------------------------------------- translation

# + - * with an unknown side unknown (division is left out: Python and Polars differ on / 0)
_ARITH = {"Add": "_add", "Sub": "_sub", "Mul": "_mul"}
_CMP = {"EQ": "==", "NEQ": "!=", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<="}


def translate(sql: str) -> str:
    """One SQL condition as a Python expression over the row dict ``r``."""
    import sqlglot

    try:
        tree = sqlglot.parse_one(sql)
    except Exception as exc:  # noqa: BLE001 - sqlglot's errors vary; say which text
        raise Unsupported(f"cannot parse {sql!r}: {exc}") from exc
    return _py(tree, sql)


def translate_tree(tree: Any) -> str:
    """An expression already parsed (a sqlglot tree, as :mod:`nelm.engine.plan_program` generates
    them) as a Python expression over the row dict ``r``."""
    return _py(tree, tree)


def _py(node: Any, sql: str) -> str:
    from sqlglot import exp

    kind = type(node).__name__
    if isinstance(node, exp.Paren):
        return _py(node.this, sql)
    if isinstance(node, exp.Column):
        if node.table:
            raise Unsupported(f"{sql!r}: qualified column {node.sql()!r}")
        return f"r[{node.name!r}]"
    if isinstance(node, exp.Boolean):
        return "True" if node.this else "False"
    if isinstance(node, exp.Null):
        return "None"
    if isinstance(node, exp.Literal):
        if node.is_string:
            return repr(node.this)
        text = node.this
        try:
            return repr(int(text))
        except ValueError:
            # compared with a Float64 column it is a float; a column whose value it becomes is
            # typed Decimal by Polars, which coercion() refuses (the engine then keeps Polars)
            return repr(float(text))
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return "-" + _py(node.this, sql)
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        return f"({_py(node.this, sql)} is None)"
    if kind in _CMP:
        return _compare(_py(node.this, sql), _CMP[kind], _py(node.expression, sql))
    if kind in _ARITH:
        return f"{_ARITH[kind]}({_py(node.this, sql)}, {_py(node.expression, sql)})"
    if isinstance(node, exp.BitwiseOr):
        # (the plan's masks OR dozens of terms: one call, not a nest of them)
        return "_bor(" + ", ".join(_py(p, sql) for p in _flatten(node, exp.BitwiseOr)) + ")"
    if isinstance(node, exp.BitwiseAnd):
        return f"_band({_py(node.this, sql)}, {_py(node.expression, sql)})"
    if isinstance(node, exp.Mod):
        return f"_mod({_py(node.this, sql)}, {_py(node.expression, sql)})"
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and not node.this.is_string \
            and node.to.this in (exp.DataType.Type.BIGINT, exp.DataType.Type.INT):
        return repr(int(node.this.this))   # a bit typed wide for the databases: in Python, an int
    if isinstance(node, (exp.And, exp.Or)):
        parts = _flatten(node, type(node))
        return ("_and(" if isinstance(node, exp.And) else "_or(") + ", ".join(_py(p, sql) for p in parts) + ")"
    if isinstance(node, exp.Not):
        return f"_not({_py(node.this, sql)})"
    if isinstance(node, exp.In):
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise Unsupported(f"{sql!r}: IN over a query")
        values = [_py(v, sql) for v in node.expressions]
        if any(v == "None" for v in values):
            raise Unsupported(f"{sql!r}: NULL inside IN (...)")
        subject = _py(node.this, sql)
        if not _SIMPLE.match(subject):
            return f"_isin({subject}, ({', '.join(values)},))"
        return f"(None if {subject} is None else {subject} in ({', '.join(values)},))"
    if isinstance(node, exp.If):
        cond, then = _py(node.this, sql), _py(node.args["true"], sql)
        other = _py(node.args["false"], sql) if node.args.get("false") is not None else "None"
        return f"(({then}) if ({cond}) is True else ({other}))"
    if isinstance(node, exp.Case):
        subject = node.this
        other = _py(node.args["default"], sql) if node.args.get("default") is not None else "None"
        out = other
        for branch in reversed(node.args.get("ifs") or []):
            cond = branch.this
            test = _compare(_py(subject, sql), "==", _py(cond, sql)) if subject is not None else _py(cond, sql)
            out = f"(({_py(branch.args['true'], sql)}) if ({test}) is True else {out})"
        return f"({out})"
    if isinstance(node, exp.Coalesce):
        args = [node.this, *node.expressions]
        return "_coalesce(" + ", ".join(_py(a, sql) for a in args) + ")"
    if isinstance(node, (exp.Greatest, exp.Least)):
        args = [node.this, *node.expressions]
        fn = "_greatest" if isinstance(node, exp.Greatest) else "_least"
        return fn + "(" + ", ".join(_py(a, sql) for a in args) + ")"
    raise Unsupported(f"{sql!r}: {kind} ({node.sql()!r}) is not translated for one-row evaluation")


# a column reference or a literal: cheap to repeat inline
_SIMPLE = re.compile(r"^(r\[('[^']*'|\"[^\"]*\")\]|-?\d+(\.\d+)?|True|False|None|'[^']*'|\"[^\"]*\")$")
_CMP_FN = {"==": "_eq", "!=": "_ne", ">": "_gt", ">=": "_ge", "<": "_lt", "<=": "_le"}


def _compare(a: str, op: str, b: str) -> str:
    if _SIMPLE.match(a) and _SIMPLE.match(b):
        nulls = " or ".join(f"{x} is None" for x in (a, b) if x.startswith("r["))
        return f"({a} {op} {b})" if not nulls else f"(None if {nulls} else {a} {op} {b})"
    return f"{_CMP_FN[op]}({a}, {b})"


def _flatten(node: Any, kind: type) -> list[Any]:
    """a AND b AND c as one n-ary call (same value: Kleene AND/OR are associative)."""
    out: list[Any] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if type(n) is kind:
            stack.extend([n.expression, n.this])
        else:
            out.append(n)
    return out


def coercion(dtype_name: str) -> str:
    """How a column of this Polars dtype is represented ('float', 'int', 'bool', 'str')."""
    base = dtype_name.split("(")[0]
    if base not in _COERCE:
        raise Unsupported(f"column dtype {dtype_name} is not represented in one-row evaluation")
    return _COERCE[base]


# helpers whose result is already True, False or None: a Boolean column computed by one of
# them needs no cast (the cast was a call on every step of every evaluation)
_BOOLEAN_HELPERS = frozenset({"_and", "_or", "_not", "_isin", "_eq", "_ne", "_gt", "_ge", "_lt", "_le"})


def _cast(expr: str, kind: str) -> str:
    """``expr`` cast to its kind, unless it is a call of a helper that gives that kind already."""
    if kind == "bool":
        import ast

        tree = ast.parse(expr, mode="eval").body
        if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id in _BOOLEAN_HELPERS:
            return expr
    return f"{_CAST[kind]}({expr})"


# --------------------------------------------------------------------------- typed steps
# With the kind of every column known (the engine's passes: the input columns' types and each
# computed column's dtype), a step needs no cast where its expression already gives that kind
# (a column of that kind, a comparison, a Kleene helper), and Kleene AND/OR/NOT over
# True/False/None operands are written inline instead of called: the plan evaluates a
# patient tens of times, and a call per step was most of a pass. The values are the same
# (tests/test_rowcode.py compares every column with Polars'); an operand is read at most
# once, through a local name, and the reading stops at the first False (AND) or True (OR),
# which changes nothing: operands have no side effects.

def _kind_of(node: Any, kinds: dict[str, str], names: dict[str, str | None] | None = None) -> str | None:
    """The kind every value of an expression has (None: unknown), ``"none"`` for NULL alone;
    ``names``: the kinds of the local names the inline code reads."""
    import ast

    if isinstance(node, ast.Name):
        return (names or {}).get(node.id)

    if isinstance(node, ast.Constant):
        v = node.value
        return ("none" if v is None else "bool" if type(v) is bool else "str" if type(v) is str
                else "float" if type(v) is float else "int" if type(v) is int else None)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "r" \
            and isinstance(node.slice, ast.Constant):
        return kinds.get(node.slice.value)
    if isinstance(node, ast.Compare) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
        return "bool"
    if isinstance(node, ast.NamedExpr):
        return _kind_of(node.value, kinds, names)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name in _BOOLEAN_HELPERS:
            return "bool"
        if name in _KIND_OF_CAST:
            return _KIND_OF_CAST[name]
        if name in _INT_HELPERS:
            return "int"
        if name == "_coalesce":
            return _common([_kind_of(a, kinds, names) for a in node.args])
        return None
    if isinstance(node, ast.IfExp):
        return _common([_kind_of(node.body, kinds, names), _kind_of(node.orelse, kinds, names)])
    if isinstance(node, ast.BoolOp):
        return _common([_kind_of(v, kinds, names) for v in node.values])
    return None


_KIND_OF_CAST = {v: k for k, v in _CAST.items()}
# helpers whose result, where known, is an int (the plan's masks and codes; ``_m``: a column's
# missing-facts mask, which the plan's caller supplies, nelm.engine.plan_program.PlanRow)
_INT_HELPERS = frozenset({"_bor", "_band", "_mod", "_m"})


def _common(found: list[str | None]) -> str | None:
    known = {k for k in found if k != "none"}
    if None in known or len(known) > 1:
        return None
    return known.pop() if known else "none"


_KIND_LETTER = {None: "x", "none": "n", "bool": "b", "int": "i", "float": "f", "str": "s"}


class _Inline:
    """Rewrites Kleene helper calls over Boolean operands as inline expressions."""

    def __init__(self, kinds: dict[str, str]):
        self.kinds = kinds
        self.names: dict[str, str | None] = {}   # the inline code's local names -> the kind they hold

    def kind(self, node: Any) -> str | None:
        return _kind_of(node, self.kinds, self.names)

    def _temp(self, level: int, i: int, kind: str | None) -> str:
        # A construct's operands are read into its own names, and each operand is worked out whole
        # before the next one starts: names are needed per level of nesting, not per construct, so
        # constructs at one level share them (a name per construct made functions of thousands of
        # locals, and a call's frame costs for each). The kind is in the name: one name, one kind.
        t = f"_k{level}_{i}{_KIND_LETTER[kind]}"
        self.names[t] = kind
        return t

    def __call__(self, node: Any, level: int = 0) -> Any:
        import ast

        inner = level + 1 if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                              and node.func.id in ("_and", "_or", "_not", "_coalesce")) else level
        for field, value in ast.iter_fields(node):
            if isinstance(value, list):
                setattr(node, field, [self(v, inner) if isinstance(v, ast.AST) else v for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, field, self(value, inner))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords
                and node.func.id == "_coalesce" and node.args):
            # the first known operand: a if a is not None else (b if b is not None else c)
            out = node.args[-1]
            for k, a in enumerate(node.args[-2::-1]):
                t = self._temp(level, k, self.kind(a))
                out = ast.IfExp(test=ast.Compare(left=ast.NamedExpr(target=ast.Name(t, ast.Store()), value=a),
                                                 ops=[ast.IsNot()], comparators=[ast.Constant(None)]),
                                body=ast.Name(t, ast.Load()), orelse=out)
            return out
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords
                and node.func.id in ("_and", "_or", "_not") and node.args
                and all(self.kind(a) in ("bool", "none") for a in node.args)):
            return node
        name = node.func.id
        names = [self._temp(level, i, self.kind(a)) for i, a in enumerate(node.args)]

        def read(i: int) -> Any:
            return ast.NamedExpr(target=ast.Name(names[i], ast.Store()), value=node.args[i])

        def test(i: int, op: Any, value: Any) -> Any:
            return ast.Compare(left=ast.Name(names[i], ast.Load()), ops=[op], comparators=[ast.Constant(value)])

        if name == "_not":
            # None if x is None else not x
            return ast.IfExp(test=ast.Compare(left=read(0), ops=[ast.Is()], comparators=[ast.Constant(None)]),
                             body=ast.Constant(None), orelse=ast.UnaryOp(op=ast.Not(), operand=ast.Name(names[0], ast.Load())))
        stop = name == "_or"   # AND stops at False, OR at True
        first = ast.BoolOp(op=ast.Or(), values=[
            ast.Compare(left=read(i), ops=[ast.Is()], comparators=[ast.Constant(stop)]) for i in range(len(names))])
        unknown = ast.BoolOp(op=ast.Or(), values=[test(i, ast.Is(), None) for i in range(len(names))])
        if len(names) == 1:
            first, unknown = first.values[0], unknown.values[0]
        return ast.IfExp(test=first, body=ast.Constant(stop),
                         orelse=ast.IfExp(test=unknown, body=ast.Constant(None), orelse=ast.Constant(not stop)))


def _typed_step(expr: str, kind: str, inline: _Inline) -> Any:
    import ast

    tree = inline(ast.parse(expr, mode="eval").body)
    got = inline.kind(tree)
    if got in (kind, "none"):
        return tree
    return ast.Call(func=ast.Name(_CAST[kind], ast.Load()), args=[tree], keywords=[])


def _row_reads(tree: Any) -> list[str]:
    import ast

    return [n.slice.value for n in ast.walk(tree)
            if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id == "r"
            and isinstance(n.slice, ast.Constant) and isinstance(n.ctx, ast.Load)]


class _Locals:
    """Reads of the row's columns as reads of local names (a column computed earlier in the
    function, or an input read once at its start): a local is cheaper to read than the dict."""

    def __init__(self, names: dict[str, str]):
        self.names = names

    def __call__(self, node: Any) -> Any:
        import ast

        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "r"
                and isinstance(node.slice, ast.Constant) and node.slice.value in self.names):
            return ast.Name(self.names[node.slice.value], ast.Load())
        for field, value in ast.iter_fields(node):
            if isinstance(value, list):
                setattr(node, field, [self(v) if isinstance(v, ast.AST) else v for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, field, self(value))
        return node


def function_source(name: str, steps: Iterable[tuple[str, str, str]], kinds: dict[str, str] | None = None,
                    returns: Iterable[str] | None = None, params: str = "", hoist: bool = True) -> str:
    """``def name(r):`` assigning each (column, python expression, kind) in order, cast to its kind.

    ``kinds`` (column -> kind of every column the row holds when the function starts) lets
    the steps go without the casts they do not need, write Kleene logic inline and read
    the columns through local names (the row gets every column all the same). ``returns``
    (with ``kinds``): the row is only read, and the function returns these columns' values,
    in this order, as a tuple (the plan's decision reads three values of a few hundred steps).
    ``params``: more parameters after ``r`` (``", _m"``), for helpers the caller supplies.
    ``hoist=False``: an input is read from the row where it is read, not once at the start (for
    steps that read hundreds of inputs behind conditions that seldom hold, as the plan's do)."""
    import ast

    lines = [f"def {name}(r{params}):"]
    if kinds is None:
        for column, expr, kind in steps:
            lines.append(f"    r[{column!r}] = {_cast(expr, kind)}")
        lines.append("    return r")
        return "\n".join(lines) + "\n"
    kinds = dict(kinds)
    inline = _Inline(kinds)
    typed = []
    for column, expr, kind in steps:
        typed.append((column, _typed_step(expr, kind, inline)))
        kinds[column] = kind
    # the columns read before any step assigns them are the function's inputs: read once
    assigned: set[str] = set()
    inputs: dict[str, str] = {}
    for column, tree in typed:
        for c in _row_reads(tree) if hoist else ():
            if c not in assigned and c not in inputs:
                inputs[c] = f"_i{len(inputs)}"
        assigned.add(column)
    names = dict(inputs)
    lines += [f"    {local} = r[{c!r}]" for c, local in inputs.items()]
    for n, (column, tree) in enumerate(typed):
        local = f"_c{n}"
        lines.append(f"    {local} = {ast.unparse(_Locals(names)(tree))}")
        if returns is None:
            lines.append(f"    r[{column!r}] = {local}")
        names[column] = local
    if returns is None:
        lines.append("    return r")
    else:
        lines.append("    return (" + "".join(f"{names[c]}, " for c in returns) + ")")
    return "\n".join(lines) + "\n"


def compile_functions(source: str, filename: str = "<nelm rowcode>") -> dict[str, Callable[[dict], dict]]:
    """Compile generated source; returns its functions by name."""
    namespace: dict[str, Any] = dict(HELPERS)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102  # nosec B102 - source generated here from the knowledge base's SQL, identifiers and literals repr()-quoted
    return {k: v for k, v in namespace.items() if callable(v) and k not in HELPERS}
