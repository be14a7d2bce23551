"""``python -m bench.courier_fleet``: a courier fleet posting locations, measured from POST to subscriber.

N orders in transit (seeded by SQL), one WebSocket subscriber on each ``order:{id}``, and a fleet
posting ``POST /orders/{id}/tracking`` (a ``service`` token, as a courier backend would, so the REST
rate limit does not apply) at N / interval pings per second. The server (``python -m app serve``,
PostgreSQL + Redis) is pinned to core 0; this process (pings and sockets) to core 1. Each step
reports POST->subscriber latency p50/p99, HTTP latency, throughput, the server's CPU (in all and per
ping) and errors; steps raise the rate until p99 exceeds the target or errors appear: the saturation
point.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import jwt
from websockets.asyncio.client import ClientConnection, connect

from bench.servers import JWT_SECRET, BenchEnv, Server, cpu_seconds, raise_fd_limit

__all__ = ["main"]


@dataclass
class Step:
    """What one rate step measured."""

    rate: float
    seconds: float
    sent: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    received: int = 0
    latencies: list[float] = field(default_factory=list)
    http: list[float] = field(default_factory=list)
    server_cpu: float = 0.0

    def row(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float:
            return round(statistics.quantiles(values, n=100)[q - 1] * 1000, 1) if len(values) > 1 else float("nan")

        return {
            "target/s": self.rate,
            "posted/s": round(self.ok / self.seconds, 1),
            "delivered/s": round(self.received / self.seconds, 1),
            "p50 ms": pct(self.latencies, 50),
            "p99 ms": pct(self.latencies, 99),
            "http p99 ms": pct(self.http, 99),
            "server cpu %": round(100 * self.server_cpu / self.seconds, 1),
            "cpu ms/ping": round(1000 * self.server_cpu / self.ok, 3) if self.ok else float("nan"),
            "errors": sum(self.errors.values()),
            "lost": self.ok - len(self.latencies),
            "error kinds": dict(self.errors),
        }


def _token(sub: str, role: str) -> str:
    return jwt.encode({"sub": sub, "role": role, "exp": int(time.time()) + 7200}, JWT_SECRET, algorithm="HS256")


async def seed(database_url: str, orders: int) -> list[str]:
    """Users, a store, a product and ``orders`` SHIPPED orders of one customer, straight into PostgreSQL."""
    conn = await asyncpg.connect(database_url)
    now = time.time()
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(now, UTC)
    try:
        await conn.executemany(
            "INSERT INTO users (id, role, created_at, updated_at) VALUES ($1, $2, $3, $3) ON CONFLICT DO NOTHING",
            [("c_fleet", "customer", stamp), ("v_fleet", "vendor", stamp)],
        )
        await conn.execute("INSERT INTO stores VALUES ('sto_fleet', 'v_fleet', 'Fleet', $1)", stamp)
        ids = [f"ord_fleet_{number:05d}" for number in range(orders)]
        address = json.dumps({"name": "A", "line1": "1", "city": "C", "postalCode": "1", "country": "US"})
        await conn.executemany(
            "INSERT INTO orders (id, customer_id, store_id, status, payment_status, subtotal_cents, shipping_cents,"
            " total_cents, currency, shipping_address, created_at, updated_at)"
            " VALUES ($1, 'c_fleet', 'sto_fleet', 'SHIPPED', 'SUCCEEDED', 1000, 0, 1000, 'USD', $2, $3, $3)",
            [(order_id, address, stamp) for order_id in ids],
        )
    finally:
        await conn.close()
    return ids


class RawPost:
    """A keep-alive HTTP/1.1 connection posting JSON; far cheaper per request than httpx, so the
    load generator is not the bottleneck."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return int(status_line.split()[1])


