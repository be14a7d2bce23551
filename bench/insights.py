"""Customer insights at marketplace scale: dashboard, analytics (30 and 365 days) and preferences.

``python -m bench.insights`` serves a PostgreSQL database seeded with ``python -m app seed --orders
1000000`` (``--seed`` seeds it first; ~100 s) through ``python -m app serve`` pinned to core 0, with
Redis for the insights cache, and drives it from this process pinned to core 1 for the customer
with the most orders (found with SQL). For each endpoint it measures

- cold: the customer's cache is invalidated (through the same Redis keys the server uses) before
  every request, so each one computes in the database; latency of sequential requests, then
  requests/s with ``--concurrency`` clients, each invalidating before its request;
- warm: the answer is cached; latency and requests/s with ``--concurrency`` clients.

The client is a minimal keep-alive HTTP/1.1 client, so the load generator costs little of core 1.
Finally it prints EXPLAIN (ANALYZE, BUFFERS) of the hot queries for that customer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import jwt
from redis.asyncio import Redis

from app.services.insights_cache import RedisInsightsCache

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-insights-secret-0123456789abcdef"
PG = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
ENDPOINTS = (
    "/customer/dashboard",
    "/customer/analytics?days=30",
    "/customer/analytics?days=365",
    "/customer/preferences",
)


class Connection:
    """One keep-alive HTTP/1.1 connection that sends GETs and reads Content-Length bodies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str) -> None:
        self.reader, self.writer, self.token = reader, writer, token

    @classmethod
    async def open(cls, port: int, token: str) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, token)

    async def get(self, path: str) -> tuple[int, bytes]:
        request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {self.token}\r\n\r\n"
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def _timed(connection: Connection, path: str, before: Callable[[], Awaitable[None]] | None) -> float:
    if before is not None:
        await before()
    started = time.perf_counter()
    status, body = await connection.get(path)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise SystemExit(f"{path}: {status} {body[:200]!r}")
    return elapsed


async def _sequential(
    connection: Connection, path: str, count: int, before: Callable[[], Awaitable[None]] | None
) -> list[float]:
    return [await _timed(connection, path, before) for _ in range(count)]


async def _rate(
    port: int, token: str, clients: int, path: str, seconds: float, before: Callable[[], Awaitable[None]] | None
) -> float:
    # Fresh connections: uvicorn closes keep-alive connections idle for 5 s.
    connections = [await Connection.open(port, token) for _ in range(clients)]
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker(connection: Connection) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await _timed(connection, path, before)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        await connection.close()
    return done / elapsed


async def _heaviest_customer(database_url: str) -> tuple[str, int]:
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "SELECT customer_id, count(*) AS orders FROM orders GROUP BY customer_id ORDER BY 2 DESC LIMIT 1"
        )
    finally:
        await connection.close()
    assert row is not None, "the database has no orders: seed it (--seed)"
    return str(row["customer_id"]), int(row["orders"])


HOT_QUERIES = {
    "summary (all endpoints)": "SELECT status, payment_status, currency, count(*), sum(total_cents), min(created_at),"
    " max(created_at) FROM orders WHERE customer_id = $1 GROUP BY status, payment_status, currency",
    "recent activity (dashboard)": "SELECT e.id, e.order_id, e.kind, e.from_status, e.to_status, e.created_at"
    " FROM order_events e WHERE e.customer_id = $1 ORDER BY e.created_at DESC, e.id DESC LIMIT 10",
    "categories, 365 days (analytics)": "SELECT i.category, o.currency, count(DISTINCT o.id), sum(i.quantity),"
    " sum(CASE WHEN o.payment_status = 'SUCCEEDED' AND o.status NOT IN ('CANCELLED', 'REFUNDED')"
    " THEN i.unit_price_cents * i.quantity ELSE 0 END) FROM order_items i JOIN orders o ON o.id = i.order_id"
    " WHERE i.customer_id = $1 AND i.ordered_at >= $2 AND o.customer_id = $1 AND o.created_at >= $2"
    " GROUP BY i.category, o.currency",
    "favourite products (preferences)": "SELECT i.product_id, count(DISTINCT o.id), sum(i.quantity)"
    " FROM order_items i JOIN orders o ON o.id = i.order_id WHERE i.customer_id = $1 AND o.customer_id = $1"
    " GROUP BY i.product_id ORDER BY 2 DESC, 3 DESC, 1 LIMIT 10",
}


