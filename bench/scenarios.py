"""The relay scenarios: broadcast and private fan-out ramps, idle memory, connect rate, start-up burst.

A step publishes at a fixed rate for ``seconds``, waits (bounded) for every expected message, and
passes when nothing was lost, no client was closed and the sampled p99 latency is under 200 ms.
A ramp climbs the rates until the first failing step.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from bench.publisher import RawPublisher
from bench.servers import BenchEnv, Server, ServerKind, cpu_seconds, rss_kib, tokens_for
from bench.wsclient import Client, Pool, close_clients, open_clients, poll_until

__all__ = ["ConnectResult", "Plan", "RunResult", "StepResult", "burst", "connect_runs", "relay_run"]

P99_LIMIT = 0.200
DRAIN_SECONDS = 2.0
# A step counts only if the publisher really sent at (nearly) its rate: at the top private steps the
# load process itself may be the limit, and a slower publish would overstate what the server held.
PUBLISH_RATE_FLOOR = 0.9


@dataclass
class Plan:
    """How long and how hard: the ``--quick`` plan is a smoke run of a few seconds."""

    step_seconds: float = 3.0
    broadcast_rates: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
    # Up to 150k, with 60k (3x a 20k baseline): the private bar must be showable either way (~5 s a step).
    # 30k and 40k: without them one marginal failure at 50k fell back to 35k, a 30% understatement.
    private_rates: tuple[float, ...] = (
        *(100, 200, 500, 1000, 2000, 5000, 10000, 20000, 30000, 40000, 50000),
        *(60000, 75000, 100000, 150000),
    )
    private_reference_rate: float = 1000
    concurrency: int = 200
    burst: int = 5000
    refine: bool = True


@dataclass
class StepResult:
    rate: float
    published: int
    expected: int
    received: int
    lost: int
    p50_ms: float | None
    p99_ms: float | None
    server_cpu: float
    client_cpu: float
    closes: dict[int, int]
    unheard: int
    redis_lost: bool = False
    achieved_rate: float = 0.0  # what the publisher really sent per second (it shares core 1 with the clients)

    @property
    def publisher_kept_up(self) -> bool:
        return self.achieved_rate >= PUBLISH_RATE_FLOOR * self.rate

    @property
    def ok(self) -> bool:
        held = self.lost == 0 and not self.closes and self.p99_ms is not None and self.p99_ms < P99_LIMIT * 1000
        return held and self.publisher_kept_up


@dataclass
class RunResult:
    """Everything measured for one server at one connection count."""

    kind: ServerKind
    connections: int
    opened: int = 0
    connect_seconds: float = 0.0
    connect_errors: dict[str, int] = field(default_factory=dict)
    idle_kib_per_conn: float | None = None
    broadcast: list[StepResult] = field(default_factory=list)
    private: list[StepResult] = field(default_factory=list)
    private_reference: StepResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def connects_per_s(self) -> float | None:
        return self.opened / self.connect_seconds if self.connect_seconds else None

    def best(self, steps: list[StepResult]) -> StepResult | None:
        passed = [s for s in steps if s.ok]
        return max(passed, key=lambda s: s.rate) if passed else None

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "connects_per_s": self.connects_per_s}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1] * 1000


async def _step(
    server: Server,
    publisher: RawPublisher,
    clients: list[Client],
    pool: Pool,
    *,
    broadcast: bool,
    rate: float,
    plan: Plan,
) -> StepResult:
    publisher = await publisher.reconnected()
    pool.reset(clients)
    pool.closes.clear()
    gc.collect()
    gc.disable()  # no collector pause in the load generator while a step is measured
    try:
        return await _measure(server, publisher, clients, pool, broadcast=broadcast, rate=rate, plan=plan)
    finally:
        gc.enable()


async def _measure(
    server: Server,
    publisher: RawPublisher,
    clients: list[Client],
    pool: Pool,
    *,
    broadcast: bool,
    rate: float,
    plan: Plan,
) -> StepResult:
    expected = [0] * (1 if broadcast else len(clients))
    channels = [_channel(server, "u_bcast")] if broadcast else [_channel(server, c.name) for c in clients]
    unheard_before = publisher.unheard
    cpu_server, cpu_client, started = cpu_seconds(server.pid), cpu_seconds(), time.perf_counter()
    published, last = await publisher.run(channels, rate, plan.step_seconds, expected)
    achieved = published / max(last - started, 1e-9)
    await publisher.wait_replies()
    total = published * len(clients) if broadcast else published
    await poll_until(lambda: pool.received >= total, max(0.0, last + DRAIN_SECONDS - time.perf_counter()))
    elapsed = time.perf_counter() - started
    if broadcast:
        lost = sum(max(0, published - c.count) for c in clients)
    else:
        lost = sum(max(0, want - c.count) for want, c in zip(expected, clients, strict=True))
    samples = pool.latencies.tolist()
    return StepResult(
        rate=rate,
        published=published,
        expected=total,
        received=pool.received,
        lost=lost,
        p50_ms=_percentile(samples, 0.5),
        p99_ms=_percentile(samples, 0.99),
        server_cpu=(cpu_seconds(server.pid) - cpu_server) / elapsed,
        client_cpu=(cpu_seconds() - cpu_client) / elapsed,
        closes=dict(pool.closes),
        unheard=publisher.unheard - unheard_before,
        redis_lost=publisher.lost,
        achieved_rate=achieved,
    )


def _channel(server: Server, user: str) -> bytes:
    return f"{server.bench.prefix}:user:{user}".encode()


def _line(label: str, kind: str, n: int, step: StepResult, unit: float) -> str:
    p50 = f"{step.p50_ms:.1f}" if step.p50_ms is not None else "-"
    p99 = f"{step.p99_ms:.1f}" if step.p99_ms is not None else "-"
    flags = "ok" if step.ok else "FAIL"
    extra = f" closes={step.closes}" if step.closes else ""
    extra += f" unheard={step.unheard}" if step.unheard else ""
    extra += " (Redis connection lost during the step: restarted by another suite?)" if step.redis_lost else ""
    extra += f" publisher-only={step.achieved_rate:.0f}/s" if not step.publisher_kept_up else ""
    return (
        f"  [{kind:8} N={n:>5}] {label:9} rate={step.rate:>7g}/s deliveries={step.rate * unit:>9.0f}/s "
        f"missing={step.lost:<6} p50={p50:>7}ms p99={p99:>7}ms cpu server={step.server_cpu:4.0%} "
        f"client={step.client_cpu:4.0%} {flags}{extra}"
    )


async def _ramp(
    server: Server, publisher: RawPublisher, clients: list[Client], pool: Pool, *, broadcast: bool, plan: Plan
) -> list[StepResult]:
    steps: list[StepResult] = []
    label = "broadcast" if broadcast else "private"
    rates = list(plan.broadcast_rates if broadcast else plan.private_rates)
    refined = False
    for _ in range(len(rates) + 1):
        if not rates:
            break
        rate = rates.pop(0)
        step = await _step(server, publisher, clients, pool, broadcast=broadcast, rate=rate, plan=plan)
        steps.append(step)
        print(_line(label, server.kind, len(clients), step, len(clients) if broadcast else 1), flush=True)
        if not step.ok:
            passed = [s.rate for s in steps if s.ok]
            if refined or not passed or not plan.refine:
                break
            # One more step half-way between the last rate held and the first that failed.
            refined, rates = True, [round((passed[-1] + rate) / 2)]
            await server.settle()
        await asyncio.sleep(0.3)
    return steps


async def _open(server: Server, pool: Pool, subs: list[str], concurrency: int) -> tuple[list[Client], float]:
    users = list(zip(subs, tokens_for(subs), strict=True))
    return await open_clients(pool, "127.0.0.1", server.port, users, concurrency=concurrency)


async def _warm_up(server: Server, pool: Pool, prefix: str, plan: Plan) -> None:
    """20 sockets opened and closed, then the server idle again: the first connects of a process are dearer."""
    warm, _ = await _open(server, pool, [f"{prefix}{i}" for i in range(20)], plan.concurrency)
    await close_clients(warm)
    await server.settle()


async def relay_run(bench: BenchEnv, kind: ServerKind, n: int, plan: Plan, publisher: RawPublisher) -> RunResult:
    """Idle memory, connect rate, private ramp and broadcast ramp against one fresh server."""
    result = RunResult(kind, n)
    server = Server(kind, bench)
    await server.start()
    pool = Pool()
    try:
        await _warm_up(server, pool, "u_warm", plan)
        rss_before = rss_kib(server.pid)
        cpu_server, cpu_client = cpu_seconds(server.pid), cpu_seconds()
        clients, result.connect_seconds = await _open(server, pool, [f"u_{i}" for i in range(n)], plan.concurrency)
        result.opened, result.connect_errors = len(clients), dict(pool.errors)
        cpu_server = (cpu_seconds(server.pid) - cpu_server) / result.connect_seconds
        cpu_client = (cpu_seconds() - cpu_client) / result.connect_seconds
        print(
            f"  [{kind:8} N={n:>5}] connect   {len(clients)}/{n} in {result.connect_seconds:.2f} s = "
            f"{result.connects_per_s or 0:.0f}/s errors={result.connect_errors or 'none'} "
            f"cpu server={cpu_server:4.0%} client={cpu_client:4.0%}",
            flush=True,
        )
        if len(clients) < n:
            result.notes.append(f"only {len(clients)} of {n} connected: {pool.errors}")
        await asyncio.sleep(1.0)
        await server.settle()
        if clients:
            result.idle_kib_per_conn = (rss_kib(server.pid) - rss_before) / len(clients)
            print(f"  [{kind:8} N={n:>5}] idle      {result.idle_kib_per_conn:.1f} KiB per connection", flush=True)
            result.private = await _ramp(server, publisher, clients, pool, broadcast=False, plan=plan)
            ref = next((s for s in result.private if s.rate == plan.private_reference_rate), None)
            if ref is None:
                await server.settle()
                ref = await _step(
                    server, publisher, clients, pool, broadcast=False, rate=plan.private_reference_rate, plan=plan
                )
                print(_line("private", kind, n, ref, 1), flush=True)
            result.private_reference = ref
        await close_clients(clients)
        await server.settle()
        pool = Pool()
        clients, _ = await _open(server, pool, ["u_bcast"] * n, plan.concurrency)
        if len(clients) < n:
            result.notes.append(f"broadcast: only {len(clients)} of {n} connected: {pool.errors}")
        if clients:
            await server.settle()
            result.broadcast = await _ramp(server, publisher, clients, pool, broadcast=True, plan=plan)
        await close_clients(clients)
    finally:
        await server.stop()
        _report_problems(server, result.notes)
    return result


@dataclass
class ConnectResult:
    """The connect rate over ``repeats`` fresh servers: each round opens N sockets of new users."""

    kind: ServerKind
    connections: int
    rates: list[float] = field(default_factory=list)
    cpu_ms_per_connect: list[float] = field(default_factory=list)
    incomplete: int = 0  # rounds where not every socket got its ack

    @property
    def p50(self) -> float | None:
        return statistics.median(self.rates) if self.rates else None

    @property
    def best(self) -> float | None:
        return max(self.rates) if self.rates else None


async def connect_runs(bench: BenchEnv, kind: ServerKind, n: int, plan: Plan, repeats: int) -> ConnectResult:
    """Connects/s (auth + welcome + subscribe ack, ``plan.concurrency`` in flight) on ``repeats`` fresh servers.

    One round lasts well under a second and varies by 15% or more between runs of the same code; the
    median of several is the figure.
    """
    result = ConnectResult(kind, n)
    for round_ in range(repeats):
        server = Server(kind, bench)
        await server.start()
        pool = Pool()
        try:
            await _warm_up(server, pool, f"w{round_}_", plan)
            cpu = cpu_seconds(server.pid)
            clients, seconds = await _open(server, pool, [f"c{round_}_{i}" for i in range(n)], plan.concurrency)
            cpu = cpu_seconds(server.pid) - cpu
            if len(clients) < n:
                result.incomplete += 1
            rate = len(clients) / seconds
            result.rates.append(rate)
            result.cpu_ms_per_connect.append(cpu * 1000 / max(len(clients), 1))
            print(
                f"  [{kind:8} N={n:>5}] connect round {round_ + 1}/{repeats}: {len(clients)}/{n} "
                f"in {seconds:.2f} s = {rate:,.0f}/s, server CPU {cpu * 1000 / max(len(clients), 1):.3f} ms/connect "
                f"errors={dict(pool.errors) or 'none'}",
                flush=True,
            )
            await close_clients(clients)
        finally:
            await server.stop()
    return result


def _report_problems(server: Server, notes: list[str]) -> None:
    for line in server.problems():
        print(f"  [{server.kind:8}] server log: {line}", flush=True)
        notes.append(f"server log: {line}")


@dataclass
class BurstResult:
    kind: ServerKind
    mode: str  # "private" (distinct users) or "broadcast" (one user)
    clients: int
    connected: int
    connect_seconds: float
    errors: dict[str, int]
    lost: int
    closes: dict[int, int]

    @property
    def ok(self) -> bool:
        return self.connected == self.clients and self.lost == 0 and not self.closes


async def burst(bench: BenchEnv, kind: ServerKind, n: int, broadcast: bool, publisher: RawPublisher) -> BurstResult:
    """``n`` clients connect at once right after start-up, then one publish reaches each: nothing lost."""
    server = Server(kind, bench)
    await server.start()
    pool = Pool()
    try:
        subs = ["u_bcast"] * n if broadcast else [f"u_burst{i}" for i in range(n)]
        users = list(zip(subs, tokens_for(subs), strict=True))
        clients, connect_seconds = await open_clients(pool, "127.0.0.1", server.port, users, concurrency=0)
        pool.reset(clients)
        publisher = await publisher.reconnected()
        channels = [_channel(server, sub) for sub in (["u_bcast"] if broadcast else subs)]
        expected = len(clients) if broadcast else n
        wall = time.time()
        ts = b"2024-01-01T00:00:00+00:00"
        publisher.publish([publisher.command(ch, i + 1, wall, ts) for i, ch in enumerate(channels)])
        await publisher.wait_replies()
        await poll_until(lambda: pool.received >= expected, 10.0)
        lost = (n - len(clients)) + sum(max(0, 1 - c.count) for c in clients)
        result = BurstResult(
            kind, "broadcast" if broadcast else "private", n, len(clients), connect_seconds, dict(pool.errors), lost, {}
        )
        result.closes = dict(pool.closes)
        await close_clients(clients)
    finally:
        await server.stop()
        _report_problems(server, [])
    mode = result.mode
    print(
        f"  [{kind:8}] burst {mode:9} {result.connected}/{n} connected in {result.connect_seconds:.2f} s, "
        f"lost={result.lost} errors={result.errors or 'none'} closes={result.closes or 'none'} "
        f"{'ok' if result.ok else 'FAIL'}",
        flush=True,
    )
    return result
