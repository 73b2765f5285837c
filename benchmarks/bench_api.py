"""POST /api/v1/assess under concurrent clients on loopback (not a test: no assertions).

    python benchmarks/bench_api.py [--clients 32] [--requests 3000] [--seconds 60] [--workers 1 2]

Starts `nelm serve` on 127.0.0.1 (a fresh SQLite store in a temporary directory) once
per worker count, waits until it answers, then sends a bounded number of requests
(at most --requests, for at most --seconds) from --clients concurrent httpx clients in
one asyncio loop, and prints throughput and latency percentiles. The load generator
runs on the same machine and takes a share of its cores: the figures are for server
and client together. Baseline in the same run: GET /api/v1/health (one `SELECT 1`).
Loopback only; the server is stopped (by its process id) at the end of each round.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--old-executor", action="store_true", help="also run the Polars one-row path (NELM_EXECUTOR=polars)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--baseline-src", type=Path, help="also serve this source directory (one process), e.g. an older checkout")
    args = ap.parse_args()

    import random

    rng = random.Random(7)
    bodies = [json.dumps(patient_dict()).encode()] + [json.dumps(random_patient_dict(rng, 0.3)).encode()
                                                      for _ in range(199)]
    rounds = [(f"POST /api/v1/assess, {w} worker{'s' if w > 1 else ''}", w, {}, "POST", "/api/v1/assess", None)
              for w in args.workers]
    rounds.append(("GET /api/v1/health (baseline), 1 worker", 1, {}, "GET", "/api/v1/health", None))
    if args.baseline_src:
        rounds.append(("POST /api/v1/assess, baseline source, 1 worker", 1, {}, "POST", "/api/v1/assess",
                       args.baseline_src))
    if args.old_executor:
        rounds.append((f"POST /api/v1/assess, Polars one-row path, {max(args.workers)} workers", max(args.workers),
                       {"NELM_EXECUTOR": "polars"}, "POST", "/api/v1/assess", None))
    results = {}
    print(f"{args.clients} concurrent clients, at most {args.requests} requests or {args.seconds:g} s per round")
    for label, workers, env, method, path, src in rounds:
        proc, base, tmp = start(workers, env, src)
        try:
            got = asyncio.run(load(base, method, path, bodies if method == "POST" else [b""], args.clients,
                                   args.requests, args.seconds))
        finally:
            stop(proc)
            tmp.cleanup()
        results[label] = got
        print(f"{label:<58} {got['rps']:7.0f} req/s  p50 {got['p50_ms']:6.1f} ms  p90 {got['p90_ms']:6.1f} ms  "
              f"p99 {got['p99_ms']:6.1f} ms  ({got['requests']} requests, {got['errors']} errors)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
