"""Redis servers of a test's own, started from the local ``redis-server`` and stopped by PID.

The shared Redis on 6379 is never stopped or reconfigured: a test that kills, pauses or restarts
Redis does it to a server it started here, on a free loopback port above 17000, in a temporary
directory of its own. Sentinel and Cluster set-ups (``tests/redis_topologies.py``) are built from
the same pieces.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.services import unavailable

__all__ = ["RedisServer", "free_high_port", "redis_server", "require_redis_server"]

_next_port = 17000 + (os.getpid() * 37) % 20000


def require_redis_server() -> str:
    """The path of ``redis-server`` (skip, or fail under REQUIRE_SERVICES=1, when it is missing)."""
    path = shutil.which("redis-server")
    if path is None:
        unavailable("redis-server is not installed")
    return str(path)


def free_high_port() -> int:
    """A loopback port above 17000 that nothing listens on (nor on port + 10000, a cluster bus port)."""
    global _next_port
    while True:
        _next_port += 1
        if _next_port > 44000:
            _next_port = 17001
        port = _next_port
        if all(_bindable(candidate) for candidate in (port, port + 10000)):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class RedisServer:
    """One ``redis-server`` process on ``port`` (no persistence), in a directory of its own.

    Args:
        port: Its port; a free one by default.
        args: Further configuration, as ``redis-server`` command-line options.
        directory: Its working directory (a new temporary one by default).
    """

    def __init__(self, port: int | None = None, args: Sequence[str] = (), directory: Path | None = None) -> None:
        self.binary = require_redis_server()
        self.port = port or free_high_port()
        self.args = list(args)
        self.directory = directory or Path(tempfile.mkdtemp(prefix=f"redis-{self.port}-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """The server's process id."""
        if self.process is None:
            raise RuntimeError("not started")
        return self.process.pid

    def command_line(self) -> list[str]:
        """The command that starts it."""
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            *self.args,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until it answers PING."""
        self.process = subprocess.Popen(self.command_line(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server on {self.port} exited: {self.log_tail()}")
            if self.ping():
                return
            time.sleep(0.02)  # another process: there is no event to wait on
        raise RuntimeError(f"redis-server on {self.port} did not answer within {timeout} s")

    def ping(self) -> bool:
        """Whether it answers PING now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL it (a crash: no shutdown, no last words) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: it keeps its sockets open and answers nothing (a frozen server)."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop it (resuming it first if paused) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        """The end of its log, for failure messages."""
        try:
            return "\n".join((self.directory / "redis.log").read_text().splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def redis_server(args: Sequence[str] = ()) -> Iterator[RedisServer]:
    """A started server of the test's own, stopped when the block ends."""
    server = RedisServer(args=args)
    server.start()
    try:
        yield server
    finally:
        server.stop()
