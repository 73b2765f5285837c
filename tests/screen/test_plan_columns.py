"""The parts of the SQL view's plan.leading that are written differently from the engine's
own code, each checked against that code on every combination (or a seeded sample) of
its inputs — beyond the 20,000-patient comparisons of test_differential.py:

- the walk through the pathways in closed form, against the sequential walk it restates;
- the verdicts with the caps in closed form, against ``nelm.engine.resolve_verdict``;
- the table's sites columns (listed or not) and the view's filling-in.
"""
from __future__ import annotations

import itertools
import random

import polars as pl
import pytest
from pydantic import BaseModel
from sqlglot import exp

from nelm.engine import resolve_verdict
from nelm.knowledge import load, rule_column
from nelm.patient import SITE_COLUMNS, Patient, _flat_args
from nelm.engine import plan_program
from nelm.screen.sql import sql_table
from nelm.screen.sql_build import Pipeline, World, q
from nelm.screen.synth import synthesize

duckdb = pytest.importorskip("duckdb")


def _run(columns: dict[str, exp.Expression], outputs: list[str], table: pl.DataFrame) -> pl.DataFrame:
    """Evaluate named SQL columns over ``table`` in DuckDB, through the view's own Pipeline."""
    pipe = Pipeline()
    pipe.add("test", columns)
    query = pipe.query(exp.to_table("t"), [(o, q(o)) for o in outputs])
    con = duckdb.connect()
    con.register("t", table.to_arrow())
    return pl.from_arrow(con.sql(query.sql(dialect="duckdb")).to_arrow_table())


# --------------------------------------------------------------------------- the walk

def _sequential_walk(values: list[bool | None], offers: list[bool]) -> tuple[int | None, set[int]]:
    """The walk as a loop: the first pathway that holds and offers an option is followed; the pathway
    followed and the unknown ones read before it."""
    unknown: list[int] = []
    fallback = None
    for j, (value, offer) in enumerate(zip(values, offers)):
        if value is None:
            unknown.append(j)
            continue
        if value is not True:
            continue
        if offer:
            return j, set(unknown)
        fallback = fallback or (j, list(unknown))
        if unknown:
            break
    return (fallback[0], set(fallback[1])) if fallback else (None, set(unknown))


def test_walk_in_closed_form_is_the_sequential_walk():
    n = 5
    rows = [(values, offers) for values in itertools.product((True, False, None), repeat=n)
            for offers in itertools.product((True, False), repeat=n)]
    table = pl.DataFrame({**{f"p{j}": [v[j] for v, _ in rows] for j in range(n)},
                          **{f"o{j}": [o[j] for _, o in rows] for j in range(n)}},
                         schema={**{f"p{j}": pl.Boolean for j in range(n)}, **{f"o{j}": pl.Boolean for j in range(n)}})
    name = lambda s: f"w__{s}"  # noqa: E731
    cols = plan_program.walk([q(f"p{j}") for j in range(n)], [q(f"o{j}") for j in range(n)], name)
    got = _run(cols, [name("followed")] + [name(f"unknown{j}") for j in range(n)], table)
    for i, (values, offers) in enumerate(rows):
        followed, unknown = _sequential_walk(list(values), list(offers))
        row = got.row(i, named=True)
        assert row[name("followed")] == followed, (values, offers)
        read = {j for j in range(n) if row[name(f"unknown{j}")] and (followed is None or j < followed)}
        assert read == unknown, (values, offers)


# --------------------------------------------------------------------------- verdicts

@pytest.mark.parametrize("guideline", [None, "esmo2020"])
def test_verdicts_in_closed_form_equal_the_engines(guideline):
    """Every option, its rules' conditions true, false or unknown at random (and all the
    combinations of its caps): the SQL mask of possible verdicts equals resolve_verdict's."""
    from nelm.screen.sql import verdicts

    kb = load(guideline)
    w = World(prefix="", input_prefix="", filled_prefix=None)
    rnd = random.Random(7)
    for opt in kb.options:
        cols = [rule_column(opt.id, r.id) for r in opt.deciding + opt.caps]
        caps = [rule_column(opt.id, r.id) for r in opt.caps]
        rows = []
        for _ in range(600):
            row = {c: rnd.choice((True, False, None, None)) for c in cols}
            rows.append(row)
        for combo in itertools.product((True, False, None), repeat=len(caps)):
            for _ in range(5):
                rows.append({c: rnd.choice((True, False, None)) for c in cols} | dict(zip(caps, combo)))
        table = pl.DataFrame(rows, schema={c: pl.Boolean for c in cols})
        got = _run(verdicts(kb, w, [opt]), [w.possible(opt.id)], table)[w.possible(opt.id)].to_list()
        expected = [resolve_verdict(opt, row)[0] for row in rows]
        assert got == expected, opt.id


# --------------------------------------------------------------------------- contradictions

def _models() -> list[tuple[str, type[BaseModel]]]:
    """The patient model and its sections, each with its dotted prefix."""
    out, stack = [], [("", Patient)]
    while stack:
        prefix, model = stack.pop()
        out.append((prefix, model))
        for name, info in model.model_fields.items():
            sub = next((a for a in _flat_args(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)
            if sub is not None and prefix + name != "prior_therapies":
                stack.append((prefix + name + ".", sub))
    return out


def test_table_lists_sites_as_given():
    """``extrahepatic.sites.<site>``: listed or not (false for each when the list is known
    empty, NULL when unknown), whatever extrahepatic.present says; the view fills in."""
    lay = synthesize(400, seed=3, unknown_fraction=0.3).with_row_index("__row", offset=1)
    table = sql_table(lay)
    for site_col in SITE_COLUMNS:
        site = site_col.removeprefix("extrahepatic_sites_")
        expected = lay.select(pl.when(pl.col("extrahepatic.sites").is_not_null())
                              .then(pl.col("extrahepatic.sites").list.contains(site)))
        assert table[f"extrahepatic.sites.{site}"].to_list() == expected.to_series().to_list()
    empty_unknown = lay.select((pl.col("extrahepatic.sites").list.len() == 0)
                               & pl.col("extrahepatic.present").is_null()).to_series().fill_null(False)
    assert empty_unknown.any()   # the case the table keeps and the engine's flat view loses


# --------------------------------------------------------------------------- the view's shape

@pytest.mark.parametrize("guideline", sorted(load().manifest.guidelines))
def test_view_stays_within_what_the_databases_accept(guideline):
    """At most 1,664 columns in any select list (PostgreSQL's limit), and a chain of CTEs
    short enough for Spark's analyzer: it resolves about one CTE per iteration of a batch
    limited to 100 (spark.sql.analyzer.maxIterations); Spark 4.0 needed 56 iterations for the
    31 CTEs of this view. Runs without Spark or PostgreSQL, so a knowledge base that grows
    past either limit fails here first."""
    from nelm.screen.sql import view_query

    query = view_query(load(guideline), exp.to_table("patients"))
    ctes = (query.args.get("with_") or query.args["with"]).expressions
    assert len(ctes) <= 45
    width: dict[str, int] = {}
    for cte in ctes:
        select = cte.this
        source = select.args["from_"].this if "from_" in select.args else select.args["from"].this
        stars = sum(isinstance(e, exp.Star) for e in select.expressions)
        width[cte.alias] = len(select.expressions) - stars + (width[source.name] if stars else 0)
    assert max(width.values()) < 1664, max(width.items(), key=lambda kv: kv[1])
