"""Issue 22 item 4: screening speed in one run, each figure beside the earlier revision's (not a test).

    python benchmarks/bench_sql.py [--n 1000000] [--screen-n 100000] [--pg-n 20000]
                                   [--unknown-fraction 0.15] [--baseline REV] [--runs 1] [--json FILE]
                                   [--only sql]

Measures, on synthetic patients (``nelm synth``'s population, seed 1):

- ``evaluate_frame``: every criterion, rule and verdict column of ``--n`` patients (patients/s);
- ``nelm screen`` end to end (reading Parquet, validation, both passes, the plan, writing):
  ``--n`` patients with every fact known, and ``--screen-n`` with ``--unknown-fraction`` of the
  facts unknown (the rows whose plan rests on assumed facts are planned per case, so this one is
  measured on fewer rows; patients/s is what compares);
- the DuckDB view (``nelm sql --dialect duckdb``) on the same ``--n`` known patients, all
  threads: ``CREATE TABLE ... AS SELECT * FROM`` the view, against ``nelm screen``'s time on them;
- the PostgreSQL view on ``--pg-n`` patients with unknowns, on one core (no parallel workers,
  no JIT): every row fetched (patients/s), and the server process's CPU time for it when the
  server runs on this machine (``/proc``; less moved by other load than the wall time);
- Spark (when pyspark and Java are installed): the time to analyse the view (``spark.sql`` of
  the ``CREATE VIEW`` and of a ``SELECT`` from it, both eager), 2 local cores, in a fresh
  session (the JVM's own warm-up included) and once more in the same session.

``--only sql``: the three databases alone (no ``evaluate_frame``, no ``nelm screen``).

Each measurement runs in a fresh process with ``PYTHONPATH`` on this tree's ``src`` and, with
``--baseline REV``, on that revision's (``git archive``), in turns, so both see the same load.
Prints a Markdown table for BENCHMARKS.md. Nothing here passes or fails.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PG = os.environ.get("NELM_BENCH_PG", "host=127.0.0.1 dbname=test user=postgres")


# --------------------------------------------------------------------------- one process's measurements

def measure(args: argparse.Namespace) -> dict:
    import polars as pl

    from nelm.engine import evaluate_frame
    from nelm.knowledge import load
    from nelm.screen.flat import engine_frame
    from nelm.screen.run import screen
    from nelm.screen.sql import create_view, sql_table
    from nelm.screen.synth import synthesize, write_table

    kb = load()
    out: dict = {}
    tmp = Path(args.tmp)

    known = synthesize(args.n, seed=1, unknown_fraction=0.0)
    lay = known.with_row_index("__row", offset=1)
    if args.only == "sql":
        return out | databases(args, lay, tmp, create_view, sql_table, synthesize)
    frame = engine_frame(lay)
    evaluate_frame(frame.head(1000), kb)                 # compile the plan once
    t = time.perf_counter()
    evaluate_frame(frame, kb)
    out["evaluate_frame"] = {"n": args.n, "seconds": time.perf_counter() - t}

    src = tmp / "known.parquet"
    write_table(known, src)
    t = time.perf_counter()
    res = screen(src, tmp / "known_out.parquet")
    out["screen_known"] = {"n": res.assessed, "seconds": time.perf_counter() - t, "per_case": res.assumed}

    sparse = synthesize(args.screen_n, seed=1, unknown_fraction=args.unknown_fraction)
    src2 = tmp / "sparse.parquet"
    write_table(sparse, src2)
    t = time.perf_counter()
    res = screen(src2, tmp / "sparse_out.parquet")
    out["screen_unknown"] = {"n": res.assessed, "seconds": time.perf_counter() - t, "per_case": res.assumed,
                             "unknown_fraction": args.unknown_fraction}
    return out | databases(args, lay, tmp, create_view, sql_table, synthesize)


def databases(args: argparse.Namespace, lay, tmp: Path, create_view, sql_table, synthesize) -> dict:
    """The DuckDB, PostgreSQL and Spark figures (module docstring)."""
    out: dict = {}
    try:
        import duckdb

        table = tmp / "known_table.parquet"
        sql_table(lay).write_parquet(table)
        con = duckdb.connect()
        con.execute(f"CREATE TABLE patients AS SELECT * FROM read_parquet('{table}')")
        t = time.perf_counter()
        con.execute(create_view("patients", dialect="duckdb"))
        create = time.perf_counter() - t
        t = time.perf_counter()
        con.execute("CREATE TABLE screened AS SELECT * FROM nelm_assessment")
        out["duckdb"] = {"n": args.n, "seconds": time.perf_counter() - t, "create_view": create}
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what it could not measure
        out["duckdb"] = {"error": repr(exc)[:200]}

    try:
        import psycopg

        pg_lay = synthesize(args.pg_n, seed=3, unknown_fraction=args.unknown_fraction).with_row_index("__row", offset=1)
        table = sql_table(pg_lay)
        schema = f"bench_sql_{os.getpid()}"
        types = {"Float64": "double precision", "Boolean": "boolean", "String": "text", "Enum": "text",
                 "Int64": "bigint", "Int32": "integer", "UInt32": "bigint"}
        with psycopg.connect(PG, autocommit=True) as conn:
            cur = conn.cursor()
            cur.execute(f'CREATE SCHEMA "{schema}"')
            try:
                cols = ", ".join(f'"{c}" {types.get(type(t).__name__, "text")}' for c, t in table.schema.items())
                cur.execute(f'CREATE TABLE "{schema}".patients ({cols})')
                with cur.copy(f'COPY "{schema}".patients FROM STDIN') as copy:
                    for row in table.iter_rows():
                        copy.write_row(row)
                cur.execute(f'ANALYZE "{schema}".patients')
                cur.execute("SET max_parallel_workers_per_gather = 0")   # one core
                cur.execute("SET jit = off")
                cur.execute(create_view(f'"{schema}".patients', view=f'"{schema}".v', dialect="postgres"))
                cur.execute("SELECT pg_backend_pid()")
                server = Path(f"/proc/{cur.fetchone()[0]}/stat")
                c, t = _cpu(server), time.perf_counter()
                cur.execute(f'SELECT * FROM "{schema}".v')
                n = len(cur.fetchall())
                out["postgres"] = {"n": n, "seconds": time.perf_counter() - t}
                if c is not None and (c2 := _cpu(server)) is not None:
                    out["postgres"]["server_cpu"] = c2 - c
            finally:
                cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
    except Exception as exc:  # noqa: BLE001
        out["postgres"] = {"error": repr(exc)[:200]}

    out["spark"] = spark_analysis(create_view, sql_table, synthesize)
    return out


def spark_analysis(create_view, sql_table, synthesize) -> dict:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return {"error": "pyspark not installed"}
    spark = (SparkSession.builder.master("local[2]").appName("nelm-bench")
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        lay = synthesize(200, seed=4, unknown_fraction=0.15).with_row_index("__row", offset=1)
        spark.createDataFrame(sql_table(lay).to_pandas()).createOrReplaceTempView("patients")
        text = create_view("patients", view="nelm_assessment", dialect="spark").rstrip().rstrip(";")
        text = text.replace("CREATE VIEW", "CREATE OR REPLACE TEMPORARY VIEW", 1)
        times = []
        for _ in range(2):      # the first in a fresh session (the JVM warming up), then again
            t = time.perf_counter()
            spark.sql(text)
            spark.sql("SELECT * FROM nelm_assessment").columns
            times.append(time.perf_counter() - t)
        return {"seconds": times[0], "again": times[1]}
    finally:
        spark.stop()


def _cpu(stat: Path) -> float | None:
    """A local process's CPU time (user + system, seconds), None when it cannot be read."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


