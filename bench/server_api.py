"""``python -m bench.server_api``: HTTP publish throughput of the server API on one server core.

One server (``taskset -c 0``, SQLite, the shared Redis under a prefix of its own) and this process on
core 1 with ``--clients`` concurrent keep-alive HTTP clients: ``POST /realtime/publish`` to one
channel and to random channels (~250-byte ``data``, no ``ts``), then ``POST /realtime/broadcast``
to 100 random channels. The load client (bench/httpload.py) costs far less than the server per
request, so the rate held is what one server core serves; each line shows how busy that core was,
so a figure measured below saturation shows itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.httpload import LoadResult, hammer, post_request
from bench.servers import JWT_SECRET, ROOT, WEBHOOK_SECRET, cpu_seconds, free_port, rss_kib
from bench.wsclient import poll_until

HOST = "127.0.0.1"

DATA = {
    "orderId": "ord_0193a1b2c3d4e5f60718293a4b5c6d7e",
    "status": "OUT_FOR_DELIVERY",
    "lat": 52.520008,
    "lng": 13.404954,
    "etaSeconds": 420,
    "note": "courier is two streets away, ring twice",
    "courier": {"id": "cr_0042", "name": "Ada", "vehicle": "bike"},
}


def _token() -> str:
    import jwt

    claims = {"sub": "svc_bench", "role": "service", "iat": int(time.time()), "exp": int(time.time()) + 3600}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def _report(label: str, result: LoadResult, busy: float, events_per_request: int) -> None:
    rate = result.requests / result.seconds
    print(
        f"  {label:<34} {rate:>7,.0f} requests/s  {rate * events_per_request:>9,.0f} events/s  "
        f"p50 {result.percentile(0.5) * 1000:6.1f} ms  p99 {result.percentile(0.99) * 1000:6.1f} ms  "
        f"server core {busy:4.0%} busy"
    )


async def run(clients: int = 32, seconds: float = 5.0) -> None:
    """Start the server, run the three loads, print their figures."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_", "JWT_", "RATE_"))}
    port = free_port()
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        REDIS_URL="redis://127.0.0.1:6379/0",
        REDIS_PREFIX=f"bench-api-{os.getpid()}",
        JWT_SECRET=JWT_SECRET,
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        LOG_LEVEL="WARNING",
        PORT=str(port),
    )
    migrate = [sys.executable, "-m", "app", "migrate"]
    await asyncio.to_thread(subprocess.run, migrate, env=env, cwd=ROOT, check=True, capture_output=True)
    server = await asyncio.to_thread(_start_server, env)
    token = _token()
    try:
        if not await poll_until(lambda: _ready(port), 30, 0.1):
            raise RuntimeError("the server did not become ready")
        rng = random.Random(3)
        loads = [
            (
                "publish, one channel",
                "/realtime/publish",
                {"channel": "order:hot", "type": "order.tick", "data": DATA},
                1,
            ),
            (
                "publish, random of 10,000 channels",
                "/realtime/publish",
                lambda: {"channel": f"order:o{rng.randrange(10_000)}", "type": "order.tick", "data": DATA},
                1,
            ),
            (
                "broadcast, 100 random channels",
                "/realtime/broadcast",
                lambda: {
                    "channels": [f"store:s{n}" for n in rng.sample(range(10_000), 100)],
                    "type": "store.tick",
                    "data": DATA,
                },
                100,
            ),
        ]
        print(f"server API on one core, {clients} concurrent clients, {seconds:g} s per load:")
        for label, path, body, per_request in loads:

            def request(path: str = path, body: object = body) -> bytes:
                return post_request(HOST, port, path, token, body() if callable(body) else body)

            await hammer(HOST, port, clients, 1.0, request)  # warm-up: JIT-free, but caches and pools fill
            cpu_before = cpu_seconds(server.pid)
            result = await hammer(HOST, port, clients, seconds, request)
            _report(label, result, (cpu_seconds(server.pid) - cpu_before) / result.seconds, per_request)
        print(f"  server VmRSS after the loads: {rss_kib(server.pid) / 1024:.0f} MiB")
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 15)


def _start_server(env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = ["taskset", "-c", "0", sys.executable, "-m", "app", "serve"]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://{HOST}:{port}/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.server_api [--clients N] [--seconds S]``."""
    parser = argparse.ArgumentParser(prog="python -m bench.server_api", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {1})
    asyncio.run(run(args.clients, args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
