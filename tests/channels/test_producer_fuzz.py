"""Property (issue 12): whatever a producer PUBLISHes, the listener stays up, no client socket closes, every
frame a client gets is UTF-8 JSON lines, and every valid event published in between arrives exactly once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels import EVENT_MAX_BYTES
from tests.channels.conftest import CHANNEL, Relay

pytestmark = pytest.mark.redis

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
types = st.sampled_from(["order.created", "tracking.location", "x", "Order.Created", "a." + "b" * 70, ""]) | st.text(
    max_size=10
)
timestamps = st.sampled_from(["2024-01-02T03:04:05.678Z", "2024-01-02T03:04:05+02:00", "garbage", "2024-01-02"])


def _envelope(type_: Any, data: Any, ts: Any, pretty: bool, ascii_only: bool) -> bytes:
    envelope = {"type": type_, "data": data} if ts is None else {"type": type_, "data": data, "ts": ts}
    text = json.dumps(envelope, indent=2 if pretty else None, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate makes bytes that are not UTF-8


def _nested(depth: int, opener: str) -> bytes:
    inner = ("[" * depth + "]" * depth) if opener == "[" else ('{"a":' * depth + "1" + "}" * depth)
    return b'{"type":"order.created","data":{"x":' + inner.encode() + b"}}"


def _mutated(payload: bytes, position: int, byte: int) -> bytes:
    position %= len(payload) + 1
    return payload[:position] + bytes([byte]) + payload[position + 1 :]


producer_messages = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.builds(_envelope, types, json_values, st.none() | timestamps, st.booleans(), st.booleans()),
    st.builds(_nested, st.integers(28, 2500), st.sampled_from(["[", "{"])),
    st.builds(
        _mutated,
        st.just(b'{"type":"order.created","data":{"orderId":"o1","lat":1.5},"ts":"2024-01-02T03:04:05Z"}'),
        st.integers(0, 100),
        st.integers(0, 255),
    ),
    st.integers(EVENT_MAX_BYTES - 64, EVENT_MAX_BYTES + 4096).map(
        lambda size: b'{"type":"order.created","data":{"blob":"' + b"x" * size + b'"}}'
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(garbage=st.lists(producer_messages, min_size=1, max_size=5))
async def test_producer_garbage_never_breaks_the_relay(redis_relay: Relay, garbage: list[bytes]) -> None:
    """Random bytes and JSON shapes between valid events: listener up, sockets open, each valid event once."""
    relay = redis_relay
    expected = [e["offset"] for e in relay.client.events() if e["offset"] is not None]
    for payload in garbage:
        await relay.raw(payload)
    offset = await relay.publisher.publish(CHANNEL, "notification.created", {"n": len(expected)})
    expected.append(str(offset))
    await relay.client.wait_for(lambda r: any(e["offset"] == str(offset) for e in r.events()))

    assert [e["offset"] for e in relay.client.events() if e["offset"] is not None] == expected
    assert relay.client.closed_with is None
    assert relay.broker.healthy and relay.broker.stats.reconnects == 0
    assert relay.broker.stats.listener_errors == 0
    for frame in relay.client.frames:
        for line in frame.decode("utf-8").split("\n"):  # strict UTF-8, as a browser decodes a text frame
            assert json.loads(line)["op"] in ("subscribed", "event")
