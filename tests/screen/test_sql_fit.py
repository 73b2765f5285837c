"""Issue 22 item 3: ``nelm sql`` fits the table it is given. With ``--columns`` or
``--database`` the view reads only the columns the table has and takes every other input
column as unknown, as ``nelm screen`` takes a column its input lacks; ``--select`` makes it
compute only the output columns chosen.

The tables are built from random patients (``nelm.testing.random_patient_dict`` and the
synthetic population) with a random third of the input fields dropped; the view's result
on them (DuckDB, PostgreSQL) is compared with ``nelm screen``'s on the same patients with
the same fields dropped from its input, column by column, NULL for NULL.
"""
from __future__ import annotations

import functools
import random
import uuid

import polars as pl
import pytest
from typer.testing import CliRunner

from nelm.cli import app
from nelm.knowledge import load
from nelm.patient import COLUMN_TYPES, SCALAR_FIELDS, validate_patient
from nelm.screen.columns import output_columns
from nelm.screen.layout import PRIOR, SCHEMA, SITES, document_row
from nelm.screen.run import screen
from nelm.screen.sql import build_view, create_view, sql_table, table_column
from nelm.screen.synth import synthesize, write_table
from nelm.testing import pg_frame, random_patient_dict

duckdb = pytest.importorskip("duckdb")

N_RANDOM = 800     # random_patient_dict documents (every field drawn, some unknown) ...
N_SYNTH = 800      # ... and synthetic patients (the reviews' marginals)
INPUT_FIELDS = [*SCALAR_FIELDS, SITES, PRIOR]   # what nelm screen's input can lack, column by column
TABLE_COLUMNS = [table_column(c) for c in COLUMN_TYPES]   # what the view's table can lack
runner = CliRunner()


def _field(table_col: str) -> str:
    """The input field a table column comes from (the two lists are spread over several)."""
    for lst in (SITES, PRIOR):
        if table_col.startswith(lst + "."):
            return lst
    return table_col


