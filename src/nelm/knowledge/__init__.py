"""The knowledge base: derived variables, criteria sets, option rules and evidence.

Everything clinical lives in data files: ``classification.yaml`` (derived variables),
``criteria/*.yaml`` (guideline checklists), ``rules/*.yaml`` and ``gates.yaml`` (option
rules and what rules options out; schema in ``ruleset.py``), ``checks.yaml``
(pre-treatment checks), ``pathways.yaml`` (treatment sequences; schema in ``plans.py``),
``orders.yaml`` (the work-up that settles a missing fact) and ``evidence/*.yaml``
(published results); ``consistency.yaml`` and ``follows.yaml`` describe the patient document
(read by :mod:`nelm.consistency` and :mod:`nelm.follows`). :func:`load` reads and validates them all,
compiles every condition once into a Polars expression and hashes the files, so the
same input and the same knowledge base always give the same output.
"""
from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..once import per_object
from ..yamlio import read_yaml
from pydantic import BaseModel, ConfigDict, Field

from ..evidence import EVIDENCE_DIR, EvidenceRecord, load_records
from ..patient import COLUMN_FIELDS, COLUMN_TYPES, OPTION_IDS, column_dtype, column_of
from .plans import Assumption, Choice, Pathway, PathwaysFile, StepOption
from .ruleset import RULES_DIR, OptionDef, load_options, rule_files

KNOWLEDGE_DIR = Path(__file__).parent


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first validation: a cached knowledge base never validates


class Variant(_Record):
    guideline: str
    sql: str
    sources: list[str] = Field(min_length=1)
    label: str | None = None
    text: str | None = None


class Derived(_Record):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    sql: str
    sources: list[str] = Field(min_length=1)
    variants: list[Variant] = Field(default_factory=list)


class CriterionItem(_Record):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: str
    sql: str
    reason: str
    sources: list[str] = Field(min_length=1)
    variants: list[Variant] = Field(default_factory=list)


class CriterionSet(_Record):
    id: str
    label: str
    sources: list[str] = Field(min_length=1)
    items: list[CriterionItem] = Field(min_length=1)


class GuidelineProfile(_Record):
    label: str


class Manifest(_Record):
    version: str
    default_guideline: str
    guidelines: dict[str, GuidelineProfile]


class ClassificationFile(_Record):
    derived: list[Derived]


class Check(_Record):
    """A pre-treatment check (contract v2): work-up done before a treatment, not a fact
    that defines the disease. While unknown, option rules read ``assume`` in its place
    (the value that passes every gate) and the option lists the check as a condition."""

    field: str
    assume: str | dict[str, str] = Field(
        description="SQL: the passing value assumed while the check is unknown (null: none); for a field spread over "
                    "several columns, a mapping column -> SQL where 'prefix_*' names every text column of the field")
    label: str = Field(description="what to obtain, as a clinician orders it")
    reason: str
    sources: list[str] = Field(min_length=1)


class ChecksFile(_Record):
    checks: list[Check]


class Order(_Record):
    obtain: str
    fields: list[str] = Field(min_length=1)


class OrdersFile(_Record):
    orders: list[Order]


_EXPRS: dict[tuple[str, str, str], Any] = {}


@dataclass(frozen=True)
class Node:
    """One computed column: a derived variable, a criterion item or set, a rule condition.

    ``sql`` is its definition; a criteria set (``kind="all"``) is the Kleene AND of its
    items (``roots``). The Polars expression is built from it when first asked for, so a
    knowledge base read from the compiled cache (:mod:`nelm.cache`) needs no Polars to
    assess one patient (:mod:`nelm.rowcode`)."""

    column: str
    sql: str
    roots: frozenset[str]  # columns it reads directly
    kind: str = "sql"

    @property
    def expr(self) -> Any:
        key = (self.column, self.sql, self.kind)
        got = _EXPRS.get(key)
        if got is None:
            import polars as pl

            if self.kind == "all":
                # Kleene AND: one item not met settles the set; otherwise one unknown leaves it unknown.
                got = pl.all_horizontal(self.sql.split(" AND ")).alias(self.column)
            else:
                got = pl.sql_expr(self.sql).alias(self.column)
            _EXPRS[key] = got
        return got


_ORDERS: dict[tuple[str, str, str], str] = {}  # (knowledge base, field) -> order_for


