"""Cheaper Polars expressions for :func:`nelm.engine.evaluate_frame`, the same values.

The knowledge base's SQL conditions are compiled by ``pl.sql_expr`` (:class:`nelm.knowledge.Node`).
Read literally, some of them make Polars build and compare strings row by row, which cost more
than the rest of a table's evaluation (``perf``: string views, string-to-Enum casts and string
comparisons took about a third of the time), and the Boolean logic of the rules and the verdicts
ran as thousands of Polars kernels, each costing far more than its bits. Five changes here;
nothing here knows a rule, and where a change does not apply the knowledge base's own
expression is kept:

1. **A comparison with a string literal is pushed into a COALESCE or CASE**:
   ``COALESCE(a, CASE WHEN c THEN 'x' END) = 'x'`` reads ``COALESCE(a = 'x', CASE WHEN c THEN
   TRUE END)`` (a comparison with a literal is unknown exactly when its operand is, so the first
   known operand decides both; a CASE leaf compared with a literal is a constant). Only for
   ``=``, ``<>`` and ``IN`` with string literals, over string (Enum or String) columns, CASE
   and literal leaves: the Enum column is then compared with the literal (its code), not cast
   to text for every row.
2. **A derived text column computed as a CASE of string literals** (``category``,
   ``frilling_type``, ...) is computed as an Enum of those literals while the plan runs, when
   every condition reading it compares it with string literals by ``=``, ``<>``, ``IN`` or
   ``IS NULL`` (which give the same answer for an Enum and for text, a literal outside the
   categories included), and cast back to text for the returned frame (``restore``).
3. **The pre-treatment checks' passing values** (``KnowledgeBase.assume``), a CASE of literals
   cast to the column's type, are written with literals of that type (each leaf cast once, by
   Polars, when the plan is built) instead of a text column cast row by row.
4. **The option rules run on bitmaps** (:func:`rule_programs`, :func:`run_rules`): each rule is
   a Kleene AND/OR/NOT program over leaves (anything else: a comparison, IN, COALESCE, CASE),
   each distinct leaf evaluated once by Polars; the logic runs on numpy words (certainly true,
   certainly false). A rule with a leaf Polars would not type Boolean keeps its expression.
5. **The verdicts' possibilities and masks on the same words** (:func:`possible_columns`): the
   fold and the caps of ``frame._verdict_stages``, step for step; the verdict is then read from
   the mask by the same expression as before.

The rewritten SQL is compiled by ``pl.sql_expr`` again; a CASE is built as ``when/then``
exactly as ``pl.sql_expr`` builds it, its conditions compiled by ``pl.sql_expr``.
tests/test_frame_fast.py checks every column, dtype and value against the plain expressions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..knowledge import KnowledgeBase
from ..patient import column_dtype


@dataclass
class FastExprs:
    nodes: dict[str, Any] = field(default_factory=dict)     # column -> cheaper expression
    recoded: dict[str, Any] = field(default_factory=dict)   # column -> its Enum dtype inside the plan
    assume: list[Any] = field(default_factory=list)         # KnowledgeBase.assume, cheaper
    rules: Any = None                                       # RulePrograms: the rules on bitmaps


_CACHE: dict[tuple[str, str], FastExprs] = {}


def fast_exprs(kb: KnowledgeBase, dtypes: dict[str, Any]) -> FastExprs:
    """The rewrites for a knowledge base (built once per content hash and guideline); ``dtypes``:
    every column's dtype in the plain plan (inputs and computed columns)."""
    key = (kb.sha256, kb.guideline)
    got = _CACHE.get(key)
    if got is None:
        got = _CACHE[key] = _build(kb, dtypes)
    return got


def restore(fast: FastExprs, columns: list[str] | set[str]) -> list[Any]:
    """Cast the recoded columns among ``columns`` back to text (their dtype in the plain plan)."""
    import polars as pl

    # each category's text gathered by the Enum's code: about half the cost of the cast
    return [pl.lit(pl.Series(dtype.categories.to_list(), dtype=pl.String)).gather(pl.col(c).to_physical()).alias(c)
            for c, dtype in fast.recoded.items() if c in columns]


