"""Real published patients: how often the working plan agrees with the treating team (not a test).

    python benchmarks/bench_real_cases.py [--json FILE] [--verbose]

Runs ``nelm.assessment.assess`` (in process, as the CLI's ``assess`` does) on every case in
benchmarks/real_cases (rcNN_*.json) and, when present, ../shared/vignettes/real-public. Each
case file holds a patient as the case report gives it (sparse; unknown = absent or null), the
treating team's first choice (``treated_with``, option ids) and the options a board following
ESMO 2020 / ENETS 2023-2024 would accept now (``expect_first_step_any``).

Per case: plan.status, the first step's options (first three), whether the working plan names
a treatment, whether a ``treated_with`` option is among the first step's first three options,
and whether an ``expect_first_step_any`` option is. Totals: % naming a treatment, % team's
choice in the first step (and, beside it, the same counting TAE, TACE and DEB-TACE as one
embolization), % board-acceptable first step. A measurement: always exits 0 (an
invalid case document is reported and counted as a miss).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from nelm.assessment import assess  # noqa: E402
from nelm.patient import validate_patient  # noqa: E402

HERE = Path(__file__).resolve().parent
# ../shared/vignettes/real-public beside the checkout: /work/shared for /work/main, and for a
# worktree further down (/work/wt/<name>) the first ancestor that has it
PUBLIC = next((p / "shared" / "vignettes" / "real-public" for p in HERE.parents
               if (p / "shared" / "vignettes" / "real-public").is_dir()),
              HERE.parents[1] / "shared" / "vignettes" / "real-public")
SETS = [HERE / "real_cases", PUBLIC]
TOP = 3   # options of the first step considered
# A secondary figure only, printed beside the strict one and never in its place: the plan names one embolization on
# purpose (bland for a G1 small-intestinal NET, chemoembolization otherwise; the two gave the same survival, Pitt 2008),
# so a team's bland embolization against the plan's chemoembolization differs in technique, not in modality
# (board review 10, D11).
EMBOLIZATION = {"tae": "embolization", "tace": "embolization", "deb_tace": "embolization"}


def first_step(plan: dict) -> list[str]:
    steps = plan.get("steps") or []
    return list(steps[0].get("options") or [])[:TOP] if steps else []


def measure(path: Path) -> dict:
    case = json.loads(path.read_text())
    row = {"id": path.stem, "set": path.parent.name, "treated_with": case.get("treated_with") or [], "team_modality": False,
           "acceptable": case.get("expect_first_step_any") or [],
           "concordant": case.get("team_choice_guideline_first_line")}
    try:
        doc = assess(validate_patient(case["patient"]), outcomes="summary")
    except Exception as exc:  # noqa: BLE001 - a measurement reports, it does not stop
        row.update(error=f"{type(exc).__name__}: {str(exc)[:200]}", status=None, first=[],
                   names=False, team=False, board=False)
        return row
    plan = doc.get("plan") or {}
    first = first_step(plan)
    row.update(status=plan.get("status"), first=first, names=bool(first),
               team=bool(set(first) & set(row["treated_with"])),
               team_modality=bool({EMBOLIZATION.get(o, o) for o in first}
                                  & {EMBOLIZATION.get(o, o) for o in row["treated_with"]}),
               board=bool(set(first) & set(row["acceptable"])),
               missing=plan.get("missing") or [],
               assumed=[a.get("field") for a in plan.get("assumptions") or []])
    return row


def pct(rows: list[dict], key: str) -> float:
    return 100.0 * sum(r[key] for r in rows) / len(rows) if rows else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="also write the rows and totals to this file")
    ap.add_argument("--verbose", action="store_true", help="print the assumed and missing fields too")
    args = ap.parse_args()
    files = [f for d in SETS if d.is_dir() for f in sorted(d.glob("*.json"))]
    rows = [measure(f) for f in files]
    yn = {True: "yes", False: "no"}
    print(f"{'case':<62} {'status':<12} {'first step (<=3)':<48} names team board")
    for r in rows:
        print(f"{r['id'][:62]:<62} {str(r['status']):<12} {','.join(r['first'])[:48]:<48} "
              f"{yn[r['names']]:<5} {yn[r['team']]:<4} {yn[r['board']]}")
        if r.get("error"):
            print(f"    ERROR {r['error']}")
        if not r["team"] and not r.get("error"):
            note = {True: "the guideline first line", False: "not the guideline first line", None: "guideline fit not recorded"}
            print(f"    team chose {','.join(r['treated_with'])} ({note[r['concordant']]})")
        if args.verbose and not r.get("error"):
            print(f"    assumed {r['assumed']} missing {r['missing']}")
    totals = {}
    for name, subset in [("real_cases", [r for r in rows if r["set"] == "real_cases"]),
                         ("real-public", [r for r in rows if r["set"] == "real-public"]),
                         ("all", rows)]:
        if not subset:
            continue
        totals[name] = {"cases": len(subset), "names_treatment_pct": round(pct(subset, "names"), 1),
                        "team_choice_in_first_step_pct": round(pct(subset, "team"), 1),
                        "team_modality_in_first_step_pct": round(pct(subset, "team_modality"), 1),
                        "board_acceptable_first_step_pct": round(pct(subset, "board"), 1)}
        t = totals[name]
        print(f"{name}: {t['cases']} cases; names a treatment {t['names_treatment_pct']} %; "
              f"team's first choice in first step {t['team_choice_in_first_step_pct']} % "
              f"({t['team_modality_in_first_step_pct']} % counting TAE, TACE and DEB-TACE as one embolization); "
              f"board-acceptable first step {t['board_acceptable_first_step_pct']} %")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "totals": totals}, indent=1))


if __name__ == "__main__":
    main()
    sys.exit(0)
