"""Hostile producer input (issue 12): garbage on the pub/sub channel is dropped and counted, never relayed,
and never costs a subscriber its socket or the listener its connection; producers are refused up front."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from channels import BrokerEvent, InvalidEvent, RedisBroker, parse_offset
from tests.channels.conftest import CHANNEL, BrokerFactory, Relay, open_relay


def deep_list(depth: int) -> Any:
    """A list nested ``depth`` levels: [[[...1...]]]."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# Raw producer messages on Redis


@pytest.mark.redis
async def test_invalid_utf8_is_dropped_not_relayed(redis_relay: Relay) -> None:
    """A message with a raw 0xFF byte is dropped (a browser would fail the socket with 1007); the next arrives."""
    await redis_relay.raw(b'{"type":"notification.created","data":{"s":"\xff"}}')
    await redis_relay.valid(1)
    assert await redis_relay.received(1) == [{"n": 1}]
    assert redis_relay.broker.stats.dropped == {"not_utf8": 1}
    assert redis_relay.client.closed_with is None


@pytest.mark.redis
async def test_pretty_printed_message_arrives_as_one_line(redis_relay: Relay) -> None:
    """Newlines between JSON tokens are compacted, so a frame's newline-separated messages stay whole."""
    data = {"orderId": "o1", "items": [{"n": 1}, {"n": 2}]}
    await redis_relay.raw(json.dumps({"type": "order.created", "data": data}, indent=2).encode())
    assert await redis_relay.received(1) == [data]
    frame = redis_relay.client.frames[-1]
    assert frame.count(b"\n") == 0 and json.loads(frame)["data"] == data


@pytest.mark.redis
async def test_deep_nesting_is_dropped_without_a_reconnect(redis_relay: Relay) -> None:
    """1,000 levels (RecursionError in a decoder) and 33 levels are dropped; the listener keeps its connection."""
    await redis_relay.valid(0)
    await redis_relay.raw(b'{"type":"order.created","data":' + b"[" * 1000 + b"]" * 1000 + b"}")
    await redis_relay.raw(b'{"type":"order.created","data":' + b'{"a":' * 32 + b"1" + b"}" * 32 + b"}")
    await redis_relay.valid(1)
    assert await redis_relay.received(2) == [{"n": 0}, {"n": 1}]
    broker = redis_relay.broker
    assert broker.stats.dropped == {"too_deep": 2}
    assert broker.stats.reconnects == 0 and broker.healthy
    assert redis_relay.hub.metrics.resyncs == 0


@pytest.mark.redis
async def test_wrong_shapes_are_dropped_by_reason(redis_relay: Relay) -> None:
    """data not an object, a garbage ts, bad or oversized types: none relayed, each counted by its reason."""
    garbage = [
        b'{"type":"order.created","data":"a string"}',
        b'{"type":"order.created","data":[1, 2]}',
        b'{"type":"order.created","data":{},"ts":"garbage"}',
        b'{"type":"Order Created","data":{}}',
        b'{"type":"order.%s","data":{}}' % (b"x" * 60),
        b'{"type":"order.%s","data":{}}' % (b"x" * 100_000),
    ]
    for payload in garbage:
        await redis_relay.raw(payload)
    await redis_relay.valid(1)
    assert await redis_relay.received(1) == [{"n": 1}]
    assert redis_relay.broker.stats.dropped == {"bad_data": 2, "bad_ts": 1, "bad_type": 2, "too_large": 1}


@pytest.mark.redis
async def test_oversized_message_is_dropped_and_no_subscriber_is_closed(redis_relay: Relay) -> None:
    """A 5 MB event (over EVENT_MAX_BYTES and every send queue) is dropped instead of closing everyone with 4008."""
    big = b'{"type":"order.created","data":{"blob":"%s"}}' % (b"x" * 5_000_000)
    await redis_relay.raw(big)
    await redis_relay.valid(1)
    assert await redis_relay.received(1) == [{"n": 1}]
    assert redis_relay.client.closed_with is None
    assert redis_relay.broker.stats.dropped == {"too_large": 1}