def _layout() -> pl.DataFrame:
    rng = random.Random(22)
    docs = [validate_patient(random_patient_dict(rng, 0.15)).model_dump() for _ in range(N_RANDOM)]
    rand = pl.DataFrame([document_row(d) for d in docs], schema={k: v for k, v in SCHEMA.items() if k != "id"})
    rand = rand.insert_column(0, pl.Series("id", [f"r{i}" for i in range(N_RANDOM)]))
    synth = synthesize(N_SYNTH, seed=3, unknown_fraction=0.1).with_columns(pl.format("s{}", pl.col("id")).alias("id"))
    return pl.concat([rand, synth.select(rand.columns)], how="vertical_relaxed").with_row_index("__row", offset=1)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """The patients, the fields dropped, the view's table without them, and nelm screen's
    output on the patients without them (through the command's own function and files)."""
    lay = _layout()
    dropped = set(random.Random(7).sample(INPUT_FIELDS, len(INPUT_FIELDS) // 3))
    assert {SITES, PRIOR} & dropped or any(f.startswith("extrahepatic.") for f in dropped)
    full = sql_table(lay)
    table = full.drop([c for c in full.columns if _field(c) in dropped])
    tmp = tmp_path_factory.mktemp("fit")
    source = tmp / "patients.parquet"
    write_table(lay.drop(["__row", *dropped]), source)
    screen(source, tmp / "screened.parquet")
    expected = pl.read_parquet(tmp / "screened.parquet")
    # the dropped fields matter: nelm screen on the whole table differs (else the test proves little);
    # shown on the first 400 patients, which is enough for it (screening all of them again cost
    # more than any test of the module)
    write_table(lay.head(400).drop("__row"), tmp / "whole.parquet")
    screen(tmp / "whole.parquet", tmp / "whole_out.parquet")
    whole = pl.read_parquet(tmp / "whole_out.parquet")
    part = expected.head(400)
    assert part["id"].equals(whole["id"])
    assert any(not part[c].equals(whole[c], null_equal=True) for c in output_columns(load())), dropped
    return lay, dropped, table, expected


def _compare(expected: pl.DataFrame, got: pl.DataFrame, columns: list[str]) -> None:
    """Every output column equal, NULL for NULL, row by row (joined on id); the plan where the
    view settles it (plan.status determined, or conditional on the leading option's unknown
    checks), NULL where nelm screen plans per case."""
    assert got.columns == ["id", "refused", *columns]
    assert got.height == expected.height
    got = expected.select("id").join(got, on="id", how="left", maintain_order="left")
    # the rows nelm screen assesses pass the view's consistency checks too
    assert got["refused"].null_count() == got.height
    if "plan.status" in columns:
        settled = got["plan.status"].is_not_null()
        assert (got["plan.status"] == "determined").sum() > 0 and (got["plan.status"] == "conditional").sum() > 0
    for c in columns:
        pair = pl.DataFrame({"id": expected["id"], "screen": expected[c], "sql": got[c]})
        if c.startswith("plan.") and "plan.status" in columns:
            assert got.filter(~settled)[c].null_count() == (~settled).sum(), c
            pair = pair.filter(settled)
        diff = pair.filter(pl.col("screen").ne_missing(pl.col("sql")))
        assert diff.height == 0, f"{c}: {diff.head(5)}"


@functools.cache
def _full_view() -> str:
    """The DuckDB view over every column (the same text for every test: written once)."""
    return create_view("patients", dialect="duckdb")


def _duckdb_run(table: pl.DataFrame, view_sql: str) -> pl.DataFrame:
    con = duckdb.connect()
    con.register("src", table.to_arrow())
    con.execute("CREATE TABLE patients AS SELECT * FROM src")
    con.execute(view_sql)
    return pl.from_arrow(con.sql("SELECT * FROM nelm_assessment").to_arrow_table())


def _cli_view(*args: str) -> str:
    result = runner.invoke(app, ["sql", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


# --------------------------------------------------------------------------- DuckDB

def test_duckdb_view_with_columns_equals_screen(case):
    lay, dropped, table, expected = case
    with pytest.raises(Exception, match="does not have a column"):   # the full view needs every column
        _duckdb_run(table, _full_view())
    view = _cli_view("--dialect", "duckdb", "--table", "patients", "--columns", ",".join(table.columns))
    _compare(expected, _duckdb_run(table, view), output_columns(load()))


def test_duckdb_view_with_database_equals_screen(case, tmp_path):
    """--database duckdb:///file: the columns read from the file's catalog (schema-qualified)."""
    lay, dropped, table, expected = case
    path = tmp_path / "hospital.duckdb"   # (a file named like the schema would make DuckDB's names ambiguous)
    con = duckdb.connect(str(path))
    con.register("src", table.to_arrow())
    con.execute("CREATE SCHEMA registry")
    con.execute("CREATE TABLE registry.patients AS SELECT * FROM src")
    con.close()
    result = runner.invoke(app, ["sql", "--table", "registry.patients", "--database", f"duckdb:///{path}"])
    assert result.exit_code == 0, result.output
    # the columns the table lacks are named on standard error (a misnamed column is no silent NULL)
    lacking = {c for c in TABLE_COLUMNS if c not in table.columns}
    assert lacking and all(c in result.stderr for c in lacking)
    con = duckdb.connect(str(path))
    con.execute(result.stdout)   # dialect duckdb, from the URL
    got = pl.from_arrow(con.sql("SELECT * FROM nelm_assessment").to_arrow_table())
    con.close()
    _compare(expected, got, output_columns(load()))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_missing_column_is_a_typed_null(case, seed):
    """Any set of table columns dropped — single sites or prior-therapy columns too, which
    nelm screen's input cannot lack one by one — gives what the full view gives on the
    table with those columns NULL: the lean view changes where the values come from, never
    what the rules make of them."""
    lay, _, _, _ = case
    full = sql_table(lay)
    gone = random.Random(seed).sample(TABLE_COLUMNS, len(TABLE_COLUMNS) // 3)
    nulled = full.with_columns(pl.lit(None, full.schema[c]).alias(c) for c in gone)
    want = _duckdb_run(nulled, _full_view())
    got = _duckdb_run(full.drop(gone), create_view("patients", dialect="duckdb", columns=full.drop(gone).columns))
    assert got.columns == want.columns
    for c in want.columns:
        assert want[c].equals(got[c], null_equal=True), c


# --------------------------------------------------------------------------- PostgreSQL

def test_postgres_view_fits_table_equals_screen(case, pg_conn, pg_schema):
    """A PostgreSQL table with only the kept columns: the view from --columns and the one
    from --database (columns read with sqlalchemy.inspect) both run and equal nelm screen."""
    lay, dropped, table, expected = case
    cur, schema, load_table = pg_schema
    load_table(table)
    url = f"postgresql+psycopg://{pg_conn.info.user}@{pg_conn.info.host}:{pg_conn.info.port}/{pg_conn.info.dbname}"
    views = {"columns": _cli_view("--table", f"{schema}.patients", "--view", f"{schema}.by_columns",
                                  "--columns", ",".join(table.columns)),
             "database": _cli_view("--table", f"{schema}.patients", "--view", f"{schema}.by_database",
                                   "--database", url)}
    assert views["columns"].replace("by_columns", "v") == views["database"].replace("by_database", "v")
    with pytest.raises(Exception, match="does not exist"):
        cur.execute(create_view(f"{schema}.patients", view=f"{schema}.full", dialect="postgres"))
    got = {}
    for name, text in views.items():
        cur.execute(text)
        got[name] = pg_frame(cur, f'SELECT * FROM "{schema}".by_{name}')
    for frame in got.values():
        _compare(expected, frame, output_columns(load()))


# --------------------------------------------------------------------------- --select

SELECT = "options.prrt.verdict,plan.*,criteria.milan_transplant"


def test_select_gives_only_those_columns(case, tmp_path):
    lay, dropped, table, expected = case
    columns = ["options.prrt.verdict", "plan.leading", "plan.status", "criteria.milan_transplant"]
    view = _cli_view("--dialect", "duckdb", "--table", "patients", "--columns", ",".join(table.columns),
                     "--select", SELECT)
    got = _duckdb_run(table, view)
    _compare(expected.select("id", *columns), got, columns)
    # and nelm screen --select gives the same columns (a few rows do: its plans per case are slow)
    source = tmp_path / "patients.parquet"
    write_table(lay.head(100).drop(["__row", *dropped]), source)
    screen(source, tmp_path / "out.parquet", select=SELECT.split(","))
    assert pl.read_parquet(tmp_path / "out.parquet").columns == ["id", *columns]


def test_select_computes_only_what_it_needs():
    """The view with --select reads only the table columns its outputs need, and computes no
    other output: a table holding just those columns lacks nothing."""
    full = build_view("patients", dialect="duckdb")
    one = build_view("patients", dialect="duckdb", select=["criteria.milan_transplant"])
    assert set(one.reads) < set(full.reads)
    assert len(one.sql) < len(full.sql) / 10
    # (no rule at all: an option's rule may be read under another option's name, the first
    # with the same condition, since the view computes each condition once)
    for absent in ("plan__", "possible__", "enets_curative_resection", "rule__"):
        assert absent in full.sql and absent not in one.sql, absent
    lean = build_view("patients", dialect="duckdb", select=["criteria.milan_transplant"], columns=one.reads)
    assert lean.unknown == [] and lean.sql == one.sql


# --------------------------------------------------------------------------- refusals

def _refused(*args: str) -> str:
    result = runner.invoke(app, ["sql", *args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nelm: "), result.stderr
    return lines[0]


def test_refuses_unreachable_database():
    line = _refused("--table", "registry.patients", "--database", "postgresql+psycopg://nelm:secret@127.0.0.1:1/test")
    assert "cannot reach database" in line and "127.0.0.1:1" in line
    assert "secret" not in line   # the password is not echoed


def test_refuses_missing_table(pg_conn, tmp_path):
    url = f"postgresql+psycopg://{pg_conn.info.user}@{pg_conn.info.host}:{pg_conn.info.port}/{pg_conn.info.dbname}"
    missing = f"no_such_schema_{uuid.uuid4().hex[:8]}.patients"
    assert f"table {missing} does not exist" in _refused("--table", missing, "--database", url)
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    assert "table patients does not exist" in _refused("--table", "patients", "--database", f"duckdb:///{path}")
    assert "no such file" in _refused("--table", "patients", "--database", f"duckdb:///{tmp_path / 'none.duckdb'}")


def test_refuses_unknown_select_name():
    line = _refused("--table", "patients", "--select", "options.prrt.verdict,options.nonsense.verdict")
    assert "'options.nonsense.verdict'" in line
    assert "allowed: " in line and all(c in line for c in output_columns(load()))


def test_refuses_other_mistakes():
    assert "not both" in _refused("--table", "patients", "--columns", "id", "--database", "duckdb:///x.duckdb")
    assert "'id'" in _refused("--table", "patients", "--columns", "patient_id,age_years")
    assert "does not match" in _refused("--table", "patients", "--dialect", "spark", "--database",
                                        "postgresql+psycopg://nelm@127.0.0.1:1/test")
    assert "--dialect" in _refused("--table", "patients", "--database", "mysql://nelm@127.0.0.1:1/test")


def test_id_column_and_defaults():
    """--id-column names the identifying column; without --columns/--database the view is
    the one it always was (every column expected)."""
    view = _cli_view("--dialect", "duckdb", "--table", "patients", "--columns", "patient_id,age_years",
                     "--id-column", "patient_id", "--select", "classification.who_grade")
    assert '"patient_id" AS "id"' in view
    assert _cli_view("--table", "registry.patients") == create_view("registry.patients") + "\n"


@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "spark"])
def test_fitted_view_renders_in_every_dialect(dialect):
    """The typed NULLs in each dialect's own type names, and the statement parses back."""
    import sqlglot

    text = create_view("registry.patients", dialect=dialect, columns=["id", "age_years"],
                       select=["options.ssa.verdict"])
    sqlglot.parse_one(text, read=dialect)
    assert {"postgres": "CAST(NULL AS DOUBLE PRECISION)", "duckdb": "CAST(NULL AS DOUBLE)",
            "spark": "CAST(NULL AS STRING)"}[dialect] in text
