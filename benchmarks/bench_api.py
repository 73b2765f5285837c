"""POST /api/v1/assess under 32 concurrent clients on loopback (not a test: no assertions).

    python benchmarks/bench_api.py [--clients 32] [--rate 320] [--seconds 20] [--workers 1 2]

Starts `nelm serve` on 127.0.0.1 (a fresh SQLite store in a temporary directory) once per
round, waits until it answers, and loads it with wrk (Debian package ``wrk``; a C load
generator that takes little of the two cores the server needs) and benchmarks/wrk_assess.lua,
which rotates 200 patient documents (the example patient and random ones with 30 % of
their facts unknown). Two kinds of round:

- **paced** (the issue's goal: 32 clients, at least 300 requests/s, p99 at most 30 ms):
  each of the 32 clients pauses between a response and its next request, so that together
  they offer about --rate requests per second; throughput and latency percentiles as wrk
  measures them (from sending a request to its response);
- **saturated**: the 32 clients send back to back: the most the server answers per second,
  with the latency that queueing then adds (by Little's law about 32 / throughput).

Baseline in the same run: GET /api/v1/health (one ``SELECT 1``) saturated, and with
--baseline-src an older source served the same way. Without wrk the old asyncio/httpx
generator runs instead (it shares the cores with the server and says so). Loopback only;
bounded in time; every server is stopped (by its process id) at the end of its round.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from nelm.testing import patient_dict, random_patient_dict  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(workers: int, env_extra: dict[str, str], src: Path | None = None
          ) -> tuple[subprocess.Popen, str, tempfile.TemporaryDirectory]:
    tmp = tempfile.TemporaryDirectory(prefix="nelm-bench-")
    port = free_port()
    env = os.environ | {"NELM_DATABASE_URL": f"sqlite:///{tmp.name}/cases.db",
                        "PYTHONPATH": str(src or HERE.parent / "src")} | env_extra
    env.pop("NELM_API_TOKEN", None)
    cmd = [sys.executable, "-m", "nelm.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                return proc, base, tmp
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise SystemExit("the server did not start within 60 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def load(base: str, method: str, path: str, bodies: list[bytes], clients: int, total: int,
               seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        # warm every worker and connection
        await asyncio.gather(*(client.request(method, path, content=bodies[i % len(bodies)],
                                              headers={"content-type": "application/json"})
                               for i in range(clients * 2)))
        start = time.perf_counter()
        stop_at = start + seconds

        async def one_client(k: int) -> None:
            nonlocal errors, sent
            i = k
            while sent < total and time.perf_counter() < stop_at:
                sent += 1
                t = time.perf_counter()
                r = await client.request(method, path, content=bodies[i % len(bodies)],
                                         headers={"content-type": "application/json"})
                latencies.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    errors += 1
                i += clients

        await asyncio.gather(*(one_client(k) for k in range(clients)))
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    return {"requests": len(latencies), "errors": errors, "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50_ms": statistics.median(latencies), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": latencies[-1]}


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    num = text.rstrip("usm")
    return float(num) * _UNITS[text[len(num):]]


def wrk_load(base: str, path: str, bodies_file: Path | None, clients: int, seconds: float,
             pause_ms: float) -> dict[str, float]:
    """One bounded wrk run; its latency distribution and throughput."""
    cmd = ["wrk", "-t", "2", "-c", str(clients), "-d", f"{int(seconds)}s", "--latency", "--timeout", "10s"]
    if bodies_file is not None:
        cmd += ["-s", str(HERE / "wrk_assess.lua"), base + path, "--", str(bodies_file), str(int(pause_ms))]
    else:
        cmd += [base + path]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    got: dict[str, float] = {"errors": 0}
    lines = iter(out.splitlines())
    for line in lines:
        words = line.split()
        if line.strip() == "Latency Distribution":
            for _ in range(4):
                pct, value = next(lines).split()
                got[f"p{pct.rstrip('%')}_ms"] = _ms(value)
        elif "requests in" in line:
            got["requests"] = int(words[0])
            got["seconds"] = float(words[3].rstrip("s,"))
        elif line.startswith("Non-2xx"):
            got["errors"] += int(words[-1])
        elif line.startswith("  Socket errors"):
            got["errors"] += sum(int(w.rstrip(",")) for w in words[3::2])
        elif line.startswith("Requests/sec:"):
            got["rps"] = float(words[1])
    got["p50_ms"] = got.get("p50_ms", float("nan"))
    return got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--rate", type=float, default=320, help="requests per second the paced clients offer together")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--requests", type=int, default=3000, help="cap per round of the fallback generator (no wrk)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--baseline-src", type=Path, help="also serve this source directory (one process), e.g. an older checkout")
    args = ap.parse_args()

    import random
    import shutil

    rng = random.Random(7)
    docs = [patient_dict()] + [random_patient_dict(rng, 0.3) for _ in range(199)]
    bodies = [json.dumps(d).encode() for d in docs]
    have_wrk = shutil.which("wrk") is not None
    # a client's pause: the time it leaves between requests so that all offer --rate together
    pause = max(0.0, 1000.0 * args.clients / args.rate - 3.0)
    rounds = []
    for w in args.workers:
        rounds.append((f"POST /api/v1/assess, {w} worker{'s' if w > 1 else ''}, paced (offered {args.rate:g}/s)",
                       w, "POST", "/api/v1/assess", None, pause))
    for w in args.workers:
        rounds.append((f"POST /api/v1/assess, {w} worker{'s' if w > 1 else ''}, saturated", w, "POST",
                       "/api/v1/assess", None, 0.0))
    rounds.append(("GET /api/v1/health (baseline), 1 worker, saturated", 1, "GET", "/api/v1/health", None, 0.0))
    if args.baseline_src:
        rounds.append(("POST /api/v1/assess, baseline source, 1 worker, saturated", 1, "POST", "/api/v1/assess",
                       args.baseline_src, 0.0))
    results: dict[str, dict] = {"load_generator": "wrk" if have_wrk else "python asyncio + httpx (same cores)"}
    print(f"{args.clients} concurrent clients, {args.seconds:g} s per round, load generator: "
          f"{results['load_generator']}")
    with tempfile.TemporaryDirectory(prefix="nelm-bench-bodies-") as tmpdir:
        bodies_file = Path(tmpdir) / "bodies.jsonl"
        bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
        for label, workers, method, path, src, pause_ms in rounds:
            if not have_wrk and pause_ms:
                continue  # the fallback generator cannot pace its clients
            proc, base, tmp = start(workers, {}, src)
            try:
                if have_wrk:
                    warm = min(5.0, args.seconds)
                    wrk_load(base, path, bodies_file if method == "POST" else None, args.clients, warm, 0)
                    got = wrk_load(base, path, bodies_file if method == "POST" else None, args.clients,
                                   args.seconds, pause_ms)
                else:
                    got = asyncio.run(load(base, method, path, bodies if method == "POST" else [b""], args.clients,
                                           args.requests, args.seconds))
            finally:
                stop(proc)
                tmp.cleanup()
            results[label] = got
            print(f"{label:<62} {got['rps']:7.0f} req/s  p50 {got['p50_ms']:6.1f} ms  p90 {got['p90_ms']:6.1f} ms  "
                  f"p99 {got['p99_ms']:6.1f} ms  ({got['requests']} requests, {got['errors']} errors)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
