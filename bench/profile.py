"""``python -m bench profile``: where our server's time goes, by ``py-spy record`` attached to it.

Three loads, one py-spy recording each (raw collapsed stacks in ``--profile-out``): opening N
connections of new users (connect), a broadcast at a rate it holds, and private messages at a rate
it holds. Each is summarised as the top functions by own time and by inclusive time, and own time
by package, as shares of the busy samples (py-spy does not record the idle event loop).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.publisher import RawPublisher
from bench.scenarios import Plan, _channel
from bench.servers import BenchEnv, Server, cpu_seconds, tokens_for
from bench.wsclient import Pool, close_clients, open_clients

__all__ = ["profile", "summarize"]

PACKAGES = ("channels/", "app/", "uvicorn/", "websockets/", "litestar/", "redis/", "msgspec", "asyncio/", "piccolo/")


# Stacks of threads that are waiting, not working (py-spy counts a Condition.wait as active).
IDLE_FRAMES = ("QueueListener._monitor", "_monitor (logging/handlers.py")


def _frame_key(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)`` with the package folder kept."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = path.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({short})"


def _package(frame: str) -> str:
    for package in PACKAGES:
        if f"/{package}" in frame or f"({package}" in frame:
            return package.rstrip("/")
    if "site-packages" in frame:
        return frame.split("site-packages/", 1)[1].split("/", 1)[0]
    return "stdlib/other"


def summarize(raw: Path, top: int = 15) -> str:
    """Top functions (own and inclusive time) and own time by package, from a py-spy raw file."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if " (" in f and not f.startswith(("process ", "thread "))]
        if not frames or any(idle in stack for idle in IDLE_FRAMES):
            continue
        total += count
        own[_frame_key(frames[-1])] += count
        packages[_package(frames[-1])] += count
        for key in {_frame_key(f) for f in frames}:
            inclusive[key] += count
    if not total:
        return "  (no samples)"
    out = [f"  {total} busy samples", "  own time:"]
    out += [f"    {100 * c / total:5.1f}%  {k}" for k, c in own.most_common(top)]
    out.append("  inclusive time (frames common to every sample left out):")
    shown = [(k, c) for k, c in inclusive.most_common() if c < 0.95 * total][:top]
    out += [f"    {100 * c / total:5.1f}%  {k}" for k, c in shown]
    out.append("  own time by package:")
    out += [f"    {100 * c / total:5.1f}%  {k}" for k, c in packages.most_common()]
    return "\n".join(out)


def _start_pyspy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [pyspy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _stop_pyspy(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        await asyncio.to_thread(proc.wait, 30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def profile(bench: BenchEnv, connections: str, seconds: float, out: Path) -> None:
    """Record and summarise the three loads against our server with N = the first of ``connections``."""
    n = int(connections.split(",")[0])
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    plan = Plan(step_seconds=seconds)
    server = Server("ours", bench)
    await server.start()
    publisher = await RawPublisher.connect()
    loads = (("connect", 0.0), ("broadcast", max(1.0, round(15_000 / n))), ("private", 10_000.0))
    try:
        await asyncio.sleep(1.0)
        for mode, rate in loads:
            pool = Pool()
            subs = ["u_bcast"] * n if mode == "broadcast" else [f"u_{mode}{i}" for i in range(n)]
            users = list(zip(subs, tokens_for(subs), strict=True))
            raw = out / f"{mode}.txt"
            spy = _start_pyspy(server.pid, raw) if mode == "connect" else None
            await asyncio.sleep(1.0 if spy else 0)
            cpu = cpu_seconds(server.pid)
            clients, took = await open_clients(pool, "127.0.0.1", server.port, users, concurrency=plan.concurrency)
            detail = f"{len(clients)} connections in {took:.1f} s"
            if spy is None:
                await server.settle()
                spy = _start_pyspy(server.pid, raw)
                await asyncio.sleep(1.0)
                channels = [_channel(server, "u_bcast")] if mode == "broadcast" else [_channel(server, s) for s in subs]
                cpu = cpu_seconds(server.pid)
                published, _ = await publisher.run(channels, rate, seconds)
                detail = f"{published} messages at {rate:g}/s to {len(clients)} connections in {seconds:g} s"
                took = seconds
            busy = (cpu_seconds(server.pid) - cpu) / took
            await _stop_pyspy(spy)
            print(f"\n### profile: {mode} ({detail}; server CPU {busy:.0%})\n", flush=True)
            print(summarize(raw), flush=True)
            await close_clients(clients)
            await server.settle()
    finally:
        publisher.close()
        await server.stop()
