"""``knowledge/outcomes.yaml``: which published cohorts match a patient, as data.

The file is validated once (:func:`load_spec`); its conditions are compiled once per
knowledge base (:func:`matcher`) and evaluated over the patient's one evaluated row
in a single Polars ``select``. Null (unknown) is never a match.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from ..knowledge import placeholders
from ..yamlio import read_yaml
from pydantic import BaseModel, ConfigDict, Field

OUTCOMES_FILE = Path(__file__).resolve().parent.parent / "knowledge" / "outcomes.yaml"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first validation: a cached knowledge base never validates


class ArmSpec(_Record):
    arm: str = Field(description="the record's outcomes[].arm, verbatim")
    label: str | None = Field(None, description="short legend label; default the record's arm")


class CohortSpec(_Record):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    source: str = Field(description="evidence record id")
    endpoint: Literal["os", "pfs", "ttp"]
    title: str
    start: str = Field(description="time zero of the curve, e.g. 'randomisation'")
    population: str | None = Field(None, description="default: the record's population")
    hazard_ratio: str | None = Field(None, description="arm of the record's hazard_ratio outcome comparing the arms")
    eligible: str | None = Field(None, description="Polars SQL: the trial's main inclusion criteria; "
                                                   "the cohort is never shown to a patient they exclude")
    arms: list[ArmSpec] = Field(min_length=1)


class Entry(_Record):
    cohort: str
    when: str | None = Field(None, description="Polars SQL; absent = a general cohort of the option")
    reason: str


class RiskFactorSpec(_Record):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    source: str
    arm: str | None = Field(None, description="the record's hazard_ratio outcome arm; null when no HR is reported")
    factor: str
    effect: str | None = None
    when: str
    reason: str
    cohorts: list[str] = Field(min_length=1)


class OutcomesFile(_Record):
    cohorts: list[CohortSpec]
    options: dict[str, list[Entry]]
    risk_factors: list[RiskFactorSpec] = Field(default_factory=list)


@lru_cache(maxsize=4)
def load_spec(path: Path = OUTCOMES_FILE) -> OutcomesFile:
    data = read_yaml(path)
    try:
        spec = OutcomesFile.model_validate(data)
    except Exception as exc:  # a data bug: name the file
        raise ValueError(f"{path.name}: {exc}") from exc
    ids = [c.id for c in spec.cohorts]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"{path.name}: cohort ids defined twice: {dup}")
    known = set(ids)
    bad = [f"{opt}: {e.cohort}" for opt, entries in spec.options.items() for e in entries if e.cohort not in known]
    bad += [f"risk factor {r.id}: {c}" for r in spec.risk_factors for c in r.cohorts if c not in known]
    if bad:
        raise ValueError(f"{path.name}: unknown cohort(s): {bad}")
    return spec


def compile_condition(sql: str, where: str) -> Any:
    import polars as pl

    try:
        return pl.sql_expr(sql)
    except Exception as exc:
        raise ValueError(f"outcomes.yaml {where}: cannot compile {sql!r}: {exc}") from exc


@dataclass
class Matcher:
    """Every condition of outcomes.yaml compiled, with the dtypes of the columns it reads."""

    names: dict[str, str]            # condition name (entry / risk factor) -> compiled column
    sql: dict[str, str]              # compiled column -> its SQL (one per distinct SQL text)
    dtypes: dict[str, str]           # only the columns the conditions read -> Polars dtype name

    def __getstate__(self) -> dict[str, Any]:  # the Polars objects are rebuilt, never pickled
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_pl_")}

    @property
    def exprs(self) -> list[Any]:
        """The conditions as Polars expressions (Boolean), one per distinct SQL text."""
        if "_pl_exprs" not in self.__dict__:
            import polars as pl

            self.__dict__["_pl_exprs"] = [compile_condition(sql, col).cast(pl.Boolean).alias(col)
                                          for col, sql in self.sql.items()]
        return self.__dict__["_pl_exprs"]

    @property
    def schema(self) -> dict[str, Any]:
        """Polars dtypes of the columns the conditions read."""
        import polars as pl

        return {c: getattr(pl, t)() if isinstance(t, str) else t for c, t in self.dtypes.items()}

    def _python(self) -> Any:
        if "_pl_python" not in self.__dict__:
            from .. import rowcode

            try:
                source = rowcode.function_source("match", [(col, rowcode.translate(sql), "bool")
                                                           for col, sql in self.sql.items()])
                self.__dict__["_pl_python"] = rowcode.compile_functions(source)["match"]
            except rowcode.Unsupported:
                self.__dict__["_pl_python"] = None
        return self.__dict__["_pl_python"]

    def evaluate(self, row: dict[str, Any]) -> dict[str, bool | None]:
        """Every condition's value for one evaluated row: True, False or None (unknown)."""
        if not self.sql:
            return {}
        if all(col in row for col in self.names.values()):
            # evaluated already, beside the rules, by the engine's single pass (engine.assess)
            return {name: row[col] for name, col in self.names.items()}
        code = self._python()
        if code is not None:  # the same SQL as Python (nelm.rowcode), no Polars query for one row
            got = code({c: row.get(c) for c in self.dtypes})
            return {name: got[col] for name, col in self.names.items()}
        import polars as pl

        frame = pl.from_dicts([{c: row.get(c) for c in self.schema}], schema=self.schema)
        got = frame.select(self.exprs).row(0, named=True)
        return {name: got[col] for name, col in self.names.items()}


