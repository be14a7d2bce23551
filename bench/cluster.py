"""``python -m bench.cluster``: the relay on a 3-shard Redis Cluster, against one Redis.

1. **Publish path** (``channels.RedisBroker.publish``, with history, as every producer of ours and the
   server API publish): events/s from one client process and Redis CPU per event (the sum over the
   masters of ``used_cpu_user + used_cpu_sys``), on one Redis and on the 3-shard cluster.
2. **Private fan-out over the cluster**: N clients of N users split over two server processes (one
   per core), events of ~250 bytes without ``ts`` published with ``SPUBLISH`` to random users at
   rising rates (each command to the master of its slot); the highest rate held with every message
   delivered and p99 < 200 ms, and p50/p99 at 1,000 msg/s.

Both set-ups are started here on free loopback ports (``bench/redis_topology.py``) and removed after;
the database is a throwaway SQLite file. Results are printed; docs/performance.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from redis.crc import key_slot

from bench.redis_topology import RedisCluster, RedisServer
from bench.servers import JWT_SECRET, ROOT, WEBHOOK_SECRET, free_port, rss_kib, tokens_for
from bench.wsclient import Pool, close_clients, open_clients, poll_until
from channels import RedisBroker

PAYLOAD = b'{"orderId":"ord_0193a1b2c3d4e5f60718293a4b5c6d7e","status":"OUT_FOR_DELIVERY","lat":52.520008,"lng":13.404954,"etaSeconds":420,"note":"courier is two streets away","courier":{"id":"cr_0042","name":"Ada","vehicle":"bike"},"seq":%d,"sent":%.6f}'  # noqa: E501


def _redis_cpu(ports: list[int]) -> float:
    total = 0.0
    for port in ports:
        info = redis.Redis(port=port).info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


async def publish_path(url: str, master_ports: list[int], events: int, in_flight: int = 64) -> tuple[float, float]:
    """Publish ``events`` with history to random channels, ``in_flight`` at a time: (events/s, Redis µs/event)."""
    broker = RedisBroker(url, prefix=f"bench-publish-{os.getpid()}")
    await broker.start()
    try:
        channels = [f"user:p{i}" for i in range(1000)]
        rng = random.Random(1)
        queue = list(range(events))

        async def worker() -> None:
            while queue:
                n = queue.pop()
                await broker.publish(rng.choice(channels), "bench.tick", PAYLOAD % (n, time.time()))

        cpu_before = _redis_cpu(master_ports)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
        cpu = _redis_cpu(master_ports) - cpu_before
    finally:
        await broker.stop()
    return events / elapsed, cpu / events * 1e6


class ShardPublisher:
    """Writes ``SPUBLISH`` as raw RESP to the master of each channel's slot, one connection per master."""

    def __init__(self, cluster: RedisCluster, prefix: str) -> None:
        self._prefix = prefix
        self._cluster = cluster
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._readers: list[asyncio.Task[None]] = []
        self.replies = 0

    async def connect(self) -> None:
        for node in self._cluster.nodes:
            if node.call("ROLE").startswith("master"):
                reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
                self._writers[node.port] = writer
                self._readers.append(asyncio.create_task(self._count(reader)))

    async def _count(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            self.replies += 1 if line.startswith(b":") else 0

    def owner(self, channel: str) -> int:
        return self._cluster.master_of_slot(key_slot(f"{self._prefix}:{channel}".encode())).port

    def send(self, port: int, name: bytes, seq: int) -> None:
        body = b'{"type":"bench.tick","data":' + PAYLOAD % (seq, time.time()) + b"}"
        self._writers[port].write(
            b"*3\r\n$8\r\nSPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(name), name, len(body), body)
        )

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        for task in self._readers:
            task.cancel()


def _server(env: dict[str, str], core: int, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            ["taskset", "-c", str(core), sys.executable, "-m", "app", "serve"],
            env={**env, "PORT": str(port)},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def fanout(
    cluster: RedisCluster, n: int, rates: list[int], seconds: float
) -> list[tuple[int, int, float, float]]:
    """Private fan-out over the cluster with two server processes: (rate, delivered, p50 ms, p99 ms) per step."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    prefix = f"bench-cluster-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_", "WS_", "JWT_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        REDIS_URL=cluster.url,
        REDIS_PREFIX=prefix,
        JWT_SECRET=JWT_SECRET,
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        WS_RATE="100000",
        LOG_LEVEL="WARNING",
        APP_ENV="dev",
    )
    migrate = [sys.executable, "-m", "app", "migrate"]
    await asyncio.to_thread(subprocess.run, migrate, env=env, cwd=ROOT, check=True, capture_output=True)
    ports = [free_port(), free_port()]
    servers = [_server(env, core, port, tmp / f"server-{core}.log") for core, port in enumerate(ports)]
    results: list[tuple[int, int, float, float]] = []
    pool = Pool()
    try:
        for port in ports:
            ready = await poll_until(lambda p=port: _ready(p), 30, 0.1)
            if not ready:
                raise RuntimeError(f"server on {port} not ready: {(tmp / 'server-0.log').read_text()[-2000:]}")
        users = [f"u_{i}" for i in range(n)]
        clients = []
        for index, port in enumerate(ports):
            half = users[index::2]
            opened, _ = await open_clients(
                pool, "127.0.0.1", port, list(zip(half, tokens_for(half), strict=True)), concurrency=100
            )
            clients += opened
        print(f"  {len(clients)}/{n} clients subscribed; server RSS {[rss_kib(s.pid) // 1024 for s in servers]} MiB")
        publisher = ShardPublisher(cluster, prefix)
        await publisher.connect()
        routes = [(publisher.owner(f"user:{u}"), f"{prefix}:user:{u}".encode()) for u in users]
        rng = random.Random(7)
        for rate in rates:
            pool.reset(clients)
            total, seq, started = int(rate * seconds), 0, time.perf_counter()
            while seq < total:
                due = min(total, int((time.perf_counter() - started) * rate) + 1)
                for _ in range(due - seq):
                    seq += 1
                    port, name = routes[rng.randrange(len(routes))]
                    publisher.send(port, name, seq)
                await asyncio.sleep(0.002)
            await poll_until(lambda t=total: pool.received >= t, 5)
            latencies = sorted(pool.latencies)
            p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
            p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
            results.append((rate, pool.received, p50, p99))
            print(f"  {rate:>7,} msg/s: {pool.received:>8,}/{total:,} delivered, p50 {p50:6.2f} ms, p99 {p99:7.2f} ms")
        publisher.close()
        await close_clients(clients)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=15)
    return results


def _ready(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


DEFAULT_RATES = (1000, 5000, 10000, 20000, 40000, 60000)


async def run_cluster(
    events: int = 20_000, connections: int = 1000, rates: tuple[int, ...] = DEFAULT_RATES, step_seconds: float = 3.0
) -> None:
    """Start one Redis and a 3-shard cluster, run both parts, print their figures, remove both."""
    single, cluster = RedisServer(), RedisCluster()
    single.start()
    cluster.start()
    try:
        masters = [n.port for n in cluster.nodes if n.call("ROLE").startswith("master")]
        print("publish path (RedisBroker.publish with history, 64 in flight, ~250-byte data):")
        for label, url, ports in (("one Redis", single.url, [single.port]), ("3-shard cluster", cluster.url, masters)):
            rate, cpu = await publish_path(url, ports, events)
            print(f"  {label:>16}: {rate:>8,.0f} events/s from one client process, {cpu:5.1f} µs of Redis CPU/event")
        print(f"private fan-out, {connections} clients over two server processes (cores 0 and 1), cluster:")
        await fanout(cluster, connections, list(rates), step_seconds)
    finally:
        cluster.stop()
        single.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.cluster [--events N] [--connections N] [--rates a,b,c] [--step-seconds S]``."""
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="publish path: events per set-up")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    parser.add_argument("--step-seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    rates = tuple(int(rate) for rate in args.rates.split(","))
    asyncio.run(run_cluster(args.events, args.connections, rates, args.step_seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
