"""`nelm assess FILE` from a fresh process (not a test: no assertions).

    python benchmarks/bench_cold.py [--runs 10] [--baseline-src DIR]

Runs the command --runs times (after one run that fills the compiled-knowledge cache)
and prints the median wall time and the median CPU time (user + system) of the child.
Baselines measured in the same run: the bare interpreter (`python -c pass`), and with
--baseline-src the same command on another checkout's source (e.g. the commit before
this work, exported by benchmarks/run_all.py), whose cache is its own.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "solitary_resectable.json"


def timed(cmd: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    walls, cpus = [], []
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # fills caches
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "runs": runs}


def imports(cmd: list[str], env: dict[str, str]) -> list[str]:
    """Heavy modules imported on the path (from -X importtime)."""
    run = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, capture_output=True, text=True)
    heavy = ("scipy", "matplotlib", "numpy", "polars", "sqlglot", "sqlalchemy", "fastapi")
    seen = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in run.stderr.splitlines() if "|" in line}
    return sorted(seen & set(heavy))


def measure(runs: int, baseline_src: Path | None) -> dict[str, dict]:
    out: dict[str, dict] = {}
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="nelm-cache-") as cache:
        env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "NELM_CACHE_DIR": cache}
        cmd = [py, "-m", "nelm.cli", "assess", str(EXAMPLE), "--format", "json"]
        out["nelm assess FILE --format json"] = timed(cmd, env, runs) | {"imports": imports(cmd, env)}
        out["python -c pass (reference)"] = timed([py, "-c", "pass"], env, runs)
        if baseline_src is not None:
            benv = os.environ | {"PYTHONPATH": str(baseline_src), "NELM_CACHE_DIR": cache + "-baseline"}
            out["nelm assess FILE, baseline source"] = timed(cmd, benv, runs) | {"imports": imports(cmd, benv)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--baseline-src", type=Path)
    args = ap.parse_args()
    got = measure(args.runs, args.baseline_src)
    for label, r in got.items():
        extra = f"  heavy imports: {', '.join(r['imports']) or 'none'}" if "imports" in r else ""
        print(f"{label:<40} wall {r['wall_s']:.3f} s  cpu {r['cpu_s']:.3f} s{extra}")
    print(json.dumps(got))


if __name__ == "__main__":
    main()