# --------------------------------------------------------------------------- building

def _build(kb: KnowledgeBase, dtypes: dict[str, Any]) -> FastExprs:
    import polars as pl
    import sqlglot

    out = FastExprs()
    nodes = [n for batch in kb.nodes for n in batch if n.kind == "sql"] + [vn for _, _, vn in kb.variant_nodes]
    trees: dict[str, Any] = {}
    changed: set[str] = set()
    for n in nodes:
        tree = sqlglot.parse_one(n.sql)
        new = _push_all(tree, dtypes)
        if new is not None:
            tree = new
            changed.add(n.column)
        trees[n.column] = tree
    assume_trees = [sqlglot.parse_one(sql) for _, sql, _ in kb.assume_sql]

    # 2. text columns computed as a CASE of string literals, read only by safe comparisons
    candidates = {c: _string_leaves(t) for c, t in trees.items()
                  if "@" not in c and dtypes.get(c) == pl.String and _string_leaves(t)}
    unsafe: set[str] = set()
    for tree in [*trees.values(), *assume_trees]:
        for col in tree.find_all(_exp().Column):
            if col.name in candidates and not _safe_use(col):
                unsafe.add(col.name)
    for c, leaves in candidates.items():
        if c not in unsafe:
            out.recoded[c] = pl.Enum(leaves)
    for c, tree in trees.items():
        if c in out.recoded:
            out.nodes[c] = _case(tree, lambda leaf, e=out.recoded[c]: _enum_leaf(leaf, e)).alias(c)
        elif c in changed:
            out.nodes[c] = pl.sql_expr(tree.sql()).alias(c)

    # 4. the rules as Kleene programs over shared leaves (run by run_rules); the leaves read
    # the recoded columns as the plan holds them
    out.rules = rule_programs(kb, trees, dtypes | out.recoded)

    # 3. the checks' passing values
    plain = kb.assume
    for (col, _, _), tree, expr in zip(kb.assume_sql, assume_trees, plain):
        dtype = column_dtype(col)
        if _literal_case(tree):
            out.assume.append(pl.coalesce(pl.col(col), _case(tree, lambda leaf, d=dtype: _typed_leaf(leaf, d))).alias(col))
        else:
            out.assume.append(expr)
    return out


def _exp() -> Any:
    from sqlglot import exp

    return exp


def _unwrap(node: Any) -> Any:
    exp = _exp()
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _is_text(node: Any) -> bool:
    exp = _exp()
    return isinstance(node, exp.Literal) and node.is_string


def _branches(node: Any) -> tuple[list[tuple[Any, Any]], Any] | None:
    """A CASE without subject, or IF(), as ([(condition, value)], default or None)."""
    exp = _exp()
    if isinstance(node, exp.Case) and node.this is None:
        return [(b.this, b.args["true"]) for b in node.args.get("ifs") or []], node.args.get("default")
    if isinstance(node, exp.If):
        return [(node.this, node.args["true"])], node.args.get("false")
    return None


# ---- 1. comparisons with string literals pushed into COALESCE / CASE

_TEXT_DTYPES = ("String", "Enum", "Categorical")


def _push_all(tree: Any, dtypes: dict[str, Any]) -> Any | None:
    """The tree with every pushable comparison rewritten, or None when there is none."""
    exp = _exp()
    found = False

    def visit(node: Any) -> Any:
        nonlocal found
        target = None
        if isinstance(node, (exp.EQ, exp.NEQ)):
            a, b = _unwrap(node.this), _unwrap(node.expression)
            if _is_text(b) and (isinstance(a, exp.Coalesce) or _branches(a)):
                target, lits = a, [b.this]
            elif _is_text(a) and (isinstance(b, exp.Coalesce) or _branches(b)):
                target, lits = b, [a.this]
        elif isinstance(node, exp.In) and not any(node.args.get(k) for k in ("query", "unnest", "field")):
            a = _unwrap(node.this)
            if (isinstance(a, exp.Coalesce) or _branches(a)) and node.expressions \
                    and all(_is_text(_unwrap(v)) for v in node.expressions):
                target, lits = a, [_unwrap(v).this for v in node.expressions]
        if target is not None:
            op = "in" if isinstance(node, exp.In) else "eq" if isinstance(node, exp.EQ) else "ne"
            pushed = _push(target, op, lits, dtypes)
            if pushed is not None:
                found = True
                return exp.Paren(this=pushed)
        return node

    new = tree.copy().transform(visit)
    return new if found else None


