"""The broker contract, run against MemoryBroker and RedisBroker alike: on one Redis, on Sentinel and on Cluster."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import msgspec
import pytest

from channels import Broker, BrokerEvent, Offset, RedisBroker, parse_offset
from tests.channels.conftest import WAIT, BrokerFactory, make_broker_factory

RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("sentinel", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
    ]
)
async def broker_factory(request: pytest.FixtureRequest) -> AsyncIterator[BrokerFactory]:
    """Brokers of every kind: in-process, one Redis, the master of a Sentinel set, a Redis Cluster."""
    async for factory in make_broker_factory(request.param, request):
        yield factory


async def next_events(broker: Broker, count: int) -> list[BrokerEvent]:
    """Read ``count`` events from the broker's stream, each within WAIT seconds."""
    stream = broker.events()  # an async generator in both brokers
    received: list[BrokerEvent] = []
    while len(received) < count:
        item = await asyncio.wait_for(anext(stream), WAIT)
        if isinstance(item, BrokerEvent):
            received.append(item)
    await stream.aclose()  # type: ignore[attr-defined]
    return received


async def test_publish_numbers_events_from_one_without_holes(broker: Broker) -> None:
    """Offsets of one channel share an epoch and count 1, 2, 3... in publish order."""
    offsets = [await broker.publish("order:o1", "test.event", b'{"i":%d}' % i) for i in range(5)]
    assert all(o is not None for o in offsets)
    assert {o.epoch for o in offsets if o} == {offsets[0].epoch if offsets[0] else ""}
    assert [o.seq for o in offsets if o] == [1, 2, 3, 4, 5]
    assert await broker.current_offset("order:o1") == offsets[-1]


async def test_empty_channel_offset_is_stable(broker: Broker) -> None:
    """An empty channel has offset <epoch>:0, the same on every read, and its first event is seq 1 of that epoch."""
    first = await broker.current_offset("user:nobody")
    assert first.seq == 0
    assert await broker.current_offset("user:nobody") == first
    published = await broker.publish("user:nobody", "test.event", b"{}")
    assert published == Offset(first.epoch, 1)


async def test_channels_have_independent_sequences(broker: Broker) -> None:
    """Each channel counts its own seq."""
    await broker.publish("order:a", "test.event", b'{"i":1}')
    await broker.publish("order:a", "test.event", b'{"i":2}')
    assert (await broker.publish("order:b", "test.event", b'{"i":3}')) is not None
    assert (await broker.current_offset("order:b")).seq == 1


async def test_subscribe_is_confirmed_before_it_returns(broker: Broker) -> None:
    """An event published right after subscribe() returns is received, in order, with its data and ts."""
    await broker.subscribe(["order:live"])
    sent = [await broker.publish("order:live", "tracking.eta", b'{"n":%d}' % i) for i in range(3)]
    received = await next_events(broker, 3)
    assert [e.offset for e in received] == sent
    assert [msgspec.json.decode(e.data) for e in received] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert all(e.channel == "order:live" and e.type == "tracking.eta" for e in received)
    assert all(RFC3339_MS.fullmatch(e.ts) for e in received)


async def test_unsubscribed_channels_are_not_received(broker: Broker) -> None:
    """After unsubscribe, events of that channel no longer arrive; others still do."""
    await broker.subscribe(["order:x", "order:y"])
    await broker.unsubscribe(["order:x"])
    await broker.publish("order:x", "test.event", b'{"i":1}')
    await broker.publish("order:y", "test.event", b'{"i":2}')
    (event,) = await next_events(broker, 1)
    assert event.channel == "order:y"


async def test_bare_publish_has_no_offset_and_no_history(broker: Broker) -> None:
    """history=False relays live with offset None and leaves history untouched."""
    await broker.subscribe(["store:s1"])
    assert await broker.publish("store:s1", "test.event", b'{"x":1}', history=False) is None
    (event,) = await next_events(broker, 1)
    assert event.offset is None
    assert bytes(event.data) == b'{"x":1}'
    history = await broker.history("store:s1", None)
    assert history.events == [] and history.offset.seq == 0


async def test_history_returns_events_after_offset_oldest_first(broker: Broker) -> None:
    """history(after) holds exactly the later events, complete."""
    offsets = [await broker.publish("order:h", "test.event", b'{"i":%d}' % i) for i in range(6)]
    history = await broker.history("order:h", offsets[2])
    assert [e.offset for e in history.events] == offsets[3:]
    assert history.complete and history.offset == offsets[-1]
    caught_up = await broker.history("order:h", offsets[-1])
    assert caught_up.events == [] and caught_up.complete