async def _explain(database_url: str, customer: str) -> str:
    connection = await asyncpg.connect(database_url)
    since = datetime.now(UTC) - timedelta(days=365)
    try:
        plans = []
        for name, sql in HOT_QUERIES.items():
            args = (customer, since) if "$2" in sql else (customer,)
            rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
            plans.append(f"-- {name}\n" + "\n".join(row[0] for row in rows))
        return "\n\n".join(plans)
    finally:
        await connection.close()


def _serve(database_url: str, port: int, prefix: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": prefix,
        "JWT_SECRET": SECRET,
        "WEBHOOK_SECRET": SECRET,
        "PORT": str(port),
        "RATE_LIMIT": "100000000/minute",
    }
    return subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env)


async def _wait_healthy(port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise SystemExit(f"the server on port {port} did not start within {within} s")


async def _run(args: argparse.Namespace) -> None:
    database_url = f"{PG}/{args.database}"
    customer, orders = await _heaviest_customer(database_url)
    token = jwt.encode({"sub": customer, "role": "customer", "exp": int(time.time()) + 3600}, SECRET, "HS256")
    prefix = f"bench-insights-{os.getpid()}"
    redis = Redis.from_url(REDIS_URL)
    cache = RedisInsightsCache(redis, prefix)
    port = 19000 + os.getpid() % 1000
    server = _serve(database_url, port, prefix)
    try:
        await _wait_healthy(port)
        connection = await Connection.open(port, token)

        async def invalidate() -> None:
            await cache.invalidate(customer)

        for path in ENDPOINTS:  # warm up the server and PostgreSQL's buffers
            await _sequential(connection, path, 5, invalidate)
        await connection.close()
        print(f"customer {customer} ({orders:,} orders); server on core 0, client on core 1, Redis cache")
        print(f"cold: {args.requests} sequential requests, each after an invalidation; rates with {args.concurrency}")
        print(f"clients for {args.seconds} s; warm: {args.requests * 5} sequential requests, rate as for cold\n")
        print("| endpoint | cold p50 ms | cold p99 ms | cold req/s | warm p50 ms | warm p99 ms | warm req/s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for path in ENDPOINTS:
            connection = await Connection.open(port, token)
            cold = await _sequential(connection, path, args.requests, invalidate)
            await _timed(connection, path, None)
            warm = await _sequential(connection, path, args.requests * 5, None)
            await connection.close()
            cold_rate = await _rate(port, token, args.concurrency, path, args.seconds, invalidate)
            warm_rate = await _rate(port, token, args.concurrency, path, args.seconds, None)
            print(
                f"| `{path}` | {_percentile(cold, 0.5):.1f} | {_percentile(cold, 0.99):.1f} | {cold_rate:.0f}"
                f" | {_percentile(warm, 0.5):.2f} | {_percentile(warm, 0.99):.2f} | {warm_rate:.0f} |"
            )
            print(f"  (cold mean {statistics.fmean(cold) * 1000:.1f} ms)", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=15)
        await cache.invalidate(customer)
        await redis.delete(f"{prefix}:insights:{customer}:version")
        await redis.aclose()
    if args.explain:
        print("\n" + await _explain(database_url, customer))


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table (and the query plans)."""
    parser = argparse.ArgumentParser(prog="python -m bench.insights", description=__doc__)
    parser.add_argument("--database", default="insights_bench", help="PostgreSQL database (seeded with 1M orders)")
    parser.add_argument("--seed", action="store_true", help="create and seed the database first (~100 s)")
    parser.add_argument("--requests", type=int, default=200, help="sequential cold requests per endpoint")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of each requests/s measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-explain", dest="explain", action="store_false")
    args = parser.parse_args(argv)
    if args.seed:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f'CREATE DATABASE "{args.database}"'])
        env = {**os.environ, "DATABASE_URL": f"{PG}/{args.database}", "JWT_SECRET": SECRET, "WEBHOOK_SECRET": SECRET}
        subprocess.run([sys.executable, "-m", "app", "seed", "--orders", "1000000"], cwd=ROOT, env=env, check=True)
        subprocess.run([sys.executable, "-m", "app", "migrate"], cwd=ROOT, env=env, check=True)
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", args.database, "-c", "VACUUM ANALYZE"], check=True)
    os.sched_setaffinity(0, {1})
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