def _push(node: Any, op: str, lits: list[str], dtypes: dict[str, Any]) -> Any | None:
    """``node op lits`` with the comparison moved to the leaves, or None if a leaf is not text."""
    exp = _exp()
    node = _unwrap(node)
    if isinstance(node, exp.Null):
        return exp.Null()
    if _is_text(node):
        hit = node.this in lits
        return exp.Boolean(this=hit if op != "ne" else not hit)
    if isinstance(node, exp.Column):
        dtype = dtypes.get(node.name)
        if dtype is None or not str(dtype).startswith(_TEXT_DTYPES):
            return None
        col = node.copy()
        if op == "in":
            return exp.In(this=col, expressions=[exp.Literal.string(v) for v in lits])
        cls = exp.EQ if op == "eq" else exp.NEQ
        return exp.Paren(this=cls(this=col, expression=exp.Literal.string(lits[0])))
    if isinstance(node, exp.Coalesce):
        args = [_push(a, op, lits, dtypes) for a in [node.this, *node.expressions]]
        if any(a is None for a in args):
            return None
        return exp.Coalesce(this=args[0], expressions=args[1:])
    br = _branches(node)
    if br is not None:
        ifs, default = br
        values = [_push(v, op, lits, dtypes) for _, v in ifs]
        other = _push(default, op, lits, dtypes) if default is not None else None
        if any(v is None for v in values) or (default is not None and other is None):
            return None
        return exp.Case(ifs=[exp.If(this=c.copy(), true=v) for (c, _), v in zip(ifs, values)],
                        default=other)
    return None


# ---- 2. and 3. CASE of literals built with typed literals

def _string_leaves(tree: Any) -> list[str] | None:
    """The distinct string literals a CASE of string literals and NULLs gives, else None."""
    exp = _exp()
    node = _unwrap(tree)
    if isinstance(node, exp.Null):
        return []
    if _is_text(node):
        return [node.this]
    br = _branches(node)
    if br is None:
        return None
    out: list[str] = []
    for v in [v for _, v in br[0]] + ([br[1]] if br[1] is not None else []):
        got = _string_leaves(v)
        if got is None:
            return None
        out += [x for x in got if x not in out]
    return out


def _literal_case(tree: Any) -> bool:
    """A CASE (or IF) whose every value is a literal, a boolean, NULL or such a CASE."""
    exp = _exp()
    br = _branches(_unwrap(tree))
    if br is None:
        return False

    def leafy(v: Any) -> bool:
        v = _unwrap(v)
        if isinstance(v, (exp.Literal, exp.Boolean, exp.Null)):
            return True
        if isinstance(v, exp.Neg) and isinstance(v.this, exp.Literal) and not v.this.is_string:
            return True
        b = _branches(v)
        return b is not None and all(leafy(x) for _, x in b[0]) and (b[1] is None or leafy(b[1]))

    return all(leafy(v) for _, v in br[0]) and (br[1] is None or leafy(br[1]))


def _safe_use(col: Any) -> bool:
    """Does this reading of a column give the same answer for an Enum as for text?"""
    exp = _exp()
    parent, child = col.parent, col
    while isinstance(parent, exp.Paren):
        parent, child = parent.parent, parent
    if isinstance(parent, (exp.EQ, exp.NEQ)):
        other = parent.expression if parent.this is child else parent.this
        return _is_text(_unwrap(other))
    if isinstance(parent, exp.In):
        return parent.this is child and bool(parent.expressions) \
            and all(_is_text(_unwrap(v)) for v in parent.expressions) \
            and not any(parent.args.get(k) for k in ("query", "unnest", "field"))
    if isinstance(parent, exp.Is):
        return isinstance(parent.expression, exp.Null)
    return False