def entry_column(option: str, index: int) -> str:
    return f"{option}#{index}"


def risk_column(factor_id: str) -> str:
    return f"risk#{factor_id}"


_lock = threading.Lock()
_matchers: dict[tuple[str, str], Matcher] = {}


def kb_schema(kb: Any) -> dict[str, Any]:
    """Column dtypes of an evaluated row: every input, derived, criterion and rule column."""
    from ..engine import _lazy, patients_frame

    # only the schema is needed: Polars resolves it from the plan without running it
    empty = patients_frame([]).lazy()
    return dict(_lazy(empty, kb, True, True, None).collect_schema())


def matcher(kb: Any) -> Matcher:
    key = (kb.sha256, kb.guideline)
    m = _matchers.get(key)
    if m is not None:
        return m
    with _lock:
        m = _matchers.get(key)
        if m is None:
            from ..cache import cached

            m = cached("matcher", f"{kb.sha256}|{kb.guideline}", lambda: build_matcher(load_spec(), kb_schema(kb)))
            _matchers[key] = m
    return m


def build_matcher(spec: OutcomesFile, full_schema: dict[str, Any]) -> Matcher:
    names: dict[str, str] = {}
    by_sql: dict[str, str] = {}
    sqls: dict[str, str] = {}
    roots: set[str] = set()
    problems: list[str] = []

    def add(name: str, sql: str, where: str) -> None:
        key = " ".join(sql.split())
        if key not in by_sql:               # the same condition text is compiled once
            expr = compile_condition(sql, where)
            cols = set(expr.meta.root_names())
            unknown = cols - set(full_schema)
            if unknown:
                problems.append(f"{where}: unknown column(s) {sorted(unknown)}")
            roots.update(cols & set(full_schema))
            by_sql[key] = f"outcome__c{len(sqls)}"
            sqls[by_sql[key]] = sql
        names[name] = by_sql[key]

    eligible = {c.id: c.eligible for c in spec.cohorts}
    for opt, entries in spec.options.items():
        for i, e in enumerate(entries):
            for p in placeholders(e.reason) - set(full_schema):
                problems.append(f"option {opt} entry {i} ({e.cohort}): unknown placeholder {{{p}}}")
            # an entry shows its cohort only to patients the trial would have enrolled
            parts = [f"({x})" for x in (e.when, eligible[e.cohort]) if x]
            if parts:
                add(entry_column(opt, i), " AND ".join(parts), f"option {opt} entry {i} ({e.cohort})")
    for r in spec.risk_factors:
        for p in placeholders(r.reason) - set(full_schema):
            problems.append(f"risk factor {r.id}: unknown placeholder {{{p}}}")
        add(risk_column(r.id), r.when, f"risk factor {r.id}")
    if problems:
        raise ValueError("outcomes.yaml inconsistent:\n  " + "\n  ".join(problems))
    # the matcher evaluates one patient's row, where a category (Enum) column holds plain strings
    dtypes = {c: "String" if type(full_schema[c]).__name__ in ("Enum", "Categorical") else str(full_schema[c])
              for c in sorted(roots)}
    return Matcher(names=names, sql=sqls, dtypes=dtypes)
