"""A wider red-line scan than the suite's (not a test): every assessment of many random patients against
``nelm.testing.red_lines``, the crossings counted by kind with one example each.

    python benchmarks/scan_red_lines.py [--seed 1] [--sparse 3000] [--perturbed 2000] [--random 2000] [--json FILE]

tests/test_safety_red_lines.py checks about 3,100 patients on every run; this scan reaches the rarer combinations
(session 17: two scans of 14,000 patients found ablation 'added to a resection' that could not be done, and a
refractory VIPoma led by chemotherapy, both fixed). Use seeds other than the suite's (1-4).
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from nelm.assessment import assess  # noqa: E402
from nelm.patient import InvalidPatient, validate_patient  # noqa: E402
from nelm.testing import perturbed_patient_dict, random_patient_dict, red_lines, sparse_patients  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--sparse", type=int, default=3000)
    ap.add_argument("--perturbed", type=int, default=2000)
    ap.add_argument("--random", type=int, default=2000)
    ap.add_argument("--json", help="write each kind's count and example patient to this file")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    docs = [d for d, _ in sparse_patients(args.seed, args.sparse)]
    docs += [perturbed_patient_dict(rng, rng.randrange(1, 6)) for _ in range(args.perturbed)]
    docs += [random_patient_dict(rng, rng.choice([0.0, 0.2, 0.5])) for _ in range(args.random)]
    counts: collections.Counter[str] = collections.Counter()
    examples: dict[str, tuple[dict, str]] = {}
    checked = 0
    for doc in docs:
        try:
            patient = validate_patient(doc)
        except InvalidPatient:
            continue   # a random combination the model refuses: not an assessment
        checked += 1
        for line in red_lines(doc, assess(patient, outcomes="summary")):
            kind = line.split(":")[0][:90]
            counts[kind] += 1
            examples.setdefault(kind, (doc, line))
    print(f"{checked} patients assessed; {sum(counts.values())} red-line crossings of {len(counts)} kinds")
    for kind, n in counts.most_common():
        print(f"{n:5d}  {examples[kind][1][:300]}")
    if args.json:
        Path(args.json).write_text(json.dumps({k: {"count": counts[k], "line": examples[k][1], "patient": examples[k][0]}
                                               for k in counts}, indent=1))


if __name__ == "__main__":
    main()
