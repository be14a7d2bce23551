"""Resuming in a real Chromium: an EventSource dropped before its first event, push-client.js after a 4008, and
push-order.js, which hands the page each event once and in offset order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from litestar import Litestar
from websockets.asyncio.client import connect

from app.main import create_app
from app.platform.settings import Settings
from app.runtime import Runtime
from channels import parse_offset
from tests.live import receive_json, serving
from tests.proxy import cutting_proxy

pytestmark = pytest.mark.browser

RECORD_EVENTS = """() => {
  window.received = [];
  const source = new EventSource("/sse");
  source.addEventListener("notification.created", (event) => window.received.push(JSON.parse(event.data).data.n));
}"""


async def test_event_source_dropped_after_the_open_cursor_resumes_from_it(
    browser: Any, make_settings: Callable[..., Settings], sqlite_database: str, token_for: Callable[..., str]
) -> None:
    """An EventSource whose stream drops after its opening cursor alone reconnects with it and gets what it missed."""
    settings = make_settings(DATABASE_URL=sqlite_database)
    app: Litestar = create_app(settings)
    runtime: Runtime = app.state.runtime
    async with serving(app, settings) as address, cutting_proxy(address) as (proxy, seen):
        # The bearer header on every request, the browser's own reconnects included (a ticket works once).
        context = await browser.new_context(extra_http_headers={"Authorization": f"Bearer {token_for('u_es')}"})
        try:
            page = await context.new_page()
            await page.goto(f"http://{proxy}/health")
            await page.evaluate(RECORD_EVENTS)
            await asyncio.wait_for(seen.cut.wait(), 10)
            for number in range(3):  # while the browser waits to reconnect (its default retry is 3 s)
                await runtime.relay.publisher.publish("user:u_es", "notification.created", {"n": number})
            await page.wait_for_function("window.received.length >= 3", timeout=15_000)
            assert await page.evaluate("window.received") == [0, 1, 2]
        finally:
            await context.close()
    first, again = seen.stream_requests[:2]
    assert b"last-event-id" not in first.lower() and b"last-event-id:" in again.lower()


@asynccontextmanager
async def held_request() -> AsyncIterator[tuple[str, asyncio.Event, asyncio.Event]]:
    """An HTTP endpoint that answers only when told: a page's synchronous XHR to it blocks its main thread.

    Yields its URL, an Event set when the request arrived, and the Event that releases the answer.
    """
    arrived, release = asyncio.Event(), asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        arrived.set()
        try:
            await asyncio.wait_for(release.wait(), 60)  # bounded: a failing test still unblocks its page
        finally:
            writer.write(
                b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield f"http://{host}:{port}/block", arrived, release
    finally:
        release.set()
        server.close()


START_CLIENT = """async ({ token, channel }) => {
  const { PushClient } = await import("/static/push-client.js");
  window.received = [];
  window.statuses = [];
  const client = new PushClient({
    getToken: async () => token,
    onStatus: (status) => window.statuses.push(status),
    transports: ["websocket"],
  });
  client.on(channel, (event) => window.received.push([event.data.n, event.offset]));
  client.start();
}"""

BLOCK_MAIN_THREAD = """(url) => setTimeout(() => {
  const request = new XMLHttpRequest();
  request.open("GET", url, false);  // synchronous: nothing else runs on the page until it is answered
  try { request.send(); } catch (error) {}
}, 0)"""


async def test_push_client_blocked_into_a_4008_gets_every_event_once_in_order(
    browser: Any, make_settings: Callable[..., Settings], sqlite_database: str, token_for: Callable[..., str]
) -> None:
    """A page blocked until its queue overflows (4008) reconnects, resumes and sees every event once, in order."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    settings = make_settings(DATABASE_URL=sqlite_database, WS_SEND_QUEUE="262144", HISTORY_SIZE="5000")
    app: Litestar = create_app(settings)
    runtime: Runtime = app.state.runtime
    relay, channel = runtime.relay, "user:u_blocked"
    token = token_for("u_blocked")
    pad = "x" * 30_000
    async with (
        serving(app, settings) as address,
        held_request() as (block_url, blocked, unblock),
        connect(f"ws://{address}/ws", additional_headers={"Authorization": f"Bearer {token}"}) as pacer,
    ):
        await receive_json(pacer)  # welcome
        await receive_json(pacer)  # subscribed
        published = 0

        async def publish() -> None:
            """One event; awaited on the pacing socket, so the hub has queued the page's copy too."""
            nonlocal published
            await relay.publisher.publish(channel, "notification.created", {"n": published, "pad": pad})
            await receive_json(pacer)
            published += 1

        page = await browser.new_page()
        try:
            await page.goto(f"http://{address}/health")
            await page.evaluate(START_CLIENT, {"token": token, "channel": channel})
            await page.wait_for_function("window.statuses.includes('websocket')", timeout=10_000)
            for _ in range(20):
                await publish()
            await page.wait_for_function("window.received.length === 20", timeout=10_000)
            await page.evaluate(BLOCK_MAIN_THREAD, block_url)
            await asyncio.wait_for(blocked.wait(), 10)
            while not relay.hub_metrics.slow_consumer_closes:
                assert published < 2000, "the blocked page's queue never overflowed"
                await publish()
            for _ in range(10):  # missed by the page altogether: in history only
                await publish()
            unblock.set()
            # Live events all through the reconnect: they race its resume.
            dropped = reconnected = False
            remaining = 50
            while remaining:
                assert published < 3000, "the page did not reconnect"
                await publish()
                dropped = dropped or relay.connections == 1
                reconnected = reconnected or (dropped and relay.connections == 2)
                remaining -= reconnected
            with contextlib.suppress(PlaywrightTimeout):  # what is missing is reported below
                await page.wait_for_function(f"window.received.length >= {published}", timeout=20_000)
            received = await page.evaluate("window.received")
        finally:
            await page.close()
    numbers = [number for number, _ in received]
    missing = sorted(set(range(published)) - set(numbers))
    assert not missing, f"{len(missing)} of {published} events never reached the page: {missing[:20]}..."
    assert numbers == list(range(published)), "duplicates or out of order"
    assert [parse_offset(offset).seq for _, offset in received] == list(range(1, published + 1))


