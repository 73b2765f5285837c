"""How long one assessment takes, and a table of patients (not a test: no timing assertions).

    .venv/bin/python benchmarks/bench_assess.py

Reports the median and 95th percentile time of `assess()` for a fully known patient, a
patient with everything unknown and random patients with 30 % of their facts unknown,
then the throughput of evaluating a table of 100,000 patients with the same rules.
"""
from __future__ import annotations

import random
import statistics
import time

from nelm.assessment import assess
from nelm.engine import evaluate_frame, patients_frame
from nelm.knowledge import load
from nelm.patient import Patient, flatten, validate_patient
from nelm.testing import make_patient, random_patient_dict


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm caches: knowledge base, compiled plan
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def report(label: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    print(f"{label:<38} median {statistics.median(ms):6.2f} ms   p95 {p95:6.2f} ms   (n={len(ms)})")


def main() -> None:
    load()
    report("assess: fully known patient", timed(lambda: assess(make_patient()), 200))
    report("assess: every input unknown", timed(lambda: assess(Patient()), 200))
    rng = random.Random(1)
    pats = [validate_patient(random_patient_dict(rng, 0.3)) for _ in range(200)]
    it = iter(pats * 2)
    report("assess: random, 30 % unknown", timed(lambda: assess(next(it)), 199))

    n = 100_000
    base = [flatten(validate_patient(random_patient_dict(rng, 0.2))) for _ in range(1000)]
    frame = patients_frame(base * (n // 1000))
    t = time.perf_counter()
    out = evaluate_frame(frame, load())
    dt = time.perf_counter() - t
    print(f"table of {n:,} patients: {dt:.2f} s ({n / dt:,.0f} patients/s, {out.width} columns)")


if __name__ == "__main__":
    main()
