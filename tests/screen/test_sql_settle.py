"""Issues 18 and 22: ``nelm sql --settle`` settles plans resting on assumed facts inside the
database. The script's table equals ``nelm screen`` on every row, ``plan.leading`` and
``plan.status`` NULL for NULL (and every other column), in DuckDB and in PostgreSQL.

The patients are sparse random documents (``nelm.testing.random_patient_dict``, 20-60 % of
their facts unknown) and synthetic ones with a quarter unknown: most of their plans rest on
assumed facts. Below ``nelm.screen.columns.SETTLE_FROM`` open rows ``nelm screen`` plans
those rows through the per-case planner (``nelm.assessment.plan_status_of``, what
``assess()`` gives), so the comparison is with the per-case plan itself.
"""
from __future__ import annotations

import random

import polars as pl
import pytest

from nelm.knowledge import load
from nelm.patient import InvalidPatient, validate_patient
from nelm.screen.columns import SETTLE_FROM, assess_batch, output_columns
from nelm.screen.layout import SCHEMA, document_row
from nelm.screen.sql import sql_table
from nelm.screen.sql_settle import settle_script
from nelm.screen.synth import synthesize
from nelm.testing import pg_frame, random_patient_dict

N_RANDOM = 700
N_SYNTH = 500


def _layout() -> pl.DataFrame:
    rng = random.Random(18)
    docs = []
    while len(docs) < N_RANDOM:
        try:
            docs.append(validate_patient(random_patient_dict(rng, rng.choice([0.2, 0.4, 0.6]))).model_dump())
        except InvalidPatient:
            continue
    rand = pl.DataFrame([document_row(d) for d in docs], schema={k: v for k, v in SCHEMA.items() if k != "id"})
    rand = rand.insert_column(0, pl.Series("id", [f"r{i}" for i in range(N_RANDOM)]))
    synth = synthesize(N_SYNTH, seed=5, unknown_fraction=0.25).with_columns(pl.format("s{}", pl.col("id")).alias("id"))
    return pl.concat([rand, synth.select(rand.columns)], how="vertical_relaxed").with_row_index("__row", offset=1)


@pytest.fixture(scope="module")
def case():
    lay = _layout()
    expected, n_open = assess_batch(lay, load())
    assert 300 < n_open < SETTLE_FROM      # many plans on assumed facts, each planned per case
    expected = expected.with_columns(lay["id"])
    statuses = set(expected["plan.status"].to_list())
    assert {"determined", "conditional", "undetermined"} <= statuses, statuses
    return sql_table(lay), expected


def _compare(expected: pl.DataFrame, got: pl.DataFrame) -> None:
    got = expected.select("id").join(got, on="id", how="left")
    assert got.height == expected.height
    for c in output_columns(load()):
        both = pl.DataFrame({"id": expected["id"], "screen": expected[c], "sql": got[c]})
        diff = both.filter(pl.col("screen").ne_missing(pl.col("sql")))
        assert diff.height == 0, f"{c}: {diff.head(8)}"


def _statements(script: str) -> list[str]:
    return [s for s in script.split(";\n") if s.strip()]


def test_settle_script_in_duckdb_equals_screen(case):
    duckdb = pytest.importorskip("duckdb")
    table, expected = case
    con = duckdb.connect()
    con.register("src", table.to_arrow())
    con.execute("CREATE TABLE patients AS SELECT * FROM src")
    for statement in _statements(settle_script("patients", dialect="duckdb")):
        con.execute(statement)
    _compare(expected, pl.from_arrow(con.sql("SELECT * FROM nelm_assessment").to_arrow_table()))
    # the script leaves its table and nothing else
    assert {r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()} == {
        "patients", "nelm_assessment", "src"}   # (src: the registered frame)


def test_settle_script_in_postgres_equals_screen(case, pg_schema):
    table, expected = case
    cur, schema, load_table = pg_schema
    load_table(table)
    cur.execute(settle_script(f'"{schema}".patients', view=f'"{schema}".nelm_assessment', dialect="postgres"))
    got = pg_frame(cur, f'SELECT * FROM "{schema}".nelm_assessment')
    _compare(expected, got)
    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
    assert {r[0] for r in cur.fetchall()} == {"patients", "nelm_assessment"}


def test_settle_script_reads_only_the_columns_the_table_has(case):
    """--columns: a column the table lacks is unknown in every world, as in the plain view."""
    duckdb = pytest.importorskip("duckdb")
    table, _ = case
    small = table.head(300).drop("liver.resectable", "course.status")
    lay = _layout().head(300).with_columns(pl.lit(None, dtype=SCHEMA["liver.resectable"]).alias("liver.resectable"),
                                           pl.lit(None, dtype=SCHEMA["course.status"]).alias("course.status"))
    expected, _ = assess_batch(lay, load())
    con = duckdb.connect()
    con.register("src", small.to_arrow())
    con.execute("CREATE TABLE patients AS SELECT * FROM src")
    for statement in _statements(settle_script("patients", dialect="duckdb", columns=small.columns)):
        con.execute(statement)
    _compare(expected.with_columns(lay["id"]), pl.from_arrow(con.sql("SELECT * FROM nelm_assessment").to_arrow_table()))


@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "spark"])
def test_settle_script_renders_in_every_dialect(dialect):
    import sqlglot

    script = settle_script("registry.patients", dialect=dialect)
    statements = _statements(script)
    assert statements[-1].startswith("DROP TABLE")
    assert sum(s.startswith("CREATE VIEW") and "_eval" in s.split(" AS")[0] for s in statements) == 1   # the view once
    for s in statements[:60]:
        sqlglot.parse_one(s, read=dialect)


def test_cli_prints_the_script():
    from typer.testing import CliRunner

    from nelm.cli import app

    res = CliRunner().invoke(app, ["sql", "--table", "patients", "--settle", "--dialect", "duckdb", "--view", "screened"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("DROP VIEW IF EXISTS") and "CREATE TABLE screened AS" in res.output
    res = CliRunner().invoke(app, ["sql", "--table", "patients", "--settle", "--select", "plan.leading"])
    assert res.exit_code == 2
