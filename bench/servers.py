"""The servers under test: ours (``python -m app serve``) and the Litestar ChannelsPlugin baseline.

Each runs as a subprocess pinned to core 0 with ``taskset -c 0``; the benchmark itself runs on
core 1. Also here: the database the server needs (a PostgreSQL database created and dropped per
run, or SQLite in a temp dir), free ports, tokens, and /proc readings (RSS, CPU ticks).
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import jwt

__all__ = [
    "JWT_SECRET",
    "WS_IMPLS",
    "BenchEnv",
    "Server",
    "WsImpl",
    "cpu_seconds",
    "raise_fd_limit",
    "rss_kib",
    "tokens_for",
]

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "bench-jwt-secret-0123456789abcdef-0123456789abcdef"
WEBHOOK_SECRET = "bench-webhook-secret-0123456789abcdef"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
ServerKind = Literal["ours", "baseline"]
# How "ours" is served (``--ws``): our uvicorn fast path (the default), or stock uvicorn with its
# websockets-sansio or wsproto implementation (``WS_FAST_PATH=0``; docs/performance.md, issue 15).
WsImpl = Literal["fast", "sansio", "wsproto"]
WS_IMPLS: tuple[WsImpl, ...] = ("fast", "sansio", "wsproto")
TICKS = os.sysconf("SC_CLK_TCK")


def raise_fd_limit() -> int:
    """Raise RLIMIT_NOFILE to the hard limit (inherited by the server children); return it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tokens_for(subs: list[str], ttl: int = 3600) -> list[str]:
    """HS256 tokens (sub, role customer, exp) that both servers accept."""
    exp = int(time.time()) + ttl
    return [jwt.encode({"sub": sub, "role": "customer", "exp": exp}, JWT_SECRET, algorithm="HS256") for sub in subs]


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of ``pid`` (of this process when None)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class BenchEnv:
    """What every server of one benchmark run shares: Redis prefix, database, temp dir."""

    database: Literal["postgres", "sqlite"] = "postgres"
    redis_url: str = "redis://127.0.0.1:6379/0"
    prefix: str = field(default_factory=lambda: f"bench-{os.getpid()}")
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))
    database_url: str = ""
    ws: WsImpl = "fast"
    """How ``ours`` is served: see ``WS_IMPLS``; set between runs by ``python -m bench --ws``."""
    _created_db: str | None = None

    def python(self) -> str:
        return sys.executable

    def setup(self) -> None:
        """Create and migrate the database the server uses."""
        if self.database == "postgres":
            name = f"bench_{os.getpid()}"
            _psql(f'DROP DATABASE IF EXISTS "{name}"')
            _psql(f'CREATE DATABASE "{name}"')
            self._created_db = name
            self.database_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        else:
            self.database_url = f"sqlite:///{self.tmp / 'bench.sqlite3'}"
        subprocess.run(
            [self.python(), "-m", "app", "migrate"], env=self.env(0), cwd=ROOT, check=True, capture_output=True
        )

    def env(self, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_", "WS_", "JWT_"))}
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            REDIS_PREFIX=self.prefix,
            JWT_SECRET=JWT_SECRET,
            WEBHOOK_SECRET=WEBHOOK_SECRET,
            HOST="127.0.0.1",
            PORT=str(port),
            WORKERS="1",
            WS_RATE="100000",
            LOG_LEVEL="WARNING",
            APP_ENV="dev",
            PYTHONUNBUFFERED="1",
            WS_FAST_PATH="1" if self.ws == "fast" else "0",
        )
        return env

    def teardown(self) -> None:
        """Drop the database, the temp dir and any Redis key under the prefix."""
        if self._created_db is not None:
            _psql(f'DROP DATABASE IF EXISTS "{self._created_db}" WITH (FORCE)')
            self._created_db = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        try:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            keys = list(client.scan_iter(match=f"{self.prefix}:*", count=1000))[:100_000]
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
            client.close()
        except Exception as exc:  # cleanup is best effort
            print(f"  (redis cleanup failed: {exc})", file=sys.stderr)


def _psql(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


class Server:
    """One server subprocess on core 0; ``start`` waits until it answers ``/ready``."""

    def __init__(self, kind: ServerKind, bench: BenchEnv) -> None:
        self.kind = kind
        self.bench = bench
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = bench.tmp / f"{kind}-{self.port}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        if self.kind == "ours" and self.bench.ws == "wsproto":
            return [self.bench.python(), "-m", "bench.stock_server", "wsproto"]
        if self.kind == "ours":
            return [self.bench.python(), "-m", "app", "serve"]
        return [self.bench.python(), "-m", "bench.baseline_app"]

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as log:
            return subprocess.Popen(
                ["taskset", "-c", "0", *self.command()],
                env=self.bench.env(self.port),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    async def start(self, within: float = 30.0) -> float:
        """Start the server; return the seconds until ``/ready`` answered 200."""
        started = time.perf_counter()
        self.proc = self._spawn()
        deadline = started + within
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.proc.returncode}: {self.tail()}")
            if await asyncio.to_thread(self._ready):
                return time.perf_counter() - started
            await asyncio.sleep(0.05)
        await self.stop()
        raise RuntimeError(f"{self.kind} server not ready after {within:.0f} s: {self.tail()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def problems(self, limit: int = 6) -> list[str]:
        """Distinct warning / error lines of the server's log (timestamps cut), for the report."""
        seen: dict[str, None] = {}
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return []
        for line in text.splitlines():
            if any(word in line for word in ("WARNING", "ERROR", "CRITICAL", "Error:", "Exception:")):
                key = line.split(" - ", 2)[-1][:200] if " - " in line else line[:200]
                seen.setdefault(key)
        return list(seen)[:limit]

    async def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.to_thread(self.proc.wait, grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 5)

    async def settle(self, idle_below: float = 0.15, max_seconds: float = 20.0) -> None:
        """Wait (bounded) until the server uses less than ``idle_below`` of a core over 0.5 s."""
        deadline = time.perf_counter() + max_seconds
        while time.perf_counter() < deadline:
            before = cpu_seconds(self.pid)
            await asyncio.sleep(0.5)
            if (cpu_seconds(self.pid) - before) / 0.5 < idle_below:
                return