# --------------------------------------------------------------------------- the run

def export(ref: str, into: Path) -> Path:
    import tarfile
    from io import BytesIO

    data = subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run_child(src: Path, args: argparse.Namespace, tmp: Path) -> dict:
    # (the tree's src first; what PYTHONPATH held already after it, e.g. where pyspark is installed)
    path = [str(src)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = os.environ | {"PYTHONPATH": os.pathsep.join(path), "NELM_CACHE": "0"}
    cmd = [sys.executable, __file__, "--child", "--n", str(args.n), "--screen-n", str(args.screen_n),
           "--pg-n", str(args.pg_n), "--unknown-fraction", str(args.unknown_fraction), "--tmp", str(tmp),
           "--only", args.only]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=7200)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"measurement with {src} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rate(fig: dict) -> str:
    if "error" in fig:
        return "n/a (" + fig["error"][:60] + ")"
    return f"{fig['n'] / fig['seconds']:,.0f}/s ({fig['n']:,} in {fig['seconds']:.2f} s)"


def table(results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    rows = []

    def best(label: str, key: str) -> dict:
        figs = [r[key] for r in results[label] if "error" not in r[key]]
        return min(figs, key=lambda f: f["seconds"] / max(f.get("n", 1), 1)) if figs else results[label][0][key]

    goals = {
        "evaluate_frame": ">= 10 M patients/s",
        "screen_known": "1,000,000 in <= 2 s (start-up and I/O included)",
        "screen_unknown": f"1,000,000 with {args.unknown_fraction:.0%} unknown in <= 2 s",
        "duckdb": "within 3x of nelm screen on the same rows",
        "postgres": ">= 50,000 patients/s on one core",
        "spark": "analysis <= 5 s",
    }
    names = {"evaluate_frame": "`evaluate_frame`", "screen_known": "`nelm screen`, every fact known",
             "screen_unknown": f"`nelm screen`, {args.unknown_fraction:.0%} of facts unknown",
             "duckdb": "DuckDB view, every fact known (all threads)",
             "postgres": f"PostgreSQL view, {args.unknown_fraction:.0%} unknown (one core, no JIT)",
             "spark": "Spark: analysing the view"}
    labels = list(results)
    rows.append("| path | goal | " + " | ".join(labels) + " |")
    rows.append("|---|---|" + "---|" * len(labels))
    for key in goals:
        if not all(key in r for label in labels for r in results[label]):
            continue        # (not measured: --only)
        cells = []
        for label in labels:
            f = best(label, key)
            if key == "spark":
                cells.append(f"{f['seconds']:.1f} s ({f['again']:.1f} s again)" if "error" not in f
                             else "n/a (" + f["error"][:40] + ")")
            elif key == "duckdb" and "error" not in f and "screen_known" in results[label][0]:
                screen = best(label, "screen_known")
                cells.append(rate(f) + f"; {f['seconds'] / screen['seconds']:.1f}x nelm screen")
            elif key == "postgres" and "server_cpu" in f:
                cells.append(rate(f) + f"; server CPU {f['server_cpu']:.2f} s ({f['n'] / f['server_cpu']:,.0f}/s)")
            elif key.startswith("screen") and "error" not in f:
                cells.append(rate(f) + f"; {f['per_case']:,} planned per case")
            else:
                cells.append(rate(f))
        rows.append(f"| {names[key]} | {goals[key]} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--screen-n", type=int, default=100_000)
    ap.add_argument("--pg-n", type=int, default=20_000)
    ap.add_argument("--unknown-fraction", type=float, default=0.15)
    ap.add_argument("--baseline", help="git revision measured in turns with this tree")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", choices=("all", "sql"), default="all",
                    help="sql: the DuckDB, PostgreSQL and Spark figures alone")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    print(f"machine: {os.cpu_count()} cores, load average at start {load}", flush=True)
    with tempfile.TemporaryDirectory(prefix="nelm-bench-sql-") as d:
        trees = {"now": ROOT / "src"}
        if args.baseline:
            trees = {f"before ({args.baseline})": export(args.baseline, Path(d) / "baseline")} | trees
        results: dict[str, list[dict]] = {label: [] for label in trees}
        for run in range(args.runs):
            for label, src in trees.items():
                work = Path(d) / f"{label[:6]}-{run}"
                work.mkdir()
                got = run_child(src, args, work)
                results[label].append(got)
                print(f"run {run + 1}, {label}: {json.dumps(got)}", flush=True)
    print()
    print(table(results, args))
    if args.json:
        args.json.write_text(json.dumps({"load_average_at_start": load, "results": results}, indent=2))


if __name__ == "__main__":
    main()