@dataclass
class KnowledgeBase:
    version: str
    sha256: str
    guideline: str
    manifest: Manifest
    derived: list[Derived]
    criteria: list[CriterionSet]
    options: list[OptionDef]
    evidence: dict[str, EvidenceRecord]
    checks: list[Check] = field(default_factory=list)
    pathways: list[Pathway] = field(default_factory=list)  # with every choice expanded into its options
    choices: list[Choice] = field(default_factory=list)
    assumptions: list[Assumption] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    # fills unknown checks with passing values: (column, SQL of the passing value, column type)
    assume_sql: list[tuple[str, str, str]] = field(default_factory=list)
    nodes: list[list[Node]] = field(default_factory=list)   # batches in dependency order
    variant_nodes: list[tuple[str, str, Node]] = field(default_factory=list)  # (column, guideline, node)
    roots: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def assume(self) -> list[Any]:
        """The Polars expressions filling unknown checks with their passing values."""
        got = _EXPRS.get(("assume", self.sha256, self.guideline))
        if got is None:
            import polars as pl

            got = [pl.coalesce(pl.col(col), pl.sql_expr(sql).cast(column_dtype(col))).alias(col)
                   for col, sql, _kind in self.assume_sql]
            _EXPRS[("assume", self.sha256, self.guideline)] = got
        return got

    @property
    def option_ids(self) -> list[str]:
        return [o.id for o in self.options]

    def order_for(self, field: str) -> str:
        """The work-up that settles a missing field (orders.yaml)."""
        key = (self.sha256, self.guideline, field)
        got = _ORDERS.get(key)
        if got is None:
            got = _ORDERS[key] = next((o.obtain for o in self.orders for f in o.fields
                                      if f == field or (f.endswith(".*") and field.startswith(f[:-1]))),
                                     "review of the record")
        return got


def _check_columns(c: Check) -> dict[str, str]:
    """Column -> SQL of the passing value, for one check."""
    if isinstance(c.assume, str):
        col = column_of(c.field)
        if col not in COLUMN_TYPES:
            raise ValueError(f"checks.yaml: {c.field!r} is not a patient field")
        return {col: c.assume}
    out: dict[str, str] = {}
    for key, sql in c.assume.items():
        if key.endswith("*"):
            cols = [col for col, f in COLUMN_FIELDS.items() if f == c.field and col.startswith(key[:-1])
                    and COLUMN_TYPES[col] == "str"]
        else:
            cols = [key] if COLUMN_FIELDS.get(key) == c.field else []
        if not cols:
            raise ValueError(f"checks.yaml: {c.field}: {key!r} names no column of that field")
        out |= {col: sql for col in cols}
    return out


def _files() -> list[Path]:
    return sorted([*KNOWLEDGE_DIR.glob("*.yaml"), *(KNOWLEDGE_DIR / "criteria").glob("*.yaml"),
                   *EVIDENCE_DIR.glob("*.yaml"), *rule_files(RULES_DIR)])  # gates.yaml is in the first glob