def _case(tree: Any, leaf: Any) -> Any:
    """A CASE as ``when/then/otherwise``, conditions by ``pl.sql_expr``, values by ``leaf``."""
    import polars as pl

    node = _unwrap(tree)
    br = _branches(node)
    if br is None:
        return leaf(node)
    ifs, default = br
    chain: Any = pl
    for cond, value in ifs:
        chain = chain.when(pl.sql_expr(cond.sql())).then(_case(value, leaf))
    return chain.otherwise(_case(default, leaf) if default is not None else leaf(_exp().Null()))


def _enum_leaf(node: Any, dtype: Any) -> Any:
    import polars as pl

    return pl.lit(None if isinstance(node, _exp().Null) else node.this, dtype=dtype)


def _typed_leaf(node: Any, dtype: Any) -> Any:
    """A literal of the column's type, with the value Polars' own cast gives it."""
    import polars as pl

    if isinstance(node, _exp().Null):
        return pl.lit(None, dtype=dtype)
    value = pl.select(pl.sql_expr(node.sql()).cast(dtype).alias("v")).item()
    return pl.lit(value, dtype=dtype)


# --------------------------------------------------------------------------- verdicts on bitmaps

def possible_columns(rules: Any, options: list[Any], bitmaps: dict[str, tuple[Any, Any]] | None = None) -> list[Any]:
    """``possible_<j>__<option>`` for every option and verdict, in the order of
    :func:`nelm.engine.frame._verdict_stages`' first stage, then every option's mask
    ``possible__<option>`` (bit j: verdict j possible, Int32), computed on the rule columns' bitmaps.

    The same Boolean algebra as ``_verdict_stages`` (the same fold from the last rule back, then
    the caps in order, each reading the previous stage), on the bit words of each rule's values
    and validity instead of Polars expressions: a verdict's possibility has no unknowns, so it is
    one bitmap, and each step is one or two word-wise operations on 1/64 of the rows' count
    (Polars spent a few hundred microseconds on each of some 2,500 such steps per million rows).
    """
    import numpy as np
    import polars as pl
    import pyarrow as pa

    from ..knowledge import rule_column
    from ..knowledge.ruleset import VERDICTS

    n = rules.height
    words = (n + 63) // 64
    ones = np.full(words, np.uint64(0xFFFFFFFFFFFFFFFF))
    # rule column -> (may be true, may be false); from run_rules' (certainly true, certainly false)
    maybe: dict[str, tuple[Any, Any]] = {c: (~f, ~t) for c, (t, f) in (bitmaps or {}).items()}

    def bits(col: str) -> tuple[Any, Any]:
        got = maybe.get(col)
        if got is None:
            values, valid = _bitmaps(rules.get_column(col), n, words)
            unknown = ~valid if valid is not None else None
            may_true = values | unknown if unknown is not None else values
            may_false = ~values | unknown if unknown is not None else ~values
            got = maybe[col] = (may_true, may_false)
        return got

    out, masks = [], []
    spread = _spread()
    acc = np.empty(words * 8, dtype=np.uint64)
    tmp = np.empty(words * 8, dtype=np.uint64)
    for opt in options:
        chains: dict[str, Any] = {}
        for v in VERDICTS:
            p: Any = v == opt.otherwise.verdict
            owned = False   # p is an array of this chain's own (updated in place: fewer allocations)
            for r in reversed(opt.deciding):
                may_true, may_false = bits(rule_column(opt.id, r.id))
                if r.verdict == v:
                    if p is True:
                        continue
                    if p is False:
                        p, owned = may_true, False
                    elif owned:
                        np.bitwise_or(p, may_true, out=p)
                    else:
                        p, owned = may_true | p, True
                elif p is not False:
                    if p is True:
                        p, owned = may_false, False
                    elif owned:
                        np.bitwise_and(p, may_false, out=p)
                    else:
                        p, owned = may_false & p, True
            chains[v] = ones if p is True else np.zeros(words, np.uint64) if p is False else p
        for r in opt.caps:
            may_true, may_false = bits(rule_column(opt.id, r.id))
            level = VERDICTS.index(r.cap)
            better = np.zeros(words, np.uint64)
            for j in range(level):
                better = better | chains[VERDICTS[j]]
            new = {r.cap: chains[r.cap] | (better & may_true)}
            new.update({VERDICTS[j]: chains[VERDICTS[j]] & may_false for j in range(level)})
            chains.update(new)
        acc.fill(0)
        for j, v in enumerate(VERDICTS):
            arr = pa.BooleanArray.from_buffers(pa.bool_(), n, [None, pa.py_buffer(chains[v])])
            out.append(pl.Series(f"possible_{j}__{opt.id}", arr))
            np.take(spread, chains[v].view(np.uint8), out=tmp)
            if j:
                np.left_shift(tmp, np.uint64(j), out=tmp)
            np.bitwise_or(acc, tmp, out=acc)
        masks.append(pl.Series(f"possible__{opt.id}", acc.view(np.uint8)[:n].astype(np.int32)))
    return out + masks


