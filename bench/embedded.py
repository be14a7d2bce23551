"""The embedded setup of ``make run`` (SQLite, in-process broker) under a burst of writes.

``python -m bench.embedded`` migrates and seeds a temporary SQLite file as ``make run`` does, serves
it with ``python -m app serve`` pinned to core 0 (this process on core 1), then measures sequential
reads of the bell and the order list, and ``--rounds`` bursts of ``--concurrency`` simultaneous
``POST /notifications`` (each a write transaction, an outbox event and a live publish): status
codes, p50 and p99. No PostgreSQL or Redis is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import jwt

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-embedded-secret-0123456789abcdef0123"
READS = ("/notifications/unread-count", "/notifications?limit=20", "/orders")


def _token(sub: str, role: str) -> str:
    return jwt.encode({"sub": sub, "role": role, "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000:.1f} ms"


async def _wait_ready(client: httpx.AsyncClient, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if (await client.get("/ready")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("server not ready")


async def _measure(port: int, concurrency: int, rounds: int) -> None:
    customer = {"Authorization": f"Bearer {_token('u_bench', 'customer')}"}
    service = {"Authorization": f"Bearer {_token('svc_bench', 'service')}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
        await _wait_ready(client)
        await client.get("/me", headers=customer)  # the user row exists from here on
        for path in READS:
            latencies = []
            for _ in range(200):
                started = time.perf_counter()
                response = await client.get(path, headers=customer)
                latencies.append(time.perf_counter() - started)
            print(f"GET {path}: {response.status_code}, p50 {_ms(latencies, 0.5)}, p99 {_ms(latencies, 0.99)}")

        async def create(index: int) -> tuple[int, float]:
            body = {"userId": "u_bench", "type": "ACCOUNT_UPDATED", "title": f"burst {index}", "message": "m"}
            started = time.perf_counter()
            response = await client.post("/notifications", json=body, headers=service)
            return response.status_code, time.perf_counter() - started

        for round_ in range(rounds):
            started = time.perf_counter()
            results = await asyncio.gather(*(create(i) for i in range(concurrency)))
            took = time.perf_counter() - started
            statuses = sorted({status for status, _ in results})
            latencies = [latency for _, latency in results]
            print(
                f"burst {round_ + 1}/{rounds}: {concurrency} x POST /notifications in {took:.2f} s, "
                f"statuses {statuses}, p50 {_ms(latencies, 0.5)}, p99 {_ms(latencies, 0.99)}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.embedded", description=__doc__)
    parser.add_argument("--concurrency", type=int, default=100, help="simultaneous creates per burst (%(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="bursts (%(default)s)")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {1})
    tmp = Path(tempfile.mkdtemp(prefix="bench-embedded-"))
    port = 18_000 + os.getpid() % 1000
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_", "JWT_", "WORKERS"))}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'push.sqlite3'}",
        JWT_SECRET=SECRET,
        WEBHOOK_SECRET=SECRET,
        PORT=str(port),
        LOG_LEVEL="WARNING",
        RATE_LIMIT="100000/minute",  # the reads below come from one customer
    )
    server = None
    try:
        for command in (["migrate"], ["seed", "--orders", "300", "--notifications", "60", "--quiet"]):
            subprocess.run([sys.executable, "-m", "app", *command], env=env, cwd=ROOT, check=True, capture_output=True)
        server = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, "-m", "app", "serve"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        asyncio.run(_measure(port, args.concurrency, args.rounds))
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
