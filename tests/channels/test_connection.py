"""Connections written through a FrameSink: direct writes, batching when behind, 4008, frames."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest

from channels import CLOSE_TOO_SLOW, Broker, Connection, Hub, Outgoing, text_frame
from tests.channels.conftest import WAIT, Recorder
from tests.channels.test_hub import settle


def payloads(frame: bytes) -> list[bytes]:
    """The messages of one server text frame (header checked, lines split)."""
    assert frame[0] == 0x81, "FIN + text opcode"
    length, start = frame[1], 2
    if length == 126:
        (length,), start = struct.unpack("!H", frame[2:4]), 4
    elif length == 127:
        (length,), start = struct.unpack("!Q", frame[2:10]), 10
    body = frame[start:]
    assert len(body) == length
    return body.split(b"\n")


class FakeSink:
    """A transport taking pre-framed bytes, whose buffer and pause state the test controls."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.buffer = 0
        self.closing = False
        self.stuck = False  # the client stopped reading: written bytes stay in the buffer
        self.written = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()

    def write(self, frame: bytes) -> bool:
        if self.closing:
            return False
        self.frames.append(frame)
        if self.stuck:
            self.buffer += len(frame)
        self.written.set()
        return True

    def buffered(self) -> int:
        return self.buffer

    def writable(self) -> bool:
        return self._resumed.is_set()

    async def wait_writable(self) -> None:
        await self._resumed.wait()

    def pause(self) -> None:
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()

    def messages(self) -> list[dict[str, object]]:
        return [json.loads(line) for frame in self.frames for line in payloads(frame)]

    async def wait_messages(self, count: int) -> list[dict[str, object]]:
        async def wait() -> None:
            while len(self.messages()) < count:
                self.written.clear()
                await self.written.wait()

        await asyncio.wait_for(wait(), WAIT)
        return self.messages()


