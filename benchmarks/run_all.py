"""Every path against its goal, with baselines from the same run (`make bench`).

    python benchmarks/run_all.py [--baseline REF] [--quick] [--out benchmarks/results.json]

Runs bench_cold.py, bench_assess.py and bench_api.py (each is also runnable alone), and,
with --baseline, the same cold-start, in-process and batch measurements on the source of
git revision REF (exported to a temporary directory), so that every figure has a
ratio to the path before a change, measured minutes apart on the same machine. Prints a
Markdown table for BENCHMARKS.md and writes the raw figures as JSON. Not a test: nothing
here passes or fails.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run_json(args: list[str], env: dict[str, str] | None = None, json_file: Path | None = None) -> dict:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=1800)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{args[0]} failed")
    if json_file is not None:
        return json.loads(json_file.read_text())
    return json.loads(proc.stdout.strip().splitlines()[-1])


def export(ref: str, into: Path) -> Path:
    data = subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def machine() -> dict[str, str]:
    import polars

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(),
            "polars": polars.__version__, "load_average_at_start": load}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", help="git revision to measure as the 'before' path")
    ap.add_argument("--quick", action="store_true", help="smaller samples (a smoke run)")
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    args = ap.parse_args()
    results: dict = {"machine": machine()}
    print("machine:", results["machine"], flush=True)
    batch = "200000" if args.quick else "1000000"
    repeat = "100" if args.quick else "400"
    with tempfile.TemporaryDirectory(prefix="nelm-bench-") as tmp:
        base_src = export(args.baseline, Path(tmp) / "baseline") if args.baseline else None
        cold = ["benchmarks/bench_cold.py", "--runs", "5" if args.quick else "10"]
        if base_src:
            cold += ["--baseline-src", str(base_src)]
        results["cold"] = run_json([str(ROOT / c) if c.endswith(".py") else c for c in cold])
        out = Path(tmp) / "assess.json"
        results["assess"] = run_json([str(HERE / "bench_assess.py"), "--repeat", repeat, "--batch", batch,
                                      "--json", str(out)], json_file=out)
        if base_src:
            out = Path(tmp) / "assess-baseline.json"
            env = os.environ | {"NELM_CACHE": "0"}
            results["assess_baseline"] = run_json([str(HERE / "bench_assess.py"), "--baseline", "--src", str(base_src),
                                                   "--repeat", "100", "--batch", batch, "--json", str(out)],
                                                  env=env, json_file=out)
        out = Path(tmp) / "api.json"
        api = [str(HERE / "bench_api.py"), "--json", str(out), "--requests", "1500" if args.quick else "4000",
               "--seconds", "10" if args.quick else "20"]
        if base_src:
            api += ["--baseline-src", str(base_src)]
        results["api"] = run_json(api, json_file=out)
        out = Path(tmp) / "screen.json"
        results["screen"] = run_json([str(HERE / "bench_screen.py"), "--n", "200000" if args.quick else "1000000",
                                      "--json", str(out)], json_file=out)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nraw figures: {args.out}\n")
    print(table(results))


def table(r: dict) -> str:
    rows = ["| path | goal | measured | reached | baseline (same run) | ratio |", "|---|---|---|---|---|---|"]
    cold = r["cold"]
    ours = cold["nelm assess FILE --format json"]
    base = cold.get("nelm assess FILE, baseline source")
    ref = cold["python -c pass (reference)"]
    rows.append(f"| `nelm assess FILE` cold start | ≤ 0.5 s | {ours['wall_s']:.2f} s wall, {ours['cpu_s']:.2f} s CPU; "
                f"heavy imports: {', '.join(ours['imports']) or 'none'} | {'yes' if ours['wall_s'] <= 0.5 else 'CPU only' if ours['cpu_s'] <= 0.5 else 'no'} | "
                + (f"before: {base['wall_s']:.2f} s wall, {base['cpu_s']:.2f} s CPU (heavy imports: "
                   f"{', '.join(base['imports']) or 'none'}) | "
                   f"{base['wall_s'] / ours['wall_s']:.1f}× faster (CPU {base['cpu_s'] / ours['cpu_s']:.1f}×) |"
                   if base else f"`python -c pass`: {ref['wall_s']:.3f} s | — |"))
    one = r["assess"]["one_patient"]
    before = r.get("assess_baseline", {}).get("one_patient", {})
    for case in ("fully known patient", "every input unknown", "random, 30 % unknown"):
        o = one[f"{case} [one-row Python]"]
        pol = one[f"{case} [one-row Polars executor]"]
        b = before.get(f"{case} [baseline source]")
        ok = o["p50_ms"] <= 3 and o["p99_ms"] <= 10
        cpu_ok = o["cpu_p50_ms"] <= 3
        rows.append(f"| one assessment in process: {case} | p50 ≤ 3 ms, p99 ≤ 10 ms | p50 {o['p50_ms']:.2f} ms, "
                    f"p99 {o['p99_ms']:.2f} ms, CPU p50 {o['cpu_p50_ms']:.2f} ms | {'yes' if ok else 'CPU p50 only' if cpu_ok else 'no'} | "
                    + (f"before: p50 {b['p50_ms']:.2f} ms, p99 {b['p99_ms']:.2f} ms, CPU p50 {b['cpu_p50_ms']:.2f} ms | "
                       f"{b['p50_ms'] / o['p50_ms']:.1f}× (CPU {b['cpu_p50_ms'] / o['cpu_p50_ms']:.1f}×) |"
                       if b else f"Polars one-row executor: p50 {pol['p50_ms']:.2f} ms | {pol['p50_ms'] / o['p50_ms']:.1f}× |"))
    api = r["api"]
    old = next((v for k, v in api.items() if "baseline source" in k), None)
    for label, a in api.items():
        if "assess" in label and "baseline source" not in label:
            paced = "paced" in label
            ok = a["p99_ms"] <= 30 and a["rps"] >= 300
            health = next(v for k, v in api.items() if "health" in k)
            reached = ("yes" if ok else "no") if paced else "— (the ceiling: clients send back to back)"
            rows.append(f"| {label} (32 clients) | ≥ 300 req/s, p99 ≤ 30 ms | {a['rps']:.0f} req/s, p50 {a['p50_ms']:.1f} ms, "
                        f"p99 {a['p99_ms']:.1f} ms, {a['errors']} errors | {reached} | "
                        f"GET /api/v1/health: {health['rps']:.0f} req/s, p99 {health['p99_ms']:.1f} ms"
                        + (f"; before (1 process): {old['rps']:.0f} req/s, p99 {old['p99_ms']:.0f} ms" if old else "")
                        + (" | the rate is the clients' (paced); p99 "
                           + (f"{old['p99_ms'] / a['p99_ms']:.0f}× lower than the saturated p99 before |" if old else "|")
                           if paced else
                           f" | {a['rps'] / health['rps']:.2f} of the trivial endpoint's rate"
                           + (f"; {a['rps'] / old['rps']:.1f}× the rate before |" if old else " |")))
    b = r["assess"]["batch"]
    ev = b["evaluate_frame, all criteria and verdicts"]
    triv = b["224 trivial comparisons (reference)"]
    eb = r.get("assess_baseline", {}).get("batch", {}).get("evaluate_frame, all criteria and verdicts")
    rows.append(f"| batch `evaluate_frame`, {ev['n']:,} patients | ≥ 3 M patients/s | {ev['patients_per_s'] / 1e6:.2f} M/s "
                f"({ev['wall_s']:.2f} s wall, {ev['cpu_s']:.2f} s CPU) | {'yes' if ev['patients_per_s'] >= 3e6 else 'no'} | "
                + (f"before: {eb['patients_per_s'] / 1e6:.2f} M/s; " if eb else "")
                + f"224 trivial comparisons: {triv['patients_per_s'] / 1e6:.2f} M/s | "
                + (f"{ev['patients_per_s'] / eb['patients_per_s']:.1f}× before; " if eb else "")
                + f"{triv['wall_s'] / ev['wall_s']:.2f} of the trivial rate |")
    for label, sc in r.get("screen", {}).items():
        rows.append(f"| `nelm screen`, {sc['n']:,} synthetic patients, {label} | seconds | {sc['seconds']:.1f} s "
                    f"({sc['n'] / sc['seconds']:,.0f} patients/s; {sc['assumed']:,} plans on assumed facts) | "
                    f"{'yes' if sc['seconds'] <= 10 else 'no'} | — | — |")
    size = r["assess"]["json_bytes"]
    bsize = r.get("assess_baseline", {}).get("json_bytes", {}).get("full")
    rows.append(f"| assessment JSON (example patient, indented) | curves only when asked | default (summary) "
                f"{size['summary'] / 1000:.0f} kB; `--outcomes full` {size['full'] / 1000:.0f} kB | yes | "
                + (f"before: {bsize / 1000:.0f} kB | {bsize / size['summary']:.1f}× smaller |" if bsize
                   else f"full: {size['full'] / 1000:.0f} kB | {size['full'] / size['summary']:.1f}× smaller |"))
    return "\n".join(rows)


if __name__ == "__main__":
    main()
