"""The plan with branches (contract v3) in one assessment (not a test).

    python benchmarks/bench_plan.py [--n 400] [--json FILE]

Issue 18 item 8: a plan with branches stays within the one-assessment budget (p50 <= 3 ms,
p99 <= 10 ms in process), however many branches. Measures ``assess()`` (outcomes summary,
as the CLI and the API call it) over sparse patients as case reports give them: the
public real-patient vignettes (../shared/vignettes/real-public, when present) and random
patients with 20-60 % of their facts unknown; wall and CPU time, split by how many
branches the plan has. Baseline in the same run: the same patients' assessment without
the plan (``engine.evaluate`` + ``assessment_from``), i.e. what the plan adds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from nelm.assessment import assess  # noqa: E402
from nelm.engine import assessment_from, evaluate  # noqa: E402
from nelm.knowledge import load  # noqa: E402
from nelm.patient import validate_patient  # noqa: E402
from nelm.testing import sparse_patients  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "vignettes" / "real-public"


def patients(n: int) -> list:
    out = [validate_patient(json.loads(f.read_text())["patient"]) for f in sorted(REAL.glob("*.json"))]
    return out + [p for _, p in sparse_patients(18, max(0, n - len(out)))]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--json")
    ap.add_argument("--freeze", action="store_true", help="gc.freeze() after warming, as `nelm serve` does")
    args = ap.parse_args()
    kb = load()
    pats = patients(args.n)
    for p in pats[:10]:
        assess(p, outcomes="summary")   # warm: knowledge base, compiled row code
    if args.freeze:
        # as the served app does (nelm.web.serve.settled): the long-lived heap out of the
        # collector's sight, so a full collection does not walk the knowledge base
        import gc

        gc.collect()
        gc.freeze()
    wall, cpu, base, by_branches = [], [], [], {}
    for p in pats:
        t, c = time.perf_counter(), time.process_time()
        a = assess(p, outcomes="summary")
        w, u = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
        wall.append(w)
        cpu.append(u)
        by_branches.setdefault(min(len(a["plan"]["branches"]), 4), []).append(u)
        c = time.process_time()
        assessment_from(evaluate(p, kb), p, kb)
        base.append((time.process_time() - c) * 1000)
    result = {
        "patients": len(pats), "gc_frozen": args.freeze,
        "wall_ms": {"p50": pct(wall, 0.5), "p99": pct(wall, 0.99)},
        "cpu_ms": {"p50": pct(cpu, 0.5), "p90": pct(cpu, 0.9), "p99": pct(cpu, 0.99), "max": max(cpu)},
        "without_plan_cpu_ms": {"p50": pct(base, 0.5), "p99": pct(base, 0.99)},
        "cpu_ms_p50_by_branches": {f"{k}{'+' if k == 4 else ''}": round(statistics.median(v), 2)
                                   for k, v in sorted(by_branches.items())},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