RUN_ORDER = """async (steps) => {
  const { ChannelOrder } = await import("/static/push-order.js");
  const order = new ChannelOrder();
  const channel = "user:u";
  const delivered = [];
  const flags = [];
  for (const [kind, seq, epoch, replayed, recovered] of steps) {
    const offset = `${epoch}:${seq}`;
    if (kind === "event") {
      delivered.push(...order.accept({ op: "event", channel, offset, type: "t", data: {} }));
    } else if (kind === "subscribed") {
      const result = order.acknowledge({ op: "subscribed", channel, offset, recovered, replayed });
      delivered.push(...result.deliver);
      if (result.resync) flags.push("resync");
      if (result.resubscribe) flags.push("resubscribe");
    } else if (kind === "resume" || kind === "resume-url") {
      flags.push(`since ${order.resume(channel, kind === "resume-url")}`);
    } else if (kind === "interrupt") {
      order.interrupt();
    }
  }
  return { delivered: delivered.map((event) => event.offset), flags, position: order.position(channel) };
}"""


def _ack(seq: int, replayed: int = 0, recovered: bool = True, epoch: str = "e") -> list[Any]:
    return ["subscribed", seq, epoch, replayed, recovered]


def _events(*seqs: int, epoch: str = "e") -> list[list[Any]]:
    return [["event", seq, epoch, 0, True] for seq in seqs]


def _offsets(*seqs: int, epoch: str = "e") -> list[str]:
    return [f"{epoch}:{seq}" for seq in seqs]


ORDER_CASES = {
    # The race of issue 12: a resubscribe's live event (47) comes before the replay of 41..47.
    "live event ahead of a resubscribe's replay": (
        [_ack(40), ["resume"], *_events(47), _ack(47, replayed=7), *_events(*range(41, 48)), *_events(48)],
        _offsets(*range(41, 49)),
        ["since e:40"],
    ),
    "an older server ignoring since on the URL": (
        [_ack(40), ["resume-url"], _ack(50), *_events(51), _ack(50, replayed=10), *_events(*range(41, 51))],
        _offsets(*range(41, 52)),
        ["since e:40", "resubscribe"],
    ),
    "a replay overlapping what was delivered": (
        [_ack(0), *_events(1, 2, 3), ["interrupt"], ["resume"], _ack(5, replayed=4), *_events(2, 3, 4, 5, 6)],
        _offsets(1, 2, 3, 4, 5, 6),
        ["since e:3"],
    ),
    "a gap left on a live connection (a coalesced location) is not waited for": (
        [_ack(10), *_events(12, 11, 13)],
        _offsets(12, 13),
        [],
    ),
    "held events are dropped with the connection, and replayed after it": (
        [_ack(40), ["resume"], *_events(45), ["interrupt"], ["resume"], _ack(45, replayed=5), *_events(*range(41, 46))],
        _offsets(*range(41, 46)),
        ["since e:40", "since e:40"],
    ),
    "history lost: the new epoch's replay starts the sequence": (
        [_ack(40), ["resume"], _ack(3, replayed=3, recovered=False, epoch="f"), *_events(1, 2, 3, 4, epoch="f")],
        _offsets(1, 2, 3, 4, epoch="f"),
        ["since e:40", "resync"],
    ),
}


@pytest.mark.parametrize(("steps", "delivered", "flags"), ORDER_CASES.values(), ids=ORDER_CASES.keys())
async def test_channel_order_hands_each_event_once_in_offset_order(
    browser: Any, sqlite_server: str, steps: list[Any], delivered: list[str], flags: list[str]
) -> None:
    """push-order.js delivers every event it has not delivered, once, in offset order, however it arrived."""
    page = await browser.new_page()
    try:
        await page.goto(f"http://{sqlite_server}/health")
        result = await page.evaluate(RUN_ORDER, steps)
    finally:
        await page.close()
    assert result["delivered"] == delivered
    assert result["flags"] == flags
    assert result["position"] == delivered[-1]
