"""The Spark SQL view run in Spark: ``nelm sql --dialect spark`` as printed, over 2,000
synthetic patients with unknowns written to Parquet, in a local one-core SparkSession,
equals ``nelm screen`` on every row and column, NULL for NULL.

Needs the optional extra ``spark`` (pyspark) and a Java runtime (17 or later); skipped,
saying which is missing, otherwise. About a minute, most of it Spark analysing the view.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import polars as pl
import pytest

from nelm.knowledge import load
from nelm.screen.columns import assess_batch, output_columns
from nelm.screen.sql import create_view, sql_table
from nelm.screen.synth import synthesize

N = 2000


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return java


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'nelm[spark]')")
    if _java() is None:
        pytest.skip("no Java runtime for Spark (install a JRE 17+, e.g. apt-get install default-jre-headless)")
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[1]").appName("nelm-test")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "1")
               .config("spark.sql.catalogImplementation", "in-memory")
               .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
               # whole-stage code generation on, Spark's default and a cluster's: Spark generates
               # code for the stages it can and itself leaves out any stage wider than
               # spark.sql.codegen.maxFields (the view's projections are hundreds of columns);
               # no stage fails to compile (pyspark 4.3: no 64 KB failure logged at WARN)
               .config("spark.sql.codegen.wholeStage", "true")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_view_equals_screen(spark, tmp_path):
    lay = synthesize(N, seed=21, unknown_fraction=0.25).with_row_index("__row", offset=1)
    expected, n_assumed = assess_batch(lay, load())
    assert n_assumed > 0 and expected["plan.leading"].null_count() < N
    path = tmp_path / "patients.parquet"
    sql_table(lay).write_parquet(path)
    spark.sql(f"CREATE TABLE patients USING parquet LOCATION '{path.as_uri()}'")
    try:
        spark.sql(create_view("patients", dialect="spark"))      # the statement exactly as nelm sql prints it
        got = pl.from_arrow(spark.sql("SELECT * FROM nelm_assessment").toArrow())
    finally:
        spark.sql("DROP VIEW IF EXISTS nelm_assessment")
        spark.sql("DROP TABLE IF EXISTS patients")
    assert got.height == N
    got = got.join(expected.select(pl.Series("id", lay["id"])).with_row_index("__i"), on="id").sort("__i")
    # the view gives the plan where it rests on nothing assumed, NULL where nelm screen plans per case
    settled = (got["plan.status"] == "determined").fill_null(False)
    assert settled.sum() > 0
    for c in output_columns(load()):
        both = pl.DataFrame({"screen": expected[c], "spark": got[c]}).with_row_index()
        if c.startswith("plan."):
            both = both.filter(settled)
        diff = both.filter(pl.col("screen").ne_missing(pl.col("spark")))
        assert diff.height == 0, f"{c}: {diff.head(5)}"