async def test_history_window_keeps_last_events_only(broker_factory: BrokerFactory) -> None:
    """With HISTORY_SIZE 5, an older offset gets the last 5 events and complete False; a recent one is complete."""
    broker = await broker_factory(history_size=5)
    offsets = [await broker.publish("order:w", "test.event", b'{"i":%d}' % i) for i in range(8)]
    first = offsets[0]
    assert first is not None
    old = await broker.history("order:w", Offset(first.epoch, 1))
    assert [e.offset for e in old.events] == offsets[3:]
    assert not old.complete
    edge = await broker.history("order:w", offsets[2])  # seq 3: the oldest held is 4, nothing lost
    assert [e.offset for e in edge.events] == offsets[3:] and edge.complete


async def test_history_from_another_epoch_is_incomplete(broker: Broker) -> None:
    """An offset of another epoch gets every held event of the current one, complete False."""
    offset = await broker.publish("order:e", "test.event", b'{"i":1}')
    history = await broker.history("order:e", Offset("gone", 1))
    assert [e.offset for e in history.events] == [offset] and not history.complete


async def test_offset_from_the_future_is_incomplete(broker: Broker) -> None:
    """A seq beyond the current one was never issued: complete False."""
    offset = await broker.publish("order:f", "test.event", b'{"i":1}')
    assert offset is not None
    assert not (await broker.history("order:f", Offset(offset.epoch, 99))).complete


async def test_lost_history_starts_a_new_epoch(broker_factory: BrokerFactory) -> None:
    """When a channel's history is lost (keys deleted / forgotten), a new epoch starts at seq 1."""
    broker = await broker_factory()
    before = await broker.publish("order:lost", "test.event", b'{"i":1}')
    await broker.publish("order:lost", "test.event", b'{"i":2}')
    if isinstance(broker, RedisBroker):
        await broker._client.delete(*broker.keys.history("order:lost"))  # type: ignore[union-attr]
    else:
        broker.forget("order:lost")  # type: ignore[attr-defined]
    after = await broker.publish("order:lost", "test.event", b'{"i":3}')
    assert before is not None and after is not None
    assert after.epoch != before.epoch and after.seq == 1
    history = await broker.history("order:lost", before)
    assert [e.offset for e in history.events] == [after] and not history.complete


async def test_idempotent_publish_happens_once(broker: Broker) -> None:
    """A repeated idempotency key publishes nothing and returns the first offset."""
    await broker.subscribe(["user:u1"])
    first = await broker.publish("user:u1", "notification.created", b'{"id":"n1"}', idempotency_key="n1")
    again = await broker.publish("user:u1", "notification.created", b'{"id":"n1"}', idempotency_key="n1")
    other = await broker.publish("user:u1", "notification.created", b'{"id":"n2"}', idempotency_key="n2")
    assert first is not None and again == first
    assert other is not None and other.seq == first.seq + 1
    received = await next_events(broker, 2)
    assert [e.offset for e in received] == [first, other]


async def test_idempotent_bare_publish_returns_none_again(broker: Broker) -> None:
    """A repeated idempotency key of a bare publish returns None and publishes nothing."""
    assert await broker.publish("user:u2", "test.event", b'{"i":1}', history=False, idempotency_key="k") is None
    assert await broker.publish("user:u2", "test.event", b'{"i":1}', history=False, idempotency_key="k") is None
    assert broker.stats.published == 1


async def test_history_event_matches_live_event(broker: Broker) -> None:
    """An event read from history equals the live one (same offset, type, data, ts)."""
    await broker.subscribe(["order:same"])
    await broker.publish("order:same", "test.event", b'{"a":[1,2]}', ts="2024-01-02T03:04:05.678Z")
    (live,) = await next_events(broker, 1)
    (stored,) = (await broker.history("order:same", None)).events
    for field in ("channel", "offset", "type", "ts"):
        assert getattr(live, field) == getattr(stored, field)
    assert bytes(live.data) == bytes(stored.data) == b'{"a":[1,2]}'
    assert msgspec.json.decode(live.data) == {"a": [1, 2]}


async def test_offsets_round_trip_as_text(broker: Broker) -> None:
    """str(offset) parses back to the same offset."""
    offset = await broker.publish("order:txt", "test.event", b'{"i":1}')
    assert offset is not None and parse_offset(str(offset)) == offset