def content_hash() -> str:
    h = hashlib.sha256()
    base = KNOWLEDGE_DIR.parent
    for path in _files():
        h.update(path.relative_to(base).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _yaml(path: Path) -> Any:
    return read_yaml(path)


def _compile(column: str, sql: str, where: str) -> Node:
    import polars as pl

    try:
        expr = pl.sql_expr(sql)
        roots = frozenset(expr.meta.root_names())
    except Exception as exc:  # a data bug: say which record
        raise ValueError(f"{where}: cannot compile {sql!r}: {exc}") from exc
    _EXPRS[(column, sql, "sql")] = expr.alias(column)
    return Node(column, sql, roots)


def _pick(sql: str, variants: list[Variant], guideline: str) -> str:
    return next((v.sql for v in variants if v.guideline == guideline), sql)


def _levels(nodes: list[Node], known: set[str]) -> list[list[Node]]:
    """Group nodes into batches whose inputs are all computed by earlier batches."""
    pending = list(nodes)
    produced = {n.column for n in nodes}
    for n in nodes:
        unknown = n.roots - known - produced
        if unknown:
            raise ValueError(f"{n.column}: refers to unknown column(s) {sorted(unknown)}")
    batches: list[list[Node]] = []
    ready = set(known)
    while pending:
        batch = [n for n in pending if n.roots <= ready]
        if not batch:
            raise ValueError(f"circular definitions among {[n.column for n in pending]}")
        batches.append(batch)
        ready |= {n.column for n in batch}
        pending = [n for n in pending if n not in batch]
    return batches


def set_column(set_id: str) -> str:
    return set_id


def item_column(set_id: str, item_id: str) -> str:
    return f"{set_id}__{item_id}"


def rule_column(option_id: str, rule_id: str) -> str:
    return f"rule__{option_id}__{rule_id}"


def assumption_column(index: int) -> str:
    """The column saying whether the index-th plan assumption (pathways.yaml) is for this patient."""
    return f"assumption__{index}"


@lru_cache(maxsize=4096)
def pathway_column(pathway_id: str, step: int | None = None, option_id: str | None = None) -> str:
    # a few hundred names, asked for tens of times in every plan: built once
    return "pathway__" + "__".join(str(p) for p in (pathway_id, step, option_id) if p is not None)


PLACEHOLDER_EXTRAS = {"extrahepatic_sites"}


def placeholders(template: str) -> set[str]:
    return set(template_names(template))


@lru_cache(maxsize=4096)
def template_names(template: str) -> frozenset[str]:
    """The {placeholders} of a reason template (parsed once per template)."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


@lru_cache(maxsize=16)
def load(guideline: str | None = None) -> KnowledgeBase:
    """Load, validate and compile the whole knowledge base for one governing guideline.

    The result is kept in the compiled cache (:mod:`nelm.cache`) under the knowledge
    base's content hash, so a new process reads it back instead of the YAML files."""
    from ..cache import cached

    return cached("knowledge", f"{content_hash()}|{guideline or ''}", lambda: _load(guideline))


def _load(guideline: str | None) -> KnowledgeBase:
    manifest = Manifest.model_validate(_yaml(KNOWLEDGE_DIR / "manifest.yaml"))
    guideline = guideline or manifest.default_guideline
    if guideline not in manifest.guidelines:
        raise ValueError(f"unknown guideline {guideline!r}; allowed: {', '.join(manifest.guidelines)}")
    derived = ClassificationFile.model_validate(_yaml(KNOWLEDGE_DIR / "classification.yaml")).derived
    criteria = [CriterionSet.model_validate(_yaml(p)) for p in sorted((KNOWLEDGE_DIR / "criteria").glob("*.yaml"))]
    options = load_options()
    missing = [o for o in OPTION_IDS if o not in {opt.id for opt in options}]
    if missing:
        raise ValueError(f"options without rules: {missing}")
    evidence = {r.id: r for r in load_records()}
    checks = ChecksFile.model_validate(_yaml(KNOWLEDGE_DIR / "checks.yaml")).checks
    assume = [(col, sql, COLUMN_TYPES[col]) for c in checks for col, sql in _check_columns(c).items()]

    nodes: list[Node] = []
    variant_nodes: list[tuple[str, str, Node]] = []
    for d in derived:
        nodes.append(_compile(d.name, _pick(d.sql, d.variants, guideline), f"derived {d.name}"))
        for v in d.variants:
            variant_nodes.append((d.name, v.guideline, _compile(f"{d.name}@{v.guideline}", v.sql, f"derived {d.name}")))
    for cs in criteria:
        for it in cs.items:
            col = item_column(cs.id, it.id)
            nodes.append(_compile(col, _pick(it.sql, it.variants, guideline), f"criterion {col}"))
            for v in it.variants:
                variant_nodes.append((col, v.guideline, _compile(f"{col}@{v.guideline}", v.sql, f"criterion {col}")))
        cols = [item_column(cs.id, it.id) for it in cs.items]
        # Kleene AND: one item not met settles the set; otherwise one unknown leaves it unknown.
        nodes.append(Node(cs.id, " AND ".join(cols), frozenset(cols), kind="all"))
    for opt in options:
        for r in opt.rules:
            nodes.append(_compile(rule_column(opt.id, r.id), r.when, f"option {opt.id} rule {r.id}"))
    plans = PathwaysFile.model_validate(_yaml(KNOWLEDGE_DIR / "pathways.yaml"))
    for pw in plans.pathways:
        nodes.append(_compile(pathway_column(pw.id), pw.when, f"pathway {pw.id}"))
        for i, step in enumerate(pw.steps):
            if step.if_:
                nodes.append(_compile(pathway_column(pw.id, i), step.if_, f"pathway {pw.id} step {i + 1}"))
            for o in step.options:
                if isinstance(o, StepOption) and o.if_:
                    nodes.append(_compile(pathway_column(pw.id, i, o.id), o.if_, f"pathway {pw.id} step {i + 1} {o.id}"))

    for i, a in enumerate(plans.assumptions):
        if a.when:
            nodes.append(_compile(assumption_column(i), a.when, f"assumption {a.field}"))

    inputs = set(COLUMN_TYPES)
    batches = _levels(nodes, inputs)
    all_columns = inputs | {n.column for n in nodes}
    for col, _, vn in variant_nodes:
        unknown = vn.roots - all_columns
        if unknown:
            raise ValueError(f"variant of {col}: unknown column(s) {sorted(unknown)}")

    kb = KnowledgeBase(version=manifest.version, sha256=content_hash(), guideline=guideline,
                       manifest=manifest, derived=derived, criteria=criteria, options=options,
                       evidence=evidence, checks=checks, pathways=plans.pathways, choices=plans.choices,
                       assumptions=plans.assumptions,
                       orders=OrdersFile.model_validate(_yaml(KNOWLEDGE_DIR / "orders.yaml")).orders,
                       assume_sql=assume, nodes=batches, variant_nodes=variant_nodes,
                       roots={n.column: n.roots for n in nodes} | {vn.column: vn.roots for _, _, vn in variant_nodes})
    _check_references(kb, all_columns)
    return kb


def _check_references(kb: KnowledgeBase, columns: set[str]) -> None:
    """Every cited source must be an evidence record; every placeholder a known value."""
    names = columns | PLACEHOLDER_EXTRAS | {f"{cs.id}__not_met" for cs in kb.criteria} | {
        f"{cs.id}__unknown" for cs in kb.criteria}
    problems = []

    def check(where: str, sources: list[str], template: str | None = None) -> None:
        for s in sources:
            if s not in kb.evidence:
                problems.append(f"{where}: cites unknown evidence {s!r}")
        if template:
            for p in placeholders(template) - names:
                problems.append(f"{where}: unknown placeholder {{{p}}}")

    for c in kb.checks:
        check(f"check {c.field}", c.sources)
    for d in kb.derived:
        check(f"derived {d.name}", d.sources + [s for v in d.variants for s in v.sources])
    for cs in kb.criteria:
        check(f"criteria {cs.id}", cs.sources)
        for it in cs.items:
            check(f"criteria {cs.id}.{it.id}", it.sources + [s for v in it.variants for s in v.sources], it.reason)
    for opt in kb.options:
        for r in opt.rules:
            check(f"option {opt.id} rule {r.id}", r.sources, r.reason)  # gates are expanded into rules
        check(f"option {opt.id} otherwise", opt.otherwise.sources, opt.otherwise.reason)
    ids = set(kb.option_ids)
    for c in kb.choices:
        check(f"choice {c.id}", c.sources)
        problems += [f"choice {c.id}: unknown option {o.id!r}" for o in c.options if o.id not in ids]
    for pw in kb.pathways:
        check(f"pathway {pw.id}", pw.sources + pw.nothing_now.sources)
        for i, step in enumerate(pw.steps):
            check(f"pathway {pw.id} step {i + 1}", step.sources)
            for o in step.options:
                oid = o if isinstance(o, str) else o.id
                if oid not in ids:
                    problems.append(f"pathway {pw.id} step {i + 1}: unknown option {oid!r}")
    for a in kb.assumptions:
        check(f"assumption {a.field}", a.sources)
        if a.field not in set(COLUMN_FIELDS.values()):
            problems.append(f"assumption {a.field!r}: not a patient field")
        for f in [*a.also, *a.also_if_not]:
            if f not in set(COLUMN_FIELDS.values()):
                problems.append(f"assumption {a.field!r}: {f!r} (also) is not a patient field")
    if problems:
        raise ValueError("knowledge base inconsistent:\n  " + "\n  ".join(problems))


def input_roots(kb: KnowledgeBase, column: str, null_columns: set[str],
                memo: dict[str, frozenset[str]] | None = None) -> frozenset[str]:
    """The unknown input columns a computed column's value hangs on.

    Walks the dependency graph through computed columns that are themselves unknown
    (a derived value that is known does not pass its own missing inputs on). ``memo``
    shares the walk between the columns of one assessment.
    """
    memo = {} if memo is None else memo
    got = memo.get(column)
    if got is not None:
        return got
    inputs, computed = _split_roots(kb).get(column, ((), ()))
    out = {r for r in inputs if r in null_columns}
    for r in computed:
        if r in null_columns:
            out |= input_roots(kb, r, null_columns, memo)
    memo[column] = got = frozenset(out)
    return got


# ---- the same walk on bit masks, for one patient's assessment (hundreds of walks each) ----

_INPUT_BITS = {c: 1 << i for i, c in enumerate(sorted(COLUMN_FIELDS))}
_BIT_COLUMNS = sorted(COLUMN_FIELDS)
_INPUT_BIT_ITEMS = tuple(_INPUT_BITS.items())
_FIELDS_OF_MASK: dict[int, list[str]] = {}


@per_object
def _masks(kb: KnowledgeBase) -> dict[str, tuple[int, tuple[str, ...]]]:
    """Each column's direct input roots as one bit mask, and its computed roots."""
    return {col: (sum(_INPUT_BITS[r] for r in inputs), computed) for col, (inputs, computed) in _split_roots(kb).items()}


class UnknownRoots:
    """:func:`input_roots` for one evaluated row, walked on bit masks.

    An assessment asks, for hundreds of columns, which missing inputs their value hangs
    on; a set union per step of the walk was most of the time of a sparse patient's
    assessment. The answer is the same as :func:`input_roots` (tests/test_roots.py)."""

    def __init__(self, kb: KnowledgeBase, null_columns: set[str]):
        self._masks = _masks(kb)
        # column -> None for an unknown column, 0 otherwise (``_null_get(c, 0) is None``: unknown)
        self._null_get: Any = dict.fromkeys(null_columns).get
        self._null_inputs = sum(map(_INPUT_BITS.__getitem__, null_columns & _INPUT_BITS.keys()))
        self._memo: dict[str, int] = {}

    @classmethod
    def of_row(cls, kb: KnowledgeBase, row: dict[str, Any]) -> UnknownRoots:
        """``UnknownRoots(kb, {the columns of row that are None})``, the row read as the walk
        reaches each column rather than searched whole first: the plan asks about a few
        columns of each of its what-ifs, whose rows hold some 500 (tests/test_roots.py)."""
        self = cls.__new__(cls)
        self._masks = _masks(kb)
        # the row read as the walk asks (a dict lookup per column walked, where a small
        # container class's method call was)
        self._null_get = row.get
        null_inputs, get = 0, row.get
        for c, bit in _INPUT_BIT_ITEMS:
            if get(c, 0) is None:
                null_inputs |= bit
        self._null_inputs = null_inputs
        self._memo = {}
        return self

    def mask(self, column: str) -> int:
        got = self._memo.get(column)
        if got is None:
            direct, computed = self._masks.get(column, (0, ()))
            got = direct & self._null_inputs
            memo, null_get = self._memo, self._null_get
            for r in computed:
                if null_get(r, 0) is None:
                    got |= memo[r] if r in memo else self.mask(r)
            memo[column] = got
        return got

    def columns(self, column: str) -> list[str]:
        """The unknown input columns, in name order (bits are given in name order)."""
        m = self._memo.get(column)
        return columns_of_mask(self.mask(column) if m is None else m)

    def fields(self, column: str) -> list[str]:
        """The contract fields of those columns, sorted, each once."""
        m = self._memo.get(column)
        return fields_of_mask(self.mask(column) if m is None else m)


def columns_of_mask(m: int) -> list[str]:
    """The input columns of a bit mask of :class:`UnknownRoots`, in name order."""
    out = []
    while m:
        low = m & -m
        out.append(_BIT_COLUMNS[low.bit_length() - 1])
        m ^= low
    return out


def fields_of_mask(m: int) -> list[str]:
    """The contract fields of a bit mask of :class:`UnknownRoots`, sorted, each once."""
    got = _FIELDS_OF_MASK.get(m)
    if got is None:
        got = sorted({COLUMN_FIELDS[c] for c in columns_of_mask(m)})
        if len(_FIELDS_OF_MASK) < 65536:  # a pure function of the mask (bounded, not per patient)
            _FIELDS_OF_MASK[m] = got
    return list(got)


@per_object
def _split_roots(kb: KnowledgeBase) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Each column's direct roots, split into input and computed columns (once per knowledge base)."""
    return {col: (tuple(r for r in roots if r in COLUMN_FIELDS), tuple(r for r in roots if r not in COLUMN_FIELDS))
            for col, roots in kb.roots.items()}
