"""Real server processes (``python -m app serve``) for multi-process and fault tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Poll ``/health`` of another process until it answers (there is no event to wait on across processes).

    Raises:
        AssertionError: with the process output when it exits or does not answer in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"server exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base_url} did not answer /health within {timeout} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> str:
    """SIGTERM the process group and return its output; it must exit within ``timeout``."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=timeout)
    return output.decode()


@contextmanager
def server_process(env: dict[str, str], command: list[str] | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """Run a server process with ``env`` on a free port of ``host`` (any 127.x.y.z is this machine); yields its URL."""
    port = free_port(host)
    full_env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    full_env.update(env, PORT=str(port), HOST=host)
    process = subprocess.Popen(
        command or [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://{host}:{port}"
    try:
        wait_until_healthy(base_url, process)
        yield base_url
    finally:
        stop(process)