async def unused_send(frame: bytes) -> None:
    raise AssertionError("a connection with a sink never calls send_frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frame_header_lengths(size: int) -> None:
    """Text frames use the 7-bit, 16-bit and 64-bit length forms at RFC 6455's boundaries."""
    payload = b"x" * size
    frame = text_frame(payload)
    assert payloads(frame) == [payload]
    header = len(frame) - size
    assert header == (2 if size < 126 else 4 if size < 65536 else 10)


def test_outgoing_is_framed_once() -> None:
    """An Outgoing frames its payload once; every later caller gets the same bytes object."""
    item = Outgoing(b'{"op":"pong"}')
    assert item.framed() is item.framed()
    assert payloads(item.framed()) == [b'{"op":"pong"}']


async def test_subscribers_get_the_same_frame_without_a_task(hub: Hub, broker: Broker) -> None:
    """With sinks, one event is written to every subscriber as the very same framed bytes, by no task of theirs."""
    recorder = Recorder()
    sinks = [FakeSink(), FakeSink()]
    async with (
        hub.connect(unused_send, recorder.close, sink=sinks[0]) as a,
        hub.connect(unused_send, recorder.close, sink=sinks[1]) as b,
    ):
        await hub.subscribe(a, "order:same")
        await hub.subscribe(b, "order:same")
        await sinks[0].wait_messages(1)
        await sinks[1].wait_messages(1)
        tasks_before = len(asyncio.all_tasks())
        await broker.publish("order:same", "order.status_changed", b'{"toStatus":"PAID"}')
        await sinks[0].wait_messages(2)
        await sinks[1].wait_messages(2)
        assert sinks[0].frames[-1] is sinks[1].frames[-1]
        assert sinks[0].messages()[-1]["data"] == {"toStatus": "PAID"}
        assert len(asyncio.all_tasks()) <= tasks_before
        assert hub.metrics.events_out >= 2


async def test_paused_transport_gets_one_batched_frame_with_latest_location(hub: Hub, broker: Broker) -> None:
    """While the transport is paused messages queue; on resume they go out as one frame, locations coalesced."""
    recorder = Recorder()
    sink = FakeSink()
    async with hub.connect(unused_send, recorder.close, sink=sink) as conn:
        await hub.subscribe(conn, "order:paused")
        await sink.wait_messages(1)
        sink.pause()
        published = [
            ("tracking.location", b'{"n":1}'),
            ("order.status_changed", b'{"n":2}'),
            ("tracking.location", b'{"n":3}'),
            ("tracking.location", b'{"n":4}'),
        ]
        offsets = [await broker.publish("order:paused", type_, data) for type_, data in published]
        await settle(hub, broker)  # the hub has queued all four
        frames_before = len(sink.frames)
        sink.resume()
        messages = await sink.wait_messages(3)
        assert len(sink.frames) == frames_before + 1, "the backlog went out as one frame"
        assert [m["data"] for m in messages[1:]] == [{"n": 2}, {"n": 4}]
        assert messages[-1]["offset"] == str(offsets[-1])
        assert hub.metrics.coalesced == 2


async def test_overflow_counts_the_transport_buffer(broker: Broker) -> None:
    """Queued plus transport-buffered bytes over the limit close the connection with 4008, queue discarded."""
    hub = Hub(broker, send_queue_bytes=4000)
    await hub.start()
    recorder = Recorder()
    sink = FakeSink()
    async with hub.connect(unused_send, recorder.close, sink=sink) as conn:
        sink.stuck = True
        assert conn.enqueue(Outgoing(b"x" * 3800))
        await asyncio.wait_for(sink.written.wait(), WAIT)  # handed to the transport, which keeps it
        assert sink.buffer > 3800 and conn.fits(4000 - sink.buffer), "queue empty, the transport holds it"
        sink.pause()
        assert conn.enqueue(Outgoing(b"x" * 50))
        assert not conn.enqueue(Outgoing(b"x" * 200))  # 3,804 buffered + 50 queued + 200 > 4,000
        await recorder.wait_for(lambda r: r.closed_with is not None)
        assert recorder.closed_with is not None and recorder.closed_with[0] == CLOSE_TOO_SLOW
        assert conn.slow and conn.closed and conn.fits(4000 - sink.buffer), "queue discarded"
        assert hub.metrics.slow_consumer_closes == 1
    await hub.stop()


async def test_refused_write_closes_the_connection() -> None:
    """A sink that refuses writes (its socket is closing) marks the connection closed; nothing is queued after."""
    recorder = Recorder()
    sink = FakeSink()
    sink.closing = True
    conn = Connection(unused_send, recorder.close, sink=sink)
    assert conn.enqueue(Outgoing(b"{}"))
    # The refused write discards the queue: a wait for room ends there, the connection closed.
    assert await asyncio.wait_for(conn.wait_for_room(conn.max_queue_bytes), WAIT) is False
    assert conn.closed and not conn.enqueue(Outgoing(b"{}"))
    await conn.stop()


async def test_deliberate_close_writes_what_is_queued_first() -> None:
    """close() (4029, 4001) first writes the messages already queued, then closes the transport."""
    recorder = Recorder()
    sink = FakeSink()
    conn = Connection(unused_send, recorder.close, sink=sink)
    conn.enqueue(Outgoing(b'{"op":"error"}'))
    await conn.close(4029, "rate limited")
    assert sink.messages() == [{"op": "error"}]
    assert recorder.closed_with == (4029, "rate limited")


async def test_deliberate_close_sends_what_is_queued_first_without_a_sink() -> None:
    """Over ASGI send (no sink: stock uvicorn, WS_FAST_PATH=0) close() also sends the queued messages first."""
    recorder = Recorder()
    sent: list[bytes] = []

    async def send(frame: bytes) -> None:
        await asyncio.sleep(0)  # a real send yields to the loop
        sent.append(frame)

    conn = Connection(send, recorder.close)
    conn.enqueue(Outgoing(b'{"op":"error","n":1}'))
    await asyncio.sleep(0)  # the writer task is now mid-send
    conn.enqueue(Outgoing(b'{"op":"error","n":2}'))
    await conn.close(4029, "rate limited")
    assert b"\n".join(sent) == b'{"op":"error","n":1}\n{"op":"error","n":2}'
    assert recorder.closed_with == (4029, "rate limited")


async def test_held_messages_leave_together_on_release(hub: Hub, broker: Broker) -> None:
    """hold() keeps messages queued across awaits; release() writes them as one frame, in order."""
    recorder = Recorder()
    sink = FakeSink()
    async with hub.connect(unused_send, recorder.close, sink=sink) as conn:
        conn.hold()
        conn.enqueue(Outgoing(b'{"op":"welcome"}'))
        await hub.subscribe(conn, "order:held")  # awaits the broker: a flush would have run by now
        await asyncio.sleep(0)  # and one more loop iteration, for the flusher's call_soon
        assert sink.frames == [], "nothing is written while held"
        conn.release()
        messages = await sink.wait_messages(2)
        assert len(sink.frames) == 1
        assert [m["op"] for m in messages] == ["welcome", "subscribed"]
        await broker.publish("order:held", "order.status_changed", b'{"n":1}')
        assert (await sink.wait_messages(3))[-1]["data"] == {"n": 1}, "released: live events flow as usual"


async def test_hold_applies_to_send_frame_transports_too() -> None:
    """Without a sink the writer task starts at release, not at the first enqueue."""
    sent: list[bytes] = []
    written = asyncio.Event()

    async def send(frame: bytes) -> None:
        sent.append(frame)
        written.set()

    conn = Connection(send, Recorder().close)
    conn.hold()
    conn.enqueue(Outgoing(b'{"n":1}'))
    conn.enqueue(Outgoing(b'{"n":2}'))
    await asyncio.sleep(0)  # one loop iteration: an unheld connection's writer task would have sent by now
    assert sent == []
    conn.release()
    await asyncio.wait_for(written.wait(), WAIT)
    assert sent == [b'{"n":1}\n{"n":2}']
    await conn.stop()


async def test_wait_for_room_waits_for_the_queue_to_be_written_and_the_transport_to_resume() -> None:
    """A replay's next part waits (hold released) until the queue went to a transport that was paused and resumed."""
    sink = FakeSink()
    conn = Connection(unused_send, Recorder().close, sink=sink, max_queue_bytes=4000)
    conn.hold()
    assert conn.enqueue(Outgoing(b'{"n":"' + b"x" * 3000 + b'"}'))
    assert not conn.fits(2000)
    sink.pause()
    waiting = asyncio.create_task(conn.wait_for_room(2000))
    for _ in range(3):  # loop iterations for the release's flush (which finds the transport paused)
        await asyncio.sleep(0)
    assert not waiting.done() and sink.frames == []
    sink.resume()
    assert await asyncio.wait_for(waiting, WAIT) is True
    assert len(sink.frames) == 1 and conn.fits(2000)
    await conn.close()
    assert await conn.wait_for_room(2000) is False, "a closed connection has nothing to wait for"
