"""The full report PDF of every example, charts drawn ahead (not a test: no assertions).

    python benchmarks/bench_report.py [--runs 5] [--baseline REF | --baseline-src DIR]
                                      [--paths job,fresh] [--examples a,b]

Two paths, each timed around the report's build only (the patient is assessed before, as the
server has it):

- ``job``: as ``nelm serve`` prints a full report it cannot hand over from a background build:
  ``reportjob.run_bounded(reportjob.build_report, ...)``, a child forked from the report fork
  server. Each driver process starts the fork server with one untimed report first (the fork
  server's own start, which is also where ``nelm.report.preload`` warms the report code).
- ``fresh``: ``report.build_pdf(full=True)`` in a new process that has imported
  ``nelm.report`` and nothing else of the report's (WeasyPrint, the evidence, the templates
  are all loaded inside the timing), as a report built by ``nelm report --full`` pays it.

The charts are drawn into a private cache first (``report.draw_every_chart``, what ``nelm
serve`` does when it starts), for each source tree. With a baseline (another revision's
source, exported with ``git archive``), the two trees run in turns, run by run, so that both
see the same load. Prints min and median wall time per example and path (for ``fresh`` also
the process's CPU time, which other processes move less), and JSON on the last line. The
machine's load moves these figures by ±15 % and more: compare trees measured together.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.json"))

_ASSESSED = """
import json, sys, time
from pathlib import Path
from nelm.cli import _load_patient
from nelm.assessment import assess
examples = sys.argv[1].split(",")
cases = {}
for name in examples:
    patient = _load_patient(Path(sys.argv[2]) / f"{name}.json")
    cases[name] = (patient, assess(patient))
"""

FRESH = """
import nelm.report as report
""" + _ASSESSED + """
name = examples[0]
patient, assessment = cases[name]
t, c = time.perf_counter(), time.process_time()
pdf = report.build_pdf(patient, assessment, full=True)
print(json.dumps({"example": name, "wall": time.perf_counter() - t, "cpu": time.process_time() - c,
                  "bytes": len(pdf)}))
"""

JOB = _ASSESSED + """
import anyio
from nelm.web import reportjob

async def connected():
    return False

def once(name):
    patient, assessment = cases[name]
    t = time.perf_counter()
    pdf = anyio.run(lambda: reportjob.run_bounded(reportjob.build_report, ("pdf", patient, assessment, True, None),
                                                  seconds=600, disconnected=connected))
    return time.perf_counter() - t, len(pdf)

once(examples[0])   # starts the fork server (untimed)
for name in examples:
    wall, size = once(name)
    print(json.dumps({"example": name, "wall": wall, "bytes": size}))
"""


def export(ref: str, into: Path) -> Path:
    data = subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _env(src: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(src), NELM_CACHE_DIR=str(cache), NELM_WARM_CHARTS="0")
    env.pop("NELM_CACHE", None)
    return env


def _run(code: str, args: list[str], env: dict[str, str]) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit("a report run failed")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--baseline", help="git revision to measure as the 'before' path")
    ap.add_argument("--baseline-src", type=Path, help="or the source directory of the 'before' path")
    ap.add_argument("--paths", default="job,fresh")
    ap.add_argument("--examples", default=",".join(EXAMPLES))
    args = ap.parse_args()
    examples = args.examples.split(",")
    paths = args.paths.split(",")
    with tempfile.TemporaryDirectory(prefix="nelm-bench-report-") as tmp:
        trees = {"now": ROOT / "src"}
        if args.baseline:
            trees = {"before": export(args.baseline, Path(tmp) / "baseline"), **trees}
        elif args.baseline_src:
            trees = {"before": args.baseline_src, **trees}
        envs = {name: _env(src, Path(tmp) / f"cache-{name}") for name, src in trees.items()}
        for name, env in envs.items():   # the charts drawn ahead, as nelm serve does when it starts
            subprocess.run([sys.executable, "-c", "import nelm.report as r; r.draw_every_chart()"],
                           env=env, check=True)
        results: dict[str, dict[str, dict[str, list[float]]]] = {}
        for run in range(args.runs):
            for name, env in envs.items():
                if "job" in paths:
                    for row in _run(JOB, [",".join(examples), str(ROOT / "examples")], env):
                        results.setdefault(f"{name} job", {}).setdefault(row["example"], []).append(row["wall"])
                if "fresh" in paths:
                    for example in examples:
                        for row in _run(FRESH, [example, str(ROOT / "examples")], env):
                            results.setdefault(f"{name} fresh", {}).setdefault(example, []).append(row["wall"])
                            results.setdefault(f"{name} fresh, CPU", {}).setdefault(example, []).append(row["cpu"])
            print(f"run {run + 1} of {args.runs} done", file=sys.stderr, flush=True)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    print(f"load average at the end: {load}")
    print("| tree, path (min / median s of the runs) | " + " | ".join(examples) + " |")
    print("|---|" + "---|" * len(examples))
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for key, by_example in results.items():
        cells = []
        for example in examples:
            walls = by_example[example]
            summary.setdefault(key, {})[example] = {"min": min(walls), "median": statistics.median(walls),
                                                    "max": max(walls), "runs": len(walls)}
            cells.append(f"{min(walls):.2f} / {statistics.median(walls):.2f}")
        print(f"| {key} | " + " | ".join(cells) + " |")
    print(json.dumps({"load_average": load, "wall_s": summary}))


if __name__ == "__main__":
    main()
