"""One assessment in process, a table of patients, the assessment's size (not a test).

    python benchmarks/bench_assess.py [--batch 1000000] [--json FILE]

In process: p50 and p99 wall time of ``assess()`` (as ``nelm assess`` and the API call
it: outcomes summary) for a fully known patient, a patient with every input unknown
and random patients with 30 % of their facts unknown, and the median CPU time per call;
baseline in the same run: the same calls with the one-row Polars executor
(``NELM_EXECUTOR=polars``, the path before this work).

Batch: ``evaluate_frame`` (every criterion, rule and verdict column) over --batch random
patients; baseline in the same run: 224 trivial comparisons over the same rows.

Size: the assessment JSON with ``outcomes="summary"`` (default of the CLI and the API)
and ``"full"`` (curves sampled for drawing).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

# --src DIR measures another checkout's source (the baseline of benchmarks/run_all.py)
_SRC = sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv else str(Path(__file__).resolve().parent.parent / "src")
sys.path.insert(0, _SRC)

from nelm.assessment import assess  # noqa: E402
from nelm.knowledge import load  # noqa: E402
from nelm.patient import Patient, flatten, validate_patient  # noqa: E402
from nelm.testing import make_patient, random_patient_dict  # noqa: E402


def timed(fn, patients: list, repeat: int) -> dict[str, float]:
    for p in patients[:3]:
        fn(p)  # warm caches: knowledge base, compiled code
    walls, cpus = [], []
    for i in range(repeat):
        p = patients[i % len(patients)]
        c, t = time.thread_time(), time.perf_counter()
        fn(p)
        walls.append((time.perf_counter() - t) * 1000)
        cpus.append((time.thread_time() - c) * 1000)
    walls.sort()
    return {"p50_ms": statistics.median(walls), "p99_ms": walls[min(len(walls) - 1, int(0.99 * len(walls)))],
            "cpu_p50_ms": statistics.median(cpus), "n": repeat}


def _call():
    import inspect

    if "outcomes" in inspect.signature(assess).parameters:
        return lambda p: assess(p, outcomes="summary")
    return assess  # a source from before --outcomes: its only (full) document


def one_patient(repeat: int, executors: tuple[str, ...] = ("python", "polars")) -> dict[str, dict]:
    load()
    rng = random.Random(1)
    cases = {"fully known patient": [make_patient()], "every input unknown": [Patient()],
             "random, 30 % unknown": [validate_patient(random_patient_dict(rng, 0.3)) for _ in range(200)]}
    out: dict[str, dict] = {}
    names = {"python": "one-row Python", "polars": "one-row Polars executor", "source": "baseline source"}
    for executor in executors:
        if executor == "source":  # a baseline checkout measured with its own default executor
            os.environ.pop("NELM_EXECUTOR", None)
        else:
            os.environ["NELM_EXECUTOR"] = executor
        for label, pats in cases.items():
            n = repeat if executor == "python" else max(50, repeat // 5)
            out[f"{label} [{names[executor]}]"] = timed(_call(), pats, n)
    os.environ.pop("NELM_EXECUTOR", None)
    return out


def batch(n: int) -> dict[str, dict]:
    import polars as pl

    from nelm.engine import evaluate_frame, patients_frame

    kb = load()
    rng = random.Random(2)
    base = patients_frame([flatten(validate_patient(random_patient_dict(rng, 0.2))) for _ in range(1000)])
    frame = pl.concat([base] * (n // 1000), rechunk=True)
    evaluate_frame(base, kb)  # build the plan once
    floats = [c for c, t in frame.schema.items() if t == pl.Float64]
    trivial = [(pl.col(floats[i % len(floats)]) > i).alias(f"t{i}") for i in range(224)]
    out = {}
    for label, fn in (("evaluate_frame, all criteria and verdicts", lambda: evaluate_frame(frame, kb)),
                      ("224 trivial comparisons (reference)", lambda: frame.select(trivial))):
        best = None
        for _ in range(3):
            c, t = time.process_time(), time.perf_counter()
            res = fn()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            if best is None or wall < best["wall_s"]:
                best = {"wall_s": wall, "cpu_s": cpu, "patients_per_s": n / wall, "columns": res.width, "n": n}
        out[label] = best
    return out


def size() -> dict[str, int]:
    p = make_patient()
    return {mode: len(json.dumps(assess(p, outcomes=mode), indent=2)) for mode in ("summary", "full")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=400)
    ap.add_argument("--batch", type=int, default=1_000_000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--src", help="import nelm from this source directory (a baseline checkout)")
    ap.add_argument("--baseline", action="store_true",
                    help="measure only what a source from before this work has: assess() and evaluate_frame")
    args = ap.parse_args()
    if args.baseline:
        results = {"one_patient": one_patient(args.repeat, ("source",)), "batch": batch(args.batch),
                   "json_bytes": {"full": len(json.dumps(assess(make_patient()), indent=2))}}
    else:
        results = {"one_patient": one_patient(args.repeat), "batch": batch(args.batch), "json_bytes": size()}
    for label, r in results["one_patient"].items():
        print(f"assess: {label:<55} p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
              f"cpu p50 {r['cpu_p50_ms']:5.2f} ms  (n={r['n']})")
    for label, r in results["batch"].items():
        print(f"batch: {label:<45} {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s cpu, "
              f"{r['patients_per_s'] / 1e6:.2f} M patients/s ({r['columns']} columns, {r['n']:,} rows)")
    print("assessment JSON (indented): " + ", ".join(f"{k} {v:,} bytes" for k, v in results["json_bytes"].items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
