"""Helpers of the scale-out tests: server processes on one topology, a recording client, REST checks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import TEST_SECRET
from tests.processes import server_process


def server_env(redis_url: str, database_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a server process on ``redis_url`` and ``database_url``."""
    return {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "REDIS_PREFIX": prefix,
        "JWT_SECRET": TEST_SECRET,
        "WEBHOOK_SECRET": TEST_SECRET,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


@contextlib.contextmanager
def two_servers(env: dict[str, str], hosts: tuple[str, str] = ("127.0.0.2", "127.0.0.3")) -> Iterator[tuple[str, str]]:
    """Two server processes on different loopback addresses (two "hosts"), sharing ``env``."""
    with server_process(env, host=hosts[0]) as first, server_process(env, host=hosts[1]) as second:
        yield first, second


@dataclass
class Recorder:
    """A WebSocket client that records every message it receives, in order, until stopped."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)  # time.monotonic() of each message
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    closed: int | None = None

    async def run(self, ws: ClientConnection) -> None:
        """Read until the socket closes."""
        try:
            async for frame in ws:
                text = frame if isinstance(frame, str) else frame.decode()
                batch = [msgspec.json.decode(line) for line in text.split("\n") if line]
                self.messages.extend(batch)
                self.received_at.extend([time.monotonic()] * len(batch))
                self.arrived.set()
        finally:
            self.closed = ws.close_code

    def events(self, channel: str) -> list[dict[str, Any]]:
        """The events of ``channel`` received so far."""
        return [m for m in self.messages if m.get("op") == "event" and m.get("channel") == channel]

    async def wait(self, condition: Any, within: float = 20.0) -> None:
        """Wait until ``condition(self)`` holds (re-checked at every message)."""

        async def until() -> None:
            while not condition(self):
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(until(), within)


@contextlib.asynccontextmanager
async def recording(url: str, token: str) -> Any:
    """A recording WebSocket client of ``url`` (``ws://.../ws...``) with a bearer token."""
    recorder = Recorder()
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        task = asyncio.create_task(recorder.run(ws))
        try:
            yield recorder
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def check_offsets(messages: list[dict[str, Any]], channel: str) -> int:
    """SPEC's failover rule for one channel, in the order a client received its messages.

    Within an epoch seq only increases (never repeats or goes back); an event of a new epoch comes
    only after a ``subscribed`` with ``recovered: false`` announced that epoch. Answers the number of
    epochs seen.
    """
    epoch: str | None = None
    seq = 0
    announced: set[str] = set()
    epochs: set[str] = set()
    for message in messages:
        if message.get("channel") != channel:
            continue
        if message["op"] == "subscribed":
            # Its offset is the channel's current one; a replay after it starts from the client's since.
            offset_epoch = str(message["offset"]).partition(":")[0]
            if epoch is None or offset_epoch != epoch:
                assert epoch is None or message["recovered"] is False, message
                announced.add(offset_epoch)
                epoch, seq = offset_epoch, 0
            continue
        if message["op"] != "event" or message["offset"] is None:
            continue
        event_epoch, _, event_seq = str(message["offset"]).partition(":")
        if event_epoch != epoch:
            assert event_epoch in announced, f"epoch {event_epoch} began without subscribed recovered: false"
            epoch, seq = event_epoch, 0
        assert int(event_seq) > seq, f"seq went from {seq} to {event_seq} in epoch {epoch}"
        seq = int(event_seq)
        epochs.add(event_epoch)
    return len(epochs)


def unannounced_losses(recorder: Recorder, channel: str, created: dict[str, float]) -> list[str]:
    """Notifications created (id -> monotonic time of the 201) that never arrived on ``channel`` and were
    not followed by a ``subscribed`` with ``recovered: false``: what a client would have missed silently."""
    arrived = {e["data"]["id"] for e in recorder.events(channel) if e["type"] == "notification.created"}
    resets = [
        at
        for message, at in zip(recorder.messages, recorder.received_at, strict=True)
        if message.get("op") == "subscribed" and message.get("channel") == channel and message["recovered"] is False
    ]
    return [nid for nid, at in created.items() if nid not in arrived and not any(reset > at for reset in resets)]


async def all_notification_ids(http: httpx.AsyncClient, headers: dict[str, str]) -> set[str]:
    """Every notification id the user can list over REST (all pages)."""
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/notifications", params=params, headers=headers)).json()
        ids.update(item["id"] for item in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            return ids


async def wait_ready(base_urls: list[str], within: float = 30.0) -> None:
    """Poll ``/ready`` of other processes until every one answers 200 (no event crosses processes)."""

    async def poll() -> None:
        async with httpx.AsyncClient(timeout=2) as http:
            for base in base_urls:
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{base}/ready")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), within)
