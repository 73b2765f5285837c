"""Throughput of `nelm screen` on synthetic patients (issue 12; not a test, no timed assertions).

    PYTHONPATH=src python benchmarks/bench_screen.py [--n 1000000] [--unknown-fraction 0.0]
    PYTHONPATH=src python benchmarks/bench_screen.py --turns /tmp/base/src --input patients.parquet [--runs 2]

Writes the patients once as Parquet (`nelm synth`), then times `nelm screen` in process
(reading, validation, flat view, both evaluation passes, column-wise plan, writing), with
the rows whose plan rests on assumed facts (evaluated a second time) counted, and the parts
alone on one batch.

``--turns BASE_SRC``: the command itself (`nelm screen INPUT --out X.parquet --chart none`, a fresh
process each: start-up and I/O included), this tree's and another tree's (e.g. a base revision
exported with `git archive`) in turns, ``--runs`` each; wall and CPU time (children's
rusage) of each run, and whether the outputs are identical byte for byte. nelm's cache of the
compiled knowledge base and the plan's columns is warmed for both trees first.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import polars as pl

from nelm.knowledge import load
from nelm.screen import layout, validate
from nelm.screen.columns import assess_batch
from nelm.screen.flat import engine_frame
from nelm.screen.run import screen
from nelm.screen.synth import synthesize, write_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--unknown-fraction", type=float, default=0.0)
    ap.add_argument("--batch-size", type=int, default=200_000)
    ap.add_argument("--json", type=Path, help="write the whole-screen figures here (with and without 20 % unknown)")
    ap.add_argument("--turns", type=Path, help="another tree's src/: time the command of both in turns (see above)")
    ap.add_argument("--input", type=Path, help="with --turns: the table to screen")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    if args.turns:
        return turns(args.turns, args.input, args.runs)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, polars {pl.__version__}")
    load()
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "patients.parquet"
        t = time.perf_counter()
        frame = synthesize(args.n, seed=1, unknown_fraction=args.unknown_fraction)
        write_table(frame, src)
        print(f"synth {args.n:,} patients: {time.perf_counter() - t:.1f} s")
        # the parts, on one batch
        batch = frame.head(args.batch_size).with_row_index("__row", offset=1)
        kb = load()
        for name, fn in (("validate", lambda: validate.problems(batch)),
                         ("flat view", lambda: engine_frame(batch)),
                         ("columns without plan", lambda: assess_batch(batch, kb, [c for c in _cols(kb) if not c.startswith("plan.")])),
                         ("all columns, plan included", lambda: assess_batch(batch, kb))):
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            print(f"  {name:32s} {batch.height:,} rows {dt:6.2f} s  {batch.height / dt:,.0f} patients/s")
        figures = {}
        for select in (["criteria.*", "options.*.verdict", "classification.*"], None):
            out = Path(d) / "out.parquet"
            t = time.perf_counter()
            result = screen(src, out, select=select, batch_size=args.batch_size)
            dt = time.perf_counter() - t
            what = "without plan.leading" if select else "all columns"
            figures[f"{what}, {args.unknown_fraction:.0%} unknown"] = {
                "n": result.assessed, "seconds": dt, "assumed": result.assumed}
            print(f"nelm screen {what}: {result.assessed:,} patients in {dt:.1f} s = {result.assessed / dt:,.0f} patients/s"
                  f"; {result.assumed:,} plans rest on assumed facts")
        if args.json:
            # and the same table with a fifth of the facts unknown, all columns
            sparse = Path(d) / "sparse.parquet"
            write_table(synthesize(args.n, seed=2, unknown_fraction=0.2), sparse)
            t = time.perf_counter()
            result = screen(sparse, Path(d) / "out2.parquet", batch_size=args.batch_size)
            dt = time.perf_counter() - t
            figures["all columns, 20% unknown"] = {"n": result.assessed, "seconds": dt, "assumed": result.assumed}
            print(f"nelm screen all columns, 20 % unknown: {result.assessed:,} patients in {dt:.1f} s; "
                  f"{result.assumed:,} plans rest on assumed facts")
            args.json.write_text(json.dumps(figures, indent=2))


def turns(base_src: Path, table: Path, runs: int) -> None:
    import filecmp
    import resource
    import subprocess
    import sys

    here = Path(__file__).resolve().parents[1] / "src"
    cmd = "import sys; sys.argv[0] = 'nelm'; from nelm.cli import main; main()"
    with tempfile.TemporaryDirectory() as d:
        outs = {name: Path(d) / f"{name}.parquet" for name in ("base", "this")}

        def run(name: str, src: Path) -> tuple[float, float]:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", cmd, "screen", str(table), "--out", str(outs[name]), "--chart", "none"],
                           env={**os.environ, "PYTHONPATH": str(src)}, check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

        warm = "from nelm.knowledge import load; from nelm.screen.columns import _plan_program; _plan_program(load())"
        for src in (base_src, here):   # nelm's cache of the compiled knowledge base and plan columns, warm for both
            subprocess.run([sys.executable, "-c", warm], env={**os.environ, "PYTHONPATH": str(src)}, check=True)
        for i in range(runs):
            for name, src in (("base", base_src), ("this", here)):
                wall, cpu = run(name, src)
                load1 = os.getloadavg()[0]
                print(f"run {i + 1} {name:4s}: wall {wall:6.1f} s, CPU {cpu:6.1f} s (load average {load1:.1f})", flush=True)
        print("outputs identical byte for byte:", filecmp.cmp(outs["base"], outs["this"], shallow=False))


def _cols(kb):
    from nelm.screen.columns import output_columns

    return output_columns(kb)


if __name__ == "__main__":
    main()