class Fleet:
    """The subscribers and the pinger of one run."""

    def __init__(self, base: str, order_ids: list[str], server_pid: int) -> None:
        self.base = base
        self.server_pid = server_pid
        self.order_ids = order_ids
        self.sockets: list[ClientConnection] = []
        self.sent_at: dict[tuple[str, float], float] = {}
        self.step: Step | None = None
        self.sequence = itertools.count(1)
        self.listeners: list[asyncio.Task[None]] = []

    async def subscribe_all(self) -> None:
        """One socket per order, subscribed to its order channel (50 at a time)."""
        token = _token("c_fleet", "customer")
        ws_url = self.base.replace("http", "ws") + "/ws"

        async def one(order_id: str) -> ClientConnection:
            ws = await connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}, max_queue=None)
            await ws.recv()  # welcome
            await ws.recv()  # subscribed user:
            await ws.send(json.dumps({"op": "subscribe", "channel": f"order:{order_id}"}))
            while '"subscribed"' not in str(await asyncio.wait_for(ws.recv(), 30)):
                pass
            return ws

        for start in range(0, len(self.order_ids), 50):
            batch = self.order_ids[start : start + 50]
            self.sockets.extend(await asyncio.gather(*(one(order_id) for order_id in batch)))
        self.listeners = [asyncio.create_task(self._listen(ws)) for ws in self.sockets]

    async def _listen(self, ws: ClientConnection) -> None:
        async for frame in ws:
            now = time.perf_counter()
            for line in str(frame).split("\n"):
                message = json.loads(line)
                if message.get("type") != "tracking.location":
                    continue
                key = (message["data"]["orderId"], message["data"]["lat"])
                sent = self.sent_at.pop(key, None)
                if sent is not None and self.step is not None:
                    self.step.received += 1
                    self.step.latencies.append(now - sent)

    async def run_step(self, pool: asyncio.Queue[RawPost], rate: float, seconds: float) -> Step:
        """Post ``rate`` pings per second for ``seconds``, spread over the orders round-robin."""
        step = self.step = Step(rate, seconds)
        self.sent_at.clear()
        orders = itertools.cycle(self.order_ids)
        tasks: set[asyncio.Task[None]] = set()

        async def ping(order_id: str) -> None:
            connection = await pool.get()
            lat = round(next(self.sequence) * 1e-6 % 89, 6)
            started = time.perf_counter()
            self.sent_at[(order_id, lat)] = started
            try:
                status = await connection.post(
                    f"/orders/{order_id}/tracking", json.dumps({"lat": lat, "lng": 13.4}).encode()
                )
                if status == 200:
                    step.ok += 1
                    step.http.append(time.perf_counter() - started)
                else:
                    step.errors[str(status)] = step.errors.get(str(status), 0) + 1
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                connection.writer = None
                step.errors[type(exc).__name__] = step.errors.get(type(exc).__name__, 0) + 1
            finally:
                pool.put_nowait(connection)

        cpu_before = cpu_seconds(self.server_pid)
        begin = time.perf_counter()
        while (elapsed := time.perf_counter() - begin) < seconds:
            due = int(elapsed * rate) - step.sent
            for _ in range(due):
                task = asyncio.create_task(ping(next(orders)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            step.sent += max(due, 0)
            await asyncio.sleep(0.005)
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        # The server's CPU for the step's pings: its HTTP requests, database work, publishes and fan-out.
        step.server_cpu = cpu_seconds(self.server_pid) - cpu_before
        await asyncio.sleep(1.0)  # bounded grace for the last deliveries
        self.step = None
        return step


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    raise_fd_limit()
    env = BenchEnv(database="postgres")
    await asyncio.to_thread(env.setup)
    server = Server("ours", env)
    rows: list[dict[str, Any]] = []
    try:
        order_ids = await seed(env.database_url, args.orders)
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        fleet = Fleet(base, order_ids, server.pid)
        await fleet.subscribe_all()
        print(f"{len(fleet.sockets)} subscribers on order channels; server pid {server.pid} on core 0")
        pool: asyncio.Queue[RawPost] = asyncio.Queue()
        for _ in range(args.http_connections):
            pool.put_nowait(RawPost("127.0.0.1", server.port, _token("courier_backend", "service")))
        if pool:
            rate = args.orders / args.interval
            first = True
            while True:
                step = await fleet.run_step(pool, rate, args.duration if first else args.step_seconds)
                row = step.row()
                rows.append(row)
                print(json.dumps(row))
                first = False
                if row["p99 ms"] > args.target_p99 or row["errors"] or rate >= args.max_rate:
                    break
                rate *= 1.5
        for ws in fleet.sockets:
            await ws.close()
    finally:
        print("\n".join(server.problems(12)))
        await server.stop()
        await asyncio.to_thread(env.teardown)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.courier_fleet", description=__doc__)
    parser.add_argument("--orders", type=int, default=2000, help="orders in transit, one subscriber each")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between two pings of one order")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the first (nominal rate) step")
    parser.add_argument("--step-seconds", type=float, default=10.0, help="seconds of each higher-rate step")
    parser.add_argument("--target-p99", type=float, default=50.0, help="saturation: p99 ms beyond this")
    parser.add_argument("--max-rate", type=float, default=20000.0, help="stop raising the rate here")
    parser.add_argument("--http-connections", type=int, default=64, help="keep-alive HTTP connections")
    args = parser.parse_args(argv)
    try:
        if (os.cpu_count() or 0) >= 2:
            os.sched_setaffinity(0, {1})
    except OSError:
        pass
    rows = asyncio.run(run(args))
    saturated = next((row for row in rows if row["p99 ms"] > args.target_p99 or row["errors"]), None)
    print("saturation:", "not reached" if saturated is None else f"{saturated['target/s']} pings/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
