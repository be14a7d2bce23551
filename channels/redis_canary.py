"""Proof that a pub/sub subscription delivers: a message of the process's own that must come back.

A PING answered on a pub/sub connection shows the socket is open, not that Redis still routes the
channels to it (a failed-over node, a half-open or silently stalled subscription: Centrifugo's
health stayed green while its pub/sub lost messages). Each listener subscribes to a canary channel
of its own; the broker publishes to it every ``interval`` seconds through the command connection,
on the same shard. A canary that has not come back within ``deadline`` seconds makes the listener
unhealthy (``/ready`` 503) and restarts it; after a reconnect the listener counts as healthy only
once a canary has come back through the new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

__all__ = ["CANARY_DEADLINE_SECONDS", "CANARY_INTERVAL_SECONDS", "Canary", "CanaryHolder", "CanaryLoop"]

logger = logging.getLogger(__name__)

CANARY_INTERVAL_SECONDS = 0.5
CANARY_DEADLINE_SECONDS = 2.0


class Canary:
    """The canary of one pub/sub connection: what was sent, what came back.

    Args:
        channel: Its channel (``canary:<process token>[:<n>]``, never a channel clients may join).
        deadline: Seconds a canary may take to come back.
    """

    __slots__ = ("_pending", "_sequence", "channel", "deadline", "proven", "round_trip")

    def __init__(self, channel: str, deadline: float = CANARY_DEADLINE_SECONDS) -> None:
        self.channel = channel
        self.deadline = deadline
        self.proven = False  # a canary came back since the connection was (re)made
        self.round_trip: float | None = None  # seconds the last one took
        self._pending: dict[bytes, float] = {}  # payload -> when it was sent
        self._sequence = itertools.count(1)

    @staticmethod
    def new_channel() -> str:
        """A canary channel name no other process uses."""
        return f"canary:{secrets.token_hex(6)}"

    def next_payload(self) -> bytes:
        """The payload of the next canary (remembered as sent now)."""
        payload = b"%d" % next(self._sequence)
        self._pending[payload] = time.monotonic()
        return payload

    def arrived(self, payload: bytes) -> None:
        """A canary came back: the subscription delivers (older canaries are settled too)."""
        sent = self._pending.pop(payload, None)
        if sent is None:
            return
        self.round_trip = time.monotonic() - sent
        self.proven = True
        # Messages on one connection arrive in order: anything sent before it is lost, not late.
        self._pending = {key: at for key, at in self._pending.items() if at > sent}

    def late(self, now: float | None = None) -> bool:
        """Whether a canary sent more than ``deadline`` seconds ago has not come back."""
        if not self._pending:
            return False
        now = time.monotonic() if now is None else now
        return now - min(self._pending.values()) > self.deadline

    def reset(self) -> None:
        """A new connection: nothing in flight counts, and it is unproven until a canary returns."""
        self._pending.clear()
        self.proven = False


class CanaryHolder(Protocol):
    """What the loop needs of a listener (``PubSubListener``)."""

    @property
    def canary(self) -> Canary | None: ...

    @property
    def connected(self) -> bool: ...

    def reconnect(self, reason: str) -> None: ...


class CanaryLoop:
    """Sends every listener's canary each ``interval`` seconds and restarts a listener whose canary is late.

    Args:
        listeners: The listeners now (one, or one per shard).
        send: Publishes a payload on a canary channel (``PUBLISH``, or ``SPUBLISH`` on a cluster).
        interval: Seconds between canaries.
    """

    def __init__(
        self,
        listeners: Callable[[], Sequence[CanaryHolder]],
        send: Callable[[str, bytes], Awaitable[object]],
        interval: float = CANARY_INTERVAL_SECONDS,
    ) -> None:
        self._listeners = listeners
        self._send = send
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._kicked = asyncio.Event()
        self.restarts = 0

    def kick(self) -> None:
        """Send a round now rather than at the next tick (a listener just reconnected: prove it at once)."""
        self._kicked.set()

    def start(self) -> None:
        """Start sending."""
        self._task = asyncio.create_task(self._run(), name="redis-canaries")

    async def stop(self) -> None:
        """Stop sending."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def round(self) -> None:
        """Send one canary per connected listener; restart any whose earlier canary is late."""
        sends = []
        for listener in self._listeners():
            canary = listener.canary
            if canary is None or not listener.connected:
                continue
            if canary.late():
                self.restarts += 1
                listener.reconnect(f"its canary did not come back within {canary.deadline:g} s")
                continue
            sends.append(self._send_one(canary))
        await asyncio.gather(*sends)

    async def _send_one(self, canary: Canary) -> None:
        try:
            # A frozen server must not hold up the canaries of the other shards.
            async with asyncio.timeout(self._interval):
                await self._send(canary.channel, canary.next_payload())
        except Exception as exc:  # unsent: it stays pending, and turns late like a lost one
            logger.debug("canary on %s not sent: %r", canary.channel, exc)

    async def proven(self, within: float = CANARY_DEADLINE_SECONDS) -> bool:
        """Send a round now and wait (at most ``within`` seconds) until every canary came back."""
        await self.round()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(holder.canary is None or holder.canary.proven for holder in self._listeners()):
                return True
            await asyncio.sleep(0.01)
        return False

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._kicked.wait()
            self._kicked.clear()
            await self.round()