@pytest.mark.redis
async def test_an_exception_in_message_handling_does_not_reconnect(
    redis_relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever handling one message raises is counted and skipped: no reconnect, later events arrive."""
    broker = redis_relay.broker
    assert isinstance(broker, RedisBroker)
    decode = broker._decode

    def exploding(channel: str, payload: bytes) -> BrokerEvent | None:
        if payload == b"boom":
            raise RuntimeError("a bug in message handling")
        return decode(channel, payload)

    monkeypatch.setattr(broker, "_decode", exploding)
    await redis_relay.valid(0)
    await redis_relay.raw(b"boom")
    await redis_relay.valid(1)
    assert await redis_relay.received(2) == [{"n": 0}, {"n": 1}]
    assert broker.stats.listener_errors == 1 and broker.stats.reconnects == 0


# Producers: refused before anything is published (memory and Redis)


async def test_publisher_refuses_what_a_listener_would_drop(relay: Relay) -> None:
    """Bad type, data that is no object, too deep, not UTF-8 or over EVENT_MAX_BYTES: InvalidEvent, nothing sent."""
    cases: list[tuple[str, object, str]] = [
        ("x" * 100, {}, "bad_type"),
        ("Order.Created", {}, "bad_type"),
        ("order.created", "a string", "bad_data"),
        ("order.created", [1, 2], "bad_data"),
        ("order.created", {"a": deep_list(31)}, "too_deep"),  # 33 levels with the envelope
        ("order.created", b'{"s":"\xff"}', "not_utf8"),
        ("order.created", b'{"s":', "not_json"),
        ("order.created", {"blob": "x" * 70_000}, "too_large"),
    ]
    for type_, data, reason in cases:
        with pytest.raises(InvalidEvent) as raised:
            await relay.publisher.publish(CHANNEL, type_, data)
        assert raised.value.reason == reason, (type_, data)
    assert relay.broker.stats.published == 0
    assert (await relay.broker.history(CHANNEL, None)).events == []
    await relay.valid(1)
    assert await relay.received(1) == [{"n": 1}]


async def test_event_of_exactly_event_max_bytes_is_published_and_relayed(broker_factory: BrokerFactory) -> None:
    """The limit is inclusive, and the offset Redis prepends does not push our own event over it."""
    broker = await broker_factory(event_max_bytes=4096)
    async with open_relay(broker) as relay:
        stamped = len(b'{"type":"notification.created","data":{"blob":""},"ts":"2024-01-02T03:04:05.678Z"}')
        blob = "x" * (4096 - stamped)
        offset = await relay.publisher.publish(CHANNEL, "notification.created", {"blob": blob})
        assert offset is not None
        with pytest.raises(InvalidEvent, match="EVENT_MAX_BYTES"):
            await relay.publisher.publish(CHANNEL, "notification.created", {"blob": blob + "x"})
        (event,) = await relay.client.wait_events(1)
        assert event["data"] == {"blob": blob} and parse_offset(str(event["offset"])) == offset
        (stored,) = (await broker.history(CHANNEL, None)).events
        assert msgspec.json.decode(stored.data) == {"blob": blob}


async def test_publisher_compacts_pretty_printed_bytes(relay: Relay) -> None:
    """Pretty-printed JSON bytes are published on one line, live and in history."""
    await relay.publisher.publish(CHANNEL, "order.created", b'{\n  "orderId": "o1",\n  "n": [1,\n 2]\n}')
    (event,) = await relay.client.wait_events(1)
    assert event["data"] == {"orderId": "o1", "n": [1, 2]}
    (stored,) = (await relay.broker.history(CHANNEL, None)).events
    assert bytes(stored.data) == b'{"orderId":"o1","n":[1,2]}'