def _spread() -> Any:
    """Each row's mask byte, 8 rows per word: entry b has bit k of b in byte k (built once)."""
    global _SPREAD
    if _SPREAD is None:
        import numpy as np

        _SPREAD = np.array([sum(((b >> k) & 1) << (8 * k) for k in range(8)) for b in range(256)], dtype=np.uint64)
    return _SPREAD


_SPREAD: Any = None


def _bitmaps(s: Any, n: int, words: int) -> tuple[Any, Any]:
    """A Boolean column's values and validity (None: no unknown) as uint64 words, bit i row i."""
    import polars as pl

    if s.dtype != pl.Boolean:
        s = s.cast(pl.Boolean)
    if s.n_chunks() > 1:
        s = s.rechunk()
    arr = s.to_arrow()
    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    validity, data = arr.buffers()[0], arr.buffers()[1]
    values = _words(data, arr.offset, n, words)
    valid = _words(validity, arr.offset, n, words) if validity is not None and arr.null_count else None
    return values, valid


def _words(buf: Any, offset: int, n: int, words: int) -> Any:
    import numpy as np

    out = np.zeros(words, dtype=np.uint64)
    nbytes = (n + 7) // 8
    if offset % 8 == 0:
        out.view(np.uint8)[:nbytes] = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=offset // 8)
    else:   # a slice not on a byte boundary: shift through one bit per byte (rare)
        first = offset // 8
        raw = np.frombuffer(buf, dtype=np.uint8, count=(offset % 8 + n + 7) // 8, offset=first)
        unpacked = np.unpackbits(raw, bitorder="little")[offset % 8: offset % 8 + n]
        out.view(np.uint8)[:nbytes] = np.packbits(unpacked, bitorder="little")
    return out


# --------------------------------------------------------------------------- rules on bitmaps

@dataclass
class RulePrograms:
    """The option rules as Kleene AND/OR/NOT over leaves: each leaf (a comparison, IN, IS NULL,
    COALESCE, CASE, ... anything but AND/OR/NOT, a Boolean column or TRUE/FALSE) is one Polars
    expression, the same subtree text evaluated once however many rules read it."""

    leaves: list[Any]                        # pl.Expr aliased __leaf<i>
    programs: dict[str, Any]                 # rule column -> program (nested tuples)


def rule_programs(kb: KnowledgeBase, trees: dict[str, Any], dtypes: dict[str, Any]) -> RulePrograms:
    import polars as pl

    bool_cols = {c for c, t in dtypes.items() if t == pl.Boolean}
    leaf_index: dict[str, int] = {}
    leaf_exprs: list[Any] = []
    programs: dict[str, Any] = {}
    for c, tree in trees.items():
        if not c.startswith("rule__") or dtypes.get(c) != pl.Boolean:
            continue
        programs[c] = _program(tree, bool_cols, leaf_index, leaf_exprs)
    # every leaf must be Boolean as Polars types it on the plan's columns; a rule reading one
    # that is not keeps its plain expression
    schema = pl.DataFrame(schema=dtypes).lazy().select(leaf_exprs).collect_schema() if leaf_exprs else {}
    bad = {int(name.removeprefix("__leaf")) for name, t in schema.items() if t != pl.Boolean}
    if bad:
        programs = {c: p for c, p in programs.items() if not (_leaves_of(p) & bad)}
    return RulePrograms(leaf_exprs, programs)


def _program(tree: Any, bool_cols: set[str], index: dict[str, int], exprs: list[Any]) -> Any:
    import polars as pl

    exp = _exp()
    node = _unwrap(tree)
    if isinstance(node, (exp.And, exp.Or)):
        parts, stack = [], [node]
        while stack:
            x = _unwrap(stack.pop())
            if type(x) is type(node):
                stack += [x.expression, x.this]
            else:
                parts.append(_program(x, bool_cols, index, exprs))
        return ("and" if isinstance(node, exp.And) else "or", parts)
    if isinstance(node, exp.Not):
        return ("not", _program(node.this, bool_cols, index, exprs))
    if isinstance(node, exp.Boolean):
        return ("const", bool(node.this))
    if isinstance(node, exp.Column) and not node.table and node.name in bool_cols:
        return ("col", node.name)
    sql = node.sql()
    if sql not in index:
        index[sql] = len(exprs)
        exprs.append(pl.sql_expr(sql).alias(f"__leaf{index[sql]}"))
    return ("leaf", index[sql])


def _leaves_of(p: Any) -> set[int]:
    if p[0] == "leaf":
        return {p[1]}
    if p[0] in ("and", "or"):
        return set().union(*(_leaves_of(x) for x in p[1]))
    if p[0] == "not":
        return _leaves_of(p[1])
    return set()


def run_rules(frame: Any, progs: RulePrograms) -> tuple[list[Any], dict[str, tuple[Any, Any]]]:
    """The rule columns of ``progs`` for a frame holding every column they read, as Boolean
    Series built from (certainly true, certainly false) bitmaps: Kleene AND is (T_a & T_b,
    F_a | F_b), OR (T_a | T_b, F_a & F_b), NOT swaps them; known = T | F. With each rule's
    (T, F) words, for :func:`possible_columns`."""
    import numpy as np
    import polars as pl
    import pyarrow as pa

    n = frame.height
    words = (n + 63) // 64
    ones = np.full(words, np.uint64(0xFFFFFFFFFFFFFFFF))
    zeros = np.zeros(words, np.uint64)
    leaves = frame.lazy().select(progs.leaves).collect(optimizations=pl.QueryOptFlags.none()) if progs.leaves else None
    seen: dict[Any, tuple[Any, Any]] = {}

    def tf(s: Any) -> tuple[Any, Any]:
        values, valid = _bitmaps(s, n, words)
        if valid is None:
            return values, ~values
        return values & valid, ~values & valid

    def run(p: Any) -> tuple[Any, Any]:
        kind = p[0]
        if kind == "leaf" or kind == "col":
            got = seen.get(p)
            if got is None:
                got = seen[p] = tf(leaves.to_series(p[1]) if kind == "leaf" else frame.get_column(p[1]))
            return got
        if kind == "const":
            return (ones, zeros) if p[1] else (zeros, ones)
        if kind == "not":
            t, f = run(p[1])
            return f, t
        parts = [run(x) for x in p[1]]
        (t, f), (t2, f2) = parts[0], parts[1]
        if kind == "and":   # the first step allocates the result, the others update it in place
            t, f = t & t2, f | f2
            for t2, f2 in parts[2:]:
                np.bitwise_and(t, t2, out=t)
                np.bitwise_or(f, f2, out=f)
        else:
            t, f = t | t2, f & f2
            for t2, f2 in parts[2:]:
                np.bitwise_or(t, t2, out=t)
                np.bitwise_and(f, f2, out=f)
        return t, f

    out, words_of = [], {}
    for col, p in progs.programs.items():
        t, f = words_of[col] = run(p)
        known = t | f
        arr = pa.BooleanArray.from_buffers(pa.bool_(), n, [pa.py_buffer(known), pa.py_buffer(t)])
        out.append(pl.Series(col, arr))
    return out, words_of
