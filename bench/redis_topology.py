"""Local Redis set-ups on loopback, from the machine's ``redis-server``: one server, a Cluster, a Sentinel set.

``python -m bench.redis_topology cluster`` (``make redis-cluster``) starts 3 masters and 3 replicas
with ``redis-cli --cluster create``; ``python -m bench.redis_topology sentinel`` (``make
redis-sentinel``) a master, a replica and three sentinels. Each prints the ``REDIS_URL`` to use and
runs until interrupted. The tests (``tests/redis_topologies.py``) and the benchmarks build the same
set-ups with these classes. Every process runs in a temporary directory of its own on a free port
above 17000, keeps nothing on disk, and is stopped by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["RedisCluster", "RedisSentinelSet", "RedisServer", "free_high_port"]

SERVICE = "push-master"
_next_port = 17000 + (os.getpid() * 37) % 20000


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


def _wait(condition: object, what: str, timeout: float) -> None:
    """Poll ``condition()`` (another process: there is no event to wait on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {timeout} s")


class RedisServer:
    """One ``redis-server`` process on ``port`` (no persistence), in a directory of its own.

    Args:
        port: Its port; a free one by default.
        args: Further configuration, as ``redis-server`` command-line options.
        sentinel: Run as a sentinel (``redis-server <conf> --sentinel``).
    """

    def __init__(self, port: int | None = None, args: Sequence[str] = (), *, sentinel: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.binary = binary
        self.port = port or free_high_port()
        self.args = list(args)
        self.sentinel = sentinel
        self.directory = Path(tempfile.mkdtemp(prefix=f"redis-{self.port}-"))
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
        options = [
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            *self.args,
        ]  # fmt: skip
        if self.sentinel:
            # A sentinel rewrites its configuration file: it needs one of its own.
            config = self.directory / "sentinel.conf"
            if not config.exists():
                config.write_text("")
            return [self.binary, str(config), "--sentinel", *options]
        return [self.binary, "--save", "", "--appendonly", "no", *options]

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until it answers PING."""
        self.process = subprocess.Popen(self.command_line(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server on {self.port} exited: {self.log_tail()}")
            if self.ping():
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on {self.port} did not answer within {timeout} s")

    def ping(self) -> bool:
        """Whether it answers PING now."""
        return self.call("PING").startswith("PONG")

    def call(self, *command: str, timeout: float = 2.0) -> str:
        """Run one command with ``redis-cli``; its output (``""`` when it cannot connect)."""
        try:
            done = subprocess.run(
                ["redis-cli", "-p", str(self.port), *command], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    def kill(self) -> None:
        """SIGKILL it (a crash: no shutdown, no last words) and reap it."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)  # a paused process must die too
            self.process.kill()
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


class RedisCluster:
    """A Redis Cluster of ``masters`` shards with ``replicas`` replicas each, on loopback.

    Node timeouts are short (2 s) so a failover in a test takes seconds, not the default 15.
    """

    def __init__(self, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 2000) -> None:
        self.masters = masters
        self.replicas = replicas
        options = [
            "--cluster-enabled", "yes",
            "--cluster-node-timeout", str(node_timeout_ms),
            "--cluster-config-file", "nodes.conf",
            # A replica promoted after losing its master accepts writes at once.
            "--cluster-replica-validity-factor", "0",
        ]  # fmt: skip
        self.nodes = [RedisServer(args=options) for _ in range(masters * (1 + replicas))]

    @property
    def url(self) -> str:
        """``redis+cluster://`` with every node as a seed."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self, timeout: float = 30.0) -> None:
        """Start every node, create the cluster, and wait until every slot is served."""
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        _wait(self.healthy, "the cluster did not report cluster_state:ok on every node", timeout)

    def healthy(self) -> bool:
        """Every live node says ``cluster_state:ok`` and all 16384 slots are assigned."""
        live = [node for node in self.nodes if node.process is not None and node.process.poll() is None]
        infos = [node.call("CLUSTER", "INFO") for node in live]
        return bool(infos) and all("cluster_state:ok" in info and "cluster_slots_ok:16384" in info for info in infos)

    def master_of(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot now."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                slot = node.call("CLUSTER", "KEYSLOT", key)
                if slot.isdigit():
                    return self.master_of_slot(int(slot))
        raise RuntimeError("no live node")

    def move_slot(self, slot: int, target: RedisServer, batch: int = 100) -> None:
        """Migrate one slot, keys and all, to ``target`` (the steps ``redis-cli --cluster reshard`` takes per slot)."""
        source = self.master_of_slot(slot)
        source_id, target_id = source.call("CLUSTER", "MYID"), target.call("CLUSTER", "MYID")
        target.call("CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
        source.call("CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
        while keys := source.call("CLUSTER", "GETKEYSINSLOT", str(slot), str(batch)).split():
            source.call("MIGRATE", "127.0.0.1", str(target.port), "", "0", "5000", "KEYS", *keys)
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None and node.call("ROLE").startswith("master"):
                node.call("CLUSTER", "SETSLOT", str(slot), "NODE", target_id)

    def master_of_slot(self, slot: int) -> RedisServer:
        """The node serving ``slot`` now."""
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            for entry in node.call("CLUSTER", "NODES").splitlines():
                fields = entry.split()
                if "master" not in fields[2] or "fail" in fields[2]:
                    continue
                for spec in fields[8:]:
                    low, _, high = spec.partition("-")
                    if low.isdigit() and int(low) <= slot <= int(high or low):
                        port = int(fields[1].split(":")[1].split("@")[0])
                        return next(server for server in self.nodes if server.port == port)
        raise RuntimeError(f"no live master serves slot {slot}")

    def replicas_of(self, master: RedisServer) -> list[RedisServer]:
        """The live nodes replicating ``master`` now."""
        master_id = master.call("CLUSTER", "MYID")
        replicas = []
        for node in self.nodes:
            if node is master or node.process is None or node.process.poll() is not None:
                continue
            role = node.call("ROLE").splitlines()
            if role and role[0] == "slave" and node.call("CLUSTER", "NODES").count(f"slave {master_id}"):
                mine = [line for line in node.call("CLUSTER", "NODES").splitlines() if "myself" in line]
                if mine and mine[0].split()[3] == master_id:
                    replicas.append(node)
        return replicas

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


class RedisSentinelSet:
    """A master, ``replicas`` replicas and ``sentinels`` sentinels watching them, on loopback.

    The sentinels declare the master down after 1 s and fail over within a few seconds.
    """

    def __init__(self, replicas: int = 1, sentinels: int = 3, down_after_ms: int = 1000) -> None:
        self.master = RedisServer()
        self.replicas = [RedisServer(args=["--replicaof", "127.0.0.1", str(self.master.port)]) for _ in range(replicas)]
        self.down_after_ms = down_after_ms
        self.sentinels = [RedisServer(sentinel=True) for _ in range(sentinels)]

    @property
    def url(self) -> str:
        """``redis+sentinel://`` naming every sentinel and the service."""
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels) + f"/{SERVICE}"

    @property
    def servers(self) -> list[RedisServer]:
        """The data servers (master and replicas, in no particular role order after a failover)."""
        return [self.master, *self.replicas]

    def start(self, timeout: float = 30.0) -> None:
        """Start the data servers, then the sentinels, and wait until every sentinel knows the replicas."""
        self.master.start()
        for replica in self.replicas:
            replica.start()
        quorum = str(len(self.sentinels) // 2 + 1)
        for sentinel in self.sentinels:
            sentinel.start()
            for command in (
                ("SENTINEL", "MONITOR", SERVICE, "127.0.0.1", str(self.master.port), quorum),
                ("SENTINEL", "SET", SERVICE, "down-after-milliseconds", str(self.down_after_ms)),
                ("SENTINEL", "SET", SERVICE, "failover-timeout", "5000"),
                ("SENTINEL", "SET", SERVICE, "parallel-syncs", "1"),
            ):
                if sentinel.call(*command) != "OK":
                    raise RuntimeError(f"sentinel {sentinel.port}: {' '.join(command)} failed")

        def ready() -> bool:
            return all(
                f"num-slaves\n{len(self.replicas)}" in s.call("SENTINEL", "MASTER", SERVICE)
                and f"num-other-sentinels\n{len(self.sentinels) - 1}" in s.call("SENTINEL", "MASTER", SERVICE)
                for s in self.sentinels
            )

        _wait(ready, "the sentinels did not all discover the replicas and each other", timeout)

    def current_master(self) -> RedisServer:
        """The data server the sentinels name as master now."""
        answer = self.sentinels[0].call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE).split()
        port = int(answer[1]) if len(answer) == 2 else -1
        for server in self.servers:
            if server.port == port:
                return server
        raise RuntimeError(f"the sentinels name no known master: {answer}")

    def replicas_of(self, master: RedisServer) -> list[RedisServer]:
        """The data servers other than ``master`` (each replicates the master the sentinels name)."""
        return [server for server in self.servers if server is not master]

    def stop(self) -> None:
        """Stop the sentinels first (so they do not fail over a stopping master), then the data servers."""
        for server in (*self.sentinels, *self.replicas, self.master):
            server.stop()


@contextlib.contextmanager
def running(topology: RedisServer | RedisCluster | RedisSentinelSet) -> Iterator[str]:
    """Start ``topology``, yield its ``REDIS_URL``, stop it when the block ends."""
    try:
        topology.start()
        yield topology.url
    finally:
        topology.stop()


def main(argv: list[str] | None = None) -> int:
    """Start a topology, print its REDIS_URL, and keep it running until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.redis_topology", description=main.__doc__)
    parser.add_argument("kind", choices=["cluster", "sentinel", "single"])
    kind = parser.parse_args(argv).kind
    topology: RedisServer | RedisCluster | RedisSentinelSet = (
        RedisCluster() if kind == "cluster" else RedisSentinelSet() if kind == "sentinel" else RedisServer()
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with running(topology) as url:
        print(f"REDIS_URL={url}", flush=True)
        print("running; Ctrl-C stops and removes it", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
