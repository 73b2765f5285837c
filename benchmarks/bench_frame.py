"""`evaluate_frame` alone, this tree and another in turns (issue 22 item 4; not a test, nothing passes or fails).

    PYTHONPATH=src python benchmarks/bench_frame.py --turns /tmp/base/src [--n 1000000] [--runs 4]
                                                    [--unknown-fraction 0.0,0.15] [--repeat 3] [--check]

The patients: ``nelm synth``'s population (seed 1), ``--n`` rows, each fact unknown with the given
probability, turned into the engine's input frame (``screen.flat.engine_frame``) once by this tree
and written as Parquet. Each measurement runs in a fresh process whose ``nelm`` is imported from
this tree's ``src`` or from ``--turns`` (e.g. a base revision exported with ``git archive``),
alternating, ``--runs`` each: it reads the frame, evaluates 1,000 rows once (the plan is built),
then times ``evaluate_frame(frame, kb)`` (every derived, criterion, rule, possibility and verdict
column; the default ``variants=True``) ``--repeat`` times and reports the best and the median wall
time and the CPU time of the best (process time, both cores' work). The same process times, as a
reference for this machine's speed at that moment, as many trivial comparisons (``float column >
constant``) as the frame has output columns beyond its inputs, and the issue's 224.

``--check``: each tree's output for the frame is written once and compared in the parent, every
column, dtype and value (``DataFrame.equals``, NULL for NULL).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.src)
    import polars as pl

    from nelm.engine import evaluate_frame
    from nelm.knowledge import load

    frame = pl.read_parquet(args.input)
    kb = load()
    evaluate_frame(frame.head(1000), kb)
    walls, cpus = [], []
    out = None
    for _ in range(args.repeat):
        c, t = time.process_time(), time.perf_counter()
        out = evaluate_frame(frame, kb)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    best = min(range(len(walls)), key=walls.__getitem__)
    floats = [c for c, t in frame.schema.items() if t == pl.Float64]
    refs = {}
    for k in (224, out.width - frame.width):
        exprs = [(pl.col(floats[i % len(floats)]) > i).alias(f"t{i}") for i in range(k)]
        ws = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            frame.lazy().select(exprs).collect(optimizations=pl.QueryOptFlags.none())
            ws.append(time.perf_counter() - t)
        refs[k] = min(ws)
    if args.output:
        out.write_parquet(args.output)
    print(json.dumps({"n": frame.height, "columns": out.width, "best_s": walls[best], "median_s": statistics.median(walls),
                      "cpu_s": cpus[best], "trivial": refs}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", help="another tree's src/ (the base), measured in turns with this one")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--unknown-fraction", default="0.0,0.15")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--json", type=Path)
    # child mode
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--src", default=str(SRC), help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--output", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    sys.path.insert(0, str(SRC))
    import polars as pl

    from nelm.screen.flat import engine_frame
    from nelm.screen.synth import synthesize

    trees = {"this tree": str(SRC)} | ({"base": str(Path(args.turns).resolve())} if args.turns else {})
    results: dict = {}
    with tempfile.TemporaryDirectory() as d:
        for uf in [float(x) for x in args.unknown_fraction.split(",")]:
            path = Path(d) / f"frame_{uf}.parquet"
            engine_frame(synthesize(args.n, seed=1, unknown_fraction=uf).with_row_index("__row", offset=1)).write_parquet(path)
            runs: dict[str, list] = {name: [] for name in trees}
            outputs = {}
            for r in range(args.runs):
                order = list(trees) if r % 2 == 0 else list(reversed(trees))
                for name in order:
                    cmd = [sys.executable, __file__, "--child", "--src", trees[name], "--input", str(path),
                           "--repeat", str(args.repeat)]
                    if args.check and r == 0:
                        outputs[name] = Path(d) / f"out_{name.replace(' ', '_')}_{uf}.parquet"
                        cmd += ["--output", str(outputs[name])]
                    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
                    got = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1])
                    got["load"] = os.getloadavg()[0]
                    runs[name].append(got)
                    print(f"unknown {uf:.0%} run {r + 1} {name:9s}: best {got['best_s']:.3f} s ({got['n'] / got['best_s'] / 1e6:.2f} M/s), "
                          f"median {got['median_s']:.3f} s, CPU {got['cpu_s']:.3f} s; trivial "
                          + ", ".join(f"{k}: {v:.3f} s" for k, v in got["trivial"].items()) + f"; load {got['load']:.1f}", flush=True)
            if args.check and len(outputs) == 2:
                a, b = (pl.read_parquet(p) for p in outputs.values())
                same = a.schema == b.schema and a.columns == b.columns and all(a[c].equals(b[c]) for c in a.columns)
                print(f"unknown {uf:.0%}: outputs identical (every column, dtype and value): {same}")
                runs["identical"] = same
            results[str(uf)] = runs
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
